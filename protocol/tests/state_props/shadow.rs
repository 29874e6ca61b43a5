//! The `Shadow`: a small independent model of the rules, and the invariants derived from the
//! state's records.

use linli_protocol::rules::RuleTable;
use linli_protocol::state::Role;
use linli_protocol::{CommunityId, Hash, PublicKey, State};
use std::collections::{BTreeMap, BTreeSet};

/// The model's view of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShadowAccount {
    pub(crate) role: Role,
    pub(crate) replaced: bool,
    pub(crate) points: u64,
    pub(crate) minutes: u64,
    pub(crate) served: u64,
    pub(crate) awards: u64,
}

/// An independent model of what the rules do to balances and single-use items. Communities are
/// indexes into `C`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shadow {
    pub(crate) accounts: BTreeMap<(usize, PublicKey), ShadowAccount>,
    /// (merchant community, merchant, issuer) → points
    pub(crate) holdings: BTreeMap<(usize, PublicKey, usize), u64>,
    pub(crate) rules: BTreeMap<usize, RuleTable>,
    pub(crate) nonces: BTreeSet<(usize, PublicKey, u64)>,
    pub(crate) requests: BTreeSet<(usize, u64)>,
    pub(crate) credited: BTreeSet<Hash>,
    pub(crate) fulfilled: BTreeSet<Hash>,
    /// (issuer, creditor) → (newest cited limit seq, paid points, cleared points)
    pub(crate) exposure: BTreeMap<(usize, usize), (Option<u64>, u64, u64)>,
    /// (settling community, issuer) → settled points
    pub(crate) settled_by: BTreeMap<(usize, usize), u64>,
    /// (community, counterparty) → (settled here, settled there) at the last clearing
    pub(crate) clearings: BTreeMap<(usize, usize), (u64, u64)>,
    /// (community, old key) → new key, from accepted key replacements
    pub(crate) replaced_by: BTreeMap<(usize, PublicKey), PublicKey>,
}

impl Shadow {
    pub(crate) fn account(&self, c: usize, k: &PublicKey) -> Option<&ShadowAccount> {
        self.accounts.get(&(c, *k))
    }
    pub(crate) fn account_mut(&mut self, c: usize, k: &PublicKey) -> &mut ShadowAccount {
        self.accounts.get_mut(&(c, *k)).expect("shadow account")
    }
    pub(crate) fn active(&self, c: usize, k: &PublicKey, role: Role) -> bool {
        self.account(c, k).is_some_and(|a| !a.replaced && a.role == role)
    }
    pub(crate) fn holding(&self, c: usize, k: &PublicKey, issuer: usize) -> u64 {
        self.holdings.get(&(c, *k, issuer)).copied().unwrap_or(0)
    }
    pub(crate) fn holding_mut(&mut self, c: usize, k: &PublicKey, issuer: usize) -> &mut u64 {
        self.holdings.entry((c, *k, issuer)).or_default()
    }
}

pub(crate) fn new_account(role: Role) -> ShadowAccount {
    ShadowAccount { role, replaced: false, points: 0, minutes: 0, served: 0, awards: 0 }
}

/// Invariants that tie the state's summary items to the records they summarise, computed
/// independently of the state machine's running figures.
pub(crate) fn derived_invariants(s: &State) -> Result<(), String> {
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
