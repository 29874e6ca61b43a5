//! What nodes say to each other: gossip messages (new entries, checkpoints, equivocation
//! alerts) and the request-response protocol (ledger heads, entry ranges and latest checkpoints
//! for sync; consistency proofs; payment and settlement submission, entry proofs and alerts for
//! merchant light nodes). All in the
//! protocol's canonical encoding, decoded strictly with byte limits.

use linli_protocol::body::{Payment, SettlementRequest};
use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::encoding::{self, DecodeError};
use linli_protocol::light::{EntryProof, KeyHistoryProof};
use linli_protocol::merkle::ConsistencyProof;
use linli_protocol::{CommunityId, EntryRef, Hash, Signed, SignedEntry};
use serde::{Deserialize, Serialize};

/// Largest gossip message (also gossipsub's `max_transmit_size`).
pub const MAX_GOSSIP_BYTES: usize = 64 * 1024;
/// Largest sync request.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024;
/// Largest sync response.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
/// Most entries a range response carries.
pub const MAX_RANGE_ENTRIES: u64 = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    Entry(Box<SignedEntry>),
    Checkpoint(CosignedCheckpoint),
    Alert(EquivocationProof),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Size and head hash of a community's ledger as the peer holds it.
    Head(CommunityId),
    /// Entries `from..from+limit` (bounded by `MAX_RANGE_ENTRIES` and `MAX_RESPONSE_BYTES`).
    Range { community: CommunityId, from: u64, limit: u64 },
    /// A resident's payment, for the payer's home community `home` to sequence (a node that is
    /// not `home` forwards it to `home`'s node).
    SubmitPayment { home: CommunityId, payment: Box<Signed<Payment>> },
    /// A merchant's settlement request, for its home community `home` to sequence.
    SubmitSettlement { home: CommunityId, request: Box<Signed<SettlementRequest>> },
    /// Entry `seq` of `community` with the best checkpoint covering it and the audit path.
    Proof { community: CommunityId, seq: u64 },
    /// The `Credit` (on the merchant's home ledger) of a source `Pay` entry, with its proof.
    CreditOf { merchant_community: CommunityId, source: EntryRef },
    /// Consistency proof between two sizes of a community's ledger.
    Consistency { community: CommunityId, old_size: u64, new_size: u64 },
    /// Every equivocation proof this node holds.
    Alerts,
    /// Every key change of a community's ledger with its audit path into a cosigned checkpoint
    /// (how a light node follows rotations and revocations).
    KeyHistory(CommunityId),
    /// One entry by reference, from the peer's ledger or from the evidence it holds: how a node
    /// gets a proven equivocator's entry past its conflict that an honest ledger cites (answered
    /// with `Entries` of that one entry, or `NotYet`).
    Evidence(EntryRef),
    /// The latest checkpoint of a community this node holds, with its cosignatures: how a node
    /// gets the checkpoints it missed while cut off (answered with `Checkpoint`, or `NotYet`).
    LatestCheckpoint(CommunityId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    Head {
        community: CommunityId,
        size: u64,
        head: Hash,
    },
    Entries(Vec<SignedEntry>),
    /// The home community sequenced the submission: its entry (signed by the community).
    Sequenced(Box<SignedEntry>),
    /// The home community refused the submission: the state machine's rule and why.
    Refused {
        rule: String,
        message: String,
    },
    Proof(Box<EntryProof>),
    Consistency(ConsistencyProof),
    Alerts(Vec<EquivocationProof>),
    KeyHistory(Box<KeyHistoryProof>),
    /// Not available yet (no covering checkpoint, no credit yet): ask again later.
    NotYet(String),
    Error(String),
    Checkpoint(Box<CosignedCheckpoint>),
}

impl GossipMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode("gossip message", bytes, MAX_GOSSIP_BYTES)
    }
}

impl SyncRequest {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode("sync request", bytes, MAX_REQUEST_BYTES)
    }
}

impl SyncResponse {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode("sync response", bytes, MAX_RESPONSE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let r = SyncRequest::Range { community: CommunityId::new("a").unwrap(), from: 3, limit: 10 };
        assert_eq!(SyncRequest::from_bytes(&encoding::encode(&r)).unwrap(), r);
        assert!(SyncRequest::from_bytes(&[9, 9, 9]).is_err());
        assert!(GossipMessage::from_bytes(&vec![0u8; MAX_GOSSIP_BYTES + 1]).is_err());
        assert!(SyncResponse::from_bytes(&[]).is_err());
    }
}
