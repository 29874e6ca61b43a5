//! One test per rule of the state machine: the rejection and its message; plus the happy path
//! of a cross-community sale, settlement, clearing and the time bank.

use crate::body::*;
use crate::entry::SignedEntry;
use crate::keys::Keypair;
use crate::primitives::{Hash, PublicKey};
use crate::rules::RuleTable;
use crate::state::{ApplyContext, Rejection, Role};
use crate::testkit::{cid, key, TestFederation};
use crate::verify::verify_entry;

fn rejection(r: Result<crate::verify::VerifiedEntry, crate::state::RejectedEntry>) -> Rejection {
    match r {
        Ok(v) => panic!("expected a rejection, entry {} was accepted", v.signed().entry.seq),
        Err(e) => {
            // Every rejection names community, seq, kind and rule.
            let msg = e.to_string();
            assert!(msg.contains(&format!("community {} seq {}", e.community, e.seq)), "{msg}");
            assert!(msg.contains(&format!("rule {}", e.rejection.rule())), "{msg}");
            e.rejection
        }
    }
}

/// Three communities: a and b with the default table, c with the council table; resident r1 of
/// a with 100 points and 3 served hours; merchant m of b; b extends a 10,000 fen of credit.
struct World {
    f: TestFederation,
    r1: Keypair,
    m: Keypair,
    limit_b_for_a: EntryRef,
}

fn award(
    resident: &Keypair,
    activity: &str,
    minutes: u64,
    rating: u8,
    bonuses: &[&str],
    points: u64,
    request_id: u64,
) -> Body {
    Body::Award(Award {
        resident: resident.public(),
        activity: activity.into(),
        minutes,
        rating,
        bonuses: bonuses.iter().map(|b| b.to_string()).collect(),
        points,
        rules_version: 1,
        request_id,
    })
}

fn world() -> World {
    let mut f = TestFederation::new(&["a", "b", "c"]);
    f.append("a", Body::SetRules(RuleTable::default_table(1))).unwrap();
    f.append("b", Body::SetRules(RuleTable::default_table(1))).unwrap();
    f.append("c", Body::SetRules(RuleTable::council_table(1))).unwrap();
    let r1 = key("r1");
    f.enroll("a", &r1).unwrap();
    // Newcomer: 3 awards doubled. 50*2 = 100 points, 180 minutes served.
    f.append("a", award(&r1, "mediation", 60, 5, &[], 100, 1)).unwrap();
    f.append("a", award(&r1, "cleanup", 60, 1, &[], 0, 2)).unwrap();
    f.append("a", award(&r1, "hourly-service", 60, 1, &[], 0, 3)).unwrap();
    let m = key("m");
    f.append(
        "b",
        Body::RegisterMerchant(RegisterMerchant {
            merchant: m.public(),
            name: "Tea shop".into(),
            category: "food".into(),
        }),
    )
    .unwrap();
    let lim = f.append("b", Body::SetExposureLimit(ExposureLimit { issuer: cid("a"), limit_fen: 10_000 })).unwrap();
    let limit_b_for_a = lim.signed().entry_ref(&f.genesis_hash);
    World { f, r1, m, limit_b_for_a }
}

impl World {
    fn pay(
        &mut self,
        points: u64,
        price_fen: u64,
        nonce: u64,
    ) -> Result<crate::verify::VerifiedEntry, crate::state::RejectedEntry> {
        let p = self.f.payment(&self.r1, &self.m, "b", points, price_fen, nonce);
        let payment = self.f.sign(p, &self.r1);
        self.f.append("a", Body::Pay(PayEntry { payment, exposure_limit: Some(self.limit_b_for_a.clone()) }))
    }
    fn credit_for(
        &mut self,
        pay: &crate::verify::VerifiedEntry,
        points: u64,
    ) -> Result<crate::verify::VerifiedEntry, crate::state::RejectedEntry> {
        let source = pay.signed().entry_ref(&self.f.genesis_hash);
        self.f.append("b", Body::Credit(Credit { source, merchant: self.m.public(), issuer: cid("a"), points }))
    }
    fn settle(
        &mut self,
        points: u64,
        fen: u64,
        total: u64,
        nonce: u64,
    ) -> Result<crate::verify::VerifiedEntry, crate::state::RejectedEntry> {
        let req =
            self.f.sign(SettlementRequest { merchant: self.m.public(), issuer: cid("a"), points, fen, nonce }, &self.m);
        self.f.append("b", Body::Settle(SettleEntry { request: req, settled_total: total }))
    }
}

