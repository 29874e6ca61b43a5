//! The state machine's small named predicates. Each returns `Ok(())` or a [`Rejection`] that
//! carries the expected and the actual value; each has a pass and a fail test below.

use super::Rejection;
use crate::genesis::FEN_PER_POINT;
use crate::primitives::{Hash, PublicKey};

pub fn seq_follows(expected: u64, actual: u64) -> Result<(), Rejection> {
    if expected == actual {
        Ok(())
    } else {
        Err(Rejection::WrongSeq { expected, actual })
    }
}

pub fn prev_hash_chains(expected: &Hash, actual: &Hash) -> Result<(), Rejection> {
    if expected == actual {
        Ok(())
    } else {
        Err(Rejection::WrongPrevHash { expected: *expected, actual: *actual })
    }
}

pub fn time_not_backwards(previous_ms: u64, actual_ms: u64) -> Result<(), Rejection> {
    if actual_ms >= previous_ms {
        Ok(())
    } else {
        Err(Rejection::TimeWentBackwards { previous_ms, actual_ms })
    }
}

pub fn time_not_ahead(now_ms: u64, actual_ms: u64, max_skew_ms: u64) -> Result<(), Rejection> {
    if actual_ms <= now_ms.saturating_add(max_skew_ms) {
        Ok(())
    } else {
        Err(Rejection::TimeInFuture { now_ms, actual_ms, max_skew_ms })
    }
}

pub fn signed_by_key_in_force(expected: &PublicKey, actual: &PublicKey) -> Result<(), Rejection> {
    if expected == actual {
        Ok(())
    } else {
        Err(Rejection::WrongSigner { expected: *expected, actual: *actual })
    }
}

/// Value of `points` in fen, checked.
pub fn points_to_fen(points: u64) -> Result<u64, Rejection> {
    points.checked_mul(FEN_PER_POINT).ok_or(Rejection::Overflow { what: "points to fen" })
}

/// A payment's points may cover at most its price: `points * 10 <= price_fen`.
pub fn points_within_price(points: u64, price_fen: u64) -> Result<(), Rejection> {
    let points_fen = points_to_fen(points)?;
    if points_fen <= price_fen {
        Ok(())
    } else {
        Err(Rejection::PointsExceedPrice { points, points_fen, price_fen })
    }
}

/// A settlement pays exactly `points * 10` fen.
pub fn settle_fen_exact(points: u64, actual_fen: u64) -> Result<(), Rejection> {
    let expected_fen = points_to_fen(points)?;
    if expected_fen == actual_fen {
        Ok(())
    } else {
        Err(Rejection::SettleFen { points, expected_fen, actual_fen })
    }
}

pub fn nonzero(field: &'static str, value: u64) -> Result<(), Rejection> {
    if value > 0 {
        Ok(())
    } else {
        Err(Rejection::ZeroAmount { field })
    }
}

/// Debit points: the new balance, or an overdraft rejection.
pub fn debit_points(account: &PublicKey, balance: u64, required: u64) -> Result<u64, Rejection> {
    balance.checked_sub(required).ok_or(Rejection::InsufficientPoints { account: *account, balance, required })
}

pub fn debit_minutes(account: &PublicKey, balance: u64, required: u64) -> Result<u64, Rejection> {
    balance.checked_sub(required).ok_or(Rejection::InsufficientMinutes { account: *account, balance, required })
}

pub fn not_expired(expiry_ms: u64, entry_time_ms: u64) -> Result<(), Rejection> {
    if entry_time_ms <= expiry_ms {
        Ok(())
    } else {
        Err(Rejection::PaymentExpired { expiry_ms, entry_time_ms })
    }
}

pub fn same_genesis(expected: &Hash, actual: &Hash) -> Result<(), Rejection> {
    if expected == actual {
        Ok(())
    } else {
        Err(Rejection::WrongGenesis { expected: *expected, actual: *actual })
    }
}

