//! Pass and fail cases of following a community's key changes as a light client.

use super::super::{EntryProof, LightError, LightTrust};
use super::*;
use crate::body::{RevokeKey, RotateKey};
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::keys::Keypair;
use crate::merkle::{prove_inclusion, root};
use crate::testkit::{cid, key, TestFederation};

/// Ledger `a`: enrol, rotate to `a/k1` (seq 1), enrol, revoke `a/k1` for `a/k2` (seq 3), enrol;
/// built and applied by the full state machine.
struct Fixture {
    fed: TestFederation,
    entries: Vec<SignedEntry>,
}

fn rotation_body(fed: &TestFederation, new: &Keypair, seq: u64) -> (PublicKey, crate::Signature) {
    let message = crate::body::rotation_message(&cid("a"), seq);
    (new.public(), new.sign("rotate-key", &fed.genesis_hash, &message))
}

fn fixture() -> Fixture {
    let mut fed = TestFederation::new(&["a", "b", "c"]);
    let mut entries = Vec::new();
    entries.push(fed.enroll("a", &key("r0")).unwrap().signed().clone());
    let (new_key, new_key_signature) = rotation_body(&fed, &key("a/k1"), 1);
    entries.push(fed.append("a", Body::RotateKey(RotateKey { new_key, new_key_signature })).unwrap().signed().clone());
    fed.keys.insert(cid("a"), key("a/k1"));
    entries.push(fed.enroll("a", &key("r1")).unwrap().signed().clone());
    let (new_key, new_key_signature) = rotation_body(&fed, &key("a/k2"), 3);
    let revoke = RevokeKey { revoked_key: key("a/k1").public(), new_key, new_key_signature };
    entries.push(fed.append("a", Body::RevokeKey(revoke)).unwrap().signed().clone());
    fed.keys.insert(cid("a"), key("a/k2"));
    entries.push(fed.enroll("a", &key("r2")).unwrap().signed().clone());
    Fixture { fed, entries }
}

impl Fixture {
    fn hashes(&self) -> Vec<Hash> {
        self.entries.iter().map(|e| e.hash(&self.fed.genesis_hash)).collect()
    }

    /// A checkpoint of `size` signed by `signer`, cosigned by `b` and `c`.
    fn checkpoint(&self, size: u64, signer: &Keypair) -> CosignedCheckpoint {
        let cp = Checkpoint { community: cid("a"), size, root: root(&self.hashes()[..size as usize]), time_ms: 1 };
        let signed = SignedCheckpoint::sign(cp, signer, &self.fed.genesis_hash);
        let cosignatures =
            ["b", "c"].iter().map(|w| signed.cosign(cid(w), &self.fed.keys[&cid(w)], &self.fed.genesis_hash)).collect();
        CosignedCheckpoint { signed, cosignatures }
    }

    fn change(&self, seq: u64, size: u64) -> KeyChangeProof {
        KeyChangeProof {
            entry: self.entries[seq as usize].clone(),
            inclusion: prove_inclusion(&self.hashes()[..size as usize], seq).unwrap(),
        }
    }

    /// The honest proof: both changes under the checkpoint of all five entries (signed by k2).
    fn history(&self) -> KeyHistoryProof {
        KeyHistoryProof {
            community: cid("a"),
            changes: vec![self.change(1, 5), self.change(3, 5)],
            checkpoint: self.checkpoint(5, &key("a/k2")),
        }
    }

    fn entry_proof(&self, seq: u64) -> EntryProof {
        EntryProof {
            entry: self.entries[seq as usize].clone(),
            checkpoint: self.checkpoint(5, &key("a/k2")),
            inclusion: prove_inclusion(&self.hashes()[..5], seq).unwrap(),
        }
    }

    fn trust(&self) -> LightTrust {
        LightTrust::new(self.fed.genesis.clone(), 2)
    }
}

#[test]
fn a_rotation_and_a_revocation_are_followed() {
    let f = fixture();
    let mut t = f.trust();
    // Before: the entry signed by the newest key is refused (the genesis key is expected).
    assert!(matches!(t.verify(&f.entry_proof(4)), Err(LightError::Signature(_))));
    let learned = t.learn_keys(&f.history()).unwrap().unwrap();
    let expected = vec![(0, key("a/signing").public()), (2, key("a/k1").public()), (4, key("a/k2").public())];
    assert_eq!((learned.keys, learned.revoked, learned.proven_at), (expected, vec![key("a/k1").public()], 5));
    let h = t.history(&cid("a")).unwrap();
    assert!(h.may_cosign(&key("a/signing").public()) && h.may_cosign(&key("a/k2").public()));
    assert!(!h.may_cosign(&key("a/k1").public()), "a revoked key's cosignatures no longer count");
    // After: every entry verifies against the key in force at its seq.
    for seq in 0..5 {
        assert_eq!(t.verify(&f.entry_proof(seq)).unwrap().at.seq, seq);
    }
    // Learning the same history again tells nothing new.
    assert_eq!(t.learn_keys(&f.history()).unwrap(), None);
}

