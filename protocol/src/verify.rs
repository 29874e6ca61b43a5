//! Signature verification for runs of entries, batched.
//!
//! Every signature an entry carries (the community's, and any resident's, merchant's or new
//! key's inside the body) is collected; a run is checked in one batch ([`crate::batch`]).
//! If the batch fails, each signature is checked alone ([`keys::verify_message`]) so the bad
//! entry is named. Validity is defined by the cofactored equation of `keys::verify_message`,
//! with keys and `R` screened the same way on both paths: a passing batch implies every
//! signature in it is valid (up to the 2^-128 chance of its random coefficients), and a failing
//! batch is decided signature by signature, so batch and single verification agree.
//!
//! The key that must sign entry `seq` is the key in force: the start key, replaced after a
//! `RotateKey` or `RevokeKey` entry by its new key; a `RevokeKey` itself is signed by the
//! community's recovery key. A [`VerifiedEntry`] can only be built here, so the state machine
//! knows its signatures were checked.

use crate::batch::{self, BatchItem};
use crate::body::{rotation_message, Body, Signed, SignedPayload};
use crate::entry::{SignedEntry, ENTRY_DOMAIN};
use crate::keys::{self, SignatureError};
use crate::primitives::{CommunityId, Hash, PublicKey, Signature};
use curve25519_dalek::edwards::EdwardsPoint;
use std::collections::BTreeMap;

/// A signature check that failed, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("community {community} seq {seq}: {what} signature refused: {error}")]
pub struct VerifyError {
    pub community: CommunityId,
    pub seq: u64,
    pub what: &'static str,
    pub error: SignatureError,
}

/// An entry whose every signature verified, with its hash and the community key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    entry: SignedEntry,
    hash: Hash,
    signer: PublicKey,
}

impl VerifiedEntry {
    pub fn signed(&self) -> &SignedEntry {
        &self.entry
    }
    pub fn hash(&self) -> Hash {
        self.hash
    }
    pub fn signer(&self) -> PublicKey {
        self.signer
    }
    pub fn into_signed(self) -> SignedEntry {
        self.entry
    }
}

/// The community keys needed to follow a ledger's signers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerKeys {
    /// The key in force at the first entry of the run.
    pub current: PublicKey,
    /// The community's offline recovery key (from the genesis).
    pub recovery: PublicKey,
}

impl SignerKeys {
    /// The key that must sign `entry`, and the keys in force after it.
    pub fn step(&self, entry: &SignedEntry) -> (PublicKey, SignerKeys) {
        match &entry.entry.body {
            Body::RotateKey(r) => (self.current, SignerKeys { current: r.new_key, recovery: self.recovery }),
            Body::RevokeKey(r) => (self.recovery, SignerKeys { current: r.new_key, recovery: self.recovery }),
            _ => (self.current, *self),
        }
    }
}

struct Item {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
    what: &'static str,
}

fn payload_item<T: SignedPayload>(s: &Signed<T>, genesis: &Hash, what: &'static str) -> Item {
    Item { key: s.payload.signer(), message: s.signed_message(genesis), signature: s.signature, what }
}

fn items(entry: &SignedEntry, hash: &Hash, signer: PublicKey, genesis: &Hash) -> Vec<Item> {
    let mut out = vec![Item {
        key: signer,
        message: keys::signing_message(ENTRY_DOMAIN, genesis, &hash.0),
        signature: entry.signature,
        what: "community entry",
    }];
    let e = &entry.entry;
    let rotation = |new_key: PublicKey, sig: Signature| Item {
        key: new_key,
        message: keys::signing_message("rotate-key", genesis, &rotation_message(&e.community, e.seq)),
        signature: sig,
        what: "new community key",
    };
    match &e.body {
        Body::Redeem(s) => out.push(payload_item(s, genesis, "resident redemption")),
        Body::Pay(p) => out.push(payload_item(&p.payment, genesis, "resident payment")),
        Body::Settle(s) => out.push(payload_item(&s.request, genesis, "merchant settlement request")),
        Body::TimeCredit(s) => out.push(payload_item(s, genesis, "served resident's time-bank confirmation")),
        Body::TimeSpend(s) => out.push(payload_item(s, genesis, "resident time-bank draw")),
        Body::RotateKey(r) => out.push(rotation(r.new_key, r.new_key_signature)),
        Body::RevokeKey(r) => out.push(rotation(r.new_key, r.new_key_signature)),
        _ => {}
    }
    out
}

