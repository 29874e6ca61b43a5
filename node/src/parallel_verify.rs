//! Batch signature verification of a long run of one ledger on all cores: the run is cut into
//! one part per core, each part batch-verified ([`verify_run`]) on its own thread with the keys
//! in force at its first entry (key rotations are followed while cutting). Used by the
//! sequencer for sync chunks and by `linli verify`; short runs stay on the calling thread.

use linli_protocol::verify::{verify_run, SignerKeys, VerifiedEntry, VerifyError};
use linli_protocol::{Hash, SignedEntry};

/// Runs shorter than this are verified on the calling thread (a thread costs more than it saves).
pub const MIN_PARALLEL: usize = 512;

/// The outcome of [`verify_parallel`].
#[derive(Debug)]
pub struct ParallelVerified {
    /// The verified prefix of the run, in order.
    pub verified: Vec<VerifiedEntry>,
    /// The first entry refused (the entries after it are not returned).
    pub error: Option<VerifyError>,
    /// The keys in force after the last entry of the whole run.
    pub keys: SignerKeys,
}

/// Verify `entries` (consecutive entries of one ledger, starting with `start` in force) on all
/// cores. A thread that cannot be started leaves its part to the calling thread.
pub fn verify_parallel(genesis_hash: &Hash, entries: Vec<SignedEntry>, start: SignerKeys) -> ParallelVerified {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let per = entries.len().div_ceil(threads).max(MIN_PARALLEL);
    let mut parts: Vec<(Vec<SignedEntry>, SignerKeys)> = Vec::new();
    let mut keys = start;
    let mut part_keys = keys;
    let mut current: Vec<SignedEntry> = Vec::with_capacity(per.min(entries.len()));
    for e in entries {
        if current.len() == per {
            parts.push((std::mem::replace(&mut current, Vec::with_capacity(per)), part_keys));
            part_keys = keys;
        }
        keys = keys.step(&e).1;
        current.push(e);
    }
    if !current.is_empty() {
        parts.push((current, part_keys));
    }
    type Run = Result<Vec<VerifiedEntry>, (Vec<VerifiedEntry>, VerifyError)>;
    let results: Vec<Run> = std::thread::scope(|s| {
        let mut parts = parts.into_iter();
        let first = parts.next();
        let spawned: Vec<_> = parts
            .map(|(part, k)| {
                // The part travels back if the thread cannot start.
                let shared = std::sync::Arc::new(std::sync::Mutex::new(Some(part)));
                let theirs = shared.clone();
                let handle = std::thread::Builder::new().name("linli-verify".into()).spawn_scoped(s, move || {
                    let part = theirs.lock().ok().and_then(|mut p| p.take()).unwrap_or_default();
                    verify_run(genesis_hash, part, k)
                });
                (handle, shared, k)
            })
            .collect();
        let mut out = Vec::with_capacity(spawned.len().saturating_add(1));
        if let Some((part, k)) = first {
            out.push(verify_run(genesis_hash, part, k));
        }
        for (handle, shared, k) in spawned {
            let leftover = || shared.lock().ok().and_then(|mut p| p.take()).unwrap_or_default();
            match handle {
                Ok(h) => match h.join() {
                    Ok(r) => out.push(r),
                    Err(_) => out.push(verify_run(genesis_hash, leftover(), k)),
                },
                Err(_) => out.push(verify_run(genesis_hash, leftover(), k)),
            }
        }
        out
    });
    let mut verified = Vec::new();
    for r in results {
        match r {
            Ok(v) => verified.extend(v),
            Err((prefix, error)) => {
                verified.extend(prefix);
                return ParallelVerified { verified, error: Some(error), keys };
            }
        }
    }
    ParallelVerified { verified, error: None, keys }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use linli_protocol::body::{Body, Enroll};
    use linli_protocol::testkit::{key, TestFederation};

    fn chain(n: u64) -> (Hash, Vec<SignedEntry>, SignerKeys) {
        let fed = TestFederation::new(&["pv"]);
        let keys = fed.state.signer_keys(&linli_protocol::testkit::cid("pv")).unwrap();
        let mut w = fed.chain("pv");
        let entries: Vec<SignedEntry> = (0..n)
            .map(|i| {
                let resident = key(&format!("pv resident {}", i % 16)).public();
                w.next(Body::Enroll(Enroll { resident, profile_hash: Hash([1; 32]) }))
            })
            .collect();
        (w.genesis_hash, entries, keys)
    }

    #[test]
    fn a_long_valid_run_verifies_completely_and_in_order() {
        let (gh, entries, keys) = chain(3000);
        let out = verify_parallel(&gh, entries.clone(), keys);
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.verified.len(), entries.len());
        for (v, e) in out.verified.iter().zip(&entries) {
            assert_eq!(v.signed(), e);
        }
    }

    #[test]
    fn a_bad_signature_in_a_later_part_is_named_and_the_prefix_kept() {
        let (gh, mut entries, keys) = chain(3000);
        let mut sig = entries[2500].signature.0;
        sig[5] ^= 1;
        entries[2500].signature = linli_protocol::Signature(sig);
        let out = verify_parallel(&gh, entries, keys);
        let error = out.error.expect("the forged entry is refused");
        assert_eq!(error.seq, 2500);
        assert_eq!(out.verified.len(), 2500);
    }

    #[test]
    fn a_wrong_community_key_is_refused_at_the_first_entry() {
        let (gh, entries, keys) = chain(600);
        let wrong = SignerKeys { current: key("someone else").public(), recovery: keys.recovery };
        let out = verify_parallel(&gh, entries, wrong);
        assert_eq!(out.error.map(|e| e.seq), Some(0));
        assert!(out.verified.is_empty());
    }
}
