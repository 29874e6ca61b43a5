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
use super::store::{PendingSale, SaleReceipt, Settlement, TillStore, TillStoreError};
use crate::network::messages::{SyncRequest, SyncResponse};
use linli_protocol::body::{Body, Payment, SettlementRequest, Signed};
use linli_protocol::checkpoint::CheckpointError;
use linli_protocol::checkpoint::EquivocationProof;
use linli_protocol::light::{EntryProof, KeyHistoryProof, LightError, LightTrust, VerifiedProof};
use linli_protocol::verify::verify_entry;
use linli_protocol::{CommunityId, EntryRef, Genesis, Keypair, SignedEntry, FEN_PER_POINT};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a sale asks again for a proof while witnesses cosign.
const PROOF_POLL: Duration = Duration::from_millis(20);
/// How often a sale whose proof does not verify asks again for the communities' key changes.
const KEY_REFRESH: Duration = Duration::from_millis(500);

/// Why the till refused (or could not yet complete) a sale: a stable code and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Refusal {
    /// `insufficient-points`, `expired`, `already-used`, `wrong-amount`, `wrong-merchant`,
    /// `bad-signature`, `unknown-account`, `credit-limit`, `issuer-faulty`, `proof-invalid`,
    /// `unconfirmed` (sequenced, proof still awaited: it completes later), `unavailable`,
    /// `refused`, `storage`, `key-unknown` (signed by a key this till could not follow).
    pub code: &'static str,
    pub reason: String,
}

fn refusal(code: &'static str, reason: impl Into<String>) -> Refusal {
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
fn from_rule(rule: &str, message: String) -> Refusal {
    let (code, plain) = match rule {
        "insufficient-points" => ("insufficient-points", "the resident does not have enough points"),
        "expired" => ("expired", "the payment has expired; ask the resident to sign it again"),
        "nonce-reused" => ("already-used", "this payment was already used"),
        "exchange-rate" | "zero-amount" => ("wrong-amount", "the amount is wrong (1 point = 0.1 yuan)"),
        "unknown-account" | "wrong-role" | "account-replaced" => {
            ("unknown-account", "the payer or merchant account is not valid")
        }
        "exposure-exceeded" => ("credit-limit", "the payer's community has reached its credit limit with ours"),
        "genesis" => ("wrong-federation", "the payment is for another federation"),
        _ => ("refused", "the payer's community refused the payment"),
    };
    refusal(code, format!("{plain} ({message})"))
}

/// Where each issuer's points stand for this merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IssuerReconciliation {
    #[schema(value_type = String)]
    pub issuer: CommunityId,
    pub receipts: u64,
    pub received_points: u64,
    pub credited_points: u64,
    pub settled_points: u64,
    pub settled_fen: u64,
    /// Credited and not yet settled (what the merchant can still cash out).
    pub unsettled_points: u64,
}

/// The merchant's receipts checked against the home ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    pub receipts: u64,
    pub credited: u64,
    /// Receipts whose credit the home ledger does not show yet.
    pub uncredited: u64,
    /// Sales sequenced but still without a verified proof.
    pub pending: u64,
    pub issuers: Vec<IssuerReconciliation>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The till: cheap to clone.
