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

use linli_protocol::body::*;
use linli_protocol::rules::{AwardClaim, RuleTable};
use linli_protocol::state::{Change, Role};
use linli_protocol::testkit::{cid, key, TestFederation};
use linli_protocol::verify::{verify_entry, verify_run, SignerKeys};
use linli_protocol::{ApplyContext, CommunityId, Hash, Keypair, PublicKey, SignedEntry, State};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

const C: [&str; 3] = ["a", "b", "c"];
const RESIDENT_SLOTS: usize = 4;
const MERCHANT_SLOTS: usize = 2;
const MAX_MINUTES: u64 = 24 * 60;

#[derive(Debug, Clone)]
enum Op {
    Enroll {
        c: u8,
        slot: u8,
        merchant_key: bool,
    },
    Merchant {
        c: u8,
        slot: u8,
        bad_name: bool,
    },
    Rules {
        c: u8,
        bump: u8,
        council: bool,
    },
    Award {
        c: u8,
        slot: u8,
        act: u8,
        minutes: u16,
        rating: u8,
        bonus: bool,
        wrong: u8,
        reuse_request: bool,
    },
    Redeem {
        c: u8,
        slot: u8,
        points: u8,
        reuse_nonce: bool,
        retired: bool,
    },
    Pay {
        c: u8,
        slot: u8,
        mc: u8,
        m: u8,
        points: u8,
        fit: u8,
        extra_fen: i16,
        limit: u8,
        reuse_nonce: bool,
        expired: bool,
    },
    Credit {
        pick: Index,
        uncredited: bool,
        wrong: u8,
    },
    Settle {
        held: Option<Index>,
        c: u8,
        m: u8,
        issuer: u8,
        portion: u8,
        wrong_fen: bool,
        wrong_total: bool,
        reuse_nonce: bool,
    },
    Clearing {
        c: u8,
        other: u8,
        cite: u8,
        wrong: u8,
    },
    Limit {
        c: u8,
        issuer: u8,
        fen: u16,
        twice: bool,
    },
    TimeCredit {
        c: u8,
        provider: u8,
        sc: u8,
        served: u8,
        minutes: u16,
        reuse_nonce: bool,
    },
    TimeSpend {
        c: u8,
        slot: u8,
        serving: u8,
        minutes: u16,
        reuse_nonce: bool,
    },
    TimeFulfil {
        pick: Index,
        unfulfilled: bool,
        wrong: u8,
    },
    Replace {
        c: u8,
        merchant: bool,
        slot: u8,
        to_existing: bool,
    },
    Rotate {
        c: u8,
        /// 0: a fresh key; 1: the key in force; 2: the recovery key; 3: a retired key.
        reuse: u8,
    },
    Revoke {
        c: u8,
    },
}

impl Op {
    fn label(&self) -> &'static str {
        match self {
            Op::Enroll { .. } => "enroll",
            Op::Merchant { .. } => "register-merchant",
            Op::Rules { .. } => "set-rules",
            Op::Award { .. } => "award",
            Op::Redeem { .. } => "redeem",
            Op::Pay { .. } => "pay",
            Op::Credit { .. } => "credit",
            Op::Settle { .. } => "settle",
            Op::Clearing { .. } => "clearing",
            Op::Limit { .. } => "set-exposure-limit",
            Op::TimeCredit { .. } => "time-credit",
            Op::TimeSpend { .. } => "time-spend",
            Op::TimeFulfil { .. } => "time-fulfil",
            Op::Replace { .. } => "replace-key",
            Op::Rotate { .. } => "rotate-key",
            Op::Revoke { .. } => "revoke-key",
        }
    }
}

/// Mostly `false`.
fn rarely() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.15)
}

/// 0 ("right") most of the time, else one of `1..=n` ways of being wrong.
fn wrong(n: u8) -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(0u8), 1 => 1..=n]
}

/// An account slot, biased towards the ones the prologue enrols.
fn slot() -> impl Strategy<Value = u8> {
    prop_oneof![3 => 0u8..3, 1 => any::<u8>()]
}