fn check_single(item: &Item, message: &[u8]) -> Result<(), SignatureError> {
    keys::verify_message(&item.key, message, &item.signature, item.what)
}

/// Verify one entry's signatures with `signer` as the community key.
pub fn verify_entry(genesis: &Hash, entry: SignedEntry, signer: PublicKey) -> Result<VerifiedEntry, VerifyError> {
    let hash = entry.hash(genesis);
    for item in items(&entry, &hash, signer, genesis) {
        check_single(&item, &item.message).map_err(|error| VerifyError {
            community: entry.entry.community.clone(),
            seq: entry.entry.seq,
            what: item.what,
            error,
        })?;
    }
    Ok(VerifiedEntry { entry, hash, signer })
}

/// Public keys already decompressed and screened ([`keys::verifying_key`]), kept across runs by
/// one verifier (a node's sequencer, a worker thread). Screening costs about as much as a
/// signature check, and a federation's entries are signed by few keys (the communities'), so a
/// run of one gossiped entry would otherwise pay it every time. Bounded: emptied when full.
#[derive(Debug, Default, Clone)]
pub struct ScreenedKeys {
    keys: BTreeMap<PublicKey, EdwardsPoint>,
}

impl ScreenedKeys {
    /// Most keys kept (about 200 bytes each).
    pub const MAX: usize = 65_536;

    /// The key's point if it was screened already.
    fn peek(&self, key: &PublicKey) -> Option<EdwardsPoint> {
        self.keys.get(key).copied()
    }

    /// The key's point, from `known`, from here, or screened now and kept here — `None` if the
    /// key fails screening.
    fn get(&mut self, known: &ScreenedKeys, key: &PublicKey) -> Option<EdwardsPoint> {
        if let Some(point) = known.peek(key).or_else(|| self.peek(key)) {
            return Some(point);
        }
        let point = keys::verifying_key(key).ok()?.to_edwards();
        self.insert(*key, point);
        Some(point)
    }

    fn insert(&mut self, key: PublicKey, point: EdwardsPoint) {
        if self.keys.len() >= Self::MAX {
            self.keys.clear();
        }
        self.keys.insert(key, point);
    }

