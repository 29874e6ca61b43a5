//! `GET /v1/disclosure`: the public disclosure (公示) summary of this community, computed from
//! its own ledger and state — points issued and redeemed per day and by activity, the month's
//! top volunteers (by pseudonym) with their star levels, points outstanding and their value (the
//! community's liability), merchant settlements, the time bank, the rule table in force, and
//! this node's view of the federation. Money is integer fen throughout (1 point = 10 fen).
//!
//! Figures folded from the ledger are cached and extended incrementally ([`fold`]); the rest
//! are point reads of the state. All of it runs off the async threads.

mod fold;

use super::{blocking, ApiError, AppState};
use axum::extract::State;
use axum::Json;
use fold::{day_of, month_of, Folded};
use linli_protocol::rules::RuleTable;
use linli_protocol::state::{IssuerTotals, LedgerState};
use linli_protocol::{Change, PublicKey, StateKey, FEN_PER_POINT};
use serde::Serialize;
use std::sync::Mutex;

/// Residents listed among the month's top volunteers.
pub const TOP_VOLUNTEERS: usize = 10;
/// Days of the per-day series returned (the most recent ones).
pub const DAYS_SHOWN: usize = 60;
/// Entries read from the store per step of a fold.
const FOLD_CHUNK: usize = 1000;

/// The folded figures of the own ledger, shared by all requests.
#[derive(Debug, Default)]
pub struct DisclosureCache {
    folded: Mutex<Folded>,
}

/// A short public pseudonym of a key: its first 6 and last 4 hex digits.
pub fn pseudonym(key: &PublicKey) -> String {
    let hex = key.to_hex();
    let head = hex.get(..6).unwrap_or(&hex);
    let tail = hex.get(hex.len().saturating_sub(4)..).unwrap_or("");
    format!("{head}…{tail}")
}

/// One day's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayView {
    /// `YYYY-MM-DD`, China Standard Time (UTC+8).
    pub day: String,
    #[serde(flatten)]
    pub figures: fold::Day,
}

/// Awards of one activity of the rule table (or of an earlier table).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivityView {
    pub activity: String,
    /// Its label in the rule table in force (the id when no longer listed).
    pub label: String,
    pub awards: u64,
    pub points: u64,
    pub minutes: u64,
}

/// One of the month's top volunteers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VolunteerView {
    pub rank: usize,
    /// Short form of the resident's public key (never a name).
    pub pseudonym: String,
    pub points: u64,
    pub awards: u64,
    pub minutes: u64,
    pub lifetime_points: u64,
    /// From the star thresholds of the rule table in force (0 = none).
    pub star_level: usize,
}

/// Settlements of one merchant of this community, or of one issuer's points.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettledView {
    /// Merchant name and pseudonym, or the issuing community.
    pub name: String,
    pub count: u64,
    pub points: u64,
    pub fen: u64,
}

/// Points of this community not yet redeemed or settled: its liability.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutstandingView {
    pub points: u64,
    /// `points × 10`.
    pub fen: u64,
    pub resident_points: u64,
    /// Held by merchants (of any community), not yet settled.
    pub merchant_points: u64,
    /// Paid to merchants of other communities, not yet credited there.
    pub in_flight_points: u64,
    pub minted: u64,
    pub redeemed: u64,
    pub settled: u64,
}

/// Time-bank minutes of this community's residents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimeBankView {
    pub minutes_earned: u64,
    pub minutes_spent: u64,
    pub minutes_held: u64,
}

/// The newest checkpoint of the own ledger and who cosigned it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointView {
    pub size: u64,
    pub root: String,
    pub time_ms: u64,
    pub cosigners: Vec<String>,
}

/// The disclosure summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisclosureView {
    pub community: String,
    pub name: String,
    pub district: String,
    pub federation: String,
    pub generated_ms: u64,
    /// The month of `top_volunteers` (`YYYY-MM`, UTC+8).
    pub month: String,
    pub ledger_size: u64,
    pub ledger_head: String,
    pub fen_per_point: u64,
    pub residents: u64,
    pub merchants: u64,
    /// Sums over the whole ledger.
    pub totals: DayView,
    /// The most recent days with entries (at most 60), oldest first.
    pub daily: Vec<DayView>,
    pub activities: Vec<ActivityView>,
    pub top_volunteers: Vec<VolunteerView>,
    pub outstanding: OutstandingView,
    pub settlements_by_merchant: Vec<SettledView>,
    pub settlements_by_issuer: Vec<SettledView>,
    pub time_bank: TimeBankView,
    /// The rule table in force (none before the first `SetRules`).
    #[schema(value_type = Object)]
    pub rules: Option<RuleTable>,
    /// libp2p peers connected now.
    pub connected_peers: u64,
    pub checkpoint: Option<CheckpointView>,
}

fn day_view(day: String, d: &fold::Day) -> DayView {
    DayView { day, figures: d.clone() }
}

#[utoipa::path(get, path = "/v1/disclosure",
    responses((status = 200, description = "Public disclosure (公示) summary of this community", body = DisclosureView)))]