fn op() -> impl Strategy<Value = Op> {
    let c = || 0u8..3;
    prop_oneof![
        5 => (c(), any::<u8>(), rarely()).prop_map(|(c, slot, merchant_key)| Op::Enroll { c, slot, merchant_key }),
        3 => (c(), any::<u8>(), rarely()).prop_map(|(c, slot, bad_name)| Op::Merchant { c, slot, bad_name }),
        2 => (c(), 0u8..4, any::<bool>()).prop_map(|(c, bump, council)| Op::Rules { c, bump, council }),
        12 => (
            c(),
            slot(),
            prop_oneof![3 => Just(255u8), 1 => any::<u8>()],
            prop_oneof![3 => 0u16..400, 1 => 0u16..1600],
            prop_oneof![4 => 3u8..6, 1 => 0u8..7],
            any::<bool>(),
            wrong(4),
            rarely(),
        )
            .prop_map(|(c, slot, act, minutes, rating, bonus, wrong, reuse_request)| Op::Award {
                c, slot, act, minutes, rating, bonus, wrong, reuse_request
            }),
        6 => (c(), slot(), 0u8..40, rarely(), rarely())
            .prop_map(|(c, slot, points, reuse_nonce, retired)| Op::Redeem { c, slot, points, reuse_nonce, retired }),
        14 => (
            (c(), slot(), prop_oneof![1 => Just(9u8), 3 => c()], prop_oneof![3 => Just(0u8), 1 => any::<u8>()]),
            (prop_oneof![4 => 1u8..30, 1 => 0u8..80], prop_oneof![6 => Just(0u8), 1 => 1u8..3], -20i16..300),
            (any::<u8>(), rarely(), rarely()),
        )
            .prop_map(|((c, slot, mc, m), (points, fit, extra_fen), (limit, reuse_nonce, expired))| Op::Pay {
                c, slot, mc: if mc == 9 { c } else { mc }, m, points, fit, extra_fen, limit, reuse_nonce, expired
            }),
        10 => (any::<Index>(), prop::bool::weighted(0.8), wrong(4))
            .prop_map(|(pick, uncredited, wrong)| Op::Credit { pick, uncredited, wrong }),
        8 => (prop::option::weighted(0.75, any::<Index>()), c(), any::<u8>(), c(), 0u8..6, rarely(), rarely(), rarely())
            .prop_map(|(held, c, m, issuer, portion, wrong_fen, wrong_total, reuse_nonce)| Op::Settle {
                held, c, m, issuer, portion, wrong_fen, wrong_total, reuse_nonce
            }),
        6 => (c(), any::<u8>(), 0u8..3, wrong(5)).prop_map(|(c, other, cite, wrong)| Op::Clearing { c, other, cite, wrong }),
        6 => (c(), 0u8..3, prop_oneof![1 => 0u16..=5, 2 => 0u16..=300], rarely())
            .prop_map(|(c, issuer, fen, twice)| Op::Limit { c, issuer, fen, twice }),
        6 => (c(), slot(), c(), any::<u8>(), prop_oneof![4 => 1u16..200, 1 => 0u16..1500], rarely())
            .prop_map(|(c, provider, sc, served, minutes, reuse_nonce)| Op::TimeCredit {
                c, provider, sc, served, minutes, reuse_nonce
            }),
        5 => (c(), slot(), c(), 0u16..120, rarely())
            .prop_map(|(c, slot, serving, minutes, reuse_nonce)| Op::TimeSpend { c, slot, serving, minutes, reuse_nonce }),
        5 => (any::<Index>(), prop::bool::weighted(0.8), wrong(2))
            .prop_map(|(pick, unfulfilled, wrong)| Op::TimeFulfil { pick, unfulfilled, wrong }),
        3 => (c(), any::<bool>(), any::<u8>(), rarely())
            .prop_map(|(c, merchant, slot, to_existing)| Op::Replace { c, merchant, slot, to_existing }),
        2 => (c(), prop_oneof![4 => Just(0u8), 1 => 1u8..4]).prop_map(|(c, reuse)| Op::Rotate { c, reuse }),
        1 => c().prop_map(|c| Op::Revoke { c }),
    ]
}

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

/// The model's view of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShadowAccount {
    role: Role,
    replaced: bool,
    points: u64,
    minutes: u64,
    served: u64,
    awards: u64,
}

/// An independent model of what the rules do to balances and single-use items. Communities are
/// indexes into `C`.
#[derive(Debug, Default, Clone)]
struct Shadow {
    accounts: BTreeMap<(usize, PublicKey), ShadowAccount>,
    /// (merchant community, merchant, issuer) → points
    holdings: BTreeMap<(usize, PublicKey, usize), u64>,
    rules: BTreeMap<usize, RuleTable>,
    nonces: BTreeSet<(usize, PublicKey, u64)>,
    requests: BTreeSet<(usize, u64)>,
    credited: BTreeSet<Hash>,
    fulfilled: BTreeSet<Hash>,
    /// (issuer, creditor) → (newest cited limit seq, paid points, cleared points)
    exposure: BTreeMap<(usize, usize), (Option<u64>, u64, u64)>,
    /// (settling community, issuer) → settled points
    settled_by: BTreeMap<(usize, usize), u64>,
    /// (community, counterparty) → (settled here, settled there) at the last clearing
    clearings: BTreeMap<(usize, usize), (u64, u64)>,
    /// (community, old key) → new key, from accepted key replacements
    replaced_by: BTreeMap<(usize, PublicKey), PublicKey>,
}

impl Shadow {
    fn account(&self, c: usize, k: &PublicKey) -> Option<&ShadowAccount> {
        self.accounts.get(&(c, *k))
    }
    fn account_mut(&mut self, c: usize, k: &PublicKey) -> &mut ShadowAccount {
        self.accounts.get_mut(&(c, *k)).expect("shadow account")
    }
    fn active(&self, c: usize, k: &PublicKey, role: Role) -> bool {
        self.account(c, k).is_some_and(|a| !a.replaced && a.role == role)
    }
    fn holding(&self, c: usize, k: &PublicKey, issuer: usize) -> u64 {
        self.holdings.get(&(c, *k, issuer)).copied().unwrap_or(0)
    }
    fn holding_mut(&mut self, c: usize, k: &PublicKey, issuer: usize) -> &mut u64 {
        self.holdings.entry((c, *k, issuer)).or_default()
    }
}

struct World {
    f: TestFederation,
    ids: Vec<CommunityId>,
    residents: Vec<Vec<Keypair>>,
    merchants: Vec<Vec<Keypair>>,
    /// Account keys replaced by `ReplaceKey`, by community.
    retired: Vec<(usize, Keypair)>,
    /// Community signing keys retired by rotations and revocations.
    old_signing: Vec<Vec<Keypair>>,
    model: Shadow,
    key_gen: u64,
    next_nonce: u64,
    next_request: u64,
    accepted: Vec<SignedEntry>,
    counting: bool,
    stats: Stats,
}

impl World {
    fn new() -> Self {
        let f = TestFederation::new(&C);
        let ids = C.iter().map(|c| cid(c)).collect();
        let residents =
            C.iter().map(|c| (0..RESIDENT_SLOTS).map(|s| key(&format!("{c}/resident-{s}-g0"))).collect()).collect();
        let merchants =
            C.iter().map(|c| (0..MERCHANT_SLOTS).map(|s| key(&format!("{c}/merchant-{s}-g0"))).collect()).collect();
        World {
            f,
            ids,
            residents,
            merchants,
            retired: vec![],
            old_signing: vec![vec![]; 3],
            model: Shadow::default(),
            key_gen: 0,
            next_nonce: 1,
            next_request: 1,
            accepted: vec![],
            counting: false,
            stats: Stats::default(),
        }
    }

    fn state(&self) -> &State {
        &self.f.state
    }

    fn index(&self, id: &CommunityId) -> usize {
        self.ids.iter().position(|i| i == id).unwrap()
    }

