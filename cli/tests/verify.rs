//! `linli verify` against real RocksDB directories written by a real node: it passes on an
//! honest ledger (read from the directory, as a secondary instance beside the running node, and
//! over HTTP), and fails, naming the seq and the rule, on a directory corrupted the way an
//! attacker with disk access would (raw RocksDB writes, not through the node).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use linli_node::store::Column;
use linli_protocol::body::{Body, Signed};
use linli_protocol::checkpoint::{CosignedCheckpoint, SignedCheckpoint};
use linli_protocol::{encoding, Change, Hash, SignedEntry, StateKey};
use serde_json::Value;
use std::path::Path;

fn verify_db(ledger: &Ledger, data: &Path) -> (i32, Value, String) {
    run_json(&["verify", "--db", data.to_str().unwrap(), "--genesis", &ledger.files.genesis_arg(), "--quiet"])
}

/// Verification fails, first at `seq` of lianhua with `rule`, in JSON and in the human message.
fn assert_fails(ledger: &Ledger, data: &Path, seq: u64, rule: &str) -> Value {
    let (code, v, err) = verify_db(ledger, data);
    assert_eq!(code, 1, "{v}\n{err}");
    let f = &v["failure"];
    assert_eq!(
        (f["community"].as_str(), f["seq"].as_u64(), f["rule"].as_str()),
        (Some("lianhua"), Some(seq), Some(rule)),
        "{v}"
    );
    assert_eq!(v["ok"], false);
    let (code, _, err) = run(&["verify", "--db", data.to_str().unwrap(), "--genesis", &ledger.files.genesis_arg()]);
    assert_eq!(code, 1);
    assert!(err.contains("community lianhua") && err.contains(&format!("rule {rule}")), "{err}");
    f.clone()
}