#[test]
fn happy_path_sale_credit_settle_clear_and_time_bank() {
    let mut w = world();
    assert_eq!(w.f.state.account(&cid("a"), &w.r1.public()).unwrap().points, 100);
    let pay = w.pay(30, 500, 1).unwrap();
    w.credit_for(&pay, 30).unwrap();
    assert_eq!(w.f.state.holding(&cid("b"), &w.m.public(), &cid("a")), 30);
    let settle = w.settle(30, 300, 30, 1).unwrap();
    // b clears with a: b's merchants settled 30 of a's points: a owes b 300 fen.
    let settle_ref = settle.signed().entry_ref(&w.f.genesis_hash);
    w.f.append(
        "b",
        Body::Clearing(Clearing {
            counterparty: cid("a"),
            settled_here_total: 30,
            settled_there_total: 0,
            settled_there_ref: None,
            receivable_fen: 300,
            payable_fen: 0,
        }),
    )
    .unwrap();
    w.f.append(
        "a",
        Body::Clearing(Clearing {
            counterparty: cid("b"),
            settled_here_total: 0,
            settled_there_total: 30,
            settled_there_ref: Some(settle_ref),
            receivable_fen: 0,
            payable_fen: 300,
        }),
    )
    .unwrap();
    assert_eq!(w.f.state.uncleared_points(&cid("a"), &cid("b")), 0);

    // Time bank: r1 serves r2, a neighbour in a; r1 later draws minutes for a service in c.
    let r2 = key("r2");
    w.f.enroll("a", &r2).unwrap();
    let svc = w.f.sign(
        TimeService { provider: w.r1.public(), served: r2.public(), minutes: 90, service: "tutoring".into(), nonce: 7 },
        &r2,
    );
    w.f.append("a", Body::TimeCredit(svc)).unwrap();
    let draw = w.f.sign(
        TimeDraw {
            resident: w.r1.public(),
            minutes: 60,
            serving_community: cid("c"),
            service: "repair".into(),
            nonce: 8,
        },
        &w.r1,
    );
    let spent = w.f.append("a", Body::TimeSpend(draw)).unwrap();
    let source = spent.signed().entry_ref(&w.f.genesis_hash);
    w.f.append("c", Body::TimeFulfil(TimeFulfil { source, minutes: 60 })).unwrap();
    let acct = w.f.state.account(&cid("a"), &w.r1.public()).unwrap();
    assert_eq!((acct.points, acct.minutes), (70, 30));
    let t = &w.f.state.totals[&cid("a")];
    assert_eq!((t.minted, t.settled, t.resident_points, t.merchant_points, t.in_flight), (100, 30, 70, 0, 0));
    assert_eq!(w.f.state.conservation_violation(), None);
}

#[test]
fn unknown_community() {
    let f = TestFederation::new(&["a"]);
    let k = key("zz/signing");
    let e = crate::entry::Entry {
        community: cid("zz"),
        seq: 0,
        prev_hash: Hash::ZERO,
        time_ms: 1,
        body: Body::SetRules(RuleTable::default_table(1)),
    };
    let v = verify_entry(&f.genesis_hash, SignedEntry::sign(e, &k, &f.genesis_hash), k.public()).unwrap();
    let err = f.state.check(&v, &ApplyContext::default()).unwrap_err();
    assert_eq!(err.rejection, Rejection::UnknownCommunity { community: cid("zz") });
    assert!(err.to_string().contains("not in the genesis"));
}

#[test]
fn faulty_community_is_quarantined() {
    let mut w = world();
    w.f.state.mark_faulty(&cid("a"), 0);
    assert_eq!(rejection(w.f.enroll("a", &key("r9"))), Rejection::CommunityFaulty { community: cid("a") });
}

