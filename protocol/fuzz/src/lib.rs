//! Shared code of the fuzz targets: the node's wire messages, compiled from the node's own
//! source file (`node/src/network/messages.rs` needs only the protocol crate and serde), so the
//! fuzzers exercise exactly the decoders the node runs without building RocksDB and libp2p; and
//! the node's and till's JSON request bodies.

#[path = "../../../node/src/network/messages.rs"]
pub mod messages;

pub mod json;