pub async fn disclosure(State(s): State<AppState>) -> Result<Json<DisclosureView>, ApiError> {
    blocking(move || build(&s, crate::sequencer::now_ms()).map(Json)).await
}

/// Fold what the ledger gained since the last call, then assemble the summary.
fn build(s: &AppState, now_ms: u64) -> Result<DisclosureView, ApiError> {
    let me = &s.community;
    let ledger: Option<LedgerState> = match s.store.state_item(&StateKey::Ledger(me.clone()))? {
        Some(Change::Ledger(_, l)) => Some(l),
        _ => None,
    };
    let totals: IssuerTotals = match s.store.state_item(&StateKey::Totals(me.clone()))? {
        Some(Change::Totals(_, t)) => t,
        _ => IssuerTotals::default(),
    };
    let rules = ledger.as_ref().and_then(|l| l.rules.as_deref().cloned());
    let size = ledger.as_ref().map(|l| l.next_seq).unwrap_or(0);
    let mut folded = s.disclosure.folded.lock().unwrap_or_else(|p| p.into_inner());
    while folded.next_seq < size {
        let chunk = s.store.entries(me, folded.next_seq, FOLD_CHUNK, usize::MAX)?;
        if chunk.is_empty() {
            break;
        }
        for e in chunk.iter().take_while(|e| e.entry.seq < size) {
            folded.fold(e);
        }
    }
    let month = month_of(&day_of(now_ms));
    let mut top_volunteers = Vec::new();
    for (i, (key, v)) in folded.top(&month, TOP_VOLUNTEERS).into_iter().enumerate() {
        let lifetime_points = match s.store.state_item(&StateKey::Account(me.clone(), key))? {
            Some(Change::Account(_, _, a)) => a.lifetime_points,
            _ => v.points,
        };
        top_volunteers.push(VolunteerView {
            rank: i.saturating_add(1),
            pseudonym: pseudonym(&key),
            points: v.points,
            awards: v.awards,
            minutes: v.minutes,
            lifetime_points,
            star_level: rules.as_ref().map(|r| r.star_level(lifetime_points)).unwrap_or(0),
        });
    }
    let label = |id: &str| {
        rules
            .as_ref()
            .and_then(|r| r.activities.iter().find(|a| a.id == id))
            .map(|a| a.label.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let activities = folded
        .activities
        .iter()
        .map(|(id, a)| ActivityView {
            activity: id.clone(),
            label: label(id),
            awards: a.awards,
            points: a.points,
            minutes: a.minutes,
        })
        .collect();
    let skip = folded.days.len().saturating_sub(DAYS_SHOWN);
    let daily = folded.days.iter().skip(skip).map(|(d, v)| day_view(d.clone(), v)).collect();
    let settled = |name: String, t: &fold::Settled| SettledView { name, count: t.count, points: t.points, fen: t.fen };
    let settlements_by_merchant = folded
        .by_merchant
        .iter()
        .map(|(k, t)| {
            let name = folded.merchant_names.get(k).cloned().unwrap_or_default();
            settled(format!("{name} ({})", pseudonym(k)), t)
        })
        .collect();
    let settlements_by_issuer = folded.by_issuer.iter().map(|(c, t)| settled(c.to_string(), t)).collect();
    let all = folded.totals();
    let (residents, merchants) = (folded.residents, folded.merchants);
    drop(folded);
    let outstanding_points =
        totals.resident_points.saturating_add(totals.merchant_points).saturating_add(totals.in_flight);
    let member = s.genesis.community(me);
    let checkpoint = s.store.latest_checkpoint(me)?.map(|cp| CheckpointView {
        size: cp.signed.checkpoint.size,
        root: cp.signed.checkpoint.root.to_hex(),
        time_ms: cp.signed.checkpoint.time_ms,
        cosigners: cp.cosignatures.iter().map(|c| c.witness.to_string()).collect(),
    });
    Ok(DisclosureView {
        community: me.to_string(),
        name: member.map(|m| m.name.clone()).unwrap_or_default(),
        district: member.map(|m| m.district.clone()).unwrap_or_default(),
        federation: s.genesis.federation.clone(),
        generated_ms: now_ms,
        month,
        ledger_size: size,
        ledger_head: ledger.as_ref().map(|l| l.head.to_hex()).unwrap_or_default(),
        fen_per_point: FEN_PER_POINT,
        residents,
        merchants,
        totals: day_view("all".into(), &all),
        daily,
        activities,
        top_volunteers,
        outstanding: OutstandingView {
            points: outstanding_points,
            fen: outstanding_points.saturating_mul(FEN_PER_POINT),
            resident_points: totals.resident_points,
            merchant_points: totals.merchant_points,
            in_flight_points: totals.in_flight,
            minted: totals.minted,
            redeemed: totals.redeemed,
            settled: totals.settled,
        },
        settlements_by_merchant,
        settlements_by_issuer,
        time_bank: TimeBankView {
            minutes_earned: totals.minutes_credited,
            minutes_spent: totals.minutes_spent,
            minutes_held: totals.minutes_held,
        },
        rules,
        connected_peers: s.metrics.peers(),
        checkpoint,
    })
}
