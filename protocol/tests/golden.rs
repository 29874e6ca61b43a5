//! Golden vectors for the canonical encoding: every entry body kind's signed-entry bytes and
//! entry hash, the genesis bytes and hash, signature bytes, a cosigned checkpoint, a Merkle root
//! and the encodings of an inclusion proof, a consistency proof and an equivocation proof.
//!
//! The vectors live in `protocol/tests/golden/entries.txt` as `name = hex` lines (lines starting
//! with `#` are comments). They pin the wire and hash format: if this test fails, the encoding,
//! a hash or a signature changed, which breaks every existing ledger and signature.
//!
//! To regenerate the file after an INTENDED format change, run
//!
//! ```text
//! LINLI_BLESS=1 cargo test -p linli-protocol --test golden
//! ```
//!
//! and review the diff of `entries.txt`. Without `LINLI_BLESS=1` the test only compares.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use common::{golden, Golden};
use linli_protocol::body::Body;
use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof, SignedCheckpoint};
use linli_protocol::encoding::{self, MAX_MESSAGE_BYTES};
use linli_protocol::merkle::{self, ConsistencyProof, InclusionProof};
use linli_protocol::state::{Account, ApplyContext, Change, Role};
use linli_protocol::testkit::cid;
use linli_protocol::verify::{verify_entry, verify_run};
use linli_protocol::{Genesis, SignedEntry, State};
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/entries.txt")
}

fn blessing() -> bool {
    std::env::var("LINLI_BLESS").as_deref() == Ok("1")
}

/// The vectors, in file order.
fn vectors(gd: &Golden) -> Vec<(String, String)> {
    let g = &gd.genesis_hash;
    let mut v: Vec<(String, String)> = vec![
        ("genesis.canonical_bytes".into(), hex::encode(gd.genesis.canonical_bytes())),
        ("genesis.hash".into(), gd.genesis.hash().to_hex()),
    ];
    for e in &gd.entries {
        let name = format!("entry.{:02}.{}", e.entry.seq, e.entry.body.kind());
        v.push((format!("{name}.bytes"), hex::encode(e.to_bytes())));
        v.push((format!("{name}.hash"), e.hash(g).to_hex()));
    }
    let pay = &gd.entries[5];
    let Body::Pay(p) = &pay.entry.body else { panic!("entry 5 is not a payment") };
    v.push(("entry.05.pay.signature".into(), pay.signature.to_hex()));
    v.push(("entry.05.pay.payment_signature".into(), p.payment.signature.to_hex()));
    v.push(("entry.05.pay.payment_tx_id".into(), p.payment.tx_id().to_hex()));
    v.push(("checkpoint.signed".into(), hex::encode(encoding::encode(&gd.checkpoint.signed))));
    v.push(("checkpoint.cosigned".into(), hex::encode(gd.checkpoint.to_bytes())));
    v.push(("merkle.root_16".into(), merkle::root(&gd.hashes()).to_hex()));
    v.push(("merkle.inclusion_5_16".into(), hex::encode(encoding::encode(&gd.inclusion))));
    v.push(("merkle.consistency_6_16".into(), hex::encode(encoding::encode(&gd.consistency))));
    v.push(("equivocation.entries".into(), hex::encode(gd.equivocation.to_bytes())));
    v
}

fn render(v: &[(String, String)]) -> String {
    let mut s = String::from(
        "# Golden vectors of the Linli canonical encoding (see protocol/tests/golden.rs).\n\
         # Regenerate only for an intended format change: LINLI_BLESS=1 cargo test -p linli-protocol --test golden\n",
    );
    for (k, h) in v {
        s.push_str(&format!("{k} = {h}\n"));
    }
    s
}

fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("golden line without '=': {l}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn bytes_of(file: &[(String, String)], name: &str) -> Vec<u8> {
    let (_, h) = file.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("golden file has no {name}"));
    hex::decode(h).unwrap_or_else(|e| panic!("{name} is not hex: {e}"))
}

#[test]
fn golden_vectors() {
    let gd = golden();
    let computed = vectors(&gd);
    let path = golden_path();
    if blessing() {
        std::fs::write(&path, render(&computed)).unwrap();
        eprintln!("wrote {} golden vectors to {}", computed.len(), path.display());
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e}); run with LINLI_BLESS=1 to create it", path.display()));
    let file = parse(&text);

    let mut problems = Vec::new();
    for (name, hex_now) in &computed {
        match file.iter().find(|(k, _)| k == name) {
            None => problems.push(format!("{name}: missing from the golden file")),
            Some((_, hex_file)) if hex_file != hex_now => {
                problems.push(format!("{name}: changed\n  golden:   {hex_file}\n  computed: {hex_now}"))
            }
            Some(_) => {}
        }
    }
    for (name, _) in &file {
        if !computed.iter().any(|(k, _)| k == name) {
            problems.push(format!("{name}: in the golden file but no longer computed"));
        }
    }
    let names: Vec<&String> = file.iter().map(|(k, _)| k).collect();
    let computed_names: Vec<&String> = computed.iter().map(|(k, _)| k).collect();
    if problems.is_empty() {
        assert_eq!(names, computed_names, "golden vectors are out of order");
    }
    assert!(
        problems.is_empty(),
        "{} golden vector(s) differ (if the format change is intended, rerun with LINLI_BLESS=1):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_body_kind_has_a_vector() {
    let gd = golden();
    let kinds: Vec<&str> = gd.entries.iter().map(|e| e.entry.body.kind()).collect();
    assert_eq!(kinds, Body::KINDS.to_vec());
}

