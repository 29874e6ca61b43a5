//! The merchant's till: a sale, a settlement and a reconciliation, each checked locally.
//!
//! A sale: local checks a cashier can act on (this merchant, not expired, the amount obeys
//! 1 point = 10 fen, the resident's signature) → the payment goes to the payer's home community
//! through any connected community node → the returned `Pay` entry is kept as pending → the
//! light node fetches the entry's proof until a checkpoint signed by the issuer and cosigned by
//! enough witnesses covers it, and verifies it ([`LightTrust`]) → the receipt is stored (synced)
//! and only then is the sale accepted. A refused payment gets a short code and a reason a
//! cashier understands.
//!
//! Keys: the till starts from the genesis keys. When a proof fails on a signature (or on
//! witnesses that cosigned but do not count), it asks for each community's key history
//! ([`KeyHistoryProof`], every 0.5 s at most, until the sale's proof timeout), keeps what
//! verifies (in its store) and checks the proof again: a community that rotated or revoked its
//! key is followed, and nothing signed by a revoked key after its revocation is accepted.

use super::link::{LinkError, LinkHandle};
use super::store::{PendingSale, SaleReceipt, TillStore, TillStoreError};
use crate::network::messages::{SyncRequest, SyncResponse};
use linli_protocol::body::{Payment, Signed};
use linli_protocol::checkpoint::CheckpointError;
use linli_protocol::checkpoint::EquivocationProof;
use linli_protocol::light::{EntryProof, KeyHistoryProof, LightError, LightTrust, VerifiedProof};
use linli_protocol::{CommunityId, Genesis, Keypair, FEN_PER_POINT};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a sale asks again for a proof while witnesses cosign.
pub(super) const PROOF_POLL: Duration = Duration::from_millis(20);
/// How often a sale whose proof does not verify asks again for the communities' key changes.
const KEY_REFRESH: Duration = Duration::from_millis(500);
/// How many times a sale's submission is tried when the node asked cannot reach the payer's
/// home node, and the pause between tries (the link asks its next node each time).
const SUBMIT_ATTEMPTS: u32 = 4;
const SUBMIT_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Why the till refused (or could not yet complete) a sale: a stable code and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Refusal {
    /// `insufficient-points`, `expired`, `already-used`, `wrong-amount`, `wrong-merchant`,
    /// `bad-signature`, `unknown-account`, `credit-limit`, `issuer-faulty`, `proof-invalid`,
    /// `insufficient-holdings` (a settlement of more points than the merchant holds),
    /// `unconfirmed` (sequenced, proof still awaited: it completes later), `unavailable`,
    /// `refused`, `storage`, `key-unknown` (signed by a key this till could not follow).
    pub code: &'static str,
    pub reason: String,
}

pub(super) fn refusal(code: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal { code, reason: reason.into() }
}

impl From<TillStoreError> for Refusal {
    fn from(e: TillStoreError) -> Self {
        refusal("storage", e.to_string())
    }
}

impl From<LinkError> for Refusal {
    fn from(e: LinkError) -> Self {
        refusal("unavailable", format!("network unavailable, the sale did not happen: {e}"))
    }
}

