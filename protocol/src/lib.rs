//! # linli-protocol
//!
//! The pure ("sans-IO") core of Linli: types, canonical encoding, signatures, Merkle proofs,
//! checkpoints and the ledger state machine. No async runtime, database or network here; time
//! comes in as an argument.
//!
//! A payment's path through this crate: a resident signs a [`body::Payment`]
//! ([`body::Signed::sign`]); the home community wraps it in a [`entry::SignedEntry`];
//! [`verify::verify_run`] checks every signature (batched); [`state::State::check`] applies the
//! rules and returns the [`state::Change`]s; [`merkle`] and [`checkpoint`] let anyone prove the
//! entry is in the ledger that witnesses cosigned.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::panic
    )
)]
// Errors carry the expected and actual values (entry refs, keys) by design; they are the cold path.
#![allow(clippy::result_large_err)]

mod batch;
pub mod body;
pub mod checkpoint;
pub mod encoding;
pub mod entry;
pub mod genesis;
pub mod keys;
pub mod light;
pub mod merkle;
pub mod primitives;
pub mod replay;
pub mod rules;
pub mod state;
pub mod verify;

#[cfg(test)]
mod state_tests;
#[cfg(any(test, feature = "test-support"))]
pub mod testkit;

pub use body::{Body, EntryRef, Signed};
pub use entry::{Entry, SignedEntry};
pub use genesis::{Genesis, FEN_PER_POINT};
pub use keys::Keypair;
pub use primitives::{CommunityId, Hash, PublicKey, Signature};
pub use state::{ApplyContext, Change, RejectedEntry, Rejection, State, StateKey};
