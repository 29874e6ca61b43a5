//! Merkle tree, inclusion and consistency proofs: RFC 9162 examples, pass and fail cases.
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

/// A source that keeps the roots of perfect subtrees of 16 leaves and up (as the node's store
/// does) and counts how many leaves and subtrees are read.
struct KeepsSubtrees {
    leaves: Vec<Hash>,
    reads: std::cell::Cell<u64>,
}

impl LeafSource for KeepsSubtrees {
    fn len(&self) -> u64 {
        self.leaves.len() as u64
    }
    fn leaf(&self, index: u64) -> Option<Hash> {
        self.reads.set(self.reads.get() + 1);
        self.leaves.get(index as usize).copied()
    }
    fn keeps_subtrees(&self) -> bool {
        true
    }
    fn subtree(&self, lo: u64, size: u64) -> Option<Hash> {
        assert!(
            size.is_power_of_two() && lo.is_multiple_of(size),
            "asked for a subtree that is not aligned: {lo}+{size}"
        );
        if size < 16 || lo + size > self.leaves.len() as u64 {
            return None;
        }
        self.reads.set(self.reads.get() + 1);
        Some(root(&self.leaves[lo as usize..(lo + size) as usize]))
    }
}

#[test]
fn stored_subtrees_give_the_same_roots_and_proofs_with_few_reads() {
    let leaves: Vec<Hash> = (0..1500u32).map(|i| Hash(*blake3::hash(&i.to_be_bytes()).as_bytes())).collect();
    let src = KeepsSubtrees { leaves: leaves.clone(), reads: std::cell::Cell::new(0) };
    for size in [1u64, 2, 15, 16, 17, 31, 32, 33, 100, 511, 512, 513, 1000, 1024, 1500] {
        src.reads.set(0);
        assert_eq!(root_from(&src, size).unwrap(), root(&leaves[..size as usize]), "size {size}");
        assert!(src.reads.get() <= 16 * 12, "size {size}: {} reads", src.reads.get());
        for index in [0, size / 2, size - 1] {
            let p = prove_inclusion_from(&src, index, size).unwrap();
            assert_eq!(p, prove_inclusion(&leaves[..size as usize], index).unwrap());
        }
        for old in [1, size / 3, size] {
            if old >= 1 {
                let p = prove_consistency_from(&src, old, size).unwrap();
                assert_eq!(p, prove_consistency(&leaves[..size as usize], old).unwrap());
            }
        }
    }
}

#[test]
fn a_frontier_reports_each_subtree_a_leaf_completes() {
    let leaves = entries(16);
    let mut f = Frontier::new();
    let mut done = Vec::new();
    for (i, h) in leaves.iter().enumerate() {
        f.push_completing(h, |level, r| done.push((i, level, r)));
    }
    // Leaf 15 completes the subtrees of 2, 4, 8 and 16 leaves ending at it.
    let last: Vec<(u32, Hash)> = done.iter().filter(|(i, _, _)| *i == 15).map(|(_, l, r)| (*l, *r)).collect();
    let expected: Vec<(u32, Hash)> = (1..=4).map(|l| (l, root(&leaves[16 - (1 << l)..]))).collect();
    assert_eq!(last, expected);
    assert_eq!(done.len(), 8 + 4 + 2 + 1, "every perfect subtree of 2 leaves and up, once");
    assert_eq!(f.root(), root(&leaves));
}