    fn resident(&self, c: usize, slot: u8) -> Keypair {
        self.residents[c][usize::from(slot) % RESIDENT_SLOTS].clone()
    }

    fn merchant(&self, c: usize, slot: u8) -> Keypair {
        self.merchants[c][usize::from(slot) % MERCHANT_SLOTS].clone()
    }

    /// A nonce of `signer` at sequencing community `c`: one already used if `reuse` and there
    /// is one (then the entry must be refused), else a fresh one. Returns (nonce, fresh).
    fn nonce(&mut self, c: usize, signer: &PublicKey, reuse: bool) -> (u64, bool) {
        if reuse {
            if let Some((_, _, n)) = self.model.nonces.iter().find(|(cc, k, _)| *cc == c && k == signer) {
                return (*n, false);
            }
        }
        self.next_nonce += 1;
        (self.next_nonce, true)
    }

    fn fresh_key(&mut self, label: &str) -> Keypair {
        self.key_gen += 1;
        key(&format!("{label}-g{}", self.key_gen))
    }

    fn sign<T: SignedPayload>(&self, payload: T, k: &Keypair) -> Signed<T> {
        self.f.sign(payload, k)
    }

    /// Build, sign, verify and apply one entry of community `c`, checking the step invariants
    /// and that the outcome is the model's prediction. Returns the entry when accepted.
    fn step(
        &mut self,
        label: &'static str,
        c: usize,
        body: Body,
        predicted: bool,
    ) -> Result<Option<SignedEntry>, TestCaseError> {
        let e = self.f.entry(C[c], body);
        let before = self.f.state.clone();
        let keys = before.signer_keys(&e.entry.community).unwrap();
        let signer = if matches!(e.entry.body, Body::RevokeKey(_)) { keys.recovery } else { keys.current };
        let v = verify_entry(&self.f.genesis_hash, e.clone(), signer)
            .map_err(|err| TestCaseError::fail(format!("{label}: our own entry does not verify: {err}")))?;
        let ctx = ApplyContext { now_ms: Some(e.entry.time_ms) };
        let checked = before.check(&v, &ctx);
        let applied = self.f.state.apply(&v, &ctx);
        let accepted = match checked {
            Ok(changes) => {
                prop_assert!(applied.is_ok(), "{}: check accepted but apply refused: {:?}", label, applied);
                // The ledger head moves by exactly this entry.
                let id = &e.entry.community;
                let ledger = changes.iter().find_map(|ch| match ch {
                    Change::Ledger(c, l) if c == id => Some(l),
                    _ => None,
                });
                let ledger = ledger.ok_or_else(|| TestCaseError::fail(format!("{label}: no ledger change")))?;
                prop_assert_eq!(ledger.next_seq, before.ledgers[id].next_seq + 1);
                prop_assert_eq!(ledger.head, v.hash());
                let mut expected_state = before.clone();
                expected_state.commit(changes);
                prop_assert!(self.f.state == expected_state, "{}: state after apply is not state + changes", label);
                if !predicted {
                    return Err(TestCaseError::fail(format!("{label}: the model expected a rejection, got: {e:?}")));
                }
                self.accepted.push(e.clone());
                true
            }
            Err(rejected) => {
                prop_assert_eq!(applied.as_ref().err(), Some(&rejected), "{}: check and apply disagree", label);
                prop_assert!(self.f.state == before, "{}: a rejected entry changed the state", label);
                if predicted {
                    return Err(TestCaseError::fail(format!(
                        "{label}: the model expected acceptance, got: {rejected}"
                    )));
                }
                if self.counting {
                    *self.stats.rules.entry(rejected.rejection.rule()).or_default() += 1;
                }
                false
            }
        };
        prop_assert_eq!(self.f.state.conservation_violation(), None, "{}: conservation broken", label);
        derived_invariants(&self.f.state).map_err(|m| TestCaseError::fail(format!("{label}: {m}")))?;
        if self.counting {
            let s = self.stats.ops.entry(label).or_default();
            s.0 += 1;
            s.1 += u64::from(accepted);
        }
        Ok(accepted.then_some(e))
    }

    fn skip(&mut self) -> Result<(), TestCaseError> {
        if self.counting {
            self.stats.skipped += 1;
        }
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.execute(op)?;
        self.compare_model().map_err(|m| TestCaseError::fail(format!("after {}: {m}", op.label())))
    }

