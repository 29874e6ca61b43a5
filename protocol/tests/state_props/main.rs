//! Property test of the ledger state machine over random sequences of valid and invalid
//! transactions on a three-community federation (`a` and `b` with the default rule table, `c`
//! with the council table): enrolment, merchants, rule tables, awards (right and wrong points),
//! redemptions, payments within and across communities (with and without enough points or
//! exposure room, citing the right, a stale, a wrong or no limit), credits (right, wrong,
//! duplicate), settlements (right and wrong fen and totals), clearings (right and wrong figures),
//! exposure limits, the time bank, account key replacement and community key rotation.
//!
//! After every step:
//! * conservation holds (`State::conservation_violation`), and so do invariants tying summary
//!   items (exposure, settled totals) to the records they summarise;
//! * an accepted entry changed the state by exactly the changes `State::check` returned (and moved
//!   the ledger head by one); a rejected one left the state untouched (`State` compared with `==`);
//! * a small independent model of the rules (the `Shadow`: balances, holdings, nonces, request
//!   ids, exposure, settled and cleared totals) predicts whether the entry is accepted, and after
//!   it agrees with the state's figures.
//!
//! At the end, replaying the accepted entries into a fresh `State::new(&genesis)` (signatures
//! verified one by one, and per ledger as a batch) gives the same state.
//!
//! The runner is driven by hand so that statistics over all cases can be checked at the end: at
//! least 20% of the random operations are accepted, every operation kind is accepted at least
//! once, and the invalid variants hit their rules. Run with `--nocapture` to see them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod ops;
mod shadow;
mod world;

use ops::{op, Op};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use std::collections::BTreeMap;
use std::sync::Mutex;
use world::World;

const C: [&str; 3] = ["a", "b", "c"];
const RESIDENT_SLOTS: usize = 4;
const MERCHANT_SLOTS: usize = 2;
const MAX_MINUTES: u64 = 24 * 60;

#[derive(Debug, Default, Clone)]
struct Stats {
    /// label → (attempted, accepted)
    ops: BTreeMap<&'static str, (u64, u64)>,
    /// rejection rule → count
    rules: BTreeMap<&'static str, u64>,
    skipped: u64,
    cases: u64,
}

impl Stats {
    fn merge(&mut self, o: &Stats) {
        for (k, (a, b)) in &o.ops {
            let e = self.ops.entry(k).or_default();
            e.0 += a;
            e.1 += b;
        }
        for (k, n) in &o.rules {
            *self.rules.entry(k).or_default() += n;
        }
        self.skipped += o.skipped;
        self.cases += o.cases;
    }
    fn totals(&self) -> (u64, u64) {
        self.ops.values().fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
    }
}

fn run_case(ops: &[Op]) -> Result<Stats, TestCaseError> {
    let mut w = World::new();
    w.prologue()?;
    w.counting = true;
    for op in ops {
        w.run(op)?;
    }
    w.check_replay()?;
    w.stats.cases = 1;
    Ok(w.stats)
}

#[test]
fn random_transaction_sequences_keep_the_invariants() {
    let config = Config {
        cases: 128,
        source_file: Some(file!()),
        // Failing cases go next to this file (`main.proptest-regressions`), as they went next to
        // `state_props.rs` before it became a directory; `SourceParallel` would now pick
        // `tests/proptest-regressions/main.txt`, a name every directory test target shares.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    };
    let total = Mutex::new(Stats::default());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..=200), |ops| {
        let s = run_case(&ops)?;
        total.lock().unwrap().merge(&s);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let total = total.into_inner().unwrap();
    let (attempted, accepted) = total.totals();
    eprintln!(
        "{} cases, {attempted} random operations, {accepted} accepted ({:.0}%), {} skipped",
        total.cases,
        100.0 * accepted as f64 / attempted.max(1) as f64,
        total.skipped
    );
    for (label, (a, b)) in &total.ops {
        eprintln!("  {label:20} {b:5} / {a:5} accepted");
    }
    eprintln!("rejections by rule: {:?}", total.rules);
    assert!(accepted * 5 >= attempted, "only {accepted} of {attempted} operations were accepted");
    for label in linli_protocol::body::Body::KINDS {
        let (a, b) = total.ops.get(label).copied().unwrap_or_default();
        assert!(b > 0, "no {label} operation was ever accepted ({a} attempted)");
    }
    // The invalid variants were exercised too.
    for rule in [
        "award-points",
        "nonce-reused",
        "request-id-reused",
        "source-reused",
        "source-mismatch",
        "clearing-figure",
        "exchange-rate",
        "settled-total",
        "insufficient-points",
        "insufficient-holdings",
        "exposure-exceeded",
        "exposure-limit-wrong",
        "exposure-limit-stale",
        "account-replaced",
    ] {
        assert!(total.rules.get(rule).copied().unwrap_or(0) > 0, "rule {rule} never fired: {:?}", total.rules);
    }
}
