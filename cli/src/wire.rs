//! The node API's JSON answers, as far as the CLI reads them (unknown fields are ignored, so a
//! newer node still works). Nothing here is trusted: hashes are recomputed and proofs verified.

use linli_protocol::merkle::{ConsistencyProof, InclusionProof};
use linli_protocol::{CommunityId, Hash};
use serde::Deserialize;

/// `GET /v1/status`.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub genesis_hash: Hash,
    pub ledgers: Vec<LedgerStatus>,
    /// The equivocation proofs the node holds: which community, from which seq.
    #[serde(default)]
    pub alerts: Vec<AlertStatus>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertStatus {
    pub community: CommunityId,
    pub position: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LedgerStatus {
    pub community: CommunityId,
    pub size: u64,
    pub head: Hash,
}

/// `GET /v1/ledgers/{c}/proofs/inclusion`.
#[derive(Debug, Clone, Deserialize)]
pub struct InclusionView {
    pub entry_hash: Hash,
    pub root: Hash,
    pub proof: InclusionProof,
}

/// `GET /v1/ledgers/{c}/proofs/consistency`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsistencyView {
    pub old_root: Hash,
    pub new_root: Hash,
    pub proof: ConsistencyProof,
}

/// The answer to a submitted transaction (the node's own type).
pub use linli_node::sequencer::Receipt;
