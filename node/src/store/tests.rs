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
