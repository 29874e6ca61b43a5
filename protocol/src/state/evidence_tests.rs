//! Evidence: a pass and a fail test for each rule, and a `Credit` that cites the other branch
//! of an equivocator and balances on evidence.

use crate::body::*;
use crate::primitives::Hash;
use crate::replay::{replay, replay_with_evidence, Evidence, ReplayError};
use crate::rules::RuleTable;
use crate::state::{LedgerState, Rejection};
use crate::testkit::{cid, key, TestFederation};
use crate::verify::{verify_entry, VerifiedEntry};
use crate::{CommunityId, SignedEntry};
use std::collections::BTreeMap;

/// a (resident r1 with 100 points) and b (merchant m, 10,000 fen of credit for a); a then
/// signs two entries at one seq: `kept` (applied here) and `other`, a payment of 30 points to m.
struct Fork {
    f: TestFederation,
    m: crate::Keypair,
    conflict_at: u64,
    other: SignedEntry,
    /// Every entry applied, per ledger (the branch with `kept` for a).
    ledgers: BTreeMap<CommunityId, Vec<SignedEntry>>,
}

/// Append and record.
fn add(f: &mut TestFederation, ledgers: &mut BTreeMap<CommunityId, Vec<SignedEntry>>, c: &str, body: Body) -> EntryRef {
    let v = f.append(c, body).unwrap();
    ledgers.entry(cid(c)).or_default().push(v.signed().clone());
    v.signed().entry_ref(&f.genesis_hash)
}

fn fork() -> Fork {
    let mut f = TestFederation::new(&["a", "b"]);
    let mut ledgers = BTreeMap::new();
    add(&mut f, &mut ledgers, "a", Body::SetRules(RuleTable::default_table(1)));
    let r1 = key("r1");
    add(&mut f, &mut ledgers, "a", Body::Enroll(Enroll { resident: r1.public(), profile_hash: Hash([7; 32]) }));
    let award = Award {
        resident: r1.public(),
        activity: "mediation".into(),
        minutes: 60,
        rating: 5,
        bonuses: vec![],
        points: 100,
        rules_version: 1,
        request_id: 1,
    };
    add(&mut f, &mut ledgers, "a", Body::Award(award));
    let m = key("m");
    let register = RegisterMerchant { merchant: m.public(), name: "Tea".into(), category: "food".into() };
    add(&mut f, &mut ledgers, "b", Body::RegisterMerchant(register));
    let limit = ExposureLimit { issuer: cid("a"), limit_fen: 10_000 };
    let limit = add(&mut f, &mut ledgers, "b", Body::SetExposureLimit(limit));
    let payment = f.sign(f.payment(&r1, &m, "b", 30, 300, 1), &r1);
    let other = f.entry("a", Body::Pay(PayEntry { payment, exposure_limit: Some(limit) }));
    let conflict_at = other.entry.seq;
    let kept = Body::Enroll(Enroll { resident: key("r2").public(), profile_hash: Hash([2; 32]) });
    add(&mut f, &mut ledgers, "a", kept);
    f.state.mark_faulty(&cid("a"), conflict_at);
    Fork { f, m, conflict_at, other, ledgers }
}

fn verified(f: &TestFederation, e: SignedEntry, signer: &str) -> VerifiedEntry {
    verify_entry(&f.genesis_hash, e, key(signer).public()).unwrap()
}

fn refusal(f: &TestFederation, v: &VerifiedEntry, conflict_at: u64) -> Rejection {
    match f.state.check_evidence(v, conflict_at) {
        Ok(changes) => panic!("evidence accepted: {changes:?}"),
        Err(e) => {
            assert!(e.to_string().contains(&format!("rule {}", e.rejection.rule())), "{e}");
            e.rejection
        }
    }
}

#[test]
fn a_credit_citing_the_other_branch_balances_on_evidence() {
    let Fork { mut f, m, conflict_at, other, .. } = fork();
    let source = other.entry_ref(&f.genesis_hash);
    let credit = Body::Credit(Credit { source: source.clone(), merchant: m.public(), issuer: cid("a"), points: 30 });
    // Without the evidence the credit waits.
    let waiting = f.append("b", credit.clone()).unwrap_err();
    assert!(waiting.rejection.is_missing_dependency(), "{waiting}");

    let v = verified(&f, other, "a/signing");
    let changes = f.state.check_evidence(&v, conflict_at).unwrap();
    assert_eq!(changes.len(), 2, "a payment record and the issuer's totals: {changes:?}");
    f.state.commit(changes);
    assert_eq!(f.state.totals[&cid("a")].evidence_points, 30);
    assert_eq!(f.state.conservation_violation(), None);
    // Admitting it again changes nothing.
    assert_eq!(f.state.check_evidence(&v, conflict_at).unwrap(), vec![]);

    f.append("b", credit.clone()).unwrap();
    assert_eq!(f.state.holding(&cid("b"), &m.public(), &cid("a")), 30);
    assert_eq!(f.state.totals[&cid("a")].in_flight, 0);
    assert_eq!(f.state.conservation_violation(), None);
    // Still at most one credit per source.
    assert!(matches!(f.append("b", credit).unwrap_err().rejection, Rejection::AlreadyUsed { .. }));
}