    /// Keep the keys another verifier screened (a worker thread's, after a run).
    pub fn absorb(&mut self, other: ScreenedKeys) {
        for (key, point) in other.keys {
            self.insert(key, point);
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// [`verify_entry`], reusing (and filling) a verifier's cache of screened keys: a node checking
/// an entry it has just signed.
pub fn verify_entry_cached(
    genesis: &Hash,
    entry: SignedEntry,
    signer: PublicKey,
    screened: &mut ScreenedKeys,
) -> Result<VerifiedEntry, VerifyError> {
    let hash = entry.hash(genesis);
    if batch_ok(&items(&entry, &hash, signer, genesis), &ScreenedKeys::default(), screened) {
        return Ok(VerifiedEntry { entry, hash, signer });
    }
    verify_entry(genesis, entry, signer)
}

/// Verify a run of consecutive entries of one community. On failure returns the verified prefix
/// and the first bad entry's error.
pub fn verify_run(
    genesis: &Hash,
    entries: Vec<SignedEntry>,
    keys_at_start: SignerKeys,
) -> Result<Vec<VerifiedEntry>, (Vec<VerifiedEntry>, VerifyError)> {
    verify_run_cached(genesis, entries, keys_at_start, &mut ScreenedKeys::default())
}

/// [`verify_run`], reusing (and filling) a verifier's cache of screened keys.
pub fn verify_run_cached(
    genesis: &Hash,
    entries: Vec<SignedEntry>,
    keys_at_start: SignerKeys,
    screened: &mut ScreenedKeys,
) -> Result<Vec<VerifiedEntry>, (Vec<VerifiedEntry>, VerifyError)> {
    verify_run_layered(genesis, entries, keys_at_start, &ScreenedKeys::default(), screened)
}

/// [`verify_run`] for a worker thread: keys are looked up in `known` (a cache shared read-only
/// by the workers), then in `learned` (this worker's own, which keeps the keys it screens).
pub fn verify_run_layered(
    genesis: &Hash,
    entries: Vec<SignedEntry>,
    keys_at_start: SignerKeys,
    known: &ScreenedKeys,
    screened: &mut ScreenedKeys,
) -> Result<Vec<VerifiedEntry>, (Vec<VerifiedEntry>, VerifyError)> {
    let mut keys_now = keys_at_start;
    let mut prepared = Vec::with_capacity(entries.len());
    for entry in entries {
        let (signer, next) = keys_now.step(&entry);
        keys_now = next;
        let hash = entry.hash(genesis);
        prepared.push((entry, hash, signer));
    }
    let all: Vec<Item> = prepared.iter().flat_map(|(e, h, s)| items(e, h, *s, genesis)).collect();
    if batch_ok(&all, known, screened) {
        return Ok(prepared.into_iter().map(|(entry, hash, signer)| VerifiedEntry { entry, hash, signer }).collect());
    }
    let mut ok = Vec::with_capacity(prepared.len());
    for (entry, _, signer) in prepared {
        match verify_entry(genesis, entry, signer) {
            Ok(v) => ok.push(v),
            Err(e) => return Err((ok, e)),
        }
    }
    Ok(ok)
}

fn batch_ok(items: &[Item], known: &ScreenedKeys, screened: &mut ScreenedKeys) -> bool {
    let mut batch = Vec::with_capacity(items.len());
    for item in items {
        // Screening a key (decompression and the prime-order check, a full scalar
        // multiplication) costs about as much as verifying a signature: once per key.
        let Some(point) = screened.get(known, &item.key) else { return false };
        batch.push(BatchItem { key: item.key, point, message: &item.message, signature: &item.signature });
    }
    batch::all_valid(&batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Enroll;
    use crate::testkit::{key, TestFederation};

    fn run(fed: &TestFederation, n: usize) -> Vec<SignedEntry> {
        let mut chain = fed.chain("a");
        (0..n)
            .map(|i| {
                let resident = key(&format!("r{i}")).public();
                chain.next(Body::Enroll(Enroll { resident, profile_hash: Hash::ZERO }))
            })
            .collect()
    }

    fn start_keys(fed: &TestFederation) -> SignerKeys {
        fed.state.signer_keys(&crate::testkit::cid("a")).unwrap()
    }

    #[test]
    fn a_cache_shared_across_runs_screens_each_key_once() {
        let fed = TestFederation::new(&["a", "b"]);
        let entries = run(&fed, 3);
        let mut screened = ScreenedKeys::default();
        for e in &entries {
            verify_run_cached(&fed.genesis_hash, vec![e.clone()], start_keys(&fed), &mut screened).unwrap();
        }
        assert_eq!(screened.len(), 1, "one community key signed the three runs");
    }

    #[test]
    fn a_single_entry_with_a_cached_key_passes_and_fails_like_verify_entry() {
        let fed = TestFederation::new(&["a", "b"]);
        let mut entries = run(&fed, 2);
        let signer = start_keys(&fed).current;
        let mut screened = ScreenedKeys::default();
        let v = verify_entry_cached(&fed.genesis_hash, entries[0].clone(), signer, &mut screened).unwrap();
        assert_eq!(v.hash(), entries[0].hash(&fed.genesis_hash));
        entries[1].signature = entries[0].signature;
        let cached = verify_entry_cached(&fed.genesis_hash, entries[1].clone(), signer, &mut screened).unwrap_err();
        assert_eq!(cached, verify_entry(&fed.genesis_hash, entries[1].clone(), signer).unwrap_err());
        assert_eq!(cached.seq, 1);
    }

    #[test]
    fn a_cached_key_does_not_pass_a_bad_signature() {
        let fed = TestFederation::new(&["a", "b"]);
        let mut entries = run(&fed, 2);
        let mut screened = ScreenedKeys::default();
        verify_run_cached(&fed.genesis_hash, vec![entries[0].clone()], start_keys(&fed), &mut screened).unwrap();
        entries[1].signature = key("thief").sign(ENTRY_DOMAIN, &fed.genesis_hash, &[0; 32]);
        let (ok, e) = verify_run_cached(&fed.genesis_hash, entries, start_keys(&fed), &mut screened).unwrap_err();
        assert_eq!((ok.len(), e.seq, e.what), (1, 1, "community entry"));
    }

    #[test]
    fn a_key_that_fails_screening_is_not_kept() {
        let mut screened = ScreenedKeys::default();
        // The identity point: small order, refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(screened.get(&ScreenedKeys::default(), &PublicKey(identity)).is_none());
        assert!(screened.is_empty());
        assert!(screened.get(&ScreenedKeys::default(), &key("k").public()).is_some());
        assert_eq!(screened.len(), 1);
    }
}
