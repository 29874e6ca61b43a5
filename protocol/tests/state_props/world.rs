//! The `World`: a federation under test with its key pairs and the model; applies each entry
//! (`step`), compares the model with the state, runs the prologue and checks the replay. How each
//! operation is built is in `world/execute.rs`.

use crate::ops::Op;
use crate::shadow::{derived_invariants, Shadow, ShadowAccount};
use crate::{Stats, C, MERCHANT_SLOTS, RESIDENT_SLOTS};
use linli_protocol::body::*;
use linli_protocol::state::{records_read, Change};
use linli_protocol::testkit::{cid, key, TestFederation};
use linli_protocol::verify::{verify_entry, verify_run, SignerKeys};
use linli_protocol::{ApplyContext, CommunityId, Hash, Keypair, PublicKey, SignedEntry, State};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

mod execute;

pub(crate) struct World {
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
    pub(crate) counting: bool,
    pub(crate) stats: Stats,
}

impl World {
    pub(crate) fn new() -> Self {
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
        // A node holds only the records the entry declares it reads: same verdict, same changes.
        let mut lean = before.clone();
        lean.forget_records();
        lean.commit(records_read(&e.entry).iter().filter_map(|k| before.record(k)).collect());
        prop_assert_eq!(lean.check(&v, &ctx), checked.clone(), "{}: the declared records do not suffice", label);
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

    pub(crate) fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.execute(op)?;
        self.compare_model().map_err(|m| TestCaseError::fail(format!("after {}: {m}", op.label())))
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
    pub(crate) fn prologue(&mut self) -> Result<(), TestCaseError> {
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
    pub(crate) fn check_replay(&self) -> Result<(), TestCaseError> {
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
