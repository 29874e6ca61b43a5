//! # linli-node
//!
//! A Linli community node: it keeps its community's append-only signed ledger in RocksDB
//! (`store`), sequences residents' and operators' transactions through the protocol state
//! machine with group commit (`sequencer`), and serves the HTTP JSON API (`api`). `node` wires
//! them together; `config` and `keyfile` read its files. `merchant` is the merchant light node
//! (a till that verifies payment proofs without replicating any ledger).
#![allow(clippy::result_large_err)]

pub mod api;
pub mod config;
pub mod keyfile;
pub mod merchant;
pub mod metrics;
pub mod network;
pub mod node;
pub mod parallel_verify;
pub mod repair;
pub mod rotation;
pub mod sequencer;
pub mod store;
