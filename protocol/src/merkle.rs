//! Merkle tree over the ledger's entry hashes: roots for checkpoints, an
//! incremental [`Frontier`] for append-only logs, and inclusion and consistency
//! proofs that peers can check without holding the log.
//!
//! The tree shape and proof algorithms are those of RFC 9162 (RFC 6962 v2),
//! sections 2.1.1 to 2.1.4, with BLAKE3 in place of SHA-256:
//!
//! - leaf:  `BLAKE3(0x00 || entry_hash)`, where `entry_hash` is a ledger entry's hash;
//! - node:  `BLAKE3(0x01 || left || right)`;
//! - empty tree: `BLAKE3("")`;
//! - a tree of `n > 1` leaves splits at `k`, the largest power of two below `n`:
//!   `MTH(D[0:n]) = node(MTH(D[0:k]), MTH(D[k:n]))`.
//!
//! Proofs arrive from untrusted peers, so verification never panics, bounds the
//! path length before doing any work, and reports what was expected and found.
//! A root alone does not bind its tree size: verifiers must take `tree_size`,
//! `old_size` and `new_size` from a signed checkpoint, not from the proof.

use crate::primitives::Hash;

/// Longest possible inclusion path: one hash per level of a tree of up to `u64::MAX` leaves.
pub const MAX_INCLUSION_PATH_LEN: usize = 64;
/// Longest possible consistency path: one more than an inclusion path (e.g. sizes 3 and `u64::MAX`).
pub const MAX_CONSISTENCY_PATH_LEN: usize = 65;

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} exceeds the {available} leaves available")]
    SizeOutOfRange { size: u64, available: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeExceedsNew { old_size: u64, new_size: u64 },
    #[error("proof path has {actual} hashes, expected {expected}")]
    PathLength { expected: usize, actual: usize },
    #[error("proof path has {len} hashes, more than the maximum of {max}")]
    PathTooLong { len: usize, max: usize },
    #[error("root mismatch: expected {}, computed {}", .expected.to_hex(), .computed.to_hex())]
    RootMismatch { expected: Hash, computed: Hash },
    #[error("leaf source has no entry hash at index {index}")]
    MissingLeaf { index: u64 },
    #[error("frontier of size {size} must hold {expected} subtree roots, found {actual}")]
    InvalidFrontier { size: u64, expected: usize, actual: usize },
}

fn hash_parts(parts: &[&[u8]]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    Hash(*hasher.finalize().as_bytes())
}

/// `BLAKE3(0x00 || entry_hash)`: the leaf for one ledger entry.
pub fn leaf_hash(entry_hash: &Hash) -> Hash {
    hash_parts(&[&[0x00], &entry_hash.0])
}

/// `BLAKE3(0x01 || left || right)`: an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    hash_parts(&[&[0x01], &left.0, &right.0])
}

/// `BLAKE3("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    hash_parts(&[])
}

/// Merkle Tree Hash (RFC 9162 §2.1.1) of the given entry hashes.
pub fn root(entry_hashes: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    entry_hashes.iter().for_each(|h| frontier.push(h));
    frontier.root()
}

/// Incremental accumulator for an append-only log: holds only the roots of the
/// perfect subtrees that make up the tree (one per set bit of `size`, largest
/// first), so memory is O(log n) and each push costs amortised O(1) hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "FrontierRepr")]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

#[derive(serde::Deserialize)]
struct FrontierRepr {
    size: u64,
    nodes: Vec<Hash>,
}

impl TryFrom<FrontierRepr> for Frontier {
    type Error = MerkleError;
    /// Rejects stored frontiers whose subtree count does not match their size.
    fn try_from(repr: FrontierRepr) -> Result<Self, MerkleError> {
        let expected = repr.size.count_ones() as usize;
        if repr.nodes.len() != expected {
            return Err(MerkleError::InvalidFrontier { size: repr.size, expected, actual: repr.nodes.len() });
        }
        Ok(Frontier { size: repr.size, nodes: repr.nodes })
    }
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one ledger entry hash. A frontier already holding `u64::MAX`
    /// leaves is full and ignores further pushes (unreachable in practice).
    pub fn push(&mut self, entry_hash: &Hash) {
        self.push_completing(entry_hash, |_, _| {});
    }

