//! `linli`: the command-line tool of Linli, for auditors, street-office operators and residents.
//! It reads a ledger from a node's RocksDB directory or HTTP API and checks it without trusting
//! the node that served it: keys, inspection, full verification from genesis, Merkle proofs,
//! comparison of several nodes' views (with equivocation proofs), export for public disclosure,
//! and signed resident transactions.
//!
//! Human output by default, `--json` for scripts. Exit codes: 0 all good; 1 a finding (a ledger
//! that does not verify, nodes that disagree, a proof that fails, a transaction the node
//! refused); 2 any other error (bad arguments, unreadable files, unreachable node).

/// mimalloc: the replay allocates and frees many small objects per entry.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;
mod compare;
mod export;
mod http;
mod inspect;
mod keyring;
mod keys;
mod out;
mod prefetch;
mod proof;
mod source;
mod statediff;
mod submit;
mod verify;
mod wire;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "linli",
    version,
    about = "Inspect, verify and audit Linli ledgers; sign and submit resident transactions"
)]
struct Cli {
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate and show resident, merchant and community keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Look at a ledger: entries, one entry, an account's history, checkpoints.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Replay ledgers from genesis and check every invariant.
    Verify(verify::VerifyArgs),
    /// Make and check inclusion and consistency proofs against signed checkpoints.
    #[command(subcommand)]
    Proof(proof::ProofCommand),
    /// Compare several nodes' views of each ledger; print an equivocation proof on a fork.
    Compare(compare::CompareArgs),
    /// Export entries or balances as JSON lines or CSV (public disclosure).
    Export(export::ExportArgs),
    /// Sign and submit a resident's (or merchant's) transaction.
    #[command(subcommand)]
    Submit(submit::SubmitCommand),
}

/// A finding about a ledger, a node or a proof: the command worked and what it found is wrong.
#[derive(Debug)]
pub struct Finding(pub String);

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Finding {}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Keys(c) => keys::run(c, cli.json),
        Command::Inspect(c) => inspect::run(c, cli.json),
        Command::Verify(a) => verify::run(a, cli.json),
        Command::Proof(c) => proof::run(c, cli.json),
        Command::Compare(a) => compare::run(a, cli.json),
        Command::Export(a) => export::run(a),
        Command::Submit(c) => submit::run(c, cli.json),
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(f) = e.downcast_ref::<Finding>() {
                eprintln!("FAILED: {f}");
                ExitCode::from(1)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }
    }
}
