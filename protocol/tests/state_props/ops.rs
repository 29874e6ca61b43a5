//! The random operations: the `Op` enum and the strategies that generate it.

use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Enroll {
        c: u8,
        slot: u8,
        merchant_key: bool,
    },
    Merchant {
        c: u8,
        slot: u8,
        bad_name: bool,
    },
    Rules {
        c: u8,
        bump: u8,
        council: bool,
    },
    Award {
        c: u8,
        slot: u8,
        act: u8,
        minutes: u16,
        rating: u8,
        bonus: bool,
        wrong: u8,
        reuse_request: bool,
    },
    Redeem {
        c: u8,
        slot: u8,
        points: u8,
        reuse_nonce: bool,
        retired: bool,
    },
    Pay {
        c: u8,
        slot: u8,
        mc: u8,
        m: u8,
        points: u8,
        fit: u8,
        extra_fen: i16,
        limit: u8,
        reuse_nonce: bool,
        expired: bool,
    },
    Credit {
        pick: Index,
        uncredited: bool,
        wrong: u8,
    },
    Settle {
        held: Option<Index>,
        c: u8,
        m: u8,
        issuer: u8,
        portion: u8,
        wrong_fen: bool,
        wrong_total: bool,
        reuse_nonce: bool,
    },
    Clearing {
        c: u8,
        other: u8,
        cite: u8,
        wrong: u8,
    },
    Limit {
        c: u8,
        issuer: u8,
        fen: u16,
        twice: bool,
    },
    TimeCredit {
        c: u8,
        provider: u8,
        sc: u8,
        served: u8,
        minutes: u16,
        reuse_nonce: bool,
    },
    TimeSpend {
        c: u8,
        slot: u8,
        serving: u8,
        minutes: u16,
        reuse_nonce: bool,
    },
    TimeFulfil {
        pick: Index,
        unfulfilled: bool,
        wrong: u8,
    },
    Replace {
        c: u8,
        merchant: bool,
        slot: u8,
        to_existing: bool,
    },
    Rotate {
        c: u8,
        /// 0: a fresh key; 1: the key in force; 2: the recovery key; 3: a retired key.
        reuse: u8,
    },
    Revoke {
        c: u8,
    },
}

impl Op {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Op::Enroll { .. } => "enroll",
            Op::Merchant { .. } => "register-merchant",
            Op::Rules { .. } => "set-rules",
            Op::Award { .. } => "award",
            Op::Redeem { .. } => "redeem",
            Op::Pay { .. } => "pay",
            Op::Credit { .. } => "credit",
            Op::Settle { .. } => "settle",
            Op::Clearing { .. } => "clearing",
            Op::Limit { .. } => "set-exposure-limit",
            Op::TimeCredit { .. } => "time-credit",
            Op::TimeSpend { .. } => "time-spend",
            Op::TimeFulfil { .. } => "time-fulfil",
            Op::Replace { .. } => "replace-key",
            Op::Rotate { .. } => "rotate-key",
            Op::Revoke { .. } => "revoke-key",
        }
    }
}

/// Mostly `false`.
fn rarely() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.15)
}

/// 0 ("right") most of the time, else one of `1..=n` ways of being wrong.
fn wrong(n: u8) -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(0u8), 1 => 1..=n]
}

/// An account slot, biased towards the ones the prologue enrols.
fn slot() -> impl Strategy<Value = u8> {
    prop_oneof![3 => 0u8..3, 1 => any::<u8>()]
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let c = || 0u8..3;
    prop_oneof![
        5 => (c(), any::<u8>(), rarely()).prop_map(|(c, slot, merchant_key)| Op::Enroll { c, slot, merchant_key }),
        3 => (c(), any::<u8>(), rarely()).prop_map(|(c, slot, bad_name)| Op::Merchant { c, slot, bad_name }),
        2 => (c(), 0u8..4, any::<bool>()).prop_map(|(c, bump, council)| Op::Rules { c, bump, council }),
        12 => (
            c(),
            slot(),
            prop_oneof![3 => Just(255u8), 1 => any::<u8>()],
            prop_oneof![3 => 0u16..400, 1 => 0u16..1600],
            prop_oneof![4 => 3u8..6, 1 => 0u8..7],
            any::<bool>(),
            wrong(4),
            rarely(),
        )
            .prop_map(|(c, slot, act, minutes, rating, bonus, wrong, reuse_request)| Op::Award {
                c, slot, act, minutes, rating, bonus, wrong, reuse_request
            }),
        6 => (c(), slot(), 0u8..40, rarely(), rarely())
            .prop_map(|(c, slot, points, reuse_nonce, retired)| Op::Redeem { c, slot, points, reuse_nonce, retired }),
        14 => (
            (c(), slot(), prop_oneof![1 => Just(9u8), 3 => c()], prop_oneof![3 => Just(0u8), 1 => any::<u8>()]),
            (prop_oneof![4 => 1u8..30, 1 => 0u8..80], prop_oneof![6 => Just(0u8), 1 => 1u8..3], -20i16..300),
            (any::<u8>(), rarely(), rarely()),
        )
            .prop_map(|((c, slot, mc, m), (points, fit, extra_fen), (limit, reuse_nonce, expired))| Op::Pay {
                c, slot, mc: if mc == 9 { c } else { mc }, m, points, fit, extra_fen, limit, reuse_nonce, expired
            }),
        10 => (any::<Index>(), prop::bool::weighted(0.8), wrong(4))
            .prop_map(|(pick, uncredited, wrong)| Op::Credit { pick, uncredited, wrong }),
        8 => (prop::option::weighted(0.75, any::<Index>()), c(), any::<u8>(), c(), 0u8..6, rarely(), rarely(), rarely())
            .prop_map(|(held, c, m, issuer, portion, wrong_fen, wrong_total, reuse_nonce)| Op::Settle {
                held, c, m, issuer, portion, wrong_fen, wrong_total, reuse_nonce
            }),
        6 => (c(), any::<u8>(), 0u8..3, wrong(5)).prop_map(|(c, other, cite, wrong)| Op::Clearing { c, other, cite, wrong }),
        6 => (c(), 0u8..3, prop_oneof![1 => 0u16..=5, 2 => 0u16..=300], rarely())
            .prop_map(|(c, issuer, fen, twice)| Op::Limit { c, issuer, fen, twice }),
        6 => (c(), slot(), prop_oneof![3 => Just(9u8), 1 => c()], any::<u8>(), prop_oneof![4 => 1u16..200, 1 => 0u16..1500], rarely())
            .prop_map(|(c, provider, sc, served, minutes, reuse_nonce)| Op::TimeCredit {
                c, provider, sc: if sc == 9 { c } else { sc }, served, minutes, reuse_nonce
            }),
        5 => (c(), slot(), c(), 0u16..120, rarely())
            .prop_map(|(c, slot, serving, minutes, reuse_nonce)| Op::TimeSpend { c, slot, serving, minutes, reuse_nonce }),
        5 => (any::<Index>(), prop::bool::weighted(0.8), wrong(2))
            .prop_map(|(pick, unfulfilled, wrong)| Op::TimeFulfil { pick, unfulfilled, wrong }),
        3 => (c(), any::<bool>(), any::<u8>(), rarely())
            .prop_map(|(c, merchant, slot, to_existing)| Op::Replace { c, merchant, slot, to_existing }),
        2 => (c(), prop_oneof![4 => Just(0u8), 1 => 1u8..4]).prop_map(|(c, reuse)| Op::Rotate { c, reuse }),
        1 => c().prop_map(|c| Op::Revoke { c }),
    ]
}