#[derive(Clone)]
pub struct Till {
    pub home: CommunityId,
    key: std::sync::Arc<Keypair>,
    genesis: Genesis,
    min_witnesses: usize,
    proof_timeout: Duration,
    pub store: TillStore,
    link: LinkHandle,
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
        let entry = match self.link.request(request).await? {
            SyncResponse::Sequenced(e) => *e,
            SyncResponse::Refused { rule, message } => return Err(from_rule(&rule, message)),
            SyncResponse::Error(e) | SyncResponse::NotYet(e) => {
                return Err(refusal("unavailable", format!("the payer's community could not be reached: {e}")))
            }
            _ => return Err(refusal("unavailable", "unexpected answer from the community node")),
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

    /// Ask the home community to cash out `points` of `issuer` at exactly 10 fen a point.
    pub async fn settle(&self, issuer: CommunityId, points: u64) -> Result<Settlement, Refusal> {
        let fen = points
            .checked_mul(FEN_PER_POINT)
            .ok_or_else(|| refusal("wrong-amount", format!("{points} points is too large")))?;
        let last = self.store.settlements()?.iter().map(|s| s.nonce).max().unwrap_or(0);
        let nonce = now_ms().max(last.saturating_add(1));
        let request = SettlementRequest { merchant: self.key.public(), issuer: issuer.clone(), points, fen, nonce };
        let signed = Signed::sign(request, &self.key, &self.genesis.hash());
        let ask = SyncRequest::SubmitSettlement { home: self.home.clone(), request: Box::new(signed.clone()) };
        let entry = match self.link.request(ask).await? {
            SyncResponse::Sequenced(e) => *e,
            SyncResponse::Refused { rule, message } => return Err(from_rule(&rule, message)),
            SyncResponse::Error(e) | SyncResponse::NotYet(e) => return Err(refusal("unavailable", e)),
            _ => return Err(refusal("unavailable", "unexpected answer from the community node")),
        };
        let is_ours = |b: &Body| matches!(b, Body::Settle(s) if s.request == signed);
        // Signed by a key this till does not know yet: the home community changed its key, and
        // the change is proven once a cosigned checkpoint covers it (asking makes one soon).
        let deadline = tokio::time::Instant::now() + self.proof_timeout;
        let at = loop {
            match self.check_own_entry(entry.clone(), is_ours) {
                Err(r) if r.code == "key-unknown" && tokio::time::Instant::now() < deadline => {
                    self.refresh_keys().await?;
                    tokio::time::sleep(PROOF_POLL).await;
                }
                other => break other?,
            }
        };
        let s = Settlement { at, issuer, points, fen, nonce, time_ms: now_ms() };
        self.store.put_settlement(&s)?;
        Ok(s)
    }

    /// An entry the home community says it appended for us: signed by it (with the key in force
    /// as far as this till knows: `key-unknown` otherwise) and what we asked.
    fn check_own_entry(&self, e: SignedEntry, is_ours: impl Fn(&Body) -> bool) -> Result<EntryRef, Refusal> {
        if e.entry.community != self.home || !is_ours(&e.entry.body) {
            return Err(refusal("proof-invalid", "the home community answered with another entry"));
        }
        let trust = self.trust()?;
        let key = trust.history(&self.home).map(|h| h.signer_of(&e)).unwrap_or_default();
        let v = verify_entry(&self.genesis.hash(), e, key).map_err(|e| refusal("key-unknown", e.to_string()))?;
        Ok(v.signed().entry_ref(&self.genesis.hash()))
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

    /// Finish pending sales, find each receipt's `Credit` on the home ledger (verified), and
    /// total receipts, credits and settlements per issuer.
    pub async fn reconcile(&self) -> Result<Reconciliation, Refusal> {
        for pending in self.store.pending()? {
            if let Err(e) = self.confirm(&pending, self.proof_timeout).await {
                tracing::info!(at = ?pending.at, reason = %e, "pending sale still unconfirmed");
            }
        }
        let mut out = Reconciliation { pending: self.store.pending()?.len() as u64, ..Default::default() };
        for mut r in self.store.receipts()? {
            if r.credit.is_none() {
                r.credit = self.find_credit(&r).await?;
                if r.credit.is_some() {
                    self.store.put_receipt(&r)?;
                }
            }
            let i = issuer_row(&mut out.issuers, &r.at.community);
            i.receipts += 1;
            i.received_points = i.received_points.saturating_add(r.points);
            out.receipts += 1;
            if r.credit.is_some() {
                i.credited_points = i.credited_points.saturating_add(r.points);
                out.credited += 1;
            } else {
                out.uncredited += 1;
            }
        }
        for s in self.store.settlements()? {
            let i = issuer_row(&mut out.issuers, &s.issuer);
            i.settled_points = i.settled_points.saturating_add(s.points);
            i.settled_fen = i.settled_fen.saturating_add(s.fen);
        }
        for i in &mut out.issuers {
            i.unsettled_points = i.credited_points.saturating_sub(i.settled_points);
        }
        Ok(out)
    }

    /// The verified `Credit` of a receipt on the home ledger, if it is there yet.
    async fn find_credit(&self, r: &SaleReceipt) -> Result<Option<EntryRef>, Refusal> {
        let ask = SyncRequest::CreditOf { merchant_community: self.home.clone(), source: r.at.clone() };
        let proof = match self.link.request(ask).await {
            Ok(SyncResponse::Proof(p)) => p,
            _ => return Ok(None),
        };
        let me = self.key.public();
        let matches = matches!(&proof.entry.entry.body,
            Body::Credit(c) if c.source == r.at && c.merchant == me && c.points == r.points);
        if !matches || proof.entry.entry.community != self.home {
            return Err(refusal("proof-invalid", format!("the credit shown for {:?} is not this receipt's", r.at)));
        }
        let mut verdict = self.trust()?.verify(&proof);
        if verdict.as_ref().is_err_and(|e| may_be_a_key_change(e, &proof, self.min_witnesses)) {
            self.refresh_keys().await?;
            verdict = self.trust()?.verify(&proof);
        }
        match verdict {
            Ok(v) => Ok(Some(v.at)),
            Err(LightError::Checkpoint(CheckpointError::TooFewWitnesses { .. })) => Ok(None),
            Err(e) => Err(refusal("proof-invalid", format!("the credit's proof does not verify: {e}"))),
        }
    }
}

/// A proof that fails on a signature, or on too few witnesses although enough of them
/// cosigned, may be signed with keys this till has not learned yet (a rotation, a revocation, a
/// witness's new key). Too few cosignatures is the usual wait for witnesses, not a key change.
fn may_be_a_key_change(e: &LightError, proof: &EntryProof, min_witnesses: usize) -> bool {
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

fn issuer_row<'a>(rows: &'a mut Vec<IssuerReconciliation>, issuer: &CommunityId) -> &'a mut IssuerReconciliation {
    let idx = match rows.iter().position(|r| &r.issuer == issuer) {
        Some(i) => i,
        None => {
            rows.push(IssuerReconciliation {
                issuer: issuer.clone(),
                receipts: 0,
                received_points: 0,
                credited_points: 0,
                settled_points: 0,
                settled_fen: 0,
                unsettled_points: 0,
            });
            rows.len() - 1
        }
    };
    &mut rows[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let r = from_rule("something-new", "detail".into());
        assert_eq!(r.code, "refused");
        assert!(r.reason.contains("detail"));
    }
}