fn resign(f: &TestFederation, mut e: SignedEntry, edit: impl FnOnce(&mut crate::entry::Entry)) -> SignedEntry {
    edit(&mut e.entry);
    SignedEntry::sign(e.entry, &f.keys[&cid("a")], &f.genesis_hash)
}

#[test]
fn seq_prev_hash_and_time() {
    let mut w = world();
    let base = w.f.entry("a", Body::Enroll(Enroll { resident: key("r9").public(), profile_hash: Hash::ZERO }));
    let next = base.entry.seq;
    let e = resign(&w.f, base.clone(), |e| e.seq += 1);
    assert_eq!(rejection(w.f.apply(e)), Rejection::WrongSeq { expected: next, actual: next + 1 });
    let e = resign(&w.f, base.clone(), |e| e.prev_hash = Hash([9; 32]));
    assert!(matches!(rejection(w.f.apply(e)), Rejection::WrongPrevHash { actual, .. } if actual == Hash([9; 32])));
    let e = resign(&w.f, base.clone(), |e| e.time_ms = 5);
    assert!(matches!(rejection(w.f.apply(e)), Rejection::TimeWentBackwards { actual_ms: 5, .. }));
    // Clock skew applies to live entries only.
    let v = verify_entry(&w.f.genesis_hash, base.clone(), w.f.keys[&cid("a")].public()).unwrap();
    let now = base.entry.time_ms - 10 * 60 * 1000;
    let err = w.f.state.check(&v, &ApplyContext { now_ms: Some(now) }).unwrap_err();
    assert!(matches!(err.rejection, Rejection::TimeInFuture { .. }), "{err}");
    assert!(w.f.state.check(&v, &ApplyContext::default()).is_ok());
}

#[test]
fn signer_and_signature() {
    let mut w = world();
    let base = w.f.entry("a", Body::Enroll(Enroll { resident: key("r9").public(), profile_hash: Hash::ZERO }));
    let mallory = key("mallory");
    let forged = SignedEntry::sign(base.entry.clone(), &mallory, &w.f.genesis_hash);
    let v = verify_entry(&w.f.genesis_hash, forged.clone(), mallory.public()).unwrap();
    let err = w.f.state.check(&v, &ApplyContext::default()).unwrap_err();
    assert!(matches!(err.rejection, Rejection::WrongSigner { actual, .. } if actual == mallory.public()));
    assert!(matches!(rejection(w.f.apply(forged)), Rejection::Signature(_)));
    // A tampered resident payment signature is refused too.
    let p = w.f.payment(&w.r1, &w.m, "b", 1, 10, 99);
    let mut payment = w.f.sign(p, &w.r1);
    payment.payload.points = 2;
    let r = w.f.append("a", Body::Pay(PayEntry { payment, exposure_limit: Some(w.limit_b_for_a.clone()) }));
    match rejection(r) {
        Rejection::Signature(e) => assert_eq!(e.what, "resident payment"),
        other => panic!("{other}"),
    }
}

#[test]
fn accounts() {
    let mut w = world();
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let r = w.f.append("a", Body::Enroll(Enroll { resident: PublicKey(weak), profile_hash: Hash::ZERO }));
    assert!(matches!(rejection(r), Rejection::BadKey { .. }));
    assert!(matches!(rejection(w.f.enroll("a", &w.r1.clone())), Rejection::AccountExists { .. }));
    let stranger = key("stranger");
    assert!(matches!(
        rejection(w.f.append("a", award(&stranger, "cleanup", 60, 5, &[], 40, 50))),
        Rejection::UnknownAccount { .. }
    ));
    let m = w.m.clone();
    w.f.append(
        "a",
        Body::RegisterMerchant(RegisterMerchant {
            merchant: key("ma").public(),
            name: "Shop".into(),
            category: "x".into(),
        }),
    )
    .unwrap();
    let r = w.f.append("a", award(&key("ma"), "cleanup", 60, 5, &[], 40, 51));
    assert_eq!(
        rejection(r),
        Rejection::WrongRole { key: key("ma").public(), expected: Role::Resident, actual: Role::Merchant }
    );
    let r = w.f.append(
        "b",
        Body::RegisterMerchant(RegisterMerchant {
            merchant: key("mb").public(),
            name: String::new(),
            category: "x".into(),
        }),
    );
    assert!(matches!(rejection(r), Rejection::BadText { field: "name", .. }));
    let _ = m;
}