    fn execute(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let label = op.label();
        match *op {
            Op::Enroll { c, slot, merchant_key } => {
                let c = usize::from(c);
                let k = if merchant_key { self.merchant(c, slot) } else { self.resident(c, slot) }.public();
                let ok = self.model.account(c, &k).is_none();
                let body = Body::Enroll(Enroll { resident: k, profile_hash: Hash([slot; 32]) });
                if self.step(label, c, body, ok)?.is_some() {
                    self.model.accounts.insert((c, k), new_account(Role::Resident));
                }
            }
            Op::Merchant { c, slot, bad_name } => {
                let c = usize::from(c);
                let k = self.merchant(c, slot).public();
                let ok = !bad_name && self.model.account(c, &k).is_none();
                let name = if bad_name { String::new() } else { format!("Shop {slot}") };
                let body = Body::RegisterMerchant(RegisterMerchant { merchant: k, name, category: "food".into() });
                if self.step(label, c, body, ok)?.is_some() {
                    self.model.accounts.insert((c, k), new_account(Role::Merchant));
                }
            }
            Op::Rules { c, bump, council } => {
                let c = usize::from(c);
                let current = self.model.rules.get(&c).map(|r| r.version).unwrap_or(0);
                let version = (current + u32::from(bump)).saturating_sub(1);
                let table = if council { RuleTable::council_table(version) } else { RuleTable::default_table(version) };
                if self.step(label, c, Body::SetRules(table.clone()), version > current)?.is_some() {
                    self.model.rules.insert(c, table);
                }
            }
            Op::Award { c, slot, act, minutes, rating, bonus, wrong, reuse_request } => {
                let c = usize::from(c);
                let r = self.resident(c, slot).public();
                let rules = self.model.rules.get(&c).cloned();
                let (activity, bonuses) = match &rules {
                    Some(t) => {
                        let i = usize::from(act) % (t.activities.len() + 1);
                        match t.activities.get(i) {
                            Some(a) => {
                                let bonuses = match (bonus, a.bonuses.first()) {
                                    (false, _) => vec![],
                                    (true, Some(b)) => vec![b.id.clone()],
                                    (true, None) => vec!["not-a-bonus".to_string()],
                                };
                                (a.id.clone(), bonuses)
                            }
                            None => ("karaoke".to_string(), vec![]),
                        }
                    }
                    None => ("cleanup".to_string(), vec![]),
                };
                let minutes = u64::from(minutes);
                let prior = self.model.account(c, &r).map(|a| a.awards).unwrap_or(0);
                let by_rules = rules.as_ref().map(|t| {
                    t.award_points(&AwardClaim {
                        activity: &activity,
                        minutes,
                        rating,
                        bonuses: &bonuses,
                        prior_awards: prior,
                    })
                });
                let right = match &by_rules {
                    Some(Ok(p)) => *p,
                    _ => 10,
                };
                let reused = if reuse_request {
                    self.model.requests.iter().find(|(cc, _)| *cc == c).map(|(_, n)| *n)
                } else {
                    None
                };
                let request_id = reused.unwrap_or_else(|| {
                    self.next_request += 1;
                    self.next_request
                });
                let ok = wrong == 0
                    && reused.is_none()
                    && matches!(by_rules, Some(Ok(_)))
                    && minutes <= MAX_MINUTES
                    && self.model.active(c, &r, Role::Resident);
                let points = right + u64::from(wrong);
                let body = Body::Award(Award {
                    resident: r,
                    activity,
                    minutes,
                    rating,
                    bonuses,
                    points,
                    rules_version: rules.as_ref().map(|t| t.version).unwrap_or(1),
                    request_id,
                });
                if self.step(label, c, body, ok)?.is_some() {
                    let earns = rating >= rules.as_ref().unwrap().min_rating;
                    let a = self.model.account_mut(c, &r);
                    a.points += points;
                    a.served += minutes;
                    a.awards += u64::from(earns);
                    self.model.requests.insert((c, request_id));
                }
            }
            Op::Redeem { c, slot, points, reuse_nonce, retired } => {
                let c = usize::from(c);
                let old = self.retired.iter().find(|(rc, _)| *rc == c).map(|(_, k)| k.clone());
                let r = match (retired, old) {
                    (true, Some(k)) => k,
                    _ => self.resident(c, slot),
                };
                let (nonce, fresh) = self.nonce(c, &r.public(), reuse_nonce);
                let points = u64::from(points);
                let ok = match (self.model.account(c, &r.public()), self.model.rules.get(&c)) {
                    (Some(a), Some(t)) => {
                        points > 0
                            && fresh
                            && self.model.active(c, &r.public(), Role::Resident)
                            && a.served >= t.min_hours_before_redeem * 60
                            && a.points >= points
                    }
                    _ => false,
                };
                let red = self.sign(Redemption { resident: r.public(), points, item: "rice".into(), nonce }, &r);
                if self.step(label, c, Body::Redeem(red), ok)?.is_some() {
                    self.model.account_mut(c, &r.public()).points -= points;
                    self.model.nonces.insert((c, r.public(), nonce));
                }
            }
            Op::Pay { c, slot, mc, m, points, fit, extra_fen, limit, reuse_nonce, expired } => {
                let c = usize::from(c);
                let mc = usize::from(mc);
                let payer = self.resident(c, slot);
                let merchant = self.merchant(mc, m);
                let (here, creditor) = (self.ids[c].clone(), self.ids[mc].clone());
                let state = self.state();
                let pair_limits = || state.limits.values().filter(|l| l.at.community == creditor && l.issuer == here);
                let cited = if mc != c {
                    match limit % 5 {
                        0 | 1 => state.latest_limit(&creditor, &here).map(|l| l.at.clone()),
                        2 => None,
                        // Another pair's limit.
                        3 => state
                            .limits
                            .values()
                            .find(|l| !(l.at.community == creditor && l.issuer == here))
                            .map(|l| l.at.clone()),
                        // A limit of the pair older than the newest one cited: stale.
                        _ => {
                            let newest_cited = self.model.exposure.get(&(c, mc)).and_then(|x| x.0).unwrap_or(0);
                            pair_limits()
                                .filter(|l| l.at.seq < newest_cited)
                                .max_by_key(|l| l.at.seq)
                                .or_else(|| pair_limits().min_by_key(|l| l.at.seq))
                                .map(|l| l.at.clone())
                        }
                    }
                } else if limit % 5 == 3 {
                    state.limits.values().next().map(|l| l.at.clone())
                } else {
                    None
                };
                let cited_record = cited.as_ref().map(|r| state.limits[&r.hash].clone());
                let (limit_seq, paid, cleared) = self.model.exposure.get(&(c, mc)).copied().unwrap_or_default();
                let uncleared = paid - cleared;
                // `fit` 1 and 2: exactly the room left under the cited limit, and one more point.
                let points = match (fit, &cited_record) {
                    (1 | 2, Some(l)) if mc != c => (l.limit_fen / 10).saturating_sub(uncleared) + u64::from(fit) - 1,
                    _ => u64::from(points),
                };
                let price_fen = u64::try_from((points as i64 * 10 + i64::from(extra_fen)).max(0)).unwrap();
                let (nonce, fresh) = self.nonce(c, &payer.public(), reuse_nonce);
                let mut p = self.f.payment(&payer, &merchant, C[mc], points, price_fen, nonce);
                if expired {
                    p.expiry_ms = 1;
                }
                let limit_ok = if mc == c {
                    cited.is_none()
                } else {
                    match (&cited, &cited_record) {
                        (Some(r), Some(l)) => {
                            l.at.community == creditor
                                && l.issuer == here
                                && limit_seq.is_none_or(|s| r.seq >= s)
                                && (uncleared + points) * 10 <= l.limit_fen
                        }
                        _ => false,
                    }
                };
                let ok = points > 0
                    && points * 10 <= price_fen
                    && !expired
                    && fresh
                    && limit_ok
                    && self.model.active(c, &payer.public(), Role::Resident)
                    && self.model.account(c, &payer.public()).is_some_and(|a| a.points >= points);
                let payment = self.sign(p, &payer);
                let body = Body::Pay(PayEntry { payment, exposure_limit: cited.clone() });
                if self.step(label, c, body, ok)?.is_some() {
                    self.model.account_mut(c, &payer.public()).points -= points;
                    self.model.nonces.insert((c, payer.public(), nonce));
                    if mc != c {
                        let x = self.model.exposure.entry((c, mc)).or_default();
                        x.0 = cited.map(|r| r.seq);
                        x.1 += points;
                    }
                }
            }
            Op::Credit { pick, uncredited, wrong } => {
                let all = self.state().pays.values();
                let open: Vec<_> = all.clone().filter(|p| !self.model.credited.contains(&p.at.hash)).cloned().collect();
                let pays = if uncredited && !open.is_empty() { open } else { all.cloned().collect() };
                if pays.is_empty() {
                    return self.skip();
                }
                let rec = pick.get(&pays).clone();
                let home = self.index(&rec.merchant_community);
                let issuer = self.index(&rec.at.community);
                // The merchant's key now, following replacements.
                let mut merchant = rec.merchant;
                while let Some(next) = self.replacement(home, &merchant) {
                    merchant = next;
                }
                let ok = wrong == 0
                    && !self.model.credited.contains(&rec.at.hash)
                    && self.model.active(home, &merchant, Role::Merchant);
                let mut credit =
                    Credit { source: rec.at.clone(), merchant, issuer: rec.at.community.clone(), points: rec.points };
                let mut at = home;
                match wrong {
                    1 => credit.points += 1,
                    2 => credit.merchant = key("mallory").public(),
                    3 => credit.issuer = self.ids[(issuer + 1) % 3].clone(),
                    4 => at = (home + 1) % 3,
                    _ => {}
                }
                if self.step(label, at, Body::Credit(credit), ok)?.is_some() {
                    self.model.credited.insert(rec.at.hash);
                    *self.model.holding_mut(home, &merchant, issuer) += rec.points;
                }
            }
            Op::Settle { held, c, m, issuer, portion, wrong_fen, wrong_total, reuse_nonce } => {
                // Mostly a merchant with points to settle, else any merchant slot and issuer.
                let holders: Vec<(usize, Keypair, usize)> = self
                    .model
                    .holdings
                    .iter()
                    .filter(|(_, p)| **p > 0)
                    .filter_map(|((hc, k, i), _)| {
                        let pair = self.merchants[*hc].iter().find(|m| &m.public() == k)?.clone();
                        Some((*hc, pair, *i))
                    })
                    .collect();
                let (c, merchant, issuer) = match held {
                    Some(pick) if !holders.is_empty() => pick.get(&holders).clone(),
                    _ => (usize::from(c), self.merchant(usize::from(c), m), usize::from(issuer)),
                };
                let held = self.model.holding(c, &merchant.public(), issuer);
                let points = match portion {
                    0 | 5 => held,
                    1 => held / 2,
                    2 => 1,
                    3 => held + 1,
                    _ => 0,
                };
                let (nonce, fresh) = self.nonce(c, &merchant.public(), reuse_nonce);
                let before = self.model.settled_by.get(&(c, issuer)).copied().unwrap_or(0);
                let ok = points > 0
                    && points <= held
                    && fresh
                    && !wrong_fen
                    && !wrong_total
                    && self.model.active(c, &merchant.public(), Role::Merchant);
                let request = self.sign(
                    SettlementRequest {
                        merchant: merchant.public(),
                        issuer: self.ids[issuer].clone(),
                        points,
                        fen: points * 10 + u64::from(wrong_fen),
                        nonce,
                    },
                    &merchant,
                );
                let body =
                    Body::Settle(SettleEntry { request, settled_total: before + points + u64::from(wrong_total) });
                if self.step(label, c, body, ok)?.is_some() {
                    *self.model.holding_mut(c, &merchant.public(), issuer) -= points;
                    *self.model.settled_by.entry((c, issuer)).or_default() += points;
                    self.model.nonces.insert((c, merchant.public(), nonce));
                }
            }
            Op::Clearing { c, other, cite, wrong } => {
                let c = usize::from(c);
                let o = if wrong == 5 { c } else { (c + 1 + usize::from(other % 2)) % 3 };
                let (here, other) = (self.ids[c].clone(), self.ids[o].clone());
                let (prev_here, prev_there) = self.model.clearings.get(&(c, o)).copied().unwrap_or_default();
                let settled_here = self.model.settled_by.get(&(c, o)).copied().unwrap_or(0);
                let state = self.state();
                let cited = match cite {
                    0 => state
                        .settles
                        .values()
                        .filter(|s| s.at.community == other && s.issuer == here)
                        .max_by_key(|s| s.settled_total),
                    1 => None,
                    _ => state.settles.values().next(),
                };
                let settled_there = cited.map(|s| s.settled_total).unwrap_or(prev_there);
                let cite_ok =
                    cited.is_none_or(|s| s.at.community == other && s.issuer == here) && settled_there >= prev_there;
                let mut body = Clearing {
                    counterparty: other,
                    settled_here_total: settled_here,
                    settled_there_total: settled_there,
                    settled_there_ref: cited.map(|s| s.at.clone()),
                    receivable_fen: (settled_here - prev_here) * 10,
                    payable_fen: settled_there.saturating_sub(prev_there) * 10,
                };
                match wrong {
                    1 => body.receivable_fen += 10,
                    2 => body.payable_fen += 10,
                    3 => body.settled_here_total += 1,
                    4 => body.settled_there_total += 1,
                    _ => {}
                }
                if self.step(label, c, Body::Clearing(body), wrong == 0 && cite_ok)?.is_some() {
                    self.model.clearings.insert((c, o), (settled_here, settled_there));
                    self.model.exposure.entry((c, o)).or_default().2 = settled_there;
                }
            }
            Op::Limit { c, issuer, fen, twice } => {
                let c = usize::from(c);
                let issuer = (c + usize::from(issuer)) % 3;
                for round in 0..=u16::from(twice) {
                    let limit_fen = u64::from(fen + round * 50) * 10;
                    let body = Body::SetExposureLimit(ExposureLimit { issuer: self.ids[issuer].clone(), limit_fen });
                    self.step(label, c, body, issuer != c)?;
                }
            }
            Op::TimeCredit { c, provider, sc, served, minutes, reuse_nonce } => {
                let c = usize::from(c);
                let provider = self.resident(c, provider).public();
                let served = self.resident(usize::from(sc), served);
                let minutes = u64::from(minutes);
                let (nonce, fresh) = self.nonce(c, &served.public(), reuse_nonce);
                let ok = (1..=MAX_MINUTES).contains(&minutes)
                    && provider != served.public()
                    && fresh
                    && self.model.active(c, &provider, Role::Resident);
                let svc = self.sign(
                    TimeService { provider, served: served.public(), minutes, service: "tutoring".into(), nonce },
                    &served,
                );
                if self.step(label, c, Body::TimeCredit(svc), ok)?.is_some() {
                    self.model.account_mut(c, &provider).minutes += minutes;
                    self.model.nonces.insert((c, served.public(), nonce));
                }
            }
            Op::TimeSpend { c, slot, serving, minutes, reuse_nonce } => {
                let c = usize::from(c);
                let r = self.resident(c, slot);
                let minutes = u64::from(minutes);
                let (nonce, fresh) = self.nonce(c, &r.public(), reuse_nonce);
                let ok = minutes >= 1
                    && fresh
                    && self.model.active(c, &r.public(), Role::Resident)
                    && self.model.account(c, &r.public()).is_some_and(|a| a.minutes >= minutes);
                let draw = self.sign(
                    TimeDraw {
                        resident: r.public(),
                        minutes,
                        serving_community: self.ids[usize::from(serving)].clone(),
                        service: "repair".into(),
                        nonce,
                    },
                    &r,
                );
                if self.step(label, c, Body::TimeSpend(draw), ok)?.is_some() {
                    self.model.account_mut(c, &r.public()).minutes -= minutes;
                    self.model.nonces.insert((c, r.public(), nonce));
                }
            }
            Op::TimeFulfil { pick, unfulfilled, wrong } => {
                let all = self.state().draws.values();
                let open: Vec<_> =
                    all.clone().filter(|d| !self.model.fulfilled.contains(&d.at.hash)).cloned().collect();
                let draws = if unfulfilled && !open.is_empty() { open } else { all.cloned().collect() };
                if draws.is_empty() {
                    return self.skip();
                }
                let rec = pick.get(&draws).clone();
                let mut at = self.index(&rec.serving_community);
                let mut minutes = rec.minutes;
                match wrong {
                    1 => minutes += 1,
                    2 => at = (at + 1) % 3,
                    _ => {}
                }
                let ok = wrong == 0 && !self.model.fulfilled.contains(&rec.at.hash);
                let body = Body::TimeFulfil(TimeFulfil { source: rec.at.clone(), minutes });
                if self.step(label, at, body, ok)?.is_some() {
                    self.model.fulfilled.insert(rec.at.hash);
                }
            }
            Op::Replace { c, merchant, slot, to_existing } => {
                let c = usize::from(c);
                let old = if merchant { self.merchant(c, slot) } else { self.resident(c, slot) }.public();
                let existing = self.model.accounts.keys().find(|(cc, k)| *cc == c && k != &old).map(|(_, k)| *k);
                let (new_key, new_pair) = match (to_existing, existing) {
                    (true, Some(k)) => (k, None),
                    _ => {
                        let label = format!("{}/{}-{slot}", C[c], if merchant { "merchant" } else { "resident" });
                        let k = self.fresh_key(&label);
                        (k.public(), Some(k))
                    }
                };
                let ok = self.model.account(c, &old).is_some_and(|a| !a.replaced)
                    && self.model.account(c, &new_key).is_none();
                let body = Body::ReplaceKey(ReplaceKey { old_key: old, new_key });
                if self.step(label, c, body, ok)?.is_some() {
                    let moved = self.model.account(c, &old).cloned().unwrap();
                    self.model.accounts.insert((c, new_key), moved);
                    let a = self.model.account_mut(c, &old);
                    (a.replaced, a.points, a.minutes) = (true, 0, 0);
                    self.model.replaced_by.insert((c, old), new_key);
                    let held: Vec<(usize, u64)> = self
                        .model
                        .holdings
                        .iter()
                        .filter(|((hc, k, _), _)| *hc == c && k == &old)
                        .map(|((_, _, i), p)| (*i, *p))
                        .collect();
                    for (issuer, p) in held {
                        *self.model.holding_mut(c, &old, issuer) = 0;
                        *self.model.holding_mut(c, &new_key, issuer) += p;
                    }
                    let slots = if merchant { &mut self.merchants[c] } else { &mut self.residents[c] };
                    let i = usize::from(slot) % slots.len();
                    self.retired.push((c, std::mem::replace(&mut slots[i], new_pair.unwrap())));
                }
            }
            Op::Rotate { c, reuse } => {
                let c = usize::from(c);
                let id = self.ids[c].clone();
                let retired = self.old_signing[c].first().cloned();
                let (new, fresh) = match (reuse, retired) {
                    (1, _) | (3, None) => (self.f.keys[&id].clone(), false),
                    (2, _) => (self.f.recovery[&id].clone(), false),
                    (3, Some(k)) => (k, false),
                    _ => (self.fresh_key(&format!("{}/signing", C[c])), true),
                };
                let seq = self.state().ledgers[&id].next_seq;
                let sig = new.sign("rotate-key", &self.f.genesis_hash, &rotation_message(&id, seq));
                let body = Body::RotateKey(RotateKey { new_key: new.public(), new_key_signature: sig });
                if self.step(label, c, body, fresh)?.is_some() {
                    let old = self.f.keys.insert(id, new).unwrap();
                    self.old_signing[c].push(old);
                }
            }
            Op::Revoke { c } => {
                let c = usize::from(c);
                let id = self.ids[c].clone();
                let new = self.fresh_key(&format!("{}/signing", C[c]));
                let seq = self.state().ledgers[&id].next_seq;
                let sig = new.sign("rotate-key", &self.f.genesis_hash, &rotation_message(&id, seq));
                let revoked_key = self.f.keys[&id].public();
                let body = Body::RevokeKey(RevokeKey { revoked_key, new_key: new.public(), new_key_signature: sig });
                if self.step(label, c, body, true)?.is_some() {
                    let old = self.f.keys.insert(id, new).unwrap();
                    self.old_signing[c].push(old);
                }
            }
        }
        Ok(())
    }

