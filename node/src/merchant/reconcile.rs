//! Reconciliation: the till's receipts and settlements checked against the home ledger.
//! Pending sales are finished, each receipt's `Credit` is found and verified (inclusion proof
//! into a cosigned checkpoint), the home ledger is scanned for this merchant's settlements
//! (see [`super::settlement`]), and the figures are totalled per issuer with the differences
//! between the till's records and the ledger.

use super::store::{SaleReceipt, SettlementOrigin};
use super::till::{refusal, Refusal, Till};
use crate::network::messages::{SyncRequest, SyncResponse};
use linli_protocol::body::Body;
use linli_protocol::{CommunityId, EntryRef};
use serde::Serialize;

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
    /// Settlements the till knows of (asked for through it, or found on the home ledger).
    pub settlements: u64,
    /// Of those, proven on the home ledger (inclusion proof into a cosigned checkpoint).
    pub settlements_proven: u64,
    /// Settlements the till did not ask for but found on the home ledger (made outside the
    /// till, e.g. `linli submit settle`, or whose answer was lost); this reconciliation's new
    /// finds are in `settlements_found_now`.
    pub settlements_from_ledger: u64,
    pub settlements_found_now: u64,
    /// Settlements the till recorded that the home ledger does not show proven (yet): the
    /// scan stopped before them, or they are not there.
    pub settlements_unproven: u64,
    pub issuers: Vec<IssuerReconciliation>,
}

impl Till {
    /// Finish pending sales, find each receipt's `Credit` on the home ledger (verified), find
    /// this merchant's settlements on the home ledger (verified), and total receipts, credits
    /// and settlements per issuer.
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
        let scan = self.scan_settlements().await?;
        out.settlements_found_now = scan.found;
        for s in self.store.settlements()? {
            out.settlements += 1;
            if s.proof.is_some() {
                out.settlements_proven += 1;
            } else {
                out.settlements_unproven += 1;
            }
            if s.origin == SettlementOrigin::Ledger {
                out.settlements_from_ledger += 1;
            }
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
        Ok(self.verify_cosigned(&proof, "the credit").await?.map(|v| v.at))
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
