//! Turning a request into an entry body: award points computed from the rule table in force,
//! the exposure limit a payment cites, a settlement's cumulative total, a clearing's figures
//! from both ledgers, key rotations and revocations; and the entries this community appends
//! because of another (a `Credit` for a payment at its merchant, a `TimeFulfil` for minutes
//! drawn for its service).

use super::{Draft, Sequencer, SubmitError};
use crate::store::Batch;
use linli_protocol::body::{Body, PayEntry, SettleEntry};
use linli_protocol::rules::AwardClaim;
use linli_protocol::state::Role;
use linli_protocol::{CommunityId, EntryRef, Hash, Keypair, Rejection, SignedEntry, StateKey};

impl Sequencer {
    /// What this community appends, in the same group, because of an entry (its own or a
    /// peer's): a `Credit` for a payment at one of its merchants, a `TimeFulfil` for time-bank
    /// minutes drawn for a service it gives.
    pub(super) fn follow_up(&mut self, signed: &SignedEntry, hash: Hash, batch: &mut Batch) {
        let source = EntryRef { community: signed.entry.community.clone(), seq: signed.entry.seq, hash };
        let body = match &signed.entry.body {
            Body::Pay(p) if p.payment.payload.merchant_community == self.community => {
                let pay = &p.payment.payload;
                Body::Credit(linli_protocol::body::Credit {
                    source,
                    merchant: self.current_key(pay.merchant),
                    issuer: signed.entry.community.clone(),
                    points: pay.points,
                })
            }
            Body::TimeSpend(d) if d.payload.serving_community == self.community => {
                Body::TimeFulfil(linli_protocol::body::TimeFulfil { source, minutes: d.payload.minutes })
            }
            _ => return,
        };
        if let Err(e) = self.sequence(Draft::Body(body), batch) {
            tracing::warn!(source = ?signed.entry_ref(&self.genesis_hash), error = %e,
                "recording a payment's credit or a time-bank fulfilment failed; it stays in flight");
        }
    }

    /// The body of a key rotation (or, naming the revoked key, a revocation) to `new` at `seq`.
    pub(super) fn rotation(&self, new: &Keypair, seq: u64, revoked: Option<linli_protocol::PublicKey>) -> Body {
        let message = linli_protocol::body::rotation_message(&self.community, seq);
        let new_key_signature = new.sign("rotate-key", &self.genesis_hash, &message);
        match revoked {
            None => Body::RotateKey(linli_protocol::body::RotateKey { new_key: new.public(), new_key_signature }),
            Some(revoked_key) => Body::RevokeKey(linli_protocol::body::RevokeKey {
                revoked_key,
                new_key: new.public(),
                new_key_signature,
            }),
        }
    }

    /// The key a merchant of this community acts under now (following key replacements).
    fn current_key(&self, key: linli_protocol::PublicKey) -> linli_protocol::PublicKey {
        let mut k = key;
        for _ in 0..1024 {
            match self.state.account(&self.community, &k).and_then(|a| a.replaced_by) {
                Some(next) => k = next,
                None => break,
            }
        }
        k
    }

    /// Every figure of a clearing with `counterparty`, from both ledgers as this node holds them.
    fn clearing(&self, counterparty: CommunityId) -> Body {
        let here = self.community.clone();
        let prev = self.state.clearings.get(&(here.clone(), counterparty.clone())).cloned().unwrap_or_default();
        let settled_here = self.state.settled_by.get(&(here.clone(), counterparty.clone())).copied().unwrap_or(0);
        let latest_there = self
            .state
            .settles
            .values()
            .filter(|r| r.at.community == counterparty && r.issuer == here)
            .max_by_key(|r| r.settled_total);
        let (settled_there_ref, settled_there) = match latest_there {
            Some(r) if r.settled_total >= prev.settled_there_total => (Some(r.at.clone()), r.settled_total),
            _ => (None, prev.settled_there_total),
        };
        let fen = |now: u64, before: u64| now.saturating_sub(before).saturating_mul(linli_protocol::FEN_PER_POINT);
        Body::Clearing(linli_protocol::body::Clearing {
            counterparty,
            settled_here_total: settled_here,
            settled_there_total: settled_there,
            settled_there_ref,
            receivable_fen: fen(settled_here, prev.settled_here_total),
            payable_fen: fen(settled_there, prev.settled_there_total),
        })
    }