    /// The key that replaced `k`, per the model.
    fn replacement(&self, c: usize, k: &PublicKey) -> Option<PublicKey> {
        self.model.replaced_by.get(&(c, *k)).copied()
    }

    /// Compares the model with the state: accounts, holdings, single-use items, exposure,
    /// settled and cleared totals and rule tables.
    fn compare_model(&self) -> Result<(), String> {
        let s = self.state();
        let m = &self.model;
        if s.accounts.len() != m.accounts.len() {
            return Err(format!("{} accounts, the model has {}", s.accounts.len(), m.accounts.len()));
        }
        for ((c, k), a) in &s.accounts {
            let want = m.account(self.index(c), k).ok_or_else(|| format!("account {k} of {c} not in the model"))?;
            let got = ShadowAccount {
                role: a.role,
                replaced: a.replaced_by.is_some(),
                points: a.points,
                minutes: a.minutes,
                served: a.served_minutes,
                awards: a.awards,
            };
            if &got != want {
                return Err(format!("account {k} of {c} is {got:?}, the model says {want:?}"));
            }
        }
        let held: BTreeMap<(usize, PublicKey, usize), u64> = s
            .holdings
            .iter()
            .filter(|(_, p)| **p > 0)
            .map(|((c, k, i), p)| ((self.index(c), *k, self.index(i)), *p))
            .collect();
        let want: BTreeMap<_, _> = m.holdings.iter().filter(|(_, p)| **p > 0).map(|(k, p)| (*k, *p)).collect();
        if held != want {
            return Err(format!("holdings {held:?}, the model says {want:?}"));
        }
        let nonces: BTreeSet<_> = s.nonces.keys().map(|(c, k, n)| (self.index(c), *k, *n)).collect();
        if nonces != m.nonces {
            return Err(format!("{} nonces used, the model has {}", nonces.len(), m.nonces.len()));
        }
        let requests: BTreeSet<_> = s.request_ids.keys().map(|(c, n)| (self.index(c), *n)).collect();
        if requests != m.requests {
            return Err(format!("request ids {requests:?}, the model has {:?}", m.requests));
        }
        let credited: BTreeSet<Hash> = s.pays.values().filter(|p| p.credited_by.is_some()).map(|p| p.at.hash).collect();
        if credited != m.credited {
            return Err(format!("{} payments credited, the model has {}", credited.len(), m.credited.len()));
        }
        let fulfilled: BTreeSet<Hash> =
            s.draws.values().filter(|d| d.fulfilled_by.is_some()).map(|d| d.at.hash).collect();
        if fulfilled != m.fulfilled {
            return Err(format!("{} draws fulfilled, the model has {}", fulfilled.len(), m.fulfilled.len()));
        }
        for i in 0..3 {
            for j in 0..3 {
                let (a, b) = (&self.ids[i], &self.ids[j]);
                let x = s.exposure.get(&(a.clone(), b.clone())).cloned().unwrap_or_default();
                let want = m.exposure.get(&(i, j)).copied().unwrap_or_default();
                if (x.limit_seq, x.paid_points, x.cleared_points) != want {
                    return Err(format!("exposure of {a} to {b} is {x:?}, the model says {want:?}"));
                }
                let by = s.settled_by.get(&(a.clone(), b.clone())).copied().unwrap_or(0);
                if by != m.settled_by.get(&(i, j)).copied().unwrap_or(0) {
                    return Err(format!("{a} settled {by} points of {b}; the model disagrees"));
                }
                let cl = s.clearings.get(&(a.clone(), b.clone())).cloned().unwrap_or_default();
                if (cl.settled_here_total, cl.settled_there_total)
                    != m.clearings.get(&(i, j)).copied().unwrap_or_default()
                {
                    return Err(format!("clearing of {a} with {b} is {cl:?}; the model disagrees"));
                }
            }
            if s.ledgers[&self.ids[i]].rules.as_deref() != m.rules.get(&i) {
                return Err(format!("rules of {} differ from the model", self.ids[i]));
            }
        }
        Ok(())
    }

