//! Settlement, as the till and the home ledger see it.
//!
//! The till asks its home community to cash out points (`settle`): the signed `Settle` entry
//! that comes back is checked (signed by the home community, what was asked), stored at once,
//! then proven like a sale's receipt: its inclusion proof into a checkpoint signed by the home
//! community and cosigned by enough witnesses.
//!
//! The till also finds its settlements on the home ledger itself (`scan_settlements`): it
//! reads the home ledger's entries from where it stopped last time, checks that each chains
//! to the one before and carries the home community's signature (so none can be left out of
//! the run without the chain breaking), and proves each `Settle` of this merchant against a
//! cosigned checkpoint. Settlements made outside the till (`linli submit settle`, the node's
//! API) or whose answer was lost are recorded with origin `Ledger`.

use super::store::{Settlement, SettlementOrigin};
use super::till::{from_rule, now_ms, refusal, Refusal, Till, PROOF_POLL};
use crate::network::messages::{SyncRequest, SyncResponse};
use linli_protocol::body::{Body, SettlementRequest, Signed};
use linli_protocol::light::EntryProof;
use linli_protocol::verify::verify_entry;
use linli_protocol::{CommunityId, EntryRef, SignedEntry, FEN_PER_POINT};

/// Entries asked for per ledger page while scanning.
const SCAN_PAGE: u64 = 512;

/// What a scan of the home ledger found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    /// This merchant's settlements proven on the ledger during this scan.
    pub proven: u64,
    /// Of those, settlements the till did not know of.
    pub found: u64,
    /// The scan stopped at a settlement whose covering checkpoint is not cosigned yet.
    pub waiting: bool,
}

impl Till {
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
            SyncResponse::Refused { rule, message } => {
                let r = from_rule(&rule, message.clone());
                if r.code == "refused" {
                    return Err(refusal("refused", format!("the home community refused the settlement ({message})")));
                }
                return Err(r);
            }
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
        let mut s = Settlement {
            at,
            issuer,
            points,
            fen,
            nonce,
            time_ms: entry.entry.time_ms,
            origin: SettlementOrigin::Till,
            proof: None,
            checkpoint_size: None,
        };
        // Sequenced: kept before waiting for witnesses, so a crash does not lose it.
        self.store.put_settlement(&s)?;
        if let Some((proof, size)) = self.prove_settlement_until(&entry).await? {
            (s.proof, s.checkpoint_size) = (Some(proof), Some(size));
            self.store.put_settlement(&s)?;
        }
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

    /// The verified proof of a `Settle` entry of the home ledger and the size of the cosigned
    /// checkpoint it is proven against; `None` while no checkpoint with enough witnesses
    /// covers it.
    async fn prove_settlement(&self, entry: &SignedEntry) -> Result<Option<(EntryProof, u64)>, Refusal> {
        let ask = SyncRequest::Proof { community: self.home.clone(), seq: entry.entry.seq };
        let proof = match self.link.request(ask).await {
            Ok(SyncResponse::Proof(p)) => *p,
            Ok(_) | Err(_) => return Ok(None),
        };
        if proof.entry != *entry {
            return Err(refusal(
                "proof-invalid",
                format!("the proof of {} seq {} is for another entry", self.home, entry.entry.seq),
            ));
        }
        let size = self.verify_cosigned(&proof, "the settlement").await?.map(|v| v.checkpoint_size);
        Ok(size.map(|size| (proof, size)))
    }

    /// [`Self::prove_settlement`], asked again until the proof timeout while witnesses cosign.
    async fn prove_settlement_until(&self, entry: &SignedEntry) -> Result<Option<(EntryProof, u64)>, Refusal> {
        let deadline = tokio::time::Instant::now() + self.proof_timeout;
        loop {
            if let Some(proven) = self.prove_settlement(entry).await? {
                return Ok(Some(proven));
            }
            if tokio::time::Instant::now() + PROOF_POLL > deadline {
                return Ok(None);
            }
            tokio::time::sleep(PROOF_POLL).await;
        }
    }

    /// Read the home ledger from where the last scan stopped; record and prove each settlement
    /// of this merchant (see the module doc).
    pub async fn scan_settlements(&self) -> Result<ScanOutcome, Refusal> {
        let (gh, me) = (self.genesis.hash(), self.key.public());
        let (mut next, mut prev) = self.store.settle_scan()?;
        let mut out = ScanOutcome::default();
        let mut refreshed = false;
        loop {
            let ask = SyncRequest::Range { community: self.home.clone(), from: next, limit: SCAN_PAGE };
            let entries = match self.link.request(ask).await? {
                SyncResponse::Entries(es) if !es.is_empty() => es,
                SyncResponse::Entries(_) => return Ok(out),
                other => return Err(refusal("unavailable", format!("the home ledger could not be read: {other:?}"))),
            };
            let mut trust = self.trust()?;
            for e in entries {
                let (seq, community) = (e.entry.seq, &e.entry.community);
                if community != &self.home || seq != next || e.entry.prev_hash != prev {
                    return Err(refusal(
                        "proof-invalid",
                        format!("{} seq {seq} does not follow seq {next} of the home ledger as scanned", community),
                    ));
                }
                let signer = |t: &linli_protocol::light::LightTrust| {
                    t.history(&self.home).map(|h| h.signer_of(&e)).unwrap_or_default()
                };
                let mut checked = verify_entry(&gh, e.clone(), signer(&trust));
                if checked.is_err() && !refreshed {
                    // Perhaps a key change this till has not followed yet.
                    refreshed = true;
                    self.refresh_keys().await?;
                    trust = self.trust()?;
                    checked = verify_entry(&gh, e.clone(), signer(&trust));
                }
                let v = checked.map_err(|err| {
                    refusal(
                        "proof-invalid",
                        format!("{} seq {seq} of the home ledger does not verify: {err}", self.home),
                    )
                })?;
                if matches!(&e.entry.body, Body::Settle(s) if s.request.payload.merchant == me) {
                    let Some((proof, size)) = self.prove_settlement_until(&e).await? else {
                        out.waiting = true;
                        return Ok(out);
                    };
                    out.proven += 1;
                    if self.record_proven(&e, proof, size)? {
                        out.found += 1;
                    }
                }
                (next, prev) = (seq.saturating_add(1), v.hash());
                self.store.put_settle_scan(next, prev)?;
            }
        }
    }

    /// Keep a proven `Settle` entry of this merchant; true when the till did not know of it.
    fn record_proven(&self, e: &SignedEntry, proof: EntryProof, size: u64) -> Result<bool, Refusal> {
        let Body::Settle(settle) = &e.entry.body else { return Ok(false) };
        let r = &settle.request.payload;
        let at = e.entry_ref(&self.genesis.hash());
        let known = self.store.settlements()?.into_iter().find(|s| s.nonce == r.nonce);
        let origin = known.as_ref().map_or(SettlementOrigin::Ledger, |s| s.origin);
        if let Some(k) = &known {
            if k.at != at {
                tracing::warn!(nonce = r.nonce, till = ?k.at, ledger = ?at, "a settlement's entry differs from the till's record; the ledger's is kept");
            }
        }
        let s = Settlement {
            at,
            issuer: r.issuer.clone(),
            points: r.points,
            fen: r.fen,
            nonce: r.nonce,
            time_ms: e.entry.time_ms,
            origin,
            proof: Some(proof),
            checkpoint_size: Some(size),
        };
        self.store.put_settlement(&s)?;
        Ok(known.is_none())
    }
}