#[test]
fn replaced_key_can_no_longer_spend() {
    let mut w = world();
    let new = key("r1-new");
    w.f.append("a", Body::ReplaceKey(ReplaceKey { old_key: w.r1.public(), new_key: new.public() })).unwrap();
    assert_eq!(w.f.state.account(&cid("a"), &new.public()).unwrap().points, 100);
    let red = w.f.sign(Redemption { resident: w.r1.public(), points: 1, item: "soap".into(), nonce: 1 }, &w.r1);
    assert_eq!(
        rejection(w.f.append("a", Body::Redeem(red))),
        Rejection::AccountReplaced { key: w.r1.public(), new_key: new.public() }
    );
    let red = w.f.sign(Redemption { resident: new.public(), points: 1, item: "soap".into(), nonce: 1 }, &new);
    w.f.append("a", Body::Redeem(red)).unwrap();
    assert_eq!(w.f.state.conservation_violation(), None);
}

#[test]
fn rules_and_awards() {
    let mut w = world();
    let mut f = TestFederation::new(&["a"]);
    f.enroll("a", &w.r1).unwrap();
    assert!(matches!(
        rejection(f.append("a", award(&w.r1, "cleanup", 60, 5, &[], 40, 1))),
        Rejection::RulesNotPublished { .. }
    ));
    assert_eq!(
        rejection(w.f.append("a", Body::SetRules(RuleTable::default_table(1)))),
        Rejection::RulesVersion { current: 1, actual: 1 }
    );
    let mut bad = RuleTable::default_table(2);
    bad.activities.clear();
    assert!(matches!(rejection(w.f.append("a", Body::SetRules(bad))), Rejection::InvalidRules(_)));
    assert!(matches!(
        rejection(w.f.append("a", award(&w.r1, "karaoke", 60, 5, &[], 10, 10))),
        Rejection::AwardInvalid(_)
    ));
    let mut a = award(&w.r1, "cleanup", 60, 5, &[], 20, 11);
    if let Body::Award(x) = &mut a {
        x.rules_version = 7;
    }
    assert_eq!(rejection(w.f.append("a", a)), Rejection::AwardRulesVersion { expected: 1, actual: 7 });
    // r1 has one point-earning award (low ratings do not count), so is still a newcomer:
    // clean-up in bad weather is (20 + 10) x 2.
    assert_eq!(
        rejection(w.f.append("a", award(&w.r1, "cleanup", 60, 5, &["bad-weather"], 30, 12))),
        Rejection::AwardPoints { expected: 60, actual: 30 }
    );
    w.f.append("a", award(&w.r1, "cleanup", 60, 5, &["bad-weather"], 60, 12)).unwrap();
    w.f.append("a", award(&w.r1, "cleanup", 60, 5, &[], 40, 15)).unwrap();
    // Three point-earning awards: no longer a newcomer.
    assert_eq!(
        rejection(w.f.append("a", award(&w.r1, "cleanup", 60, 5, &["bad-weather"], 60, 16))),
        Rejection::AwardPoints { expected: 30, actual: 60 }
    );
    // Rating too low to earn.
    assert_eq!(
        rejection(w.f.append("a", award(&w.r1, "patrol", 60, 2, &[], 50, 13))),
        Rejection::AwardPoints { expected: 0, actual: 50 }
    );
    assert!(matches!(
        rejection(w.f.append("a", award(&w.r1, "cleanup", 60, 5, &[], 20, 12))),
        Rejection::RequestIdReused { request_id: 12, .. }
    ));
    let r = w.f.append("a", award(&w.r1, "hourly-service", 24 * 60 + 1, 5, &[], 240, 14));
    assert!(matches!(rejection(r), Rejection::MinutesOutOfRange { .. }));
}