    /// [`Frontier::push`], handing `completed(level, root)` every perfect subtree of `2^level`
    /// leaves (level ≥ 1) that this leaf completes, lowest first (its index is
    /// `size() / 2^level - 1` after the push).
    pub fn push_completing(&mut self, entry_hash: &Hash, mut completed: impl FnMut(u32, Hash)) {
        let Some(new_size) = self.size.checked_add(1) else {
            return;
        };
        let mut hash = leaf_hash(entry_hash);
        // Each trailing one bit of the old size is a perfect subtree of the
        // same height as `hash`: merge them, as in a binary counter's carry.
        let mut carry = self.size;
        let mut level = 0u32;
        while carry & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            carry >>= 1;
            level = level.saturating_add(1);
            completed(level, hash);
        }
        self.nodes.push(hash);
        self.size = new_size;
    }

    /// Number of leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle Tree Hash of all leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => empty_root(),
            Some(last) => nodes.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// Random access to a log's entry hashes, for provers that cannot hold all of
/// them in memory. `leaf(i)` returns the entry hash (not the leaf hash).
pub trait LeafSource {
    fn len(&self) -> u64;
    fn leaf(&self, index: u64) -> Option<Hash>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether [`LeafSource::subtree`] may answer: roots and proofs then read O(log n) stored
    /// subtree roots instead of every leaf.
    fn keeps_subtrees(&self) -> bool {
        false
    }
    /// The Merkle Tree Hash of the perfect subtree of `size` leaves (a power of two) starting
    /// at leaf `lo` (a multiple of `size`), if the source keeps it.
    fn subtree(&self, _lo: u64, _size: u64) -> Option<Hash> {
        None
    }
}

impl LeafSource for [Hash] {
    fn len(&self) -> u64 {
        u64::try_from(<[Hash]>::len(self)).unwrap_or(u64::MAX)
    }
    fn leaf(&self, index: u64) -> Option<Hash> {
        usize::try_from(index).ok().and_then(|i| self.get(i)).copied()
    }
}

impl LeafSource for Vec<Hash> {
    fn len(&self) -> u64 {
        LeafSource::len(self.as_slice())
    }
    fn leaf(&self, index: u64) -> Option<Hash> {
        self.as_slice().leaf(index)
    }
}

/// Below this many leaves a range is hashed from its leaves even when the source keeps subtrees.
const SMALL_RANGE: u64 = 16;

/// Merkle Tree Hash of the leaves `lo..hi` of `src`: from stored subtree roots where the source
/// keeps them (RFC 9162's recursive definition, so O(log n) lookups), otherwise from the leaves.
fn range_root<S: LeafSource + ?Sized>(src: &S, lo: u64, hi: u64) -> Result<Hash, MerkleError> {
    let n = hi.saturating_sub(lo);
    if src.keeps_subtrees() && n > SMALL_RANGE {
        if n.is_power_of_two() {
            if let Some(h) = src.subtree(lo, n) {
                return Ok(h);
            }
        }
        if let Some(k) = split_point(n) {
            let mid = lo.saturating_add(k);
            return Ok(node_hash(&range_root(src, lo, mid)?, &range_root(src, mid, hi)?));
        }
    }
    if src.keeps_subtrees() && n == SMALL_RANGE {
        if let Some(h) = src.subtree(lo, n) {
            return Ok(h);
        }
    }
    let mut frontier = Frontier::new();
    for index in lo..hi {
        frontier.push(&src.leaf(index).ok_or(MerkleError::MissingLeaf { index })?);
    }
    Ok(frontier.root())
}

/// The largest power of two strictly below `n`, or `None` if `n < 2`.
fn split_point(n: u64) -> Option<u64> {
    1u64.checked_shl(n.checked_sub(1)?.checked_ilog2()?)
}

fn check_size<S: LeafSource + ?Sized>(src: &S, size: u64) -> Result<(), MerkleError> {
    let available = src.len();
    if size > available {
        return Err(MerkleError::SizeOutOfRange { size, available });
    }
    Ok(())
}