/// A home community's refusal, in a cashier's words.
pub(super) fn from_rule(rule: &str, message: String) -> Refusal {
    let (code, plain) = match rule {
        "insufficient-points" => ("insufficient-points", "the resident does not have enough points"),
        "expired" => ("expired", "the payment has expired; ask the resident to sign it again"),
        "nonce-reused" => ("already-used", "this payment was already used"),
        "exchange-rate" | "zero-amount" => ("wrong-amount", "the amount is wrong (1 point = 0.1 yuan)"),
        "unknown-account" | "wrong-role" | "account-replaced" => {
            ("unknown-account", "the payer or merchant account is not valid")
        }
        "exposure-exceeded" => ("credit-limit", "the payer's community has reached its credit limit with ours"),
        "insufficient-holdings" => {
            ("insufficient-holdings", "the merchant does not hold that many points of this community to settle")
        }
        "genesis" => ("wrong-federation", "the payment is for another federation"),
        _ => ("refused", "the payer's community refused the payment"),
    };
    refusal(code, format!("{plain} ({message})"))
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The till: cheap to clone.
#[derive(Clone)]
pub struct Till {
    pub home: CommunityId,
    pub(super) key: std::sync::Arc<Keypair>,
    pub(super) genesis: Genesis,
    pub(super) min_witnesses: usize,
    pub(super) proof_timeout: Duration,
    pub store: TillStore,
    pub(super) link: LinkHandle,
}

impl Till {
    pub fn new(
        home: CommunityId,
        key: Keypair,
        genesis: Genesis,
        min_witnesses: usize,
        proof_timeout: Duration,
        store: TillStore,
        link: LinkHandle,
    ) -> Self {
        Self { home, key: std::sync::Arc::new(key), genesis, min_witnesses, proof_timeout, store, link }
    }

    pub fn merchant(&self) -> linli_protocol::PublicKey {
        self.key.public()
    }

    /// How many community nodes the till can reach now.
    pub async fn connected(&self) -> usize {
        self.link.connected().await
    }

    /// What this till trusts now: the genesis keys and the key histories it verified since, the
    /// witness minimum, the faulty communities.
    pub fn trust(&self) -> Result<LightTrust, TillStoreError> {
        let mut t = LightTrust::new(self.genesis.clone(), self.min_witnesses);
        for c in self.store.faulty()? {
            t.mark_faulty(c);
        }
        for (c, history) in self.store.key_histories()? {
            t.restore_history(&c, history)
                .map_err(|e| TillStoreError::Corrupt(format!("stored key history of {c}: {e}")))?;
        }
        Ok(t)
    }

    /// Ask for every community's key history and keep what verifies and is new. Repeated while
    /// something changes (a witness's new key can make another history's cosignatures count).
    /// Returns how many histories were learned.
    pub async fn refresh_keys(&self) -> Result<usize, Refusal> {
        let mut trust = self.trust()?;
        let mut learned = 0;
        for _round in 0..self.genesis.communities.len() {
            let mut changed = false;
            for c in &self.genesis.communities {
                let proof: KeyHistoryProof = match self.link.request(SyncRequest::KeyHistory(c.id.clone())).await {
                    Ok(SyncResponse::KeyHistory(p)) => *p,
                    Ok(_) | Err(_) => continue,
                };
                match trust.learn_keys(&proof) {
                    Ok(Some(history)) => {
                        tracing::info!(community = %c.id, keys = history.keys.len(), "followed a community key change");
                        self.store.put_key_history(&c.id, &history)?;
                        learned += 1;
                        changed = true;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(community = %c.id, error = %e, "key history refused"),
                }
            }
            if !changed {
                break;
            }
        }
        Ok(learned)
    }

    /// Verify the proof of an entry against a cosigned checkpoint, learning the communities' key
    /// changes once if the failure may be one; `None` while too few witnesses cosigned. `what`
    /// names the entry in a refusal ("the credit").
    pub(super) async fn verify_cosigned(
        &self,
        proof: &EntryProof,
        what: &str,
    ) -> Result<Option<VerifiedProof>, Refusal> {
        let mut verdict = self.trust()?.verify(proof);
        if verdict.as_ref().is_err_and(|e| may_be_a_key_change(e, proof, self.min_witnesses)) {
            self.refresh_keys().await?;
            verdict = self.trust()?.verify(proof);
        }
        match verdict {
            Ok(v) => Ok(Some(v)),
            Err(LightError::Checkpoint(CheckpointError::TooFewWitnesses { .. })) => Ok(None),
            Err(e) => Err(refusal("proof-invalid", format!("{what}'s proof does not verify: {e}"))),
        }
    }

    /// Checks the till makes before anything leaves it.
    fn precheck(&self, home: &CommunityId, payment: &Signed<Payment>) -> Result<(), Refusal> {
        let p = &payment.payload;
        let gh = self.genesis.hash();
        if p.genesis != gh {
            return Err(refusal("wrong-federation", "the payment is for another federation"));
        }
        if self.genesis.community(home).is_none() {
            return Err(refusal("unknown-account", format!("community {home} is not in the federation")));
        }
        if p.merchant != self.key.public() || p.merchant_community != self.home {
            return Err(refusal("wrong-merchant", "the payment is made out to another merchant"));
        }
        if p.points == 0 || p.points.checked_mul(FEN_PER_POINT).is_none_or(|fen| fen > p.price_fen) {
            return Err(refusal(
                "wrong-amount",
                format!("{} points are worth more than the price of {} fen (1 point = 10 fen)", p.points, p.price_fen),
            ));
        }
        if p.expiry_ms <= now_ms() {
            return Err(refusal("expired", "the payment has expired; ask the resident to sign it again"));
        }
        payment.verify(&gh).map_err(|e| refusal("bad-signature", format!("the resident's signature is not valid: {e}")))
    }

    /// Take a resident's signed payment; accept it only once its proof verifies.
    pub async fn sale(&self, home: CommunityId, payment: Signed<Payment>) -> Result<SaleReceipt, Refusal> {
        self.precheck(&home, &payment)?;
        let request = SyncRequest::SubmitPayment { home: home.clone(), payment: Box::new(payment.clone()) };
        // A node that cannot reach the payer's home node at this moment (a connection being
        // re-established) answers with an error; the link asks its next node. Submitting the
        // same signed payment again is safe: the home node answers a resubmission with the
        // entry it already sequenced.
        let mut attempts = 0;
        let entry = loop {
            attempts += 1;
            match self.link.request(request.clone()).await? {
                SyncResponse::Sequenced(e) => break *e,
                SyncResponse::Refused { rule, message } => return Err(from_rule(&rule, message)),
                SyncResponse::Error(e) | SyncResponse::NotYet(e) => {
                    if attempts >= SUBMIT_ATTEMPTS {
                        return Err(refusal("unavailable", format!("the payer's community could not be reached: {e}")));
                    }
                    tokio::time::sleep(SUBMIT_RETRY_PAUSE).await;
                }
                _ => return Err(refusal("unavailable", "unexpected answer from the community node")),
            }
        };
        if entry.entry.community != home {
            return Err(refusal(
                "proof-invalid",
                format!("the answer came from {}, not {home}", entry.entry.community),
            ));
        }
        let pending = PendingSale { at: entry.entry_ref(&self.genesis.hash()), payment, since_ms: now_ms() };
        self.store.put_pending(&pending)?;
        self.confirm(&pending, self.proof_timeout).await
    }

    /// Fetch and verify the proof of a sequenced sale until `timeout`; store the receipt.
    pub async fn confirm(&self, pending: &PendingSale, timeout: Duration) -> Result<SaleReceipt, Refusal> {
        if let Some(r) = self.store.receipt(&pending.at.community, pending.at.seq)? {
            return Ok(r);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        // Read the faulty set once per sale, not per poll; it is read again before accepting.
        let mut trust = self.trust()?;
        let mut last_refresh: Option<tokio::time::Instant> = None;
        loop {
            let request = SyncRequest::Proof { community: pending.at.community.clone(), seq: pending.at.seq };
            let last = match self.link.request(request).await {
                Ok(SyncResponse::Proof(proof)) => match trust.verify_payment(&proof, &pending.payment) {
                    Ok(_) if self.trust()?.is_faulty(&pending.at.community) => {
                        return Err(refusal(
                            "issuer-faulty",
                            format!("community {} is marked faulty", pending.at.community),
                        ))
                    }
                    Ok(v) => return self.accept(pending, *proof, v),
                    // Perhaps signed with a key this till has not learned yet: ask for key
                    // changes (every KEY_REFRESH at most) until the deadline; a change is
                    // proven once a cosigned checkpoint covers it.
                    Err(e)
                        if may_be_a_key_change(&e, &proof, self.min_witnesses)
                            && tokio::time::Instant::now() + PROOF_POLL < deadline =>
                    {
                        if last_refresh.is_none_or(|t| t.elapsed() >= KEY_REFRESH) {
                            last_refresh = Some(tokio::time::Instant::now());
                            self.refresh_keys().await?;
                            trust = self.trust()?;
                        }
                        format!("{e} (asking for key changes)")
                    }
                    Err(LightError::Checkpoint(e @ CheckpointError::TooFewWitnesses { .. })) => e.to_string(),
                    Err(e @ LightError::Faulty { .. }) => return Err(refusal("issuer-faulty", e.to_string())),
                    Err(e) => {
                        return Err(refusal("proof-invalid", format!("the payment's proof does not verify: {e}")))
                    }
                },
                Ok(SyncResponse::NotYet(why)) => why,
                Ok(other) => format!("unexpected answer: {other:?}"),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() + PROOF_POLL > deadline {
                return Err(refusal(
                    "unconfirmed",
                    format!(
                        "payment sequenced as {} seq {}, awaiting witnesses ({last})",
                        pending.at.community, pending.at.seq
                    ),
                ));
            }
            tokio::time::sleep(PROOF_POLL).await;
        }
    }

    fn accept(&self, pending: &PendingSale, proof: EntryProof, v: VerifiedProof) -> Result<SaleReceipt, Refusal> {
        let p = &pending.payment.payload;
        let receipt = SaleReceipt {
            at: v.at,
            payer: p.payer,
            points: p.points,
            price_fen: p.price_fen,
            cash_fen: p.price_fen.saturating_sub(p.points.saturating_mul(FEN_PER_POINT)),
            nonce: p.nonce,
            checkpoint_size: v.checkpoint_size,
            witnesses: v.witnesses as u64,
            accepted_ms: now_ms(),
            credit: None,
            proof,
        };
        self.store.put_receipt(&receipt)?;
        Ok(receipt)
    }

    /// Check a receipt someone presents (a resident disputing a sale, an auditor).
    pub fn verify_receipt(&self, payment: &Signed<Payment>, proof: &EntryProof) -> Result<VerifiedProof, Refusal> {
        self.trust()?.verify_payment(proof, payment).map_err(|e| match e {
            LightError::Faulty { .. } => refusal("issuer-faulty", e.to_string()),
            e => refusal("proof-invalid", e.to_string()),
        })
    }

    /// Record an equivocation proof (verified by the link) and refuse the community from now on.
    pub fn record_alert(&self, proof: &EquivocationProof) -> Result<(), TillStoreError> {
        tracing::warn!(community = %proof.community(), "equivocation proven: refusing this community's proofs");
        self.store.put_alert(proof)
    }

    /// Learn the alerts a community node holds (each verified against the community's keys).
    pub async fn fetch_alerts(&self) -> Result<usize, Refusal> {
        let SyncResponse::Alerts(list) = self.link.request(SyncRequest::Alerts).await? else {
            return Err(refusal("unavailable", "unexpected answer to an alerts request"));
        };
        let trust = self.trust()?;
        let mut n = 0;
        for proof in list {
            if self.take_alert_with(&trust, &proof)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Record an equivocation proof if it verifies against any key the accused community
    /// signed with (as far as this till follows its keys); `false` if it does not.
    pub fn take_alert(&self, proof: &EquivocationProof) -> Result<bool, TillStoreError> {
        self.take_alert_with(&self.trust()?, proof)
    }

    fn take_alert_with(&self, trust: &LightTrust, proof: &EquivocationProof) -> Result<bool, TillStoreError> {
        let Some(history) = trust.history(proof.community()) else { return Ok(false) };
        let gh = self.genesis.hash();
        if !history.all_keys().iter().any(|k| proof.verify(&gh, k).is_ok()) {
            return Ok(false);
        }
        self.record_alert(proof)?;
        Ok(true)
    }
}

/// A proof that fails on a signature, or on too few witnesses although enough of them
/// cosigned, may be signed with keys this till has not learned yet (a rotation, a revocation, a
/// witness's new key). Too few cosignatures is the usual wait for witnesses, not a key change.
pub(super) fn may_be_a_key_change(e: &LightError, proof: &EntryProof, min_witnesses: usize) -> bool {
    match e {
        LightError::Signature(_) | LightError::Checkpoint(CheckpointError::Signature { .. }) => true,
        LightError::Checkpoint(CheckpointError::TooFewWitnesses { community, .. }) => {
            let cosigners: std::collections::BTreeSet<_> =
                proof.checkpoint.cosignatures.iter().map(|c| &c.witness).filter(|w| *w != community).collect();
            cosigners.len() >= min_witnesses
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linli_protocol::body::Body;

    #[test]
    fn only_signature_failures_or_uncounted_cosigners_suggest_a_key_change() {
        use linli_protocol::body::Enroll;
        use linli_protocol::checkpoint::{Checkpoint, SignedCheckpoint};
        use linli_protocol::merkle::prove_inclusion;
        use linli_protocol::testkit::{cid, key, TestFederation};
        let fed = TestFederation::new(&["a", "b", "c"]);
        let entry =
            fed.chain("a").next(Body::Enroll(Enroll { resident: key("r").public(), profile_hash: Default::default() }));
        let hash = entry.hash(&fed.genesis_hash);
        let cp = Checkpoint { community: cid("a"), size: 1, root: linli_protocol::merkle::root(&[hash]), time_ms: 1 };
        let signed = SignedCheckpoint::sign(cp, &fed.keys[&cid("a")], &fed.genesis_hash);
        let cosigned_by = |ws: &[&str]| EntryProof {
            entry: entry.clone(),
            checkpoint: linli_protocol::checkpoint::CosignedCheckpoint {
                signed: signed.clone(),
                cosignatures: ws.iter().map(|w| signed.cosign(cid(w), &key("stranger"), &fed.genesis_hash)).collect(),
            },
            inclusion: prove_inclusion(&[hash], 0).unwrap(),
        };
        let too_few = LightError::Checkpoint(CheckpointError::TooFewWitnesses {
            community: cid("a"),
            size: 1,
            expected: 2,
            actual: 0,
        });
        assert!(may_be_a_key_change(&too_few, &cosigned_by(&["b", "c"]), 2), "two cosigned, none counted");
        assert!(!may_be_a_key_change(&too_few, &cosigned_by(&["b"]), 2), "witnesses still to come");
        assert!(!may_be_a_key_change(&too_few, &cosigned_by(&["a", "b"]), 2), "the issuer does not count");
        let not_covered = LightError::NotCovered { seq: 3, size: 1 };
        assert!(!may_be_a_key_change(&not_covered, &cosigned_by(&["b", "c"]), 2));
    }

    #[test]
    fn rules_map_to_cashier_codes() {
        assert_eq!(from_rule("insufficient-points", "balance 5, required 10".into()).code, "insufficient-points");
        assert_eq!(from_rule("nonce-reused", String::new()).code, "already-used");
        assert_eq!(from_rule("expired", String::new()).code, "expired");
        assert_eq!(from_rule("exchange-rate", String::new()).code, "wrong-amount");
        assert_eq!(from_rule("exposure-exceeded", String::new()).code, "credit-limit");
        let r = from_rule("insufficient-holdings", "holds 5, needs 10".into());
        assert_eq!(r.code, "insufficient-holdings");
        assert!(r.reason.starts_with("the merchant does not hold that many points"), "{}", r.reason);
        assert!(!r.reason.contains("refused the payment"), "{}", r.reason);
        let r = from_rule("something-new", "detail".into());
        assert_eq!(r.code, "refused");
        assert!(r.reason.contains("detail"));
    }
}