    /// Rules everywhere, three residents with points (two with enough served hours to redeem)
    /// and one merchant per
    /// community, and every community extending credit to each other one (two
    /// limits per pair: 400 then 900 fen).
    fn prologue(&mut self) -> Result<(), TestCaseError> {
        let mut ops = vec![
            Op::Rules { c: 0, bump: 2, council: false },
            Op::Rules { c: 1, bump: 2, council: false },
            Op::Rules { c: 2, bump: 2, council: true },
        ];
        for c in 0..3u8 {
            ops.push(Op::Merchant { c, slot: 0, bad_name: false });
            for slot in 0..3u8 {
                ops.push(Op::Enroll { c, slot, merchant_key: false });
                // Slots 0 and 1: three hours of hourly-service (default table, index 5) or
                // volunteering (council, index 1). Slot 2: a half-hour clean-up or council
                // meeting (index 0), too little service to redeem under the default table.
                let (act, minutes) = match (c, slot) {
                    (_, 2) => (0, 30),
                    (2, _) => (1, 180),
                    _ => (5, 180),
                };
                ops.push(Op::Award { c, slot, act, minutes, rating: 5, bonus: false, wrong: 0, reuse_request: false });
            }
            for issuer in 1..3u8 {
                // Two limits per pair, so citing the older one after the newer is stale.
                ops.push(Op::Limit { c, issuer, fen: 40, twice: true });
            }
        }
        for op in &ops {
            let before = self.accepted.len();
            self.run(op)?;
            let entries = if matches!(op, Op::Limit { twice: true, .. }) { 2 } else { 1 };
            prop_assert_eq!(self.accepted.len(), before + entries, "the prologue must be accepted in full: {:?}", op);
        }
        Ok(())
    }

