//! `linli`: the command-line tool of Linli, for auditors, street-office operators and residents.
//! It reads a ledger from a node's RocksDB directory or HTTP API and checks it without trusting
//! the node that served it: keys, inspection, full verification from genesis, Merkle proofs,
//! comparison of several nodes' views (with equivocation proofs), export for public disclosure,
//! and signed resident transactions.
//!
//! Human output by default, `--json` for scripts. Exit codes: 0 all good; 1 a finding (a ledger
//! that does not verify, nodes that disagree, a proof that fails, a transaction the node
//! refused); 2 any other error (bad arguments, unreadable files, unreachable node). Under
//! `--json` a failed run prints one JSON document with an `error` object on stdout too
//! (see [`fail`]).

/// mimalloc: the replay allocates and frees many small objects per entry.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;
mod compare;
mod export;
mod fail;
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
    /// Machine-readable JSON on stdout instead of text; a failed run prints a JSON document with
    /// an `error` object (category, message and, for a ledger, community, seq and rule).
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

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Keys(c) => keys::run(c, cli.json),
        Command::Inspect(c) => inspect::run(c, cli.json),
        Command::Verify(a) => verify::run(a, cli.json),
        Command::Proof(c) => proof::run(c, cli.json),
        Command::Compare(a) => compare::run(a, cli.json),
        Command::Export(a) => export::run(a, cli.json),
        Command::Submit(c) => submit::run(c, cli.json),
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Print one JSON document on stdout, ignoring a closed pipe (the run is ending anyway).
fn print_json(doc: &serde_json::Value) {
    let _ = out::line(&serde_json::to_string_pretty(doc).unwrap_or_default());
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--json` anywhere before a `--`: a parse error is JSON too (help and version are not errors).
        Err(e) if e.use_stderr() && std::env::args_os().take_while(|a| a != "--").any(|a| a == "--json") => {
            eprint!("{}", e.render());
            let text = e.render().to_string();
            let message = text.trim_start_matches("error: ").trim_end().to_string();
            print_json(&fail::ErrorView::usage(message).document(None));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let view = fail::classify(&e);
            if view.exit_code == 1 {
                eprintln!("FAILED: {e:#}");
            } else {
                eprintln!("error: {e:#}");
            }
            if cli.json {
                print_json(&view.document(fail::report(&e)));
            }
            ExitCode::from(view.exit_code)
        }
    }
}
