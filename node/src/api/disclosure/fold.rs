//! The incremental part of the disclosure summary: figures folded from the community's own
//! ledger, one entry at a time, remembered up to the seq folded so far. A request folds only
//! the entries appended since the last request, so a ledger of any length costs one full scan
//! per node run and then only its growth.

use linli_protocol::body::Body;
use linli_protocol::{CommunityId, PublicKey, SignedEntry};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// Day boundaries of the disclosure: China Standard Time (UTC+8, no daylight saving).
pub const UTC_OFFSET_HOURS: i8 = 8;

/// The calendar day (`YYYY-MM-DD`, UTC+8) of a time in ms since the Unix epoch.
/// Times outside the calendar's range (year 9999 and beyond) count as 1970-01-01.
pub fn day_of(time_ms: u64) -> String {
    let offset_ms = i128::from(UTC_OFFSET_HOURS) * 3_600_000;
    let nanos = (i128::from(time_ms) + offset_ms) * 1_000_000;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// The month (`YYYY-MM`) of a day (`YYYY-MM-DD`).
pub fn month_of(day: &str) -> String {
    day.get(..7).unwrap_or(day).to_string()
}

/// Figures of one day (or of all days: the totals).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Day {
    pub awards: u64,
    pub points_issued: u64,
    pub points_redeemed: u64,
    /// Points residents paid at merchants.
    pub points_paid: u64,
    pub settled_points: u64,
    pub settled_fen: u64,
    pub minutes_earned: u64,
    pub minutes_spent: u64,
}

/// Awards of one activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub awards: u64,
    pub points: u64,
    pub minutes: u64,
}

/// One resident's awards in one month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volunteer {
    pub points: u64,
    pub awards: u64,
    pub minutes: u64,
}

/// Settlements of one merchant, or of one issuer's points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub count: u64,
    pub points: u64,
    pub fen: u64,
}

/// Everything folded from the own ledger up to `next_seq`.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// The next seq to fold (the number of entries folded).
    pub next_seq: u64,
    pub residents: u64,
    pub merchants: u64,
    pub days: BTreeMap<String, Day>,
    pub activities: BTreeMap<String, Activity>,
    /// Month (`YYYY-MM`) → resident → figures.
    pub months: BTreeMap<String, HashMap<PublicKey, Volunteer>>,
    pub by_merchant: BTreeMap<PublicKey, Settled>,
    pub by_issuer: BTreeMap<CommunityId, Settled>,
    pub merchant_names: HashMap<PublicKey, String>,
}

fn add(a: &mut u64, b: u64) {
    *a = a.saturating_add(b);
}

impl Folded {
    /// Fold the own ledger's next entry (callers pass entries in seq order from `next_seq`).
    pub fn fold(&mut self, e: &SignedEntry) {
        self.next_seq = e.entry.seq.saturating_add(1);
        let day_key = day_of(e.entry.time_ms);
        let month = month_of(&day_key);
        let day = self.days.entry(day_key).or_default();
        match &e.entry.body {
            Body::Enroll(_) => add(&mut self.residents, 1),
            Body::RegisterMerchant(m) => {
                add(&mut self.merchants, 1);
                self.merchant_names.insert(m.merchant, m.name.clone());
            }
            Body::Award(a) => {
                add(&mut day.awards, 1);
                add(&mut day.points_issued, a.points);
                let act = self.activities.entry(a.activity.clone()).or_default();
                add(&mut act.awards, 1);
                add(&mut act.points, a.points);
                add(&mut act.minutes, a.minutes);
                let v = self.months.entry(month).or_default().entry(a.resident).or_default();
                add(&mut v.points, a.points);
                add(&mut v.awards, 1);
                add(&mut v.minutes, a.minutes);
            }
            Body::Redeem(r) => add(&mut day.points_redeemed, r.payload.points),
            Body::Pay(p) => add(&mut day.points_paid, p.payment.payload.points),
            Body::Settle(s) => {
                let r = &s.request.payload;
                add(&mut day.settled_points, r.points);
                add(&mut day.settled_fen, r.fen);
                for t in [
                    self.by_merchant.entry(r.merchant).or_default(),
                    self.by_issuer.entry(r.issuer.clone()).or_default(),
                ] {
                    add(&mut t.count, 1);
                    add(&mut t.points, r.points);
                    add(&mut t.fen, r.fen);
                }
            }
            Body::TimeCredit(t) => add(&mut day.minutes_earned, t.payload.minutes),
            Body::TimeSpend(t) => add(&mut day.minutes_spent, t.payload.minutes),
            Body::ReplaceKey(r) => self.replace_key(r.old_key, r.new_key),
            _ => {}
        }
    }

    /// An account moved to a new key: its figures follow it.
    fn replace_key(&mut self, old: PublicKey, new: PublicKey) {
        for residents in self.months.values_mut() {
            if let Some(v) = residents.remove(&old) {
                let n = residents.entry(new).or_default();
                add(&mut n.points, v.points);
                add(&mut n.awards, v.awards);
                add(&mut n.minutes, v.minutes);
            }
        }
        if let Some(name) = self.merchant_names.remove(&old) {
            self.merchant_names.insert(new, name);
        }
        if let Some(s) = self.by_merchant.remove(&old) {
            let n = self.by_merchant.entry(new).or_default();
            add(&mut n.count, s.count);
            add(&mut n.points, s.points);
            add(&mut n.fen, s.fen);
        }
    }

    /// Sum of every day's figures.
    pub fn totals(&self) -> Day {
        let mut t = Day::default();
        for d in self.days.values() {
            add(&mut t.awards, d.awards);
            add(&mut t.points_issued, d.points_issued);
            add(&mut t.points_redeemed, d.points_redeemed);
            add(&mut t.points_paid, d.points_paid);
            add(&mut t.settled_points, d.settled_points);
            add(&mut t.settled_fen, d.settled_fen);
            add(&mut t.minutes_earned, d.minutes_earned);
            add(&mut t.minutes_spent, d.minutes_spent);
        }
        t
    }

    /// The `n` residents with the most points awarded in `month`, most first (ties by key).
    pub fn top(&self, month: &str, n: usize) -> Vec<(PublicKey, Volunteer)> {
        let mut list: Vec<(PublicKey, Volunteer)> = self
            .months
            .get(month)
            .map(|m| m.iter().filter(|(_, v)| v.points > 0).map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| b.1.points.cmp(&a.1.points).then_with(|| a.0.cmp(&b.0)));
        list.truncate(n);
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_china_standard_time() {
        // 2024-02-29 15:59:59.999 UTC is 23:59:59.999 in Beijing; one ms later is 1 March.
        let t = 1_709_222_399_999u64;
        assert_eq!(day_of(t), "2024-02-29");
        assert_eq!(day_of(t + 1), "2024-03-01");
        assert_eq!(month_of(&day_of(t + 1)), "2024-03");
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(u64::MAX), "1970-01-01");
    }
}
