//! A full node that lies during a sale: the till (real receipts store in RocksDB, real checks)
//! talks to a scripted community node that sequences the payment but answers the proof request
//! with a forged proof. The till never accepts the sale and stores no receipt; with the honest
//! proof it accepts.

use super::link;
use super::store::TillStore;
use super::till::Till;
use crate::network::messages::{SyncRequest, SyncResponse};
use linli_protocol::body::{Body, Enroll, PayEntry, Payment, Signed};
use linli_protocol::checkpoint::{Checkpoint, CosignedCheckpoint, SignedCheckpoint};
use linli_protocol::light::EntryProof;
use linli_protocol::merkle;
use linli_protocol::testkit::{cid, key, TestFederation};
use linli_protocol::{Hash, SignedEntry};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Community a's ledger: two enrolments, then the payment (seq 2) at merchant `shop` of b.
struct Sale {
    fed: TestFederation,
    payment: Signed<Payment>,
    entries: Vec<SignedEntry>,
}

fn sale() -> Sale {
    let fed = TestFederation::new(&["a", "b", "c"]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let p = Payment {
        payer: key("payer").public(),
        merchant: key("shop").public(),
        merchant_community: cid("b"),
        points: 20,
        price_fen: 300,
        nonce: 1,
        expiry_ms: now + 600_000,
        genesis: fed.genesis_hash,
    };
    let payment = fed.sign(p, &key("payer"));
    let mut w = fed.chain("a");
    let mut entries: Vec<SignedEntry> = ["payer", "other"]
        .iter()
        .map(|r| w.next(Body::Enroll(Enroll { resident: key(r).public(), profile_hash: Hash::ZERO })))
        .collect();
    entries.push(w.next(Body::Pay(PayEntry { payment: payment.clone(), exposure_limit: None })));
    Sale { fed, payment, entries }
}

impl Sale {
    fn hashes(&self) -> Vec<Hash> {
        self.entries.iter().map(|e| e.hash(&self.fed.genesis_hash)).collect()
    }

    /// A proof of entry `seq` under a checkpoint of `root` signed by `issuer_key`, cosigned by
    /// b and c with `witness_keys`.
    fn proof(&self, seq: usize, root: Hash, issuer_key: &str, witness_keys: [&str; 2]) -> EntryProof {
        let gh = &self.fed.genesis_hash;
        let size = self.entries.len() as u64;
        let cp = Checkpoint { community: cid("a"), size, root, time_ms: 1 };
        let signed = SignedCheckpoint::sign(cp, &key(issuer_key), gh);
        let cosignatures =
            ["b", "c"].iter().zip(witness_keys).map(|(w, k)| signed.cosign(cid(w), &key(k), gh)).collect();
        EntryProof {
            entry: self.entries[seq].clone(),
            checkpoint: CosignedCheckpoint { signed, cosignatures },
            inclusion: merkle::prove_inclusion(&self.hashes(), seq as u64).unwrap(),
        }
    }

    fn honest(&self) -> EntryProof {
        self.proof(2, merkle::root(&self.hashes()), "a/signing", ["b/signing", "c/signing"])
    }
}

/// A till of merchant `shop` (home b, two witnesses) whose only community node answers the
/// submission with the real `Pay` entry and the proof request with `proof`.
fn till(s: &Sale, proof: EntryProof, dir: &std::path::Path) -> Till {
    let pay = s.entries[2].clone();
    let answer = move |request: SyncRequest| match request {
        SyncRequest::SubmitPayment { .. } => SyncResponse::Sequenced(Box::new(pay.clone())),
        SyncRequest::Proof { .. } => SyncResponse::Proof(Box::new(proof.clone())),
        SyncRequest::Alerts => SyncResponse::Alerts(vec![]),
        _ => SyncResponse::Error("not served".into()),
    };
    let store = TillStore::open(dir, &s.fed.genesis).unwrap();
    let timeout = Duration::from_millis(300);
    Till::new(cid("b"), key("shop"), s.fed.genesis.clone(), 2, timeout, store, link::scripted(answer))
}

#[tokio::test]
async fn a_forged_proof_from_a_full_node_is_refused_during_a_sale() {
    let s = sale();
    let root = merkle::root(&s.hashes());
    let mut wrong_path = s.honest();
    wrong_path.inclusion.path[0] = Hash([7; 32]);
    let forged = [
        (
            "checkpoint not signed by the issuer",
            s.proof(2, root, "mallory", ["b/signing", "c/signing"]),
            "proof-invalid",
        ),
        ("root of another tree", s.proof(2, Hash([9; 32]), "a/signing", ["b/signing", "c/signing"]), "proof-invalid"),
        ("wrong audit path", wrong_path, "proof-invalid"),
        ("the proof of another entry", s.proof(1, root, "a/signing", ["b/signing", "c/signing"]), "proof-invalid"),
        // Cosignatures by keys that are not the witnesses': never enough witnesses.
        ("forged cosignatures", s.proof(2, root, "a/signing", ["mallory-1", "mallory-2"]), "unconfirmed"),
    ];
    for (what, proof, code) in forged {
        let dir = tempfile::tempdir().unwrap();
        let t = till(&s, proof, dir.path());
        let refused = t.sale(cid("a"), s.payment.clone()).await.unwrap_err();
        assert_eq!(refused.code, code, "{what}: {refused}");
        assert!(t.store.receipts().unwrap().is_empty(), "{what}: a receipt was stored");
    }
    // The same node telling the truth: the sale is accepted.
    let dir = tempfile::tempdir().unwrap();
    let t = till(&s, s.honest(), dir.path());
    let receipt = t.sale(cid("a"), s.payment.clone()).await.unwrap();
    assert_eq!((receipt.at.seq, receipt.points, receipt.witnesses), (2, 20, 2));
    assert_eq!(t.store.receipts().unwrap().len(), 1);
}