/// Merkle Tree Hash of the first `size` leaves of `src` (an older checkpoint's root).
pub fn root_from<S: LeafSource + ?Sized>(src: &S, size: u64) -> Result<Hash, MerkleError> {
    check_size(src, size)?;
    range_root(src, 0, size)
}

/// An audit path (RFC 9162 §2.1.3) showing that a leaf is in a tree.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub path: Vec<Hash>,
}

/// Proves that entry `leaf_index` is in the tree of all of `entry_hashes`.
pub fn prove_inclusion(entry_hashes: &[Hash], leaf_index: u64) -> Result<InclusionProof, MerkleError> {
    prove_inclusion_from(entry_hashes, leaf_index, LeafSource::len(entry_hashes))
}

/// Proves that entry `leaf_index` is in the tree of the first `tree_size` leaves of `src`.
pub fn prove_inclusion_from<S: LeafSource + ?Sized>(
    src: &S,
    leaf_index: u64,
    tree_size: u64,
) -> Result<InclusionProof, MerkleError> {
    check_size(src, tree_size)?;
    if leaf_index >= tree_size {
        return Err(MerkleError::IndexOutOfRange { index: leaf_index, size: tree_size });
    }
    // Descend from the root to the leaf, collecting each sibling subtree's root;
    // the path lists them from the leaf upwards. Invariant: lo <= leaf_index < hi.
    let (mut lo, mut hi) = (0u64, tree_size);
    let mut path = Vec::new();
    while let Some(k) = split_point(hi.saturating_sub(lo)) {
        let mid = lo.saturating_add(k); // lo + k < hi: cannot saturate
        if leaf_index < mid {
            path.push(range_root(src, mid, hi)?);
            hi = mid;
        } else {
            path.push(range_root(src, lo, mid)?);
            lo = mid;
        }
    }
    path.reverse();
    Ok(InclusionProof { leaf_index, tree_size, path })
}

/// The bottom-up walk shared by RFC 9162's verification algorithms
/// (§2.1.3.2 step 4, §2.1.4.2 step 6), starting from node index `node` in a
/// level whose last index is `last`. Yields, per proof hash, whether that
/// hash is a left sibling. Ends when `last` reaches 0, so yields at most 64 items.
#[derive(Clone)]
struct Walk {
    node: u64,
    last: u64,
}

impl Iterator for Walk {
    type Item = bool;
    fn next(&mut self) -> Option<bool> {
        if self.last == 0 {
            return None;
        }
        let left = self.node & 1 == 1 || self.node == self.last;
        if left {
            // Skip levels where this node is the lone right-most child.
            while self.node & 1 == 0 && self.node != 0 {
                self.node >>= 1;
                self.last >>= 1;
            }
        }
        self.node >>= 1;
        self.last >>= 1;
        Some(left)
    }
}

fn check_path_len(len: usize, max: usize) -> Result<(), MerkleError> {
    if len > max {
        return Err(MerkleError::PathTooLong { len, max });
    }
    Ok(())
}

fn expect_path_len(expected: usize, actual: usize) -> Result<(), MerkleError> {
    if expected != actual {
        return Err(MerkleError::PathLength { expected, actual });
    }
    Ok(())
}

fn expect_root(expected: &Hash, computed: Hash) -> Result<(), MerkleError> {
    if *expected != computed {
        return Err(MerkleError::RootMismatch { expected: *expected, computed });
    }
    Ok(())
}

fn inclusion_walk(leaf_index: u64, tree_size: u64) -> Result<Walk, MerkleError> {
    match tree_size.checked_sub(1) {
        Some(last) if leaf_index <= last => Ok(Walk { node: leaf_index, last }),
        _ => Err(MerkleError::IndexOutOfRange { index: leaf_index, size: tree_size }),
    }
}

impl InclusionProof {
    /// Checks (RFC 9162 §2.1.3.2) that `entry_hash` is leaf `leaf_index` of the
    /// tree of `tree_size` leaves whose root is `root`.
    pub fn verify(&self, entry_hash: &Hash, root: &Hash) -> Result<(), MerkleError> {
        check_path_len(self.path.len(), MAX_INCLUSION_PATH_LEN)?;
        let walk = inclusion_walk(self.leaf_index, self.tree_size)?;
        expect_path_len(walk.clone().count(), self.path.len())?;
        let computed =
            walk.zip(&self.path).fold(
                leaf_hash(entry_hash),
                |r, (left, p)| {
                    if left {
                        node_hash(p, &r)
                    } else {
                        node_hash(&r, p)
                    }
                },
            );
        expect_root(root, computed)
    }
}