    /// Replays the accepted entries into a fresh state and checks it equals the live one; also
    /// verifies each ledger's entries as one batch.
    fn check_replay(&self) -> Result<(), TestCaseError> {
        let g = self.f.genesis_hash;
        let mut replay = State::new(&self.f.genesis);
        for e in &self.accepted {
            let keys = replay.signer_keys(&e.entry.community).unwrap();
            let signer = if matches!(e.entry.body, Body::RevokeKey(_)) { keys.recovery } else { keys.current };
            let v = verify_entry(&g, e.clone(), signer)
                .map_err(|err| TestCaseError::fail(format!("replay: signature refused: {err}")))?;
            replay
                .apply(&v, &ApplyContext::default())
                .map_err(|err| TestCaseError::fail(format!("replay refused an accepted entry: {err}")))?;
        }
        prop_assert!(replay == self.f.state, "replayed state differs from the live state");
        for (id, info) in self.ids.iter().zip(&self.f.genesis.communities) {
            let run: Vec<SignedEntry> = self.accepted.iter().filter(|e| &e.entry.community == id).cloned().collect();
            let n = run.len();
            let start = SignerKeys { current: info.signing_key, recovery: info.recovery_key };
            let verified = verify_run(&g, run, start)
                .map_err(|(_, err)| TestCaseError::fail(format!("batch verification of {id}: {err}")))?;
            prop_assert_eq!(verified.len(), n);
            prop_assert_eq!(verified.last().map(|v| v.hash()), Some(self.f.state.ledgers[id].head));
        }
        Ok(())
    }
}