/// `(uncleared + payment) * 10 <= limit_fen`.
pub fn within_exposure_limit(limit_fen: u64, uncleared_points: u64, payment_points: u64) -> Result<(), Rejection> {
    let uncleared_fen = points_to_fen(uncleared_points)?;
    let payment_fen = points_to_fen(payment_points)?;
    let after = uncleared_fen.checked_add(payment_fen).ok_or(Rejection::Overflow { what: "exposure" })?;
    if after <= limit_fen {
        Ok(())
    } else {
        Err(Rejection::ExposureExceeded { limit_fen, uncleared_fen, payment_fen })
    }
}

pub fn award_points_match(expected: u64, actual: u64) -> Result<(), Rejection> {
    if expected == actual {
        Ok(())
    } else {
        Err(Rejection::AwardPoints { expected, actual })
    }
}

pub fn served_enough(required_hours: u64, served_minutes: u64) -> Result<(), Rejection> {
    let required_minutes = required_hours.checked_mul(60).ok_or(Rejection::Overflow { what: "served hours" })?;
    if served_minutes >= required_minutes {
        Ok(())
    } else {
        Err(Rejection::ServedHoursTooFew { required_minutes, actual_minutes: served_minutes })
    }
}

pub fn text_within(field: &'static str, s: &str, max: usize) -> Result<(), Rejection> {
    if s.is_empty() || s.len() > max {
        Err(Rejection::BadText { field, max })
    } else {
        Ok(())
    }
}

pub fn minutes_in_range(actual: u64, max: u64) -> Result<(), Rejection> {
    if actual >= 1 && actual <= max {
        Ok(())
    } else {
        Err(Rejection::MinutesOutOfRange { max, actual })
    }
}

pub fn figure_matches(field: &'static str, expected: u64, actual: u64) -> Result<(), Rejection> {
    if expected == actual {
        Ok(())
    } else {
        Err(Rejection::ClearingFigure { field, expected, actual })
    }
}

/// Checked `a + b`, naming what overflowed.
pub fn add(what: &'static str, a: u64, b: u64) -> Result<u64, Rejection> {
    a.checked_add(b).ok_or(Rejection::Overflow { what })
}

/// Checked `a - b`, naming what underflowed (a broken internal total, never user input).
pub fn sub(what: &'static str, a: u64, b: u64) -> Result<u64, Rejection> {
    a.checked_sub(b).ok_or(Rejection::Overflow { what })
}

#[cfg(test)]
mod tests {
    use super::*;
    const K: PublicKey = PublicKey([3; 32]);

