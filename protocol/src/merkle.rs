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
        let Some(new_size) = self.size.checked_add(1) else {
            return;
        };
        let mut hash = leaf_hash(entry_hash);
        // Each trailing one bit of the old size is a perfect subtree of the
        // same height as `hash`: merge them, as in a binary counter's carry.
        let mut carry = self.size;
        while carry & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            carry >>= 1;
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

/// Merkle Tree Hash of the leaves `lo..hi` of `src`.
fn range_root<S: LeafSource + ?Sized>(src: &S, lo: u64, hi: u64) -> Result<Hash, MerkleError> {
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: &str = include_str!("../tests/golden/merkle.txt");

    /// `entry_hash_i = BLAKE3(i as u64 little-endian)`, as in the golden vectors.
    fn entries(n: u64) -> Vec<Hash> {
        (0..n).map(|i| Hash(*blake3::hash(&i.to_le_bytes()).as_bytes())).collect()
    }

    fn seeded_entries(seed: u64, n: u64) -> Vec<Hash> {
        (0..n).map(|i| hash_parts(&[&seed.to_le_bytes(), &i.to_le_bytes()])).collect()
    }

    // Reference implementation: RFC 9162 §2.1 written as recursively as the RFC does.
    fn ref_split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn ref_mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => leaf_hash(&d[0]),
            n => {
                let k = ref_split(n);
                node_hash(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
            }
        }
    }

    fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return vec![];
        }
        let k = ref_split(d.len());
        let (mut p, sibling) =
            if m < k { (ref_path(m, &d[..k]), ref_mth(&d[k..])) } else { (ref_path(m - k, &d[k..]), ref_mth(&d[..k])) };
        p.push(sibling);
        p
    }

    fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![ref_mth(d)] };
        }
        let k = ref_split(n);
        let (mut p, sibling) = if m <= k {
            (ref_subproof(m, &d[..k], b), ref_mth(&d[k..]))
        } else {
            (ref_subproof(m - k, &d[k..], false), ref_mth(&d[..k]))
        };
        p.push(sibling);
        p
    }

    fn flip(h: &mut Hash, byte: usize, bit: u8) {
        h.0[byte % 32] ^= 1 << (bit % 8);
    }

    #[test]
    fn roots_match_reference_and_known_structure() {
        let e = entries(8);
        for n in [0, 1, 2, 3, 7, 8] {
            assert_eq!(root(&e[..n]), ref_mth(&e[..n]), "n = {n}");
        }
        assert_eq!(root(&[]), Hash(*blake3::hash(b"").as_bytes()));
        assert_eq!(root(&e[..1]), leaf_hash(&e[0]));
        assert_eq!(root(&e[..2]), node_hash(&leaf_hash(&e[0]), &leaf_hash(&e[1])));
        let (l, n01) = (|i: usize| leaf_hash(&e[i]), node_hash(&leaf_hash(&e[0]), &leaf_hash(&e[1])));
        assert_eq!(root(&e[..3]), node_hash(&n01, &l(2)));
        let mut leaf_input = vec![0u8];
        leaf_input.extend_from_slice(&e[0].0);
        assert_eq!(leaf_hash(&e[0]).0, *blake3::hash(&leaf_input).as_bytes());
    }

    #[test]
    fn frontier_matches_root_and_reference_for_every_size() {
        let e = entries(300);
        let mut f = Frontier::new();
        for n in 0..=300usize {
            assert_eq!(f.size(), n as u64);
            assert_eq!(f.root(), root(&e[..n]), "n = {n}");
            assert_eq!(f.root(), ref_mth(&e[..n]), "n = {n}");
            assert_eq!(f.nodes.len(), (n as u64).count_ones() as usize);
            if n < 300 {
                f.push(&e[n]);
            }
        }
    }

    #[test]
    fn inclusion_matches_reference_exhaustively() {
        let e = entries(70);
        for n in 1..=70usize {
            let r = root(&e[..n]);
            for i in 0..n {
                let p = prove_inclusion(&e[..n], i as u64).unwrap();
                assert_eq!(p.path, ref_path(i, &e[..n]), "n = {n}, i = {i}");
                p.verify(&e[i], &r).unwrap();
            }
        }
    }

    #[test]
    fn consistency_verifies_for_every_pair_up_to_200() {
        let e = entries(200);
        let roots: Vec<Hash> = (0..=200).map(|n| root(&e[..n])).collect();
        for n in 0..=200usize {
            for m in 0..=n {
                let p = prove_consistency(&e[..n], m as u64).unwrap();
                assert_eq!((p.old_size, p.new_size), (m as u64, n as u64));
                if m == 0 || m == n {
                    assert!(p.path.is_empty());
                } else {
                    assert_eq!(p.path, ref_subproof(m, &e[..n], true), "m = {m}, n = {n}");
                    assert!(p.verify(&roots[m], &roots[n - 1]).is_err(), "m = {m}, n = {n}");
                }
                p.verify(&roots[m], &roots[n]).unwrap_or_else(|err| panic!("m = {m}, n = {n}: {err}"));
            }
        }
    }

    #[test]
    fn leaf_source_proves_against_older_checkpoints() {
        let e = entries(50);
        let v: &Vec<Hash> = &e;
        for size in [1u64, 13, 32, 49] {
            let prefix = &e[..size as usize];
            assert_eq!(root_from(v, size).unwrap(), root(prefix));
            assert_eq!(
                prove_inclusion_from(v, 5, size.max(6)).unwrap(),
                prove_inclusion(&e[..size.max(6) as usize], 5).unwrap()
            );
            assert_eq!(prove_consistency_from(v, 1, size).unwrap(), prove_consistency(prefix, 1).unwrap());
        }
        assert_eq!(root_from(v, 0).unwrap(), empty_root());
        assert!(LeafSource::is_empty(&Vec::<Hash>::new()) && !LeafSource::is_empty(v));
    }

    /// A source that claims more leaves than it has.
    struct Lying(Vec<Hash>);
    impl LeafSource for Lying {
        fn len(&self) -> u64 {
            100
        }
        fn leaf(&self, index: u64) -> Option<Hash> {
            self.0.leaf(index)
        }
    }

    fn incl(leaf_index: u64, tree_size: u64, path: Vec<Hash>) -> InclusionProof {
        InclusionProof { leaf_index, tree_size, path }
    }

    fn cons(old_size: u64, new_size: u64, path: Vec<Hash>) -> ConsistencyProof {
        ConsistencyProof { old_size, new_size, path }
    }

    /// The error's Debug form, which names the variant and all its figures.
    fn err<T: std::fmt::Debug>(result: Result<T, MerkleError>) -> String {
        format!("{:?}", result.unwrap_err())
    }

    #[test]
    fn every_error_variant_is_produced() {
        let e = entries(7);
        let (r, r3, r6) = (root(&e), root(&e[..3]), root(&e[..6]));
        let index_7 = "IndexOutOfRange { index: 7, size: 7 }";
        assert_eq!(err(prove_inclusion(&e, 7)), index_7);
        assert_eq!(err(incl(7, 7, vec![]).verify(&e[0], &r)), index_7);
        let index_0 = "IndexOutOfRange { index: 0, size: 0 }";
        assert_eq!(err(prove_inclusion(&[], 0)), index_0);

        let size_8 = "SizeOutOfRange { size: 8, available: 7 }";
        assert_eq!(err(root_from(&e, 8)), size_8);
        assert_eq!(err(prove_inclusion_from(&e, 0, 8)), size_8);
        assert_eq!(err(prove_consistency_from(&e, 1, 8)), size_8);

        let old_8 = "OldSizeExceedsNew { old_size: 8, new_size: 7 }";
        assert_eq!(err(prove_consistency(&e, 8)), old_8);
        assert_eq!(err(cons(8, 7, vec![]).verify(&r, &r)), old_8);

        let mut p = prove_inclusion(&e, 3).unwrap();
        p.path.push(r);
        let len_3_4 = "PathLength { expected: 3, actual: 4 }";
        assert_eq!(err(p.verify(&e[3], &r)), len_3_4);
        let mut c = prove_consistency(&e, 3).unwrap();
        c.path.pop();
        let len_4_3 = "PathLength { expected: 4, actual: 3 }";
        assert_eq!(err(c.verify(&r3, &r)), len_4_3);
        let len_0_1 = "PathLength { expected: 0, actual: 1 }";
        assert_eq!(err(cons(7, 7, vec![r]).verify(&r, &r)), len_0_1);
        assert_eq!(err(cons(0, 7, vec![r]).verify(&empty_root(), &r)), len_0_1);

        let long = incl(0, 7, vec![r; 65]).verify(&e[0], &r);
        assert_eq!(err(long), "PathTooLong { len: 65, max: 64 }");
        let long = cons(3, 7, vec![r; 66]).verify(&r, &r);
        assert_eq!(err(long), "PathTooLong { len: 66, max: 65 }");

        use MerkleError::RootMismatch as Mismatch;
        let mismatch = prove_inclusion(&e, 3).unwrap().verify(&e[3], &r6);
        let msg = mismatch.clone().unwrap_err().to_string();
        assert_eq!(mismatch, Err(Mismatch { expected: r6, computed: r }));
        assert!(msg.contains(&r6.to_hex()) && msg.contains(&r.to_hex()));
        let mismatch = cons(7, 7, vec![]).verify(&r6, &r);
        assert_eq!(mismatch, Err(Mismatch { expected: r, computed: r6 }));
        let (mismatch, empty) = (cons(0, 7, vec![]).verify(&r6, &r), empty_root());
        assert_eq!(mismatch, Err(Mismatch { expected: r6, computed: empty }));
        assert_eq!(cons(0, 7, vec![]).verify(&empty, &r6), Ok(()));

        let lying = Lying(e.clone());
        assert_eq!(err(root_from(&lying, 10)), "MissingLeaf { index: 7 }");
        assert_eq!(err(prove_inclusion_from(&lying, 0, 9)), "MissingLeaf { index: 8 }");
        assert_eq!(err(prove_consistency_from(&lying, 2, 8)), "MissingLeaf { index: 7 }");

        let frontier = Frontier::try_from(FrontierRepr { size: 5, nodes: vec![r] });
        assert_eq!(err(frontier), "InvalidFrontier { size: 5, expected: 2, actual: 1 }");
        let msg = MerkleError::PathLength { expected: 3, actual: 4 }.to_string();
        assert_eq!(msg, "proof path has 4 hashes, expected 3");
    }

    #[test]
    fn extreme_sizes_are_bounded_and_do_not_panic() {
        let max = u64::MAX;
        assert_eq!(inclusion_walk(0, max).unwrap().count(), 64);
        assert_eq!(inclusion_walk((1 << 63) - 1, max).unwrap().count(), 64);
        assert_eq!(inclusion_walk(max - 1, max).unwrap().count(), 63);
        let (walk, own_seed) = consistency_walk(3, max);
        assert_eq!(walk.count() + usize::from(own_seed), MAX_CONSISTENCY_PATH_LEN);
        let h = Hash([7; 32]);
        for (i, n) in [(0, max), (max - 1, max), (1 << 63, (1 << 63) + 1)] {
            assert!(incl(i, n, vec![h; 64]).verify(&h, &h).is_err());
        }
        for (m, n) in [(3, max), (1, max), (max - 1, max), (1 << 63, max)] {
            for len in [0, 1, 2, 64, 65] {
                assert!(cons(m, n, vec![h; len]).verify(&h, &h).is_err());
            }
        }
        let nodes = vec![h; 64];
        let full = Frontier::try_from(FrontierRepr { size: max, nodes }).unwrap();
        let mut pushed = full.clone();
        pushed.push(&h);
        assert_eq!(pushed, full);
        let _ = full.root();
    }

    /// A root does not commit to its tree size, so a proof's sizes must come
    /// from a signed checkpoint: leaf 0's path in a 3-leaf tree also passes as
    /// a path in a 4-leaf tree against the 3-leaf root.
    #[test]
    fn tree_size_is_bound_by_the_checkpoint_not_the_root() {
        let e = entries(4);
        let mut p = prove_inclusion(&e[..3], 0).unwrap();
        p.tree_size = 4;
        assert_eq!(p.verify(&e[0], &root(&e[..3])), Ok(()));
        assert!(p.verify(&e[0], &root(&e)).is_err());
    }

    fn golden_text() -> String {
        let e = entries(7);
        let cat = |path: &[Hash]| path.iter().map(Hash::to_hex).collect::<String>();
        [
            ("leaf_hash_0", leaf_hash(&e[0]).to_hex()),
            ("root_0", root(&[]).to_hex()),
            ("root_1", root(&e[..1]).to_hex()),
            ("root_2", root(&e[..2]).to_hex()),
            ("root_7", root(&e).to_hex()),
            ("inclusion_7_3", cat(&prove_inclusion(&e, 3).unwrap().path)),
            ("consistency_3_7", cat(&prove_consistency(&e, 3).unwrap().path)),
        ]
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect()
    }

    #[test]
    fn golden_vectors() {
        if std::env::var_os("MERKLE_PRINT_GOLDEN").is_some() {
            print!("{}", golden_text());
        }
        let parse = |s: &str| -> Vec<(String, String)> {
            s.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.trim().to_string(), v.trim().to_string())
                })
                .collect()
        };
        assert_eq!(parse(GOLDEN), parse(&golden_text()));
    }

    proptest! {
        #[test]
        fn inclusion_verifies_and_tampering_fails(
            seed: u64, n in 1u64..=300, idx: prop::sample::Index, which: prop::sample::Index,
            byte: usize, bit: u8, delta in 1u64..=300,
        ) {
            let e = seeded_entries(seed, n + 300);
            let leaves = &e[..n as usize];
            let i = idx.index(n as usize);
            let r = root(leaves);
            let p = prove_inclusion(leaves, i as u64).unwrap();
            prop_assert_eq!(&p.path, &ref_path(i, leaves));
            prop_assert!(p.verify(&leaves[i], &r).is_ok());
            if !p.path.is_empty() {
                let mut t = p.clone();
                flip(&mut t.path[which.index(p.path.len())], byte, bit);
                prop_assert!(t.verify(&leaves[i], &r).is_err());
            }
            let mut t = p.clone();
            t.leaf_index = (i as u64 + delta) % (n + 1);
            if t.leaf_index != i as u64 {
                prop_assert!(t.verify(&leaves[i], &r).is_err());
            }
            // A changed size must fail against the root of that size.
            let mut t = p.clone();
            t.tree_size = (n + delta) % (n + 301);
            if t.tree_size != n {
                prop_assert!(t.verify(&leaves[i], &root(&e[..t.tree_size as usize])).is_err());
            }
            let (mut entry, mut bad_root) = (leaves[i], r);
            flip(&mut entry, byte, bit);
            flip(&mut bad_root, byte, bit);
            prop_assert!(p.verify(&entry, &r).is_err());
            prop_assert!(p.verify(&leaves[i], &bad_root).is_err());
        }

        #[test]
        fn consistency_tampering_fails(
            seed: u64, n in 2u64..=300, m_idx: prop::sample::Index, which: prop::sample::Index,
            byte: usize, bit: u8, dm in 0u64..=300, dn in 0u64..=300,
        ) {
            let e = seeded_entries(seed, 601);
            let m = 1 + m_idx.index(n as usize - 1) as u64; // 0 < m < n
            let (old_root, new_root) = (root(&e[..m as usize]), root(&e[..n as usize]));
            let p = prove_consistency(&e[..n as usize], m).unwrap();
            prop_assert!(p.verify(&old_root, &new_root).is_ok());
            let mut t = p.clone();
            flip(&mut t.path[which.index(p.path.len())], byte, bit);
            prop_assert!(t.verify(&old_root, &new_root).is_err());
            let (mut bad_old, mut bad_new) = (old_root, new_root);
            flip(&mut bad_old, byte, bit);
            flip(&mut bad_new, byte, bit);
            prop_assert!(p.verify(&bad_old, &new_root).is_err());
            prop_assert!(p.verify(&old_root, &bad_new).is_err());
            // Changed sizes must fail against the roots of those sizes.
            let mut t = p.clone();
            t.old_size = (m + dm) % (n + 1);
            t.new_size = n + dn;
            if (t.old_size, t.new_size) != (m, n) {
                let roots = (root(&e[..t.old_size as usize]), root(&e[..t.new_size as usize]));
                prop_assert!(t.verify(&roots.0, &roots.1).is_err());
            }
        }
    }
}
