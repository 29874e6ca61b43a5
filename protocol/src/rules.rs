//! A community's award rule table (published on its own ledger with `SetRules`) and the pure
//! computation of an award's points from it.
//!
//! Points = base (per event, or per full hour served) + the listed bonuses; zero when the rating
//! is below the table's minimum; multiplied for a resident's first `newcomer_awards` awards;
//! capped at `award_cap`. All arithmetic is checked.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How an activity's base points are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// `base_points` once per award.
    PerEvent,
    /// `base_points` per full hour of `minutes` served.
    PerHour,
}

/// A bonus an activity can carry (e.g. bad weather, complex dispute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BonusRule {
    pub id: String,
    pub label: String,
    pub points: u64,
}

/// One row of the rule table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRule {
    pub id: String,
    pub label: String,
    pub unit: Unit,
    pub base_points: u64,
    pub bonuses: Vec<BonusRule>,
}

/// A community's versioned award rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTable {
    pub version: u32,
    pub activities: Vec<ActivityRule>,
    /// Ratings (0..=5) below this earn no points.
    pub min_rating: u8,
    /// A resident's first N point-earning awards are multiplied by `newcomer_multiplier`.
    pub newcomer_awards: u32,
    pub newcomer_multiplier: u64,
    /// The most points one award can mint.
    pub award_cap: u64,
    /// Served hours a resident needs before redeeming.
    pub min_hours_before_redeem: u64,
    /// Lifetime points needed for star levels 1, 2, 3, ... (ascending).
    pub star_thresholds: Vec<u64>,
}

/// Why a rule table or an award does not follow the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule table has no activities")]
    NoActivities,
    #[error("activity {0:?} is listed twice")]
    DuplicateActivity(String),
    #[error("activity {activity:?} lists bonus {bonus:?} twice")]
    DuplicateBonus { activity: String, bonus: String },
    #[error("min_rating {actual} is above the maximum rating {max}")]
    MinRatingTooHigh { max: u8, actual: u8 },
    #[error("newcomer_multiplier must be at least 1, got {0}")]
    ZeroMultiplier(u64),
    #[error("award_cap must be at least 1")]
    ZeroCap,
    #[error("star thresholds must be strictly ascending")]
    StarsNotAscending,
    #[error("text field {field} is empty or longer than {max} bytes")]
    BadText { field: &'static str, max: usize },
    #[error("unknown activity {0:?} in the rule table in force")]
    UnknownActivity(String),
    #[error("activity {activity:?} has no bonus {bonus:?}")]
    UnknownBonus { activity: String, bonus: String },
    #[error("bonus {0:?} is claimed twice")]
    BonusClaimedTwice(String),
    #[error("rating {actual} is above the maximum {max}")]
    RatingOutOfRange { max: u8, actual: u8 },
    #[error("award points overflow")]
    Overflow,
}

/// The highest service rating.
pub const MAX_RATING: u8 = 5;
const MAX_TEXT: usize = 128;

fn text_ok(field: &'static str, s: &str) -> Result<(), RuleError> {
    if s.is_empty() || s.len() > MAX_TEXT {
        return Err(RuleError::BadText { field, max: MAX_TEXT });
    }
    Ok(())
}

/// The inputs of an award that the rule table prices.
#[derive(Debug, Clone, Copy)]
pub struct AwardClaim<'a> {
    pub activity: &'a str,
    pub minutes: u64,
    pub rating: u8,
    pub bonuses: &'a [String],
    /// How many point-earning awards the resident has had before this one.
    pub prior_awards: u64,
}