fn new_account(role: Role) -> ShadowAccount {
    ShadowAccount { role, replaced: false, points: 0, minutes: 0, served: 0, awards: 0 }
}

/// Invariants that tie the state's summary items to the records they summarise, computed
/// independently of the state machine's running figures.
fn derived_invariants(s: &State) -> Result<(), String> {
    // A replaced account holds nothing: its balances moved to the new key.
    for ((c, k), a) in &s.accounts {
        let holdings: u64 = s.holdings.iter().filter(|((hc, hk, _), _)| hc == c && hk == k).map(|(_, p)| *p).sum();
        if a.replaced_by.is_some() && (a.points, a.minutes, holdings) != (0, 0, 0) {
            return Err(format!("replaced account {k} of {c} still holds {a:?}, holdings {holdings}"));
        }
    }
    // Exposure: paid = the points of the issuer's payments to the creditor's merchants;
    // cleared = what the issuer's last clearing with the creditor said was settled there.
    let ids: Vec<&CommunityId> = s.ledgers.keys().collect();
    for issuer in &ids {
        for creditor in &ids {
            if issuer == creditor {
                continue;
            }
            let paid: u64 = s
                .pays
                .values()
                .filter(|p| &&p.at.community == issuer && &&p.merchant_community == creditor)
                .map(|p| p.points)
                .sum();
            let cleared =
                s.clearings.get(&((*issuer).clone(), (*creditor).clone())).map(|c| c.settled_there_total).unwrap_or(0);
            let x = s.exposure.get(&((*issuer).clone(), (*creditor).clone())).cloned().unwrap_or_default();
            if (x.paid_points, x.cleared_points) != (paid, cleared) {
                return Err(format!(
                    "exposure of {issuer} to {creditor} is {x:?}; payments give {paid}, clearings {cleared}"
                ));
            }
        }
    }
    // Settled totals: the newest settlement record of each (community, issuer) carries the
    // running figure, and the issuer's `settled` total is their sum.
    for issuer in &ids {
        let mut sum = 0u64;
        for c in &ids {
            let by = s.settled_by.get(&((*c).clone(), (*issuer).clone())).copied().unwrap_or(0);
            let newest = s
                .settles
                .values()
                .filter(|r| &&r.at.community == c && &&r.issuer == issuer)
                .map(|r| r.settled_total)
                .max()
                .unwrap_or(0);
            if by != newest {
                return Err(format!("{c} settled {by} points of {issuer}, its newest settlement says {newest}"));
            }
            sum += by;
        }
        if s.totals[*issuer].settled != sum {
            return Err(format!("{issuer} totals say {} settled, settlements sum to {sum}", s.totals[*issuer].settled));
        }
    }
    // A credit or fulfilment is recorded on the ledger the source names.
    for p in s.pays.values() {
        if p.credited_by.as_ref().is_some_and(|r| r.community != p.merchant_community) {
            return Err(format!("payment {:?} credited on the wrong ledger", p.at));
        }
    }
    for d in s.draws.values() {
        if d.fulfilled_by.as_ref().is_some_and(|r| r.community != d.serving_community) {
            return Err(format!("draw {:?} fulfilled on the wrong ledger", d.at));
        }
    }
    Ok(())
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
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
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
    for label in [
        "enroll",
        "register-merchant",
        "set-rules",
        "award",
        "redeem",
        "pay",
        "credit",
        "settle",
        "clearing",
        "set-exposure-limit",
        "time-credit",
        "time-spend",
        "time-fulfil",
        "replace-key",
        "rotate-key",
        "revoke-key",
    ] {
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