    /// Turn a draft into a body: compute award points, cite the exposure limit.
    pub(super) fn complete(&self, draft: Draft, seq: u64) -> Result<Body, SubmitError> {
        match draft {
            Draft::Body(b) => Ok(b),
            Draft::Clearing { counterparty } => Ok(self.clearing(counterparty)),
            Draft::RotateKey { .. } | Draft::RevokeKey { .. } => Err(self.reject(
                seq,
                "rotate-key",
                Rejection::KeyRotation { reason: "a key change is sequenced directly" },
            )),
            Draft::Pay(payment) => {
                let p = &payment.payload;
                // Admission policy (not a ledger rule): pay only merchants registered in their
                // community as far as this node knows, so no points are sent nowhere.
                match self.state.account(&p.merchant_community, &p.merchant) {
                    Some(a) if a.role == Role::Merchant && a.replaced_by.is_none() => {}
                    _ => {
                        return Err(self.reject(
                            seq,
                            "pay",
                            Rejection::UnknownAccount { community: p.merchant_community.clone(), key: p.merchant },
                        ))
                    }
                }
                let exposure_limit = if p.merchant_community == self.community {
                    None
                } else {
                    self.state.latest_limit(&p.merchant_community, &self.community).map(|l| l.at.clone())
                };
                Ok(Body::Pay(PayEntry { payment, exposure_limit }))
            }
            Draft::Settle(request) => {
                let key = (self.community.clone(), request.payload.issuer.clone());
                let before = self.state.settled_by.get(&key).copied().unwrap_or(0);
                // A resubmission keeps its original figure (found by nonce in `original_of`).
                let settled_total = before.saturating_add(request.payload.points);
                if let Some(at) = self.nonce_ref(&request.payload.merchant, request.payload.nonce) {
                    if let Some(Body::Settle(orig)) = self.lookup(&at, None).map(|e| e.entry.body) {
                        if orig.request == request {
                            return Ok(Body::Settle(orig));
                        }
                    }
                }
                Ok(Body::Settle(SettleEntry { request, settled_total }))
            }
            Draft::Award { mut award, points } => {
                let rules = self.state.ledgers.get(&self.community).and_then(|l| l.rules.clone()).ok_or_else(|| {
                    self.reject(seq, "award", Rejection::RulesNotPublished { community: self.community.clone() })
                })?;
                let prior = self
                    .state
                    .account(&self.community, &award.resident)
                    .filter(|a| a.role == Role::Resident)
                    .map(|a| a.awards)
                    .unwrap_or(0);
                let claim = AwardClaim {
                    activity: &award.activity,
                    minutes: award.minutes,
                    rating: award.rating,
                    bonuses: &award.bonuses,
                    prior_awards: prior,
                };
                let computed =
                    rules.award_points(&claim).map_err(|e| self.reject(seq, "award", Rejection::AwardInvalid(e)))?;
                if let Some(p) = points {
                    if p != computed {
                        return Err(self.reject(
                            seq,
                            "award",
                            Rejection::AwardPoints { expected: computed, actual: p },
                        ));
                    }
                }
                if award.rules_version == 0 {
                    award.rules_version = rules.version;
                }
                award.points = computed;
                // A resubmitted award (same request id) keeps its original figure.
                let request = StateKey::RequestId(self.community.clone(), award.request_id);
                if let Some(linli_protocol::Change::RequestId(_, _, first)) = self.record(&request) {
                    if let Some(Body::Award(orig)) = self.lookup(&first, None).map(|e| e.entry.body) {
                        award.points = orig.points;
                        award.rules_version = orig.rules_version;
                    }
                }
                Ok(Body::Award(award))
            }
        }
    }
}
