//! `linli-testnet`: shows the Linli protocol working end to end.
//!
//! This first version runs the scenario in one process on the pure protocol crate (every entry
//! signed, batch-verified, applied by the state machine, checkpointed and proven in the Merkle
//! tree). Later versions start real community nodes and merchant light nodes as processes.

mod scenario;

use clap::Parser;

/// Run the Linli scenario: residents earn, redeem, spend across communities, use the time bank;
/// merchants settle; communities clear; every ledger is re-verified from genesis.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Number of community ledgers (at least 2).
    #[arg(long, default_value_t = 4)]
    communities: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.communities >= 2, "need at least 2 communities");
    scenario::run(args.communities)
}