#[test]
fn evidence_before_the_conflict_is_refused() {
    let Fork { f, conflict_at, other, .. } = fork();
    let v = verified(&f, other, "a/signing");
    assert_eq!(
        refusal(&f, &v, conflict_at + 1),
        Rejection::EvidenceBeforeConflict { community: cid("a"), conflict_at: conflict_at + 1, actual: conflict_at }
    );
}

#[test]
fn evidence_signed_by_another_key_is_refused() {
    let Fork { f, conflict_at, other, .. } = fork();
    let forged = SignedEntry::sign(other.entry, &key("b/signing"), &f.genesis_hash);
    let v = verified(&f, forged, "b/signing");
    assert_eq!(
        refusal(&f, &v, conflict_at),
        Rejection::WrongSigner { expected: key("a/signing").public(), actual: key("b/signing").public() }
    );
}

#[test]
fn evidence_no_ledger_cites_is_refused() {
    let Fork { mut f, conflict_at, .. } = fork();
    let mut e = f.entry("a", Body::Enroll(Enroll { resident: key("r3").public(), profile_hash: Hash([3; 32]) }));
    e = SignedEntry::sign(crate::entry::Entry { seq: conflict_at, ..e.entry }, &key("a/signing"), &f.genesis_hash);
    let v = verified(&f, e, "a/signing");
    assert_eq!(
        refusal(&f, &v, conflict_at),
        Rejection::EvidenceNotCitable { community: cid("a"), seq: conflict_at, kind: "enroll" }
    );
}

#[test]
fn evidence_past_what_this_node_holds_waits_for_the_key() {
    let Fork { f, other, .. } = fork();
    let held_to = f.state.ledgers[&cid("a")].next_seq;
    let far =
        SignedEntry::sign(crate::entry::Entry { seq: held_to + 5, ..other.entry }, &key("a/signing"), &f.genesis_hash);
    let v = verified(&f, far, "a/signing");
    assert_eq!(
        refusal(&f, &v, held_to + 1),
        Rejection::EvidenceKeyUnknown { community: cid("a"), conflict_at: held_to + 1, held_to }
    );
}

#[test]
fn the_key_in_force_follows_rotations() {
    let (k0, k1) = (key("k0").public(), key("k1").public());
    let ledger = LedgerState {
        next_seq: 10,
        head: Hash::ZERO,
        last_time_ms: 0,
        key: k1,
        recovery_key: key("rec").public(),
        retired_keys: vec![k0],
        key_changes: vec![5],
        rules: None,
        faulty: false,
        faulty_from: u64::MAX,
    };
    // The rotation entry at seq 5 is still signed by the old key.
    assert_eq!(ledger.key_in_force_at(0), Some(k0));
    assert_eq!(ledger.key_in_force_at(5), Some(k0));
    assert_eq!(ledger.key_in_force_at(6), Some(k1));
    assert_eq!(ledger.key_in_force_at(10), Some(k1));
    assert_eq!(ledger.key_in_force_at(11), None);
}

#[test]
fn a_replay_takes_the_stored_evidence() {
    let Fork { mut f, m, conflict_at, other, mut ledgers } = fork();
    let v = verified(&f, other.clone(), "a/signing");
    f.state.commit(f.state.check_evidence(&v, conflict_at).unwrap());
    let source = other.entry_ref(&f.genesis_hash);
    add(&mut f, &mut ledgers, "b", Body::Credit(Credit { source, merchant: m.public(), issuer: cid("a"), points: 30 }));

    // Without the evidence the credit cites an entry no ledger holds.
    assert!(matches!(replay(&f.genesis, ledgers.clone(), None), Err(ReplayError::Unresolved { .. })));
    let evidence = Evidence {
        conflicts: [(cid("a"), conflict_at)].into_iter().collect(),
        entries: [(v.hash(), other)].into_iter().collect(),
    };
    let mut replayed = replay_with_evidence(&f.genesis, ledgers, &evidence, None).unwrap();
    replayed.mark_faulty(&cid("a"), conflict_at);
    assert_eq!(replayed, f.state);
}