#[test]
fn redemption_needs_served_hours_and_balance() {
    let mut w = world();
    let r9 = key("r9");
    w.f.enroll("a", &r9).unwrap();
    w.f.append("a", award(&r9, "mediation", 30, 5, &[], 100, 90)).unwrap();
    let red = w.f.sign(Redemption { resident: r9.public(), points: 10, item: "rice".into(), nonce: 1 }, &r9);
    assert_eq!(
        rejection(w.f.append("a", Body::Redeem(red))),
        Rejection::ServedHoursTooFew { required_minutes: 120, actual_minutes: 30 }
    );
    let red = w.f.sign(Redemption { resident: w.r1.public(), points: 101, item: "rice".into(), nonce: 1 }, &w.r1);
    assert_eq!(
        rejection(w.f.append("a", Body::Redeem(red))),
        Rejection::InsufficientPoints { account: w.r1.public(), balance: 100, required: 101 }
    );
    let red = w.f.sign(Redemption { resident: w.r1.public(), points: 0, item: "rice".into(), nonce: 2 }, &w.r1);
    assert_eq!(rejection(w.f.append("a", Body::Redeem(red))), Rejection::ZeroAmount { field: "points" });
}

#[test]
fn payment_rules() {
    let mut w = world();
    assert_eq!(
        rejection(w.pay(11, 100, 1)),
        Rejection::PointsExceedPrice { points: 11, points_fen: 110, price_fen: 100 }
    );
    assert_eq!(rejection(w.pay(0, 100, 1)), Rejection::ZeroAmount { field: "points" });
    assert!(matches!(
        rejection(w.pay(101, 5000, 1)),
        Rejection::InsufficientPoints { balance: 100, required: 101, .. }
    ));
    w.pay(10, 100, 1).unwrap();
    assert!(matches!(rejection(w.pay(10, 100, 1)), Rejection::NonceReused { nonce: 1, .. }));
    // Wrong genesis.
    let mut p = w.f.payment(&w.r1, &w.m, "b", 1, 10, 2);
    p.genesis = Hash([5; 32]);
    let payment = w.f.sign(p, &w.r1);
    let r = w.f.append("a", Body::Pay(PayEntry { payment, exposure_limit: Some(w.limit_b_for_a.clone()) }));
    assert!(matches!(rejection(r), Rejection::WrongGenesis { .. }));
    // Expired.
    let mut p = w.f.payment(&w.r1, &w.m, "b", 1, 10, 3);
    p.expiry_ms = 1;
    let payment = w.f.sign(p, &w.r1);
    let r = w.f.append("a", Body::Pay(PayEntry { payment, exposure_limit: Some(w.limit_b_for_a.clone()) }));
    assert!(matches!(rejection(r), Rejection::PaymentExpired { expiry_ms: 1, .. }));
}

