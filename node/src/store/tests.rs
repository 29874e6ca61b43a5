//! Store tests: commit and reload, heads, refusing another federation.

use super::*;
use linli_protocol::body::Body;
use linli_protocol::testkit::TestFederation;

#[test]
fn commit_reload_and_heads() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = TestFederation::new(&["a", "b"]);
    let store = Store::open(dir.path(), &f.genesis).unwrap();
    let mut batch = Batch::default();
    for i in 0..5u8 {
        let e = f.entry(
            "a",
            Body::Enroll(linli_protocol::body::Enroll {
                resident: linli_protocol::testkit::key(&format!("r{i}")).public(),
                profile_hash: Hash::ZERO,
            }),
        );
        let v = f.apply(e).unwrap();
        batch.entries.push((v.signed().clone(), v.hash()));
    }
    // Recompute the changes by replaying into a scratch state.
    let mut scratch = State::new(&f.genesis);
    for (e, _) in &batch.entries {
        let v = linli_protocol::verify::verify_entry(
            &f.genesis_hash,
            e.clone(),
            f.keys[&linli_protocol::testkit::cid("a")].public(),
        )
        .unwrap();
        let ch = scratch.check(&v, &Default::default()).unwrap();
        scratch.commit(ch.clone());
        batch.changes.extend(ch);
    }
    store.commit(&batch).unwrap();
    drop(store);
    let store = Store::open(dir.path(), &f.genesis).unwrap();
    let loaded = store.load_state(&f.genesis).unwrap();
    assert_eq!(loaded, f.state);
    store.check_heads(&f.genesis, &loaded).unwrap();
    assert_eq!(store.head(&linli_protocol::testkit::cid("a")).unwrap().0, 5);
    assert_eq!(store.head(&linli_protocol::testkit::cid("b")).unwrap().0, 0);
    let got = store.entries(&linli_protocol::testkit::cid("a"), 1, 2, usize::MAX).unwrap();
    assert_eq!(got.iter().map(|e| e.entry.seq).collect::<Vec<_>>(), vec![1, 2]);
    let h = batch.entries[3].1;
    assert_eq!(store.entry_by_hash(&h).unwrap().unwrap().entry.seq, 3);
}

#[test]
fn refuses_another_federation() {
    let dir = tempfile::tempdir().unwrap();
    let f = TestFederation::new(&["a"]);
    Store::open(dir.path(), &f.genesis).unwrap();
    let other = TestFederation::new(&["a", "b"]);
    assert!(matches!(Store::open(dir.path(), &other.genesis), Err(StoreError::Genesis { .. })));
}

/// `n` chained entries of ledger `a` (signed, not applied: the store does not check them).
fn chained(f: &TestFederation, n: usize) -> Vec<(SignedEntry, Hash)> {
    let mut w = f.chain("a");
    (0..n)
        .map(|i| {
            let resident = linli_protocol::testkit::key(&format!("sub{i}")).public();
            let e = w.next(Body::Enroll(linli_protocol::body::Enroll { resident, profile_hash: Hash::ZERO }));
            let h = e.hash(&f.genesis_hash);
            (e, h)
        })
        .collect()
}