#[test]
fn a_left_out_change_fails_on_the_checkpoint() {
    let f = fixture();
    let mut proof = f.history();
    proof.changes.pop();
    let err = f.trust().learn_keys(&proof).unwrap_err();
    assert!(matches!(err, LightError::Checkpoint(_)), "{err}");
}

#[test]
fn changes_out_of_order_fail() {
    let f = fixture();
    let mut proof = f.history();
    proof.changes.insert(1, f.change(1, 5));
    let err = f.trust().learn_keys(&proof).unwrap_err();
    assert_eq!(err, LightError::KeyChangeOrder { after: 1, actual: 1 });
}

#[test]
fn an_entry_that_changes_no_key_fails() {
    let f = fixture();
    let mut proof = f.history();
    proof.changes.insert(0, f.change(0, 5));
    let err = f.trust().learn_keys(&proof).unwrap_err();
    assert_eq!(err, LightError::NotAKeyChange { community: cid("a"), seq: 0 });
}

#[test]
fn a_rotation_signed_by_a_stranger_fails() {
    let f = fixture();
    let mut proof = f.history();
    let mut forged = f.entries[1].clone();
    forged.signature =
        key("thief").sign(crate::entry::ENTRY_DOMAIN, &f.fed.genesis_hash, &forged.hash(&f.fed.genesis_hash).0);
    proof.changes[0].entry = forged;
    let err = f.trust().learn_keys(&proof).unwrap_err();
    assert!(matches!(err, LightError::Signature(_)), "{err}");
}

#[test]
fn a_revocation_of_a_key_not_in_force_fails() {
    let f = fixture();
    let mut t = f.trust();
    // Only the revocation, as if the rotation never happened: it names a1, but a/signing is in force.
    let proof = KeyHistoryProof {
        community: cid("a"),
        changes: vec![f.change(3, 5)],
        checkpoint: f.checkpoint(5, &key("a/k2")),
    };
    let err = t.learn_keys(&proof).unwrap_err();
    assert_eq!(
        err,
        LightError::RevokedKey {
            community: cid("a"),
            seq: 3,
            expected: key("a/signing").public(),
            actual: key("a/k1").public()
        }
    );
}

#[test]
fn an_older_history_never_replaces_a_newer_one() {
    let f = fixture();
    let mut t = f.trust();
    t.learn_keys(&f.history()).unwrap();
    let older = KeyHistoryProof {
        community: cid("a"),
        changes: vec![f.change(1, 2)],
        checkpoint: f.checkpoint(2, &key("a/k1")),
    };
    assert_eq!(t.learn_keys(&older).unwrap(), None);
    assert_eq!(t.history(&cid("a")).unwrap().latest(), key("a/k2").public());
}

#[test]
fn the_revoked_key_signs_nothing_after_its_revocation() {
    let f = fixture();
    let mut t = f.trust();
    t.learn_keys(&f.history()).unwrap();
    let mut proof = f.entry_proof(4);
    proof.entry.signature =
        key("a/k1").sign(crate::entry::ENTRY_DOMAIN, &f.fed.genesis_hash, &proof.entry.hash(&f.fed.genesis_hash).0);
    assert!(matches!(t.verify(&proof), Err(LightError::Signature(_))));
}

#[test]
fn a_conflicting_restored_history_is_refused() {
    let f = fixture();
    let mut t = f.trust();
    let other = KeyHistory {
        recovery: key("a/recovery").public(),
        keys: vec![(0, key("x").public())],
        revoked: vec![],
        proven_at: 0,
    };
    assert_eq!(t.restore_history(&cid("a"), other), Err(LightError::KeyHistoryConflict { community: cid("a") }));
    let learned = f.trust().learn_keys(&f.history()).unwrap().unwrap();
    t.restore_history(&cid("a"), learned.clone()).unwrap();
    assert_eq!(t.history(&cid("a")), Some(&learned));
}

#[test]
fn key_at_picks_the_key_in_force() {
    let h = KeyHistory {
        recovery: key("r").public(),
        keys: vec![(0, key("k0").public()), (5, key("k1").public())],
        revoked: vec![],
        proven_at: 9,
    };
    assert_eq!(h.key_at(0), key("k0").public());
    assert_eq!(h.key_at(4), key("k0").public());
    assert_eq!(h.key_at(5), key("k1").public());
    assert_eq!(h.key_at(u64::MAX), key("k1").public());
}