#[test]
fn exposure_limits() {
    let mut w = world();
    // No limit cited.
    let p = w.f.payment(&w.r1, &w.m, "b", 1, 10, 1);
    let payment = w.f.sign(p, &w.r1);
    let r = w.f.append("a", Body::Pay(PayEntry { payment: payment.clone(), exposure_limit: None }));
    assert_eq!(rejection(r), Rejection::ExposureLimitMissing { issuer: cid("a"), creditor: cid("b") });
    // A limit that does not exist (yet).
    let ghost = EntryRef { community: cid("b"), seq: 99, hash: Hash([1; 32]) };
    let r = w.f.append("a", Body::Pay(PayEntry { payment: payment.clone(), exposure_limit: Some(ghost) }));
    assert!(rejection(r).is_missing_dependency());
    // A limit of the wrong issuer: c's limit for b.
    let wrong = w.f.append("c", Body::SetExposureLimit(ExposureLimit { issuer: cid("b"), limit_fen: 1 })).unwrap();
    let r = w.f.append(
        "a",
        Body::Pay(PayEntry {
            payment: payment.clone(),
            exposure_limit: Some(wrong.signed().entry_ref(&w.f.genesis_hash)),
        }),
    );
    assert!(matches!(rejection(r), Rejection::ExposureLimitWrong { .. }));
    // Paying a merchant of one's own community cites no limit.
    let ma = key("ma");
    w.f.append(
        "a",
        Body::RegisterMerchant(RegisterMerchant {
            merchant: ma.public(),
            name: "Grocer".into(),
            category: "food".into(),
        }),
    )
    .unwrap();
    let own = w.f.sign(w.f.payment(&w.r1, &ma, "a", 1, 10, 2), &w.r1);
    let r = w.f.append("a", Body::Pay(PayEntry { payment: own, exposure_limit: Some(w.limit_b_for_a.clone()) }));
    assert_eq!(rejection(r), Rejection::ExposureLimitUnexpected);
    // Self-referencing limit.
    let r = w.f.append("a", Body::SetExposureLimit(ExposureLimit { issuer: cid("a"), limit_fen: 1 }));
    assert!(matches!(rejection(r), Rejection::SelfReference { .. }));

    // b lowers a's limit to 500 fen: 50 points.
    let low = w.f.append("b", Body::SetExposureLimit(ExposureLimit { issuer: cid("a"), limit_fen: 500 })).unwrap();
    let old = std::mem::replace(&mut w.limit_b_for_a, low.signed().entry_ref(&w.f.genesis_hash));
    let pay = w.pay(40, 400, 10).unwrap();
    assert_eq!(
        rejection(w.pay(11, 110, 11)),
        Rejection::ExposureExceeded { limit_fen: 500, uncleared_fen: 400, payment_fen: 110 }
    );
    // Citing the older, looser limit after the newer one is refused.
    let newer = std::mem::replace(&mut w.limit_b_for_a, old);
    assert!(matches!(rejection(w.pay(11, 110, 12)), Rejection::ExposureLimitStale { .. }));
    w.limit_b_for_a = newer;
    // Credit, settle and clear: the room comes back.
    w.credit_for(&pay, 40).unwrap();
    let s = w.settle(40, 400, 40, 1).unwrap();
    let sref = s.signed().entry_ref(&w.f.genesis_hash);
    let clear = |payable| {
        Body::Clearing(Clearing {
            counterparty: cid("b"),
            settled_here_total: 0,
            settled_there_total: 40,
            settled_there_ref: Some(sref.clone()),
            receivable_fen: 0,
            payable_fen: payable,
        })
    };
    assert_eq!(
        rejection(w.f.append("a", clear(399))),
        Rejection::ClearingFigure { field: "payable_fen", expected: 400, actual: 399 }
    );
    w.f.append("a", clear(400)).unwrap();
    w.pay(11, 110, 13).unwrap();
}

#[test]
fn credit_rules() {
    let mut w = world();
    let ghost = EntryRef { community: cid("a"), seq: 42, hash: Hash([4; 32]) };
    let r =
        w.f.append("b", Body::Credit(Credit { source: ghost, merchant: w.m.public(), issuer: cid("a"), points: 5 }));
    assert!(matches!(rejection(r), Rejection::MissingDependency { what: "source payment", .. }));
    let pay = w.pay(20, 200, 1).unwrap();
    assert!(matches!(rejection(w.credit_for(&pay, 21)), Rejection::SourceMismatch { field: "points", .. }));
    w.credit_for(&pay, 20).unwrap();
    assert!(matches!(rejection(w.credit_for(&pay, 20)), Rejection::AlreadyUsed { .. }));
}

#[test]
fn settlement_rules() {
    let mut w = world();
    let pay = w.pay(20, 200, 1).unwrap();
    w.credit_for(&pay, 20).unwrap();
    assert_eq!(
        rejection(w.settle(20, 199, 20, 1)),
        Rejection::SettleFen { points: 20, expected_fen: 200, actual_fen: 199 }
    );
    assert!(matches!(
        rejection(w.settle(21, 210, 21, 1)),
        Rejection::InsufficientHoldings { balance: 20, required: 21, .. }
    ));
    assert_eq!(rejection(w.settle(20, 200, 19, 1)), Rejection::SettledTotal { expected: 20, actual: 19 });
    w.settle(10, 100, 10, 1).unwrap();
    assert!(matches!(rejection(w.settle(10, 100, 20, 1)), Rejection::NonceReused { .. }));
    w.settle(10, 100, 20, 2).unwrap();
    assert_eq!(w.f.state.totals[&cid("a")].settled, 20);
}