fn resign(entry: linli_protocol::Entry, ledger: &Ledger) -> Vec<u8> {
    SignedEntry::sign(entry, &key("lianhua/signing"), &ledger.files.genesis_hash).to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_real_node_ledger() {
    let files = NodeFiles::new();
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api::new(node.http_addr, files.genesis_hash);
    let (seqs, checkpoints) = scenario(&api).await;
    let size = *checkpoints.last().unwrap();
    assert_eq!(seqs["limit"] + 1, size);

    // While the node runs: over HTTP, and as a secondary instance of its directory.
    let g = files.genesis_arg();
    let (code, out, err) = run_async(vec![
        "--json".into(),
        "verify".into(),
        "--url".into(),
        api.base.clone(),
        "--genesis".into(),
        g.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["ok"].as_bool(), v["entries"].as_u64()), (Some(true), Some(size)), "{v}");
    assert_eq!(v["ledgers"][0]["checkpoints_verified"], 1, "the API serves the newest checkpoint: {v}");
    let scratch = tempfile::tempdir().unwrap();
    let data = files.data();
    let args = vec!["verify", "--db", &data, "--secondary", scratch.path().to_str().unwrap(), "--genesis", &g];
    let (code, out, err) = run_async(args.into_iter().map(String::from).collect()).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("OK:"), "{out}");
    stop(node, files.data_dir()).await;

    // The stopped node's directory, read-only: every invariant, both checkpoints, the stored state.
    let (code, out, err) =
        run_async(vec!["verify".into(), "--db".into(), files.data(), "--genesis".into(), g.clone()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("OK:") && out.contains("the stored derived state"), "{out}");
    let (code, out, _) =
        run_async(vec!["--json".into(), "verify".into(), "--db".into(), files.data(), "--genesis".into(), g]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let l = &v["ledgers"][0];
    assert_eq!(l["community"], "lianhua");
    assert_eq!(l["entries"].as_u64(), Some(size));
    assert_eq!(l["checkpoints_verified"], 2);
    assert_eq!(
        (l["points_issued"].as_u64(), l["points_redeemed"].as_u64(), l["points_settled"].as_u64()),
        (Some(260), Some(20), Some(30))
    );
    assert_eq!((l["minutes_credited"].as_u64(), l["minutes_spent"].as_u64()), (Some(90), Some(60)));
    assert_eq!(v["stored_state_checked"], true);
    assert_eq!(v["ledgers"][1]["entries"], 0);
}

#[test]
fn flipped_byte_in_a_stored_entry() {
    let ledger = build_ledger();
    let k = ledger.seq("award");
    // A bit of the signature.
    let (_t, data) = copy_data(&ledger);
    let raw = Raw::open(&data);
    let mut v = raw.get(Column::Entries, "lianhua", k);
    *v.last_mut().unwrap() ^= 0x01;
    raw.put(Column::Entries, "lianhua", k, &v);
    drop(raw);
    let f = assert_fails(&ledger, &data, k, "signature");
    assert_eq!(f["kind"], "award");
    // A bit in the middle of the content: whatever breaks, it is named at that seq.
    let (_t2, data) = copy_data(&ledger);
    let raw = Raw::open(&data);
    let mut v = raw.get(Column::Entries, "lianhua", k);
    let mid = v.len() / 2;
    v[mid] ^= 0x40;
    raw.put(Column::Entries, "lianhua", k, &v);
    drop(raw);
    let (code, v, err) = verify_db(&ledger, &data);
    assert_eq!(code, 1, "{v}\n{err}");
    assert_eq!(v["failure"]["seq"].as_u64(), Some(k), "{v}");
    assert!(["signature", "decode", "misplaced-entry"].contains(&v["failure"]["rule"].as_str().unwrap()), "{v}");
}

#[test]
fn entry_removed() {
    let ledger = build_ledger();
    let k = ledger.seq("pay");
    let (_t, data) = copy_data(&ledger);
    Raw::open(&data).delete(Column::Entries, "lianhua", k);
    assert_fails(&ledger, &data, k, "missing-entry");
    // The last entry: found through the store's own records of the ledger's size.
    let (_t2, data) = copy_data(&ledger);
    let last = ledger.size() - 1;
    Raw::open(&data).delete(Column::Entries, "lianhua", last);
    let f = assert_fails(&ledger, &data, last, "missing-entry");
    assert!(f["message"].as_str().unwrap().contains("ends after"), "{f}");
}

#[test]
fn two_entries_swapped() {
    let ledger = build_ledger();
    let k = ledger.seq("settle");
    let (_t, data) = copy_data(&ledger);
    let raw = Raw::open(&data);
    let (a, b) = (raw.get(Column::Entries, "lianhua", k), raw.get(Column::Entries, "lianhua", k + 1));
    raw.put(Column::Entries, "lianhua", k, &b);
    raw.put(Column::Entries, "lianhua", k + 1, &a);
    drop(raw);
    assert_fails(&ledger, &data, k, "misplaced-entry");
}

#[test]
fn award_points_not_matching_the_rule_table() {
    let ledger = build_ledger();
    let k = ledger.seq("award");
    let (_t, data) = copy_data(&ledger);
    let raw = Raw::open(&data);
    let mut e = SignedEntry::from_bytes(&raw.get(Column::Entries, "lianhua", k)).unwrap().entry;
    let Body::Award(a) = &mut e.body else { panic!("seq {k} is not an award") };
    a.points += 10;
    raw.put(Column::Entries, "lianhua", k, &resign(e, &ledger));
    drop(raw);
    // The re-signed award also breaks the next entry's prev_hash; the award's own seq comes first.
    let f = assert_fails(&ledger, &data, k, "award-points");
    assert!(f["message"].as_str().unwrap().contains("the rule table gives 200"), "{f}");
}

#[test]
fn settlement_with_fen_not_points_times_ten() {
    let ledger = build_ledger();
    let k = ledger.seq("settle");
    let (_t, data) = copy_data(&ledger);
    let raw = Raw::open(&data);
    let mut e = SignedEntry::from_bytes(&raw.get(Column::Entries, "lianhua", k)).unwrap().entry;
    let Body::Settle(s) = &mut e.body else { panic!("seq {k} is not a settlement") };
    let mut request = s.request.payload.clone();
    request.fen = request.points * 10 + 5;
    s.request = Signed::sign(request, &key("shop"), &ledger.files.genesis_hash);
    raw.put(Column::Entries, "lianhua", k, &resign(e, &ledger));
    drop(raw);
    let f = assert_fails(&ledger, &data, k, "exchange-rate");
    assert_eq!(f["kind"], "settle");
}

#[test]
fn checkpoint_whose_root_does_not_match() {
    let ledger = build_ledger();
    let size = ledger.checkpoints[0];
    let tamper = |resign: bool| {
        let (t, data) = copy_data(&ledger);
        let raw = Raw::open(&data);
        let mut cp = CosignedCheckpoint::from_bytes(&raw.get(Column::Checkpoints, "lianhua", size)).unwrap();
        cp.signed.checkpoint.root = Hash([9; 32]);
        if resign {
            cp.signed = SignedCheckpoint::sign(
                cp.signed.checkpoint.clone(),
                &key("lianhua/signing"),
                &ledger.files.genesis_hash,
            );
        }
        raw.put(Column::Checkpoints, "lianhua", size, &cp.to_bytes());
        drop(raw);
        (t, data)
    };
    // Signed by the community, but the first `size` entries have another root.
    let (_t, data) = tamper(true);
    let f = assert_fails(&ledger, &data, size - 1, "checkpoint-root");
    assert_eq!(f["checkpoint_size"].as_u64(), Some(size));
    let (_, _, err) = run(&["verify", "--db", data.to_str().unwrap(), "--genesis", &ledger.files.genesis_arg()]);
    assert!(err.contains(&format!("checkpoint of size {size}")), "{err}");
    // Edited without the key: the signature no longer verifies.
    let (_t2, data) = tamper(false);
    assert_fails(&ledger, &data, size - 1, "checkpoint-signature");
}

#[test]
fn edited_balance_in_the_state_column() {
    let ledger = build_ledger();
    let (_t, data) = copy_data(&ledger);
    let raw = Raw::open(&data);
    let state_key = encoding::encode(&StateKey::Account(cid("lianhua"), key("r1").public()));
    let Change::Account(c, k, mut account) =
        encoding::decode::<Change>("change", &raw.get_raw(Column::State, &state_key), 1 << 20).unwrap()
    else {
        panic!("not an account row")
    };
    account.points += 1000;
    raw.put_raw(Column::State, &state_key, &encoding::encode(&Change::Account(c, k, account)));
    drop(raw);
    let (code, v, err) = verify_db(&ledger, &data);
    assert_eq!(code, 1, "{v}\n{err}");
    assert_eq!(
        (v["failure"]["rule"].as_str(), v["failure"]["community"].as_str()),
        (Some("stored-state"), Some("lianhua")),
        "{v}"
    );
    assert!(v["failure"]["message"].as_str().unwrap().contains(&key("r1").public().to_hex()), "{v}");
}

#[test]
fn refuses_bad_input_cleanly() {
    let ledger = build_ledger();
    let g = ledger.files.genesis_arg();
    // Not a data directory, an unknown community, no source: exit 2 with a message, no panic.
    let (code, _, err) = run(&["verify", "--db", "/nonexistent/dir", "--genesis", &g]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a RocksDB data directory"), "{err}");
    let (code, _, err) = run(&["verify", "--db", &ledger.files.data(), "--genesis", &g, "--community", "nowhere"]);
    assert_eq!(code, 2);
    assert!(err.contains("not in the genesis"), "{err}");
    let (code, _, err) = run(&["verify", "--genesis", &g]);
    assert_eq!(code, 2);
    assert!(err.contains("--db"), "{err}");
    // Another federation's genesis is refused by the store.
    let other = tempfile::tempdir().unwrap();
    let path = other.path().join("g.toml");
    std::fs::write(&path, linli_protocol::testkit::genesis(&["lianhua"]).to_toml()).unwrap();
    let (code, _, err) = run(&["verify", "--db", &ledger.files.data(), "--genesis", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("federation"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn cross_ledger_citations_are_followed() {
    use linli_protocol::body::{Award, Credit, ExposureLimit, PayEntry, RegisterMerchant};
    use linli_protocol::rules::RuleTable;
    use linli_protocol::testkit::TestFederation;
    use std::collections::BTreeMap;
    // A lianhua resident pays at a shatou merchant: the Pay (lianhua) cites shatou's exposure
    // limit, and shatou's Credit cites the Pay.
    let mut f = TestFederation::new(&FEDERATION);
    let mut log: BTreeMap<&str, Vec<SignedEntry>> = BTreeMap::new();
    let mut add = |f: &mut TestFederation, c: &'static str, body: Body| {
        let v = f.append(c, body).unwrap();
        log.entry(c).or_default().push(v.signed().clone());
        v.signed().entry_ref(&f.genesis_hash)
    };
    let (r1, shop) = (key("r1"), key("far-shop"));
    add(
        &mut f,
        "lianhua",
        Body::Enroll(linli_protocol::body::Enroll { resident: r1.public(), profile_hash: Hash::ZERO }),
    );
    let m = RegisterMerchant { merchant: shop.public(), name: "Noodles".into(), category: "food".into() };
    add(&mut f, "shatou", Body::RegisterMerchant(m));
    add(&mut f, "lianhua", Body::SetRules(RuleTable::default_table(1)));
    let award = Award {
        resident: r1.public(),
        activity: "mediation".into(),
        minutes: 60,
        rating: 5,
        bonuses: vec!["complex".into()],
        points: 200,
        rules_version: 1,
        request_id: 1,
    };
    add(&mut f, "lianhua", Body::Award(award));
    let limit =
        add(&mut f, "shatou", Body::SetExposureLimit(ExposureLimit { issuer: cid("lianhua"), limit_fen: 100_000 }));
    let payment = f.sign(f.payment(&r1, &shop, "shatou", 30, 300, 1), &r1);
    let pay = add(&mut f, "lianhua", Body::Pay(PayEntry { payment, exposure_limit: Some(limit) }));
    let credit = Credit { source: pay, merchant: shop.public(), issuer: cid("lianhua"), points: 30 };
    let credit = add(&mut f, "shatou", Body::Credit(credit));

    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("genesis.toml");
    std::fs::write(&genesis, f.genesis.to_toml()).unwrap();
    let g = genesis.to_str().unwrap();
    // shatou's entries first in the file: the replay must interleave the two ledgers.
    let export = |name: &str, which: &[&str]| {
        let lines: Vec<String> =
            which.iter().flat_map(|c| log[c].iter().map(|e| serde_json::to_string(e).unwrap())).collect();
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path.display().to_string()
    };
    let both = export("both.jsonl", &["shatou", "lianhua"]);
    let (code, v, err) = run_json(&["verify", "--from-export", &both, "--genesis", g, "--community", "shatou"]);
    assert_eq!(code, 0, "{v}\n{err}");
    let ledgers = v["ledgers"].as_array().unwrap();
    let lianhua = ledgers.iter().find(|l| l["community"] == "lianhua").expect("lianhua pulled in");
    assert_eq!((lianhua["dependency"].as_bool(), lianhua["entries"].as_u64()), (Some(true), Some(4)), "{v}");
    let (code, out, _) = run(&["verify", "--from-export", &both, "--genesis", g, "--community", "shatou"]);
    assert_eq!(code, 0);
    assert!(out.contains("lianhua (cited)"), "{out}");
    // Without lianhua's ledger, shatou's credit cites a payment nobody holds.
    let alone = export("shatou.jsonl", &["shatou"]);
    let (code, v, _) = run_json(&["verify", "--from-export", &alone, "--genesis", g]);
    assert_eq!(code, 1);
    let failure = &v["failure"];
    assert_eq!(
        (failure["community"].as_str(), failure["rule"].as_str()),
        (Some("shatou"), Some("missing-dependency")),
        "{v}"
    );
    assert_eq!(failure["seq"].as_u64(), Some(credit.seq));
}