    #[test]
    fn seq() {
        assert_eq!(seq_follows(4, 4), Ok(()));
        assert_eq!(seq_follows(4, 5), Err(Rejection::WrongSeq { expected: 4, actual: 5 }));
    }
    #[test]
    fn prev_hash() {
        assert_eq!(prev_hash_chains(&Hash([1; 32]), &Hash([1; 32])), Ok(()));
        assert_eq!(
            prev_hash_chains(&Hash([1; 32]), &Hash([2; 32])),
            Err(Rejection::WrongPrevHash { expected: Hash([1; 32]), actual: Hash([2; 32]) })
        );
    }
    #[test]
    fn time_order_and_skew() {
        assert_eq!(time_not_backwards(10, 10), Ok(()));
        assert_eq!(time_not_backwards(10, 9), Err(Rejection::TimeWentBackwards { previous_ms: 10, actual_ms: 9 }));
        assert_eq!(time_not_ahead(1000, 1500, 500), Ok(()));
        assert_eq!(
            time_not_ahead(1000, 1501, 500),
            Err(Rejection::TimeInFuture { now_ms: 1000, actual_ms: 1501, max_skew_ms: 500 })
        );
    }
    #[test]
    fn signer() {
        assert_eq!(signed_by_key_in_force(&K, &K), Ok(()));
        assert!(matches!(signed_by_key_in_force(&K, &PublicKey([4; 32])), Err(Rejection::WrongSigner { .. })));
    }
    #[test]
    fn exchange_rate_on_payments() {
        assert_eq!(points_within_price(10, 100), Ok(()));
        assert_eq!(points_within_price(10, 150), Ok(()));
        assert_eq!(
            points_within_price(11, 100),
            Err(Rejection::PointsExceedPrice { points: 11, points_fen: 110, price_fen: 100 })
        );
        assert_eq!(points_within_price(u64::MAX, 100), Err(Rejection::Overflow { what: "points to fen" }));
    }
    #[test]
    fn exchange_rate_on_settlements() {
        assert_eq!(settle_fen_exact(25, 250), Ok(()));
        assert_eq!(
            settle_fen_exact(25, 249),
            Err(Rejection::SettleFen { points: 25, expected_fen: 250, actual_fen: 249 })
        );
        assert_eq!(
            settle_fen_exact(25, 2500),
            Err(Rejection::SettleFen { points: 25, expected_fen: 250, actual_fen: 2500 })
        );
    }
    #[test]
    fn nonzero_amounts() {
        assert_eq!(nonzero("points", 1), Ok(()));
        assert_eq!(nonzero("points", 0), Err(Rejection::ZeroAmount { field: "points" }));
    }
    #[test]
    fn overdrafts() {
        assert_eq!(debit_points(&K, 100, 100), Ok(0));
        assert_eq!(
            debit_points(&K, 99, 100),
            Err(Rejection::InsufficientPoints { account: K, balance: 99, required: 100 })
        );
        assert_eq!(debit_minutes(&K, 60, 30), Ok(30));
        assert_eq!(
            debit_minutes(&K, 20, 30),
            Err(Rejection::InsufficientMinutes { account: K, balance: 20, required: 30 })
        );
    }
    #[test]
    fn expiry() {
        assert_eq!(not_expired(100, 100), Ok(()));
        assert_eq!(not_expired(100, 101), Err(Rejection::PaymentExpired { expiry_ms: 100, entry_time_ms: 101 }));
    }
    #[test]
    fn genesis_binding() {
        assert_eq!(same_genesis(&Hash([1; 32]), &Hash([1; 32])), Ok(()));
        assert!(matches!(same_genesis(&Hash([1; 32]), &Hash([9; 32])), Err(Rejection::WrongGenesis { .. })));
    }
    #[test]
    fn exposure_limit() {
        assert_eq!(within_exposure_limit(1000, 50, 50), Ok(()));
        assert_eq!(
            within_exposure_limit(1000, 50, 51),
            Err(Rejection::ExposureExceeded { limit_fen: 1000, uncleared_fen: 500, payment_fen: 510 })
        );
    }
    #[test]
    fn award_points() {
        assert_eq!(award_points_match(30, 30), Ok(()));
        assert_eq!(award_points_match(30, 31), Err(Rejection::AwardPoints { expected: 30, actual: 31 }));
    }
    #[test]
    fn served_hours() {
        assert_eq!(served_enough(2, 120), Ok(()));
        assert_eq!(
            served_enough(2, 119),
            Err(Rejection::ServedHoursTooFew { required_minutes: 120, actual_minutes: 119 })
        );
    }
    #[test]
    fn text_and_minutes() {
        assert_eq!(text_within("item", "tea", 10), Ok(()));
        assert_eq!(text_within("item", "", 10), Err(Rejection::BadText { field: "item", max: 10 }));
        assert_eq!(minutes_in_range(60, 1440), Ok(()));
        assert_eq!(minutes_in_range(0, 1440), Err(Rejection::MinutesOutOfRange { max: 1440, actual: 0 }));
        assert_eq!(minutes_in_range(1441, 1440), Err(Rejection::MinutesOutOfRange { max: 1440, actual: 1441 }));
    }
    #[test]
    fn figures_and_arithmetic() {
        assert_eq!(figure_matches("payable_fen", 10, 10), Ok(()));
        assert_eq!(
            figure_matches("payable_fen", 10, 20),
            Err(Rejection::ClearingFigure { field: "payable_fen", expected: 10, actual: 20 })
        );
        assert_eq!(add("x", 1, 2), Ok(3));
        assert_eq!(add("x", u64::MAX, 1), Err(Rejection::Overflow { what: "x" }));
        assert_eq!(sub("x", 1, 2), Err(Rejection::Overflow { what: "x" }));
    }
}