#[test]
fn time_bank_rules() {
    let mut w = world();
    let r2 = key("r2");
    w.f.enroll("a", &r2).unwrap();
    let draw = w.f.sign(
        TimeDraw { resident: w.r1.public(), minutes: 30, serving_community: cid("c"), service: "x".into(), nonce: 1 },
        &w.r1,
    );
    assert_eq!(
        rejection(w.f.append("a", Body::TimeSpend(draw))),
        Rejection::InsufficientMinutes { account: w.r1.public(), balance: 0, required: 30 }
    );
    let svc = w.f.sign(
        TimeService { provider: w.r1.public(), served: r2.public(), minutes: 0, service: "x".into(), nonce: 1 },
        &r2,
    );
    assert!(matches!(
        rejection(w.f.append("a", Body::TimeCredit(svc))),
        Rejection::MinutesOutOfRange { actual: 0, .. }
    ));
    let svc = w.f.sign(
        TimeService { provider: w.r1.public(), served: r2.public(), minutes: 60, service: "x".into(), nonce: 2 },
        &r2,
    );
    w.f.append("a", Body::TimeCredit(svc)).unwrap();
    let draw = w.f.sign(
        TimeDraw { resident: w.r1.public(), minutes: 30, serving_community: cid("c"), service: "x".into(), nonce: 3 },
        &w.r1,
    );
    let spent = w.f.append("a", Body::TimeSpend(draw)).unwrap();
    let source = spent.signed().entry_ref(&w.f.genesis_hash);
    let r = w.f.append("b", Body::TimeFulfil(TimeFulfil { source: source.clone(), minutes: 30 }));
    assert!(matches!(rejection(r), Rejection::SourceMismatch { field: "serving_community", .. }));
    let r = w.f.append("c", Body::TimeFulfil(TimeFulfil { source: source.clone(), minutes: 31 }));
    assert!(matches!(rejection(r), Rejection::SourceMismatch { field: "minutes", .. }));
    w.f.append("c", Body::TimeFulfil(TimeFulfil { source: source.clone(), minutes: 30 })).unwrap();
    assert!(matches!(
        rejection(w.f.append("c", Body::TimeFulfil(TimeFulfil { source, minutes: 30 }))),
        Rejection::AlreadyUsed { .. }
    ));
}

#[test]
fn key_rotation_and_revocation() {
    let mut w = world();
    let g = w.f.genesis_hash;
    let new = key("a/signing-2");
    let seq = w.f.state.ledgers[&cid("a")].next_seq;
    let sig = new.sign("rotate-key", &g, &rotation_message(&cid("a"), seq));
    // Rotating to the key in force is refused.
    let old_pub = w.f.keys[&cid("a")].public();
    let same_sig = w.f.keys[&cid("a")].sign("rotate-key", &g, &rotation_message(&cid("a"), seq));
    let r = w.f.append("a", Body::RotateKey(RotateKey { new_key: old_pub, new_key_signature: same_sig }));
    assert!(matches!(rejection(r), Rejection::KeyRotation { .. }));
    w.f.append("a", Body::RotateKey(RotateKey { new_key: new.public(), new_key_signature: sig })).unwrap();
    // The old key no longer signs.
    assert!(matches!(rejection(w.f.enroll("a", &key("r7"))), Rejection::Signature(_)));
    let old = w.f.keys.insert(cid("a"), new.clone()).unwrap();
    w.f.enroll("a", &key("r7")).unwrap();
    // Revocation by the recovery key.
    let newer = key("a/signing-3");
    let seq = w.f.state.ledgers[&cid("a")].next_seq;
    let sig = newer.sign("rotate-key", &g, &rotation_message(&cid("a"), seq));
    let r = w.f.append(
        "a",
        Body::RevokeKey(RevokeKey { revoked_key: old.public(), new_key: newer.public(), new_key_signature: sig }),
    );
    assert_eq!(rejection(r), Rejection::KeyRotation { reason: "the revoked key is not the key in force" });
    let sig = newer.sign("rotate-key", &g, &rotation_message(&cid("a"), seq));
    w.f.append(
        "a",
        Body::RevokeKey(RevokeKey { revoked_key: new.public(), new_key: newer.public(), new_key_signature: sig }),
    )
    .unwrap();
    assert!(matches!(rejection(w.f.enroll("a", &key("r8"))), Rejection::Signature(_)));
    w.f.keys.insert(cid("a"), newer);
    w.f.enroll("a", &key("r8")).unwrap();
}