/// A proof (RFC 9162 §2.1.4) that the tree of `old_size` leaves is a prefix of
/// the tree of `new_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub path: Vec<Hash>,
}

/// Proves that the first `old_size` entries are a prefix of all of `entry_hashes`.
pub fn prove_consistency(entry_hashes: &[Hash], old_size: u64) -> Result<ConsistencyProof, MerkleError> {
    prove_consistency_from(entry_hashes, old_size, LeafSource::len(entry_hashes))
}

/// Proves that the first `old_size` leaves of `src` are a prefix of its first `new_size`.
pub fn prove_consistency_from<S: LeafSource + ?Sized>(
    src: &S,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, MerkleError> {
    check_size(src, new_size)?;
    if old_size > new_size {
        return Err(MerkleError::OldSizeExceedsNew { old_size, new_size });
    }
    let mut path = Vec::new();
    if old_size != 0 && old_size != new_size {
        // Iterative SUBPROOF(m, D[lo:hi], b). Invariant: lo < old_size <= hi.
        let (mut lo, mut hi, mut whole_old_tree) = (0u64, new_size, true);
        let mut upper = Vec::new();
        while let Some(k) = split_point(hi.saturating_sub(lo)) {
            if old_size == hi {
                break;
            }
            let mid = lo.saturating_add(k); // lo + k < hi: cannot saturate
            if old_size <= mid {
                upper.push(range_root(src, mid, hi)?);
                hi = mid;
            } else {
                upper.push(range_root(src, lo, mid)?);
                lo = mid;
                whole_old_tree = false;
            }
        }
        // Here old_size == hi; the old tree's root is implied unless it was split.
        if !whole_old_tree {
            path.push(range_root(src, lo, hi)?);
        }
        path.extend(upper.into_iter().rev());
    }
    Ok(ConsistencyProof { old_size, new_size, path })
}

/// The walk for `0 < old_size < new_size` and whether the path starts with a
/// hash of its own (it does unless `old_size` is a power of two).
fn consistency_walk(old_size: u64, new_size: u64) -> (Walk, bool) {
    let mut node = old_size.saturating_sub(1);
    let mut last = new_size.saturating_sub(1);
    while node & 1 == 1 {
        node >>= 1;
        last >>= 1;
    }
    (Walk { node, last }, !old_size.is_power_of_two())
}

impl ConsistencyProof {
    /// Checks (RFC 9162 §2.1.4.2) that the tree of `old_size` leaves with root
    /// `old_root` is a prefix of the tree of `new_size` leaves with root
    /// `new_root`. Equal sizes need an empty path and equal roots; `old_size`
    /// 0 needs an empty path and `old_root == empty_root()`, any new root.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), MerkleError> {
        check_path_len(self.path.len(), MAX_CONSISTENCY_PATH_LEN)?;
        let (old_size, new_size) = (self.old_size, self.new_size);
        if old_size > new_size {
            return Err(MerkleError::OldSizeExceedsNew { old_size, new_size });
        }
        if old_size == 0 || old_size == new_size {
            expect_path_len(0, self.path.len())?;
            return match old_size {
                0 => expect_root(old_root, empty_root()),
                _ => expect_root(new_root, *old_root),
            };
        }
        let (walk, own_seed) = consistency_walk(old_size, new_size);
        expect_path_len(walk.clone().count().saturating_add(usize::from(own_seed)), self.path.len())?;
        let (seed, rest) = match (own_seed, self.path.split_first()) {
            (false, _) => (old_root, self.path.as_slice()),
            (true, Some((first, rest))) => (first, rest),
            (true, None) => return expect_path_len(1, 0),
        };
        let (old, new) = walk.zip(rest).fold((*seed, *seed), |(old, new), (left, c)| {
            if left {
                (node_hash(c, &old), node_hash(c, &new))
            } else {
                (old, node_hash(&new, c))
            }
        });
        expect_root(old_root, old)?;
        expect_root(new_root, new)
    }
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