impl RuleTable {
    /// Check a table's shape (unique ids, sane figures).
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.activities.is_empty() {
            return Err(RuleError::NoActivities);
        }
        let mut ids = BTreeSet::new();
        for a in &self.activities {
            text_ok("activity.id", &a.id)?;
            text_ok("activity.label", &a.label)?;
            if !ids.insert(a.id.as_str()) {
                return Err(RuleError::DuplicateActivity(a.id.clone()));
            }
            let mut bonus_ids = BTreeSet::new();
            for b in &a.bonuses {
                text_ok("bonus.id", &b.id)?;
                text_ok("bonus.label", &b.label)?;
                if !bonus_ids.insert(b.id.as_str()) {
                    return Err(RuleError::DuplicateBonus { activity: a.id.clone(), bonus: b.id.clone() });
                }
            }
        }
        if self.min_rating > MAX_RATING {
            return Err(RuleError::MinRatingTooHigh { max: MAX_RATING, actual: self.min_rating });
        }
        if self.newcomer_multiplier == 0 {
            return Err(RuleError::ZeroMultiplier(0));
        }
        if self.award_cap == 0 {
            return Err(RuleError::ZeroCap);
        }
        if self.star_thresholds.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
            return Err(RuleError::StarsNotAscending);
        }
        Ok(())
    }

    /// The points an award must carry under this table.
    pub fn award_points(&self, claim: &AwardClaim<'_>) -> Result<u64, RuleError> {
        let activity = self
            .activities
            .iter()
            .find(|a| a.id == claim.activity)
            .ok_or_else(|| RuleError::UnknownActivity(claim.activity.to_string()))?;
        if claim.rating > MAX_RATING {
            return Err(RuleError::RatingOutOfRange { max: MAX_RATING, actual: claim.rating });
        }
        let mut claimed = BTreeSet::new();
        let mut bonus_total: u64 = 0;
        for b in claim.bonuses {
            if !claimed.insert(b.as_str()) {
                return Err(RuleError::BonusClaimedTwice(b.clone()));
            }
            let rule = activity
                .bonuses
                .iter()
                .find(|r| &r.id == b)
                .ok_or_else(|| RuleError::UnknownBonus { activity: activity.id.clone(), bonus: b.clone() })?;
            bonus_total = bonus_total.checked_add(rule.points).ok_or(RuleError::Overflow)?;
        }
        if claim.rating < self.min_rating {
            return Ok(0);
        }
        let base = match activity.unit {
            Unit::PerEvent => activity.base_points,
            Unit::PerHour => activity.base_points.checked_mul(claim.minutes / 60).ok_or(RuleError::Overflow)?,
        };
        let mut points = base.checked_add(bonus_total).ok_or(RuleError::Overflow)?;
        if claim.prior_awards < u64::from(self.newcomer_awards) {
            points = points.checked_mul(self.newcomer_multiplier).ok_or(RuleError::Overflow)?;
        }
        Ok(points.min(self.award_cap))
    }

    /// The star level (0 = none) for lifetime points.
    pub fn star_level(&self, lifetime_points: u64) -> usize {
        self.star_thresholds.iter().take_while(|t| lifetime_points >= **t).count()
    }

    /// The default table from community practice (DESIGN.md).
    pub fn default_table(version: u32) -> Self {
        fn bonus(id: &str, label: &str, points: u64) -> Vec<BonusRule> {
            vec![BonusRule { id: id.into(), label: label.into(), points }]
        }
        let act = |id: &str, label: &str, unit, base, bonuses| ActivityRule {
            id: id.into(),
            label: label.into(),
            unit,
            base_points: base,
            bonuses,
        };
        RuleTable {
            version,
            activities: vec![
                act(
                    "cleanup",
                    "环境清洁 environment clean-up",
                    Unit::PerEvent,
                    20,
                    bonus("bad-weather", "恶劣天气 bad weather", 10),
                ),
                act(
                    "mediation",
                    "纠纷调解 dispute mediation",
                    Unit::PerEvent,
                    50,
                    bonus("complex", "复杂纠纷 complex dispute", 50),
                ),
                act(
                    "elder-care",
                    "关爱老人 elder care visit",
                    Unit::PerEvent,
                    30,
                    bonus("continuous-3m", "连续三个月 three months continuous", 20),
                ),
                act(
                    "patrol",
                    "安全巡逻 safety patrol",
                    Unit::PerEvent,
                    50,
                    bonus("major-hazard", "发现重大隐患 major hazard found", 30),
                ),
                act("hazard-report", "隐患上报 hazard report", Unit::PerEvent, 20, vec![]),
                act("hourly-service", "志愿服务 hourly service", Unit::PerHour, 10, vec![]),
            ],
            min_rating: 3,
            newcomer_awards: 3,
            newcomer_multiplier: 2,
            award_cap: 200,
            min_hours_before_redeem: 2,
            star_thresholds: vec![100, 300, 600, 1000, 2000],
        }
    }

    /// Another community's table, to show other practices fit: council participation 10 per
    /// meeting, volunteering 5 per hour, skill sharing 15 per session.
    pub fn council_table(version: u32) -> Self {
        let act = |id: &str, label: &str, unit, base| ActivityRule {
            id: id.into(),
            label: label.into(),
            unit,
            base_points: base,
            bonuses: vec![],
        };
        RuleTable {
            version,
            activities: vec![
                act("council", "议事会 council participation", Unit::PerEvent, 10),
                act("volunteering", "志愿时长 volunteering", Unit::PerHour, 5),
                act("skill-sharing", "技能分享 skill sharing", Unit::PerEvent, 15),
            ],
            min_rating: 2,
            newcomer_awards: 0,
            newcomer_multiplier: 1,
            award_cap: 100,
            min_hours_before_redeem: 0,
            star_thresholds: vec![50, 150, 400],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim<'a>(activity: &'a str, minutes: u64, rating: u8, bonuses: &'a [String], prior: u64) -> AwardClaim<'a> {
        AwardClaim { activity, minutes, rating, bonuses, prior_awards: prior }
    }

    #[test]
    fn default_table_prices_community_practice() {
        let t = RuleTable::default_table(1);
        assert_eq!(t.validate(), Ok(()));
        let bw = vec!["bad-weather".to_string()];
        // Veteran (prior awards >= 3): base + bonus.
        assert_eq!(t.award_points(&claim("cleanup", 60, 5, &bw, 10)), Ok(30));
        assert_eq!(t.award_points(&claim("cleanup", 60, 5, &[], 10)), Ok(20));
        // Newcomer: doubled.
        assert_eq!(t.award_points(&claim("cleanup", 60, 5, &bw, 0)), Ok(60));
        // Rating below minimum: nothing.
        assert_eq!(t.award_points(&claim("mediation", 60, 2, &[], 10)), Ok(0));
        // Hourly: per full hour.
        assert_eq!(t.award_points(&claim("hourly-service", 150, 4, &[], 10)), Ok(20));
        // Cap.
        let complex = vec!["complex".to_string()];
        assert_eq!(t.award_points(&claim("mediation", 60, 5, &complex, 0)), Ok(200));
    }

    #[test]
    fn council_table_is_expressible() {
        let t = RuleTable::council_table(1);
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.award_points(&claim("volunteering", 180, 3, &[], 0)), Ok(15));
        assert_eq!(t.award_points(&claim("skill-sharing", 30, 3, &[], 0)), Ok(15));
    }

    #[test]
    fn refuses_unknown_activity_and_bonus() {
        let t = RuleTable::default_table(1);
        assert_eq!(t.award_points(&claim("karaoke", 60, 5, &[], 0)), Err(RuleError::UnknownActivity("karaoke".into())));
        let b = vec!["complex".to_string()];
        assert!(matches!(t.award_points(&claim("cleanup", 60, 5, &b, 0)), Err(RuleError::UnknownBonus { .. })));
        let twice = vec!["bad-weather".to_string(), "bad-weather".to_string()];
        assert!(matches!(t.award_points(&claim("cleanup", 60, 5, &twice, 0)), Err(RuleError::BonusClaimedTwice(_))));
        assert!(matches!(t.award_points(&claim("cleanup", 60, 6, &[], 0)), Err(RuleError::RatingOutOfRange { .. })));
    }

    #[test]
    fn refuses_malformed_tables() {
        let mut t = RuleTable::default_table(1);
        t.activities.push(t.activities[0].clone());
        assert!(matches!(t.validate(), Err(RuleError::DuplicateActivity(_))));
        let mut t = RuleTable::default_table(1);
        t.star_thresholds = vec![10, 10];
        assert_eq!(t.validate(), Err(RuleError::StarsNotAscending));
        let mut t = RuleTable::default_table(1);
        t.min_rating = 9;
        assert!(matches!(t.validate(), Err(RuleError::MinRatingTooHigh { .. })));
        let mut t = RuleTable::default_table(1);
        t.award_cap = 0;
        assert_eq!(t.validate(), Err(RuleError::ZeroCap));
    }

    #[test]
    fn overflow_is_an_error() {
        let mut t = RuleTable::default_table(1);
        t.activities[5].base_points = u64::MAX;
        assert_eq!(t.award_points(&claim("hourly-service", 600, 5, &[], 10)), Err(RuleError::Overflow));
    }

    #[test]
    fn star_levels() {
        let t = RuleTable::default_table(1);
        assert_eq!(t.star_level(0), 0);
        assert_eq!(t.star_level(100), 1);
        assert_eq!(t.star_level(999), 3);
        assert_eq!(t.star_level(5000), 5);
    }
}
