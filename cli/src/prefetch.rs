//! Reading ahead for the replay: chunks of a ledger are read in order, their recorded leaves
//! fetched with one range scan, and their signatures batch-verified on all cores
//! ([`verify_parallel`]). For a RocksDB directory this runs on a read-ahead thread
//! ([`Prefetch`]) while the replay applies the previous chunk: decode, verify and apply overlap,
//! and at most [`AHEAD`] verified chunks wait (bounded memory). Nothing is checked less: each
//! chunk carries the first bad record it met, reported once the entries before it are applied.

use crate::audit::Failure;
use crate::source::{ReadError, Source};
use anyhow::{anyhow, Result};
use linli_protocol::verify::{SignerKeys, VerifiedEntry};
use linli_protocol::{CommunityId, Hash, SignedEntry};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// Entries read (and batch-verified) per ledger at a time.
pub const CHUNK: usize = 8192;
/// Verified chunks that may wait for the replay.
pub const AHEAD: usize = 1;

/// A verified entry and, for sources that record them, the leaf (entry hash) the store holds
/// for its position (`Some(None)`: none).
pub type Item = (VerifiedEntry, Option<Option<Hash>>);

/// One chunk of a ledger, verified.
pub struct Chunk {
    pub items: Vec<Item>,
    /// The first bad record or signature, after the verified items.
    pub failure: Option<Failure>,
    /// The keys in force after the chunk.
    pub keys: SignerKeys,
    /// Nothing was left to read.
    pub exhausted: bool,
}

/// Read and verify the chunk of `id` starting at `from`.
pub fn read_chunk(source: &Source, gh: &Hash, id: &CommunityId, from: u64, keys: SignerKeys) -> Result<Chunk> {
    let (entries, bad) = match source.read(id, from, CHUNK) {
        Ok(v) => (v, None),
        Err(ReadError::Corrupt { community, seq, rule, reason }) => {
            let bad = Failure::at(&community, seq, rule, reason);
            let count = usize::try_from(seq.saturating_sub(from)).unwrap_or(0);
            if count == 0 {
                (Vec::new(), Some(bad))
            } else {
                match source.read(id, from, count) {
                    Ok(v) => (v, Some(bad)),
                    Err(ReadError::Corrupt { community, seq, rule, reason }) => {
                        (Vec::new(), Some(Failure::at(&community, seq, rule, reason)))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    if entries.is_empty() && bad.is_none() {
        return Ok(Chunk { items: Vec::new(), failure: None, keys, exhausted: true });
    }
    let leaves = source.leaf_range(id, from, entries.len())?;
    let (verified, error, keys) = verify_parallel(gh, entries, keys)?;
    let items = verified
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let leaf = leaves.as_ref().map(|l| l.get(i).copied().flatten());
            (v, leaf)
        })
        .collect();
    Ok(Chunk { items, failure: error.or(bad), keys, exhausted: false })
}

/// A read-ahead thread over one ledger of a RocksDB directory. Dropping it stops the thread
/// (after the chunk it is working on).
pub struct Prefetch {
    rx: Option<Receiver<Result<Chunk>>>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetch {
    /// Start reading `id` from seq 0 with the genesis keys `keys`; `source` is the thread's own
    /// handle on the directory.
    pub fn start(source: Source, gh: Hash, id: CommunityId, keys: SignerKeys) -> Result<Prefetch> {
        let (tx, rx) = sync_channel(AHEAD);
        let thread = std::thread::Builder::new()
            .name("linli-read-ahead".into())
            .spawn(move || {
                let (mut from, mut keys) = (0u64, keys);
                loop {
                    let chunk = read_chunk(&source, &gh, &id, from, keys);
                    let last = match &chunk {
                        Ok(c) => {
                            from = from.saturating_add(c.items.len() as u64);
                            keys = c.keys;
                            c.exhausted || c.failure.is_some()
                        }
                        Err(_) => true,
                    };
                    if tx.send(chunk).is_err() || last {
                        break;
                    }
                }
            })
            .map_err(|e| anyhow!("starting the read-ahead thread: {e}"))?;
        Ok(Prefetch { rx: Some(rx), thread: Some(thread) })
    }

    /// The next chunk, in order.
    pub fn next(&self) -> Result<Chunk> {
        match self.rx.as_ref().map(Receiver::recv) {
            Some(Ok(chunk)) => chunk,
            _ => Err(anyhow!("the read-ahead thread stopped unexpectedly")),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Verified = (Vec<VerifiedEntry>, Option<Failure>, SignerKeys);

/// Batch-verify `entries` (consecutive, of one ledger) on all cores (the node's
/// [`linli_node::parallel_verify`]). Returns the verified prefix, the first bad entry's failure,
/// and the keys in force after the last entry.
pub fn verify_parallel(gh: &Hash, entries: Vec<SignedEntry>, start: SignerKeys) -> Result<Verified> {
    let first_seq = entries.first().map(|e| e.entry.seq).unwrap_or(0);
    let kinds: Vec<&'static str> = entries.iter().map(|e| e.entry.body.kind()).collect();
    let out = linli_node::parallel_verify::verify_parallel(gh, entries, start);
    let failure = out.error.map(|e| {
        let index = usize::try_from(e.seq.saturating_sub(first_seq)).unwrap_or(usize::MAX);
        Failure::signature(e, kinds.get(index).copied())
    });
    Ok((out.verified, failure, out.keys))
}
