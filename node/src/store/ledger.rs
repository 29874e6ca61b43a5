//! Reading the log: entries by position, by hash and by range, the ledger head, the Merkle
//! leaves (entry hashes) and roots, and single items of the derived state.

use super::{parse_position_key, position_key, Column, Store, StoreError};
use linli_protocol::encoding::{self, MAX_MESSAGE_BYTES};
use linli_protocol::merkle::{self, LeafSource};
use linli_protocol::{Change, CommunityId, Hash, SignedEntry, StateKey};
use rocksdb::{Direction, IteratorMode};

impl Store {
    /// The latest stored change of one state item.
    pub fn state_item(&self, key: &StateKey) -> Result<Option<Change>, StoreError> {
        match self.db.get_cf(self.state_column(key)?, encoding::encode(key))? {
            Some(v) => Ok(Some(encoding::decode("state change", &v, MAX_MESSAGE_BYTES)?)),
            None => Ok(None),
        }
    }

    /// One entry.
    pub fn entry(&self, community: &CommunityId, seq: u64) -> Result<Option<SignedEntry>, StoreError> {
        let cf = self.cf(Column::Entries)?;
        match self.db.get_cf(cf, position_key(community, seq))? {
            Some(v) => SignedEntry::from_bytes(&v).map(Some).map_err(|e| StoreError::Corrupt {
                community: community.clone(),
                seq,
                reason: e.to_string(),
            }),
            None => Ok(None),
        }
    }

    /// An entry by its hash.
    pub fn entry_by_hash(&self, hash: &Hash) -> Result<Option<SignedEntry>, StoreError> {
        let cf = self.cf(Column::ByHash)?;
        let Some(key) = self.db.get_cf(cf, hash.0)? else { return Ok(None) };
        let (community, seq) =
            parse_position_key(&key).ok_or_else(|| StoreError::CorruptRecord(format!("by_hash row for {hash}")))?;
        self.entry(&community, seq)
    }

    /// Up to `limit` consecutive entries from `from`, at most `max_bytes` encoded (at least one).
    pub fn entries(
        &self,
        community: &CommunityId,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let cf = self.cf(Column::Entries)?;
        let start = position_key(community, from);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut expected = from;
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            let Some((c, seq)) = parse_position_key(&k) else { break };
            if &c != community || out.len() >= limit {
                break;
            }
            if seq != expected {
                return Err(StoreError::Corrupt {
                    community: community.clone(),
                    seq: expected,
                    reason: format!("entry missing (next stored is seq {seq})"),
                });
            }
            if !out.is_empty() && bytes.saturating_add(v.len()) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(v.len());
            let e = SignedEntry::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                community: community.clone(),
                seq,
                reason: e.to_string(),
            })?;
            if e.entry.community != *community || e.entry.seq != seq {
                return Err(StoreError::Corrupt {
                    community: community.clone(),
                    seq,
                    reason: format!("stored entry says community {} seq {}", e.entry.community, e.entry.seq),
                });
            }
            out.push(e);
            expected = expected.saturating_add(1);
        }
        Ok(out)
    }

    /// All entries of a community (for replays).
    pub fn all_entries(&self, community: &CommunityId) -> Result<Vec<SignedEntry>, StoreError> {
        self.entries(community, 0, usize::MAX, usize::MAX)
    }

    /// Number of entries and the hash of the last one, from the leaves column.
    pub fn head(&self, community: &CommunityId) -> Result<(u64, Hash), StoreError> {
        let cf = self.cf(Column::Leaves)?;
        let upper = position_key(community, u64::MAX);
        let mut it = self.db.iterator_cf(cf, IteratorMode::From(&upper, Direction::Reverse));
        match it.next() {
            Some(item) => {
                let (k, v) = item?;
                match parse_position_key(&k) {
                    Some((c, seq)) if &c == community => {
                        let hash = Hash(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                            community: community.clone(),
                            seq,
                            reason: "leaf is not 32 bytes".into(),
                        })?);
                        Ok((seq.saturating_add(1), hash))
                    }
                    _ => Ok((0, Hash::ZERO)),
                }
            }
            None => Ok((0, Hash::ZERO)),
        }
    }

    /// The recorded leaves (entry hashes) of positions `from..from+count`, by one range scan; a
    /// position without a well-formed leaf is `None`.
    pub fn leaf_range(
        &self,
        community: &CommunityId,
        from: u64,
        count: usize,
    ) -> Result<Vec<Option<Hash>>, StoreError> {
        let cf = self.cf(Column::Leaves)?;
        let mut out = vec![None; count];
        let start = position_key(community, from);
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            let Some((c, seq)) = parse_position_key(&k) else { break };
            let Some(slot) = usize::try_from(seq.saturating_sub(from)).ok().filter(|_| &c == community) else { break };
            match out.get_mut(slot) {
                Some(s) => *s = v.as_ref().try_into().ok().map(Hash),
                None => break,
            }
        }
        Ok(out)
    }

    /// The Merkle leaves (entry hashes) of a community, readable by index.
    pub fn leaves<'a>(&'a self, community: &'a CommunityId) -> StoreLeaves<'a> {
        StoreLeaves { store: self, community }
    }

    /// The Merkle root of the first `size` entries.
    pub fn root(&self, community: &CommunityId, size: u64) -> Result<Hash, StoreError> {
        merkle::root_from(&self.leaves(community), size).map_err(|e| StoreError::CorruptRecord(e.to_string()))
    }
}

/// Merkle leaves read from the store.
pub struct StoreLeaves<'a> {
    store: &'a Store,
    community: &'a CommunityId,
}

impl LeafSource for StoreLeaves<'_> {
    fn len(&self) -> u64 {
        self.store.head(self.community).map(|(n, _)| n).unwrap_or(0)
    }
    fn leaf(&self, index: u64) -> Option<Hash> {
        let cf = self.store.cf(Column::Leaves).ok()?;
        let v = self.store.db.get_cf(cf, position_key(self.community, index)).ok()??;
        Some(Hash(v.as_slice().try_into().ok()?))
    }
    fn keeps_subtrees(&self) -> bool {
        true
    }
    fn subtree(&self, lo: u64, size: u64) -> Option<Hash> {
        let level = size.trailing_zeros();
        if !size.is_power_of_two() || level < super::subtrees::MIN_LEVEL || !lo.is_multiple_of(size) {
            return None;
        }
        self.store.subtree_root(self.community, level, lo >> level)
    }
}
