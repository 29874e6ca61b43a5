//! Stored Merkle subtree roots: the root of every perfect subtree of 16 leaves and up, written
//! in the same atomic batch as the entries that complete it. With them a checkpoint's root, an
//! audit path or a consistency proof reads O(log n) values instead of every leaf of the ledger
//! (`merkle::LeafSource::subtree`). About one stored root per 8 entries (n/16 + n/32 + … ≈ n/8),
//! a few bytes per entry on disk.

use super::{Column, Store, StoreError};
use linli_protocol::merkle::{node_hash, Frontier, LeafSource};
use linli_protocol::{CommunityId, Hash, SignedEntry};
use rocksdb::WriteBatch;
use std::collections::HashMap;

/// The smallest stored subtree: 2^4 = 16 leaves.
pub(super) const MIN_LEVEL: u32 = 4;

/// `community 0x00 level index(BE)`: the subtree of leaves `index·2^level .. (index+1)·2^level`.
pub(super) fn subtree_key(community: &CommunityId, level: u32, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(community.as_str().len() + 10);
    k.extend_from_slice(community.as_str().as_bytes());
    k.push(0);
    k.push(u8::try_from(level).unwrap_or(u8::MAX));
    k.extend_from_slice(&index.to_be_bytes());
    k
}

impl Store {
    /// A stored subtree root, if present and well formed.
    pub(super) fn subtree_root(&self, community: &CommunityId, level: u32, index: u64) -> Option<Hash> {
        let cf = self.cf(Column::Subtrees).ok()?;
        let v = self.db.get_cf(cf, subtree_key(community, level, index)).ok()??;
        Some(Hash(v.as_slice().try_into().ok()?))
    }

    /// Add to `b` the roots of the subtrees the batch's entries complete. Leaves and lower
    /// subtrees come from the batch itself or from the store.
    pub(super) fn put_subtrees(&self, b: &mut WriteBatch, entries: &[(SignedEntry, Hash)]) -> Result<(), StoreError> {
        let cf = self.cf(Column::Subtrees)?;
        let completes = |e: &SignedEntry| e.entry.seq.saturating_add(1).trailing_zeros() >= MIN_LEVEL;
        if !entries.iter().any(|(e, _)| completes(e)) {
            return Ok(()); // most groups of a few entries complete no stored subtree
        }
        let new_leaves: HashMap<(&CommunityId, u64), Hash> =
            entries.iter().map(|(e, h)| ((&e.entry.community, e.entry.seq), *h)).collect();
        let mut new_roots: HashMap<(&CommunityId, u32, u64), Hash> = HashMap::new();
        for (e, _) in entries {
            let (community, seq) = (&e.entry.community, e.entry.seq);
            let count = seq.saturating_add(1);
            let mut level = MIN_LEVEL;
            // The subtrees that end at this leaf: every level whose size divides `count`.
            while level < 64 && count.trailing_zeros() >= level {
                let index = count >> level;
                let index = index.saturating_sub(1);
                let root = if level == MIN_LEVEL {
                    let mut f = Frontier::new();
                    let first = index << MIN_LEVEL;
                    for i in first..first.saturating_add(1 << MIN_LEVEL) {
                        let leaf = match new_leaves.get(&(community, i)) {
                            Some(h) => *h,
                            None => self.leaves(community).leaf(i).ok_or_else(|| StoreError::Corrupt {
                                community: community.clone(),
                                seq: i,
                                reason: "leaf missing while storing a subtree root".into(),
                            })?,
                        };
                        f.push(&leaf);
                    }
                    f.root()
                } else {
                    let child = |i: u64| -> Result<Hash, StoreError> {
                        match new_roots.get(&(community, level - 1, i)) {
                            Some(h) => Ok(*h),
                            None => self.subtree_root(community, level - 1, i).ok_or_else(|| StoreError::Corrupt {
                                community: community.clone(),
                                seq,
                                reason: format!("subtree root at level {} index {i} is missing", level - 1),
                            }),
                        }
                    };
                    node_hash(&child(index << 1)?, &child((index << 1) | 1)?)
                };
                new_roots.insert((community, level, index), root);
                b.put_cf(cf, subtree_key(community, level, index), root.0);
                level += 1;
            }
        }
        Ok(())
    }

    /// Every subtree root of `community` recomputed from its leaves, in order, handed to
    /// `visit(level, index, root)` (O(n) reads).
    fn walk_subtrees(
        &self,
        community: &CommunityId,
        mut visit: impl FnMut(u32, u64, Hash) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (size, _) = self.head(community)?;
        let mut frontier = Frontier::new();
        let mut seq = 0u64;
        while seq < size {
            let chunk = self.leaf_range(community, seq, 8192)?;
            for leaf in chunk.into_iter().take(usize::try_from(size - seq).unwrap_or(usize::MAX)) {
                let leaf = leaf.ok_or_else(|| StoreError::Corrupt {
                    community: community.clone(),
                    seq,
                    reason: "leaf missing".into(),
                })?;
                let mut result = Ok(());
                frontier.push_completing(&leaf, |level, root| {
                    if level >= MIN_LEVEL && result.is_ok() {
                        result = visit(level, ((seq + 1) >> level).saturating_sub(1), root);
                    }
                });
                result?;
                seq += 1;
            }
        }
        Ok(())
    }

    /// Recompute every subtree root of `community` from its leaves and compare it with the
    /// stored one (a full check). The first one missing or different is an error naming its
    /// first seq.
    pub fn check_subtrees(&self, community: &CommunityId) -> Result<(), StoreError> {
        self.walk_subtrees(community, |level, index, root| {
            if self.subtree_root(community, level, index) == Some(root) {
                return Ok(());
            }
            Err(StoreError::Corrupt {
                community: community.clone(),
                seq: index << level,
                reason: format!(
                    "stored Merkle subtree root (level {level}, leaves {}..{}) is missing or wrong",
                    index << level,
                    (index + 1) << level
                ),
            })
        })
    }

    /// Replace every stored subtree root of `community` by one recomputed from its leaves
    /// (repair), in one synced batch.
    pub fn rebuild_subtrees(&self, community: &CommunityId) -> Result<(), StoreError> {
        let cf = self.cf(Column::Subtrees)?;
        let mut b = WriteBatch::default();
        self.delete_subtrees_from(&mut b, community, 0)?;
        self.walk_subtrees(community, |level, index, root| {
            b.put_cf(cf, subtree_key(community, level, index), root.0);
            Ok(())
        })?;
        self.write(b)
    }

    /// Add to `b` the deletion of every stored subtree that covers a leaf from `from` on.
    pub(super) fn delete_subtrees_from(
        &self,
        b: &mut WriteBatch,
        community: &CommunityId,
        from: u64,
    ) -> Result<(), StoreError> {
        let cf = self.cf(Column::Subtrees)?;
        for level in MIN_LEVEL..64 {
            b.delete_range_cf(
                cf,
                subtree_key(community, level, from >> level),
                subtree_key(community, level, u64::MAX),
            );
        }
        Ok(())
    }
}