#[test]
fn golden_bytes_decode_to_the_same_values() {
    let gd = golden();
    // While blessing, the file is being rewritten by `golden_vectors`: check the new values.
    let file = if blessing() { vectors(&gd) } else { parse(&std::fs::read_to_string(golden_path()).unwrap()) };
    for e in &gd.entries {
        let name = format!("entry.{:02}.{}.bytes", e.entry.seq, e.entry.body.kind());
        let bytes = bytes_of(&file, &name);
        let back = SignedEntry::from_bytes(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(&back, e, "{name}");
        assert_eq!(back.to_bytes(), bytes, "{name} re-encodes differently");
        let hash = bytes_of(&file, &name.replace(".bytes", ".hash"));
        assert_eq!(back.hash(&gd.genesis_hash).0.to_vec(), hash, "{name}: hash of the decoded entry");
    }
    let genesis = Genesis::from_canonical_bytes(&bytes_of(&file, "genesis.canonical_bytes")).unwrap();
    assert_eq!(genesis, gd.genesis);
    assert_eq!(genesis.hash().0.to_vec(), bytes_of(&file, "genesis.hash"));

    let signed: SignedCheckpoint =
        encoding::decode("signed checkpoint", &bytes_of(&file, "checkpoint.signed"), MAX_MESSAGE_BYTES).unwrap();
    assert_eq!(signed, gd.checkpoint.signed);
    let cosigned = CosignedCheckpoint::from_bytes(&bytes_of(&file, "checkpoint.cosigned")).unwrap();
    assert_eq!(cosigned, gd.checkpoint);
    let inclusion: InclusionProof =
        encoding::decode("inclusion", &bytes_of(&file, "merkle.inclusion_5_16"), MAX_MESSAGE_BYTES).unwrap();
    assert_eq!(inclusion, gd.inclusion);
    let consistency: ConsistencyProof =
        encoding::decode("consistency", &bytes_of(&file, "merkle.consistency_6_16"), MAX_MESSAGE_BYTES).unwrap();
    assert_eq!(consistency, gd.consistency);
    let eq = EquivocationProof::from_bytes(&bytes_of(&file, "equivocation.entries")).unwrap();
    assert_eq!(eq, gd.equivocation);
}

fn neighbour_account() -> Account {
    Account {
        role: Role::Resident,
        replaced_by: None,
        points: 0,
        minutes: 0,
        served_minutes: 0,
        awards: 0,
        lifetime_points: 0,
        enrolled_at: 0,
    }
}

/// The golden values are not just bytes: the ledger is valid, its signatures verify (single and
/// batched), and the checkpoint, proofs and equivocation proof check out.
#[test]
fn golden_ledger_is_valid() {
    let gd = golden();
    let g = gd.genesis_hash;
    let verified = verify_run(&g, gd.entries.clone(), gd.start_keys).unwrap();
    assert_eq!(verified.len(), 16);
    let mut state = State::new(&gd.genesis);
    // The ledger holds one entry per kind, so one `Enroll`: the neighbour who confirms the
    // time credit (seq 10) must be an enrolled resident too, and is put in the state directly.
    state.commit(vec![Change::Account(gd.community.clone(), gd.neighbour, neighbour_account())]);
    for (v, signer) in verified.iter().zip(&gd.signers) {
        assert_eq!(v.signer(), signer.public());
        let single = verify_entry(&g, v.signed().clone(), signer.public()).unwrap();
        assert_eq!(&single, v);
        state.apply(v, &ApplyContext::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.conservation_violation(), None);
    }
    assert_eq!(state.ledgers[&gd.community].key, gd.final_key.public());

    let hashes = gd.hashes();
    let root = merkle::root(&hashes);
    gd.inclusion.verify(&hashes[5], &root).unwrap();
    gd.consistency.verify(&merkle::root(&hashes[..6]), &root).unwrap();
    let witness = cid("xiangmihu");
    let witness_key = common::k("xiangmihu/signing").public();
    let n = gd.checkpoint.verify(&g, &gd.final_key.public(), |c, k| c == &witness && *k == witness_key, 1).unwrap();
    assert_eq!(n, 1);
    gd.equivocation.verify(&g, &gd.start_keys.current).unwrap();
}
