//! The random run specifications: entry kinds and the corruption to apply, and their strategies.

use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Enroll,
    Award,
    Pay,
    Redeem,
    TimeCredit,
    TimeSpend,
    Settle,
    Rotate,
    Revoke,
}

#[derive(Debug, Clone)]
pub(crate) enum Corruption {
    /// Flip one bit of the community's entry signature.
    CommunitySig { byte: u8, bit: u8 },
    /// Flip one bit of a resident's, merchant's or new key's signature inside the body.
    InnerSig { byte: u8, bit: u8 },
    /// Change the body after the community signed it.
    Body { salt: u8 },
    /// Sign the entry with a key that is not the one in force.
    WrongCommunityKey { which: u8 },
    /// Name another resident as the inner signer (re-signing the entry so only that is wrong).
    WrongInnerSigner,
    /// A small-order inner signer key with a signature the cofactorless equation accepts for
    /// any message (see `identity_signature` and `weak_key_signature`); the entry is re-signed.
    SmallOrderInnerKey { which: u8 },
    /// A small-order point as the `R` of the entry signature.
    SmallOrderR { which: u8 },
    /// `s + L` in place of `s` in the entry signature.
    NonCanonicalS,
    /// Rotate the community key to a small-order key, then "sign" every later entry with a
    /// signature the cofactorless equation accepts under it.
    SmallOrderRotation { which: u8 },
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) start_seq: u64,
    pub(crate) kinds: Vec<(Kind, u8)>,
    /// The corruption and the entry it hits (modulo the run length).
    pub(crate) corruption: Option<(Corruption, u16)>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        2 => Just(Kind::Enroll),
        2 => Just(Kind::Award),
        4 => Just(Kind::Pay),
        3 => Just(Kind::Redeem),
        3 => Just(Kind::TimeCredit),
        2 => Just(Kind::TimeSpend),
        2 => Just(Kind::Settle),
        1 => Just(Kind::Rotate),
        1 => Just(Kind::Revoke),
    ]
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (0u8..64, 0u8..8).prop_map(|(byte, bit)| Corruption::CommunitySig { byte, bit }),
        (0u8..64, 0u8..8).prop_map(|(byte, bit)| Corruption::InnerSig { byte, bit }),
        any::<u8>().prop_map(|salt| Corruption::Body { salt }),
        any::<u8>().prop_map(|which| Corruption::WrongCommunityKey { which }),
        Just(Corruption::WrongInnerSigner),
        any::<u8>().prop_map(|which| Corruption::SmallOrderInnerKey { which }),
        any::<u8>().prop_map(|which| Corruption::SmallOrderR { which }),
        Just(Corruption::NonCanonicalS),
        any::<u8>().prop_map(|which| Corruption::SmallOrderRotation { which }),
    ]
}

pub(crate) fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![Just(0u64), 0u64..1_000_000],
        prop::collection::vec((kind(), any::<u8>()), 1..=40),
        prop::option::weighted(0.75, (corruption(), any::<u16>())),
    )
        .prop_map(|(start_seq, kinds, corruption)| Spec { start_seq, kinds, corruption })
}
