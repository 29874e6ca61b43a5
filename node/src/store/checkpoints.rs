//! Reading checkpoints (with their cosignatures), equivocation proofs, and the evidence taken
//! for citations of an equivocator's other branch.

use super::{parse_position_key, position_key, Column, Store, StoreError};
use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::replay::Evidence;
use linli_protocol::{CommunityId, Hash, SignedEntry};
use rocksdb::{Direction, IteratorMode};

impl Store {
    /// The newest stored checkpoint of a community.
    pub fn latest_checkpoint(&self, community: &CommunityId) -> Result<Option<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        let upper = position_key(community, u64::MAX);
        if let Some(item) = self.db.iterator_cf(cf, IteratorMode::From(&upper, Direction::Reverse)).next() {
            let (k, v) = item?;
            if matches!(parse_position_key(&k), Some((c, _)) if &c == community) {
                return Ok(Some(
                    CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?,
                ));
            }
        }
        Ok(None)
    }

    /// The stored checkpoint of a community at `size`.
    pub fn checkpoint(&self, community: &CommunityId, size: u64) -> Result<Option<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        match self.db.get_cf(cf, position_key(community, size))? {
            Some(v) => {
                Ok(Some(CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?))
            }
            None => Ok(None),
        }
    }

    /// All checkpoints of a community, oldest first.
    pub fn checkpoints(&self, community: &CommunityId) -> Result<Vec<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        let start = position_key(community, 0);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            if !matches!(parse_position_key(&k), Some((c, _)) if &c == community) {
                break;
            }
            out.push(CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?);
        }
        Ok(out)
    }

    /// Up to `limit` stored checkpoints of a community that cover entry `seq` (size > seq),
    /// smallest first.
    pub fn checkpoints_covering(
        &self,
        community: &CommunityId,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        let start = position_key(community, seq.saturating_add(1));
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            if out.len() >= limit || !matches!(parse_position_key(&k), Some((c, _)) if &c == community) {
                break;
            }
            out.push(CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?);
        }
        Ok(out)
    }

    /// An equivocator's entry this node holds as evidence, by hash.
    pub fn evidence_entry(&self, hash: &Hash) -> Result<Option<SignedEntry>, StoreError> {
        match self.db.get_cf(self.cf(Column::Evidence)?, hash.0)? {
            Some(v) => Ok(Some(super::decode_entry(&v)?)),
            None => Ok(None),
        }
    }

    /// Every entry held as evidence, by hash, with the first proven conflict of each community
    /// the stored equivocation proofs name (the lowest position, as quarantine takes it): what
    /// a replay needs besides the ledgers.
    pub fn evidence(&self) -> Result<Evidence, StoreError> {
        let mut out = Evidence::default();
        for item in self.db.iterator_cf(self.cf(Column::Evidence)?, IteratorMode::Start) {
            let (k, v) = item?;
            let hash: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::CorruptRecord("evidence key".into()))?;
            out.entries.insert(Hash(hash), super::decode_entry(&v)?);
        }
        for proof in self.alerts()? {
            let at = out.conflicts.entry(proof.community().clone()).or_insert(proof.position());
            *at = (*at).min(proof.position());
        }
        Ok(out)
    }

    /// Every stored equivocation proof.
    pub fn alerts(&self) -> Result<Vec<EquivocationProof>, StoreError> {
        let cf = self.cf(Column::Alerts)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (_, v) = item?;
            out.push(EquivocationProof::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?);
        }
        Ok(out)
    }
}
