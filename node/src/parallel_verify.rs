//! Signature verification of a long run of one ledger on all cores: the run is cut into pieces
//! (key rotations are followed while cutting, so each piece starts with the keys in force at
//! its first entry), worker threads batch-verify the pieces ([`verify_run_layered`]: each looks
//! keys up in the caller's cache of screened keys, read-only, then in its own, which the caller
//! absorbs at the end), and the calling
//! thread takes them in order ([`verify_streaming`]) — the sequencer applies each piece while
//! the next ones are verified; `linli verify` collects them ([`verify_parallel`]). Short runs
//! stay on the calling thread ([`MIN_PARALLEL`]).

use linli_protocol::verify::{verify_run_layered, ScreenedKeys, SignerKeys, VerifiedEntry, VerifyError};
use linli_protocol::{Hash, SignedEntry};

/// Runs shorter than this are verified on the calling thread (threads cost more than they save).
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
/// cores and collect the verified prefix ([`verify_streaming`] with nothing to apply).
pub fn verify_parallel(genesis_hash: &Hash, entries: Vec<SignedEntry>, start: SignerKeys) -> ParallelVerified {
    let keys = entries.iter().fold(start, |k, e| k.step(e).1);
    let mut verified = Vec::with_capacity(entries.len());
    let error = verify_streaming(genesis_hash, entries, start, &mut ScreenedKeys::default(), |v| {
        verified.push(v);
        true
    });
    ParallelVerified { verified, error, keys }
}

/// Entries per piece of [`verify_streaming`]: big enough for batch verification to pay off.
pub const PIECE: usize = 256;

/// Verify `entries` (consecutive entries of one ledger, starting with `start` in force) on
/// worker threads, one piece of [`PIECE`] entries at a time, and hand each verified entry to
/// `apply` on the calling thread, in order, as soon as its piece is done: verification of the
/// next pieces overlaps the caller's work on this one. `apply` returns false to stop (the
/// workers then stop after their current piece). Returns the first entry refused, if any
/// (every entry before it has been handed to `apply`). Keys are looked up in `screened`, and
/// the keys the workers screened are added to it.
pub fn verify_streaming(
    genesis_hash: &Hash,
    entries: Vec<SignedEntry>,
    start: SignerKeys,
    screened: &mut ScreenedKeys,
    mut apply: impl FnMut(VerifiedEntry) -> bool,
) -> Option<VerifyError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    /// A piece waiting for a worker (taken once).
    type Slot = std::sync::Mutex<Option<(Vec<SignedEntry>, SignerKeys)>>;
    let mut pieces: Vec<Slot> = Vec::new();
    let mut keys = start;
    let mut iter = entries.into_iter().peekable();
    while iter.peek().is_some() {
        let piece_keys = keys;
        let piece: Vec<SignedEntry> = iter.by_ref().take(PIECE).collect();
        for e in &piece {
            keys = keys.step(e).1;
        }
        pieces.push(std::sync::Mutex::new(Some((piece, piece_keys))));
    }
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(pieces.len());
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    type Done = (usize, Result<Vec<VerifiedEntry>, (Vec<VerifiedEntry>, VerifyError)>);
    let (tx, rx) = std::sync::mpsc::channel::<Done>();
    let known: &ScreenedKeys = screened;
    let work = |tx: std::sync::mpsc::Sender<Done>| {
        let mut learned = ScreenedKeys::default();
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = pieces.get(i) else { break };
            let Some((piece, k)) = slot.lock().ok().and_then(|mut p| p.take()) else { break };
            if tx.send((i, verify_run_layered(genesis_hash, piece, k, known, &mut learned))).is_err() {
                break;
            }
        }
        learned
    };
    let (failure, learned) = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let tx = tx.clone();
            if let Ok(h) = std::thread::Builder::new().name("linli-verify".into()).spawn_scoped(s, || work(tx)) {
                handles.push(h);
            }
        }
        let mut learned = Vec::new();
        if handles.is_empty() {
            learned.push(work(tx.clone())); // no thread could start: verify here, then apply
        }
        drop(tx);
        let mut ready: std::collections::BTreeMap<usize, _> = std::collections::BTreeMap::new();
        let mut want = 0usize;
        let mut failure = None;
        'apply: while want < pieces.len() {
            let result = match ready.remove(&want) {
                Some(r) => r,
                None => match rx.recv() {
                    Ok((i, r)) if i == want => r,
                    Ok((i, r)) => {
                        ready.insert(i, r);
                        continue;
                    }
                    Err(_) => break, // every worker ended (stopped)
                },
            };
            let (verified, error) = match result {
                Ok(v) => (v, None),
                Err((prefix, e)) => (prefix, Some(e)),
            };
            for v in verified {
                if !apply(v) {
                    stop.store(true, Ordering::Relaxed);
                    break 'apply;
                }
            }
            if let Some(e) = error {
                failure = Some(e);
                stop.store(true, Ordering::Relaxed);
                break;
            }
            want += 1;
        }
        stop.store(true, Ordering::Relaxed);
        learned.extend(handles.into_iter().filter_map(|h| h.join().ok()));
        (failure, learned)
    });
    for l in learned {
        screened.absorb(l);
    }
    failure
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

    #[test]
    fn streaming_hands_every_entry_over_in_order() {
        let (gh, entries, keys) = chain(1000);
        let mut seen = Vec::new();
        let mut screened = ScreenedKeys::default();
        let error = verify_streaming(&gh, entries.clone(), keys, &mut screened, |v| {
            seen.push(v.signed().entry.seq);
            true
        });
        assert!(error.is_none(), "{error:?}");
        assert_eq!(seen, (0..1000).collect::<Vec<u64>>());
        assert_eq!(screened.len(), 1, "the workers' screened community key is kept for the next run");
    }

    #[test]
    fn streaming_stops_at_a_forgery_after_handing_over_the_prefix() {
        let (gh, mut entries, keys) = chain(1000);
        let mut sig = entries[700].signature.0;
        sig[9] ^= 1;
        entries[700].signature = linli_protocol::Signature(sig);
        let mut count = 0u64;
        let error = verify_streaming(&gh, entries, keys, &mut ScreenedKeys::default(), |_| {
            count += 1;
            true
        });
        assert_eq!(error.map(|e| e.seq), Some(700));
        assert_eq!(count, 700);
    }

    #[test]
    fn streaming_stops_when_the_caller_says_so() {
        let (gh, entries, keys) = chain(1000);
        let mut count = 0;
        let error = verify_streaming(&gh, entries, keys, &mut ScreenedKeys::default(), |_| {
            count += 1;
            count < 300
        });
        assert!(error.is_none());
        assert_eq!(count, 300);
    }
}