#[test]
fn stored_subtree_roots_give_the_same_roots_and_proofs() {
    use linli_protocol::merkle::{self, prove_inclusion, prove_inclusion_from, root};
    let dir = tempfile::tempdir().unwrap();
    let f = TestFederation::new(&["a"]);
    let store = Store::open(dir.path(), &f.genesis).unwrap();
    let all = chained(&f, 700);
    // Groups of uneven sizes, as a sequencer commits them.
    let mut at = 0;
    for size in [1usize, 7, 16, 33, 100, 1, 1, 250, 291] {
        store.commit(&Batch { entries: all[at..at + size].to_vec(), ..Batch::default() }).unwrap();
        at += size;
    }
    assert_eq!(at, 700);
    let hashes: Vec<Hash> = all.iter().map(|(_, h)| *h).collect();
    let a = linli_protocol::testkit::cid("a");
    assert_eq!(store.subtree_root(&a, 4, 0), Some(root(&hashes[..16])));
    assert_eq!(store.subtree_root(&a, 9, 0), Some(root(&hashes[..512])));
    assert_eq!(store.subtree_root(&a, 4, 43), None, "leaves 688..704 are not all there");
    for size in [1u64, 15, 16, 17, 64, 255, 256, 257, 511, 512, 513, 699, 700] {
        assert_eq!(store.root(&a, size).unwrap(), root(&hashes[..size as usize]), "size {size}");
        let p = prove_inclusion_from(&store.leaves(&a), size / 2, size).unwrap();
        assert_eq!(p, prove_inclusion(&hashes[..size as usize], size / 2).unwrap());
    }
    store.check_subtrees(&a).unwrap();
    // A wrong stored root is found by the full check, naming its first leaf.
    let mut b = WriteBatch::default();
    b.put_cf(store.cf(Column::Subtrees).unwrap(), super::subtrees::subtree_key(&a, 5, 3), [9u8; 32]);
    store.write(b).unwrap();
    let err = store.check_subtrees(&a).unwrap_err().to_string();
    assert!(err.contains("seq 96") && err.contains("subtree"), "{err}");
    store.rebuild_subtrees(&a).unwrap();
    store.check_subtrees(&a).unwrap();
    assert_eq!(store.subtree_root(&a, 5, 3), Some(root(&hashes[96..128])));
    // A repair that cuts the ledger at 300 drops the subtrees over it; new entries rebuild them.
    store.truncate_and_rebuild(&[(a.clone(), 300, 700)], &State::new(&f.genesis)).unwrap();
    assert_eq!(store.subtree_root(&a, 8, 1), None, "leaves 256..512 were cut");
    assert_eq!(store.subtree_root(&a, 8, 0), Some(root(&hashes[..256])));
    let mut g = TestFederation::new(&["a"]);
    g.time_ms += 7; // another branch from 300 on
    let mut other: Vec<(SignedEntry, Hash)> = all[..300].to_vec();
    let mut w =
        linli_protocol::testkit::ChainWriter { seq: 300, head: hashes[299], time_ms: g.time_ms, ..g.chain("a") };
    for i in 0..300 {
        let resident = linli_protocol::testkit::key(&format!("other{i}")).public();
        let e = w.next(Body::Enroll(linli_protocol::body::Enroll { resident, profile_hash: Hash::ZERO }));
        let h = e.hash(&g.genesis_hash);
        other.push((e, h));
    }
    store.commit(&Batch { entries: other[300..].to_vec(), ..Batch::default() }).unwrap();
    let other_hashes: Vec<Hash> = other.iter().map(|(_, h)| *h).collect();
    for size in [300u64, 301, 512, 600] {
        assert_eq!(store.root(&a, size).unwrap(), merkle::root(&other_hashes[..size as usize]), "size {size}");
    }
    store.check_subtrees(&a).unwrap();
}

#[test]
fn records_live_in_their_own_column_and_are_read_on_demand() {
    use linli_protocol::testkit::{cid, key};
    use linli_protocol::{EntryRef, StateKey};
    let dir = tempfile::tempdir().unwrap();
    let f = TestFederation::new(&["a"]);
    let store = Store::open(dir.path(), &f.genesis).unwrap();
    let at = EntryRef { community: cid("a"), seq: 4, hash: Hash([4; 32]) };
    let nonce = StateKey::Nonce(cid("a"), key("r").public(), 9);
    let unused = StateKey::Nonce(cid("a"), key("r").public(), 10);
    let batch = Batch {
        changes: vec![
            Change::Nonce(cid("a"), key("r").public(), 9, at.clone()),
            Change::RequestId(cid("a"), 77, at.clone()),
            Change::Holding(cid("a"), key("m").public(), cid("a"), 5),
        ],
        ..Batch::default()
    };
    store.commit(&batch).unwrap();

    let lean = store.load_state_without_records(&f.genesis).unwrap();
    assert_eq!(lean.record_count(), 0);
    assert_eq!(lean.holding(&cid("a"), &key("m").public(), &cid("a")), 5);
    let full = store.load_state(&f.genesis).unwrap();
    assert_eq!(full.record_count(), 2);
    assert_eq!(full.holding(&cid("a"), &key("m").public(), &cid("a")), 5);

    // On demand: only the records that exist come back.
    let got = store.records(&[nonce.clone(), unused, StateKey::RequestId(cid("a"), 77)]).unwrap();
    assert_eq!(got, vec![batch.changes[0].clone(), batch.changes[1].clone()]);
    assert_eq!(store.state_item(&nonce).unwrap(), Some(batch.changes[0].clone()));
    let raw = |c: Column| store.db.get_cf(store.cf(c).unwrap(), encoding::encode(&nonce)).unwrap();
    assert!(raw(Column::Records).is_some() && raw(Column::State).is_none());

    // A record found in the wrong column is corruption, not state.
    store
        .db
        .put_cf(store.cf(Column::State).unwrap(), encoding::encode(&nonce), encoding::encode(&batch.changes[0]))
        .unwrap();
    let err = store.load_state_without_records(&f.genesis).unwrap_err();
    assert!(err.to_string().contains("stored in column state"), "{err}");
}
