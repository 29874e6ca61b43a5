//! The node's RocksDB store: one module owns every column family and every write.
//!
//! Column families ([`Column`]): entries by `(community, seq)`, entry hashes by `(community,
//! seq)` (the Merkle leaves), entries by hash, derived state (the latest [`Change`] of each
//! [`StateKey`]; the per-entry records — nonces, request ids, payments, draws — in a column of
//! their own, read on demand so a node's memory does not grow with its ledgers), checkpoints with cosignatures by `(community, size)`, and node metadata
//! (schema version, genesis hash). A group of appended entries and the state changes they make
//! go into one `WriteBatch`, written with a synced WAL ([`Store::commit`]): after a crash, the
//! log and the state never disagree. The schema version and genesis hash are checked at open.
//!
//! This file opens the store, writes (commit, repair) and checks it; reads are in `ledger.rs`
//! (entries, leaves, heads, Merkle roots, state items) and `checkpoints.rs` (checkpoints and
//! equivocation proofs).

mod checkpoints;
mod ledger;
mod subtrees;
pub use ledger::StoreLeaves;

use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::encoding::{self, DecodeError, MAX_ENTRY_BYTES, MAX_MESSAGE_BYTES};
use linli_protocol::{Change, CommunityId, Genesis, Hash, SignedEntry, State, StateKey};
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::sync::Arc;

/// Version of the on-disk layout; a store of another version is refused.
/// 3: a ledger's state lists the seqs of its key changes. 4: Merkle subtree roots are stored.
/// 5: per-entry records are kept in their own column ([`Column::Records`]). 6: evidence
/// ([`Column::Evidence`]) and an issuer's `evidence_points` total.
pub const SCHEMA_VERSION: u32 = 6;
/// The oldest layout a node upgrades at start ([`crate::repair::open_upgrading`]): from it on, the
/// entries, leaves, checkpoints and alerts are stored as now, and everything else is derived.
pub const OLDEST_UPGRADABLE_SCHEMA: u32 = 3;

/// The column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `community 0x00 seq(BE)` → canonical `SignedEntry`.
    Entries,
    /// `community 0x00 seq(BE)` → 32-byte entry hash (Merkle leaves, heads).
    Leaves,
    /// entry hash → `community 0x00 seq(BE)`.
    ByHash,
    /// canonical `StateKey` → canonical `Change`, for every item but the per-entry records.
    State,
    /// canonical `StateKey` → canonical `Change`, for the per-entry records
    /// ([`StateKey::is_record`]: nonces, request ids, payments, draws), read on demand.
    Records,
    /// `community 0x00 size(BE)` → canonical `CosignedCheckpoint`.
    Checkpoints,
    /// metadata: `schema_version`, `genesis_hash`.
    Meta,
    /// `community 0x00 position(BE)` → canonical `EquivocationProof` (verified before storing).
    Alerts,
    /// `community 0x00 level index(BE)` → 32-byte root of a perfect Merkle subtree (16 leaves
    /// and up; see `subtrees.rs`).
    Subtrees,
    /// entry hash → canonical `SignedEntry`: a proven equivocator's entry past its conflict,
    /// not in this node's copy of its ledger, taken as evidence for an honest ledger's citation
    /// (see `linli_protocol::state::evidence`).
    Evidence,
}

impl Column {
    pub const ALL: [Column; 10] = [
        Column::Entries,
        Column::Leaves,
        Column::ByHash,
        Column::State,
        Column::Records,
        Column::Checkpoints,
        Column::Meta,
        Column::Alerts,
        Column::Subtrees,
        Column::Evidence,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Column::Entries => "entries",
            Column::Leaves => "leaves",
            Column::ByHash => "by_hash",
            Column::State => "state",
            Column::Records => "records",
            Column::Checkpoints => "checkpoints",
            Column::Meta => "meta",
            Column::Alerts => "alerts",
            Column::Subtrees => "subtrees",
            Column::Evidence => "evidence",
        }
    }
}

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("store schema version is {actual}, this node needs {expected} (`linli-node run` upgrades a store of version 3 or later when it starts)")]
    Schema { expected: u32, actual: u32 },
    #[error("store belongs to federation {actual}, the genesis file is {expected}")]
    Genesis { expected: Hash, actual: Hash },
    #[error("store is corrupt: community {community} seq {seq}: {reason}")]
    Corrupt { community: CommunityId, seq: u64, reason: String },
    #[error("store is corrupt: {0}")]
    CorruptRecord(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Everything one atomic commit writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub entries: Vec<(SignedEntry, Hash)>,
    pub changes: Vec<Change>,
    pub checkpoints: Vec<CosignedCheckpoint>,
    pub alerts: Vec<EquivocationProof>,
    /// Equivocators' entries taken as evidence, with their hashes.
    pub evidence: Vec<(SignedEntry, Hash)>,
}

/// The store; cheap to clone (shares one RocksDB handle).
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
}

/// Key of `(community, n)`: the id bytes, 0x00, then `n` big-endian (so keys sort by n).
pub fn position_key(community: &CommunityId, n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(community.as_str().len() + 9);
    k.extend_from_slice(community.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn parse_position_key(key: &[u8]) -> Option<(CommunityId, u64)> {
    let split = key.len().checked_sub(9)?;
    let (id, rest) = key.split_at(split);
    let (sep, n) = rest.split_first()?;
    if *sep != 0 {
        return None;
    }
    let id = CommunityId::new(std::str::from_utf8(id).ok()?).ok()?;
    Some((id, u64::from_be_bytes(n.try_into().ok()?)))
}

/// The most memory all column families' memtables may take together (then the largest is
/// flushed), so a node's memory does not grow with its ledgers.
const MEMTABLE_BUDGET_BYTES: usize = 64 << 20;
/// The block cache shared by the column families; index and filter blocks live in it too.
const BLOCK_CACHE_BYTES: usize = 32 << 20;

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_paranoid_checks(true);
    o.set_db_write_buffer_size(MEMTABLE_BUDGET_BYTES);
    o
}

/// Options of one column family: blocks, indexes and filters in the shared `cache` (fixed
/// memory), and a Bloom filter on the records column, since most of its reads ask for a nonce
/// or request id that was never used.
fn column_options(c: Column, cache: &rocksdb::Cache) -> Options {
    let mut o = options();
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    if c == Column::Records {
        table.set_bloom_filter(10.0, false);
    }
    o.set_block_based_table_factory(&table);
    o
}

impl Store {
    /// Open (creating if needed) the store at `path` for the federation of `genesis`.
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Self, StoreError> {
        let store = Self::open_unchecked(path)?;
        store.check_meta(genesis, true)?;
        Ok(store)
    }

    /// Open (creating if needed) for writing, before the metadata is checked.
    fn open_unchecked(path: &Path) -> Result<Self, StoreError> {
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = Column::ALL.iter().map(|c| ColumnFamilyDescriptor::new(c.name(), column_options(*c, &cache)));
        let db = DB::open_cf_descriptors(&options(), path, cfs)?;
        Ok(Store { db: Arc::new(db) })
    }

    /// Open a store of any schema version (checking only the federation), with the version it
    /// has: for [`crate::repair::open_upgrading`]. A new directory is initialised at [`SCHEMA_VERSION`].
    pub fn open_any_version(path: &Path, genesis: &Genesis) -> Result<(Self, u32), StoreError> {
        let store = Self::open_unchecked(path)?;
        match store.check_meta(genesis, true) {
            Ok(()) => Ok((store, SCHEMA_VERSION)),
            Err(StoreError::Schema { actual, .. }) => {
                // The genesis must still match.
                let meta = store.cf(Column::Meta)?;
                let g = store.db.get_cf(meta, b"genesis_hash")?.unwrap_or_default();
                let found =
                    Hash(g.as_slice().try_into().map_err(|_| StoreError::CorruptRecord("genesis_hash".into()))?);
                if found != genesis.hash() {
                    return Err(StoreError::Genesis { expected: genesis.hash(), actual: found });
                }
                Ok((store, actual))
            }
            Err(e) => Err(e),
        }
    }

    /// Record `version` as the store's layout (synced).
    pub fn set_schema_version(&self, version: u32) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(Column::Meta)?, b"schema_version", version.to_be_bytes());
        self.write(b)
    }

    /// Write one raw row (tests: a row in an older layout, a corrupt value).
    #[cfg(test)]
    pub(crate) fn put_raw(&self, column: Column, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(column)?, key, value);
        self.write(b)
    }

    /// Open read-only (an auditor's copy, or a stopped node's directory).
    pub fn open_read_only(path: &Path, genesis: &Genesis) -> Result<Self, StoreError> {
        let names = Column::ALL.iter().map(|c| c.name());
        let db = DB::open_cf_for_read_only(&options(), path, names, false)?;
        let store = Store { db: Arc::new(db) };
        store.check_meta(genesis, false)?;
        Ok(store)
    }

    /// Open as a secondary instance beside a running node (`secondary` is a scratch directory).
    pub fn open_secondary(path: &Path, secondary: &Path, genesis: &Genesis) -> Result<Self, StoreError> {
        let names = Column::ALL.iter().map(|c| c.name());
        let mut o = options();
        o.set_max_open_files(-1);
        let db = DB::open_cf_as_secondary(&o, path, secondary, names)?;
        db.try_catch_up_with_primary()?;
        let store = Store { db: Arc::new(db) };
        store.check_meta(genesis, false)?;
        Ok(store)
    }

    /// The column a state item is kept in.
    fn state_column(&self, key: &StateKey) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.cf(if key.is_record() { Column::Records } else { Column::State })
    }

    fn cf(&self, c: Column) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(c.name())
            .ok_or_else(|| StoreError::CorruptRecord(format!("column family {} missing", c.name())))
    }

    fn check_meta(&self, genesis: &Genesis, may_initialise: bool) -> Result<(), StoreError> {
        let meta = self.cf(Column::Meta)?;
        let expected = genesis.hash();
        match (self.db.get_cf(meta, b"schema_version")?, self.db.get_cf(meta, b"genesis_hash")?) {
            (Some(v), Some(g)) => {
                let actual = u32::from_be_bytes(
                    v.as_slice().try_into().map_err(|_| StoreError::CorruptRecord("schema_version".into()))?,
                );
                if actual != SCHEMA_VERSION {
                    return Err(StoreError::Schema { expected: SCHEMA_VERSION, actual });
                }
                let actual =
                    Hash(g.as_slice().try_into().map_err(|_| StoreError::CorruptRecord("genesis_hash".into()))?);
                if actual != expected {
                    return Err(StoreError::Genesis { expected, actual });
                }
                Ok(())
            }
            (None, None) if may_initialise => {
                let mut b = WriteBatch::default();
                b.put_cf(meta, b"schema_version", SCHEMA_VERSION.to_be_bytes());
                b.put_cf(meta, b"genesis_hash", expected.0);
                self.write(b)
            }
            _ => Err(StoreError::CorruptRecord("metadata incomplete (schema_version / genesis_hash)".into())),
        }
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Atomically and durably write a group of entries, their state changes and checkpoints.
    pub fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let (entries, leaves, by_hash, checkpoints) = (
            self.cf(Column::Entries)?,
            self.cf(Column::Leaves)?,
            self.cf(Column::ByHash)?,
            self.cf(Column::Checkpoints)?,
        );
        let alerts = self.cf(Column::Alerts)?;
        let mut b = WriteBatch::default();
        for proof in &batch.alerts {
            b.put_cf(alerts, position_key(proof.community(), proof.position()), proof.to_bytes());
        }
        let evidence = self.cf(Column::Evidence)?;
        for (e, hash) in &batch.evidence {
            b.put_cf(evidence, hash.0, e.to_bytes());
        }
        for (e, hash) in &batch.entries {
            let key = position_key(&e.entry.community, e.entry.seq);
            b.put_cf(entries, &key, e.to_bytes());
            b.put_cf(leaves, &key, hash.0);
            b.put_cf(by_hash, hash.0, &key);
        }
        self.put_subtrees(&mut b, &batch.entries)?;
        // Only the last change of each state item in the group is written (every entry moves
        // its ledger's head: a group of 2,048 entries would otherwise write it 2,048 times).
        let mut written = std::collections::HashSet::with_capacity(batch.changes.len());
        for c in batch.changes.iter().rev() {
            let state_key = c.key();
            let key = encoding::encode(&state_key);
            if !written.contains(&key) {
                b.put_cf(self.state_column(&state_key)?, &key, encoding::encode(c));
                written.insert(key);
            }
        }
        for cp in &batch.checkpoints {
            b.put_cf(
                checkpoints,
                position_key(&cp.signed.checkpoint.community, cp.signed.checkpoint.size),
                cp.to_bytes(),
            );
        }
        self.write(b)
    }

    /// Load the whole derived state (genesis defaults overlaid with every stored change),
    /// per-entry records included: for audits, repairs and tests.
    pub fn load_state(&self, genesis: &Genesis) -> Result<State, StoreError> {
        let mut state = self.load_state_without_records(genesis)?;
        state.commit(self.all_records()?);
        Ok(state)
    }

    /// Every stored per-entry record.
    pub fn all_records(&self) -> Result<Vec<Change>, StoreError> {
        self.column_changes(Column::Records)
    }

    /// Load the derived state without the per-entry records (what a running node keeps in
    /// memory; it reads records on demand with [`Store::records`]).
    pub fn load_state_without_records(&self, genesis: &Genesis) -> Result<State, StoreError> {
        let mut state = State::new(genesis);
        state.commit(self.column_changes(Column::State)?);
        Ok(state)
    }

    /// Every change stored in a state column, each checked to sit under its own key and column.
    fn column_changes(&self, column: Column) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        for item in self.db.iterator_cf(self.cf(column)?, IteratorMode::Start) {
            let (k, v) = item?;
            changes.push(decode_change(column, &k, &v)?);
        }
        Ok(changes)
    }

    /// The stored per-entry records of `keys` (those that exist), read in one batch.
    pub fn records(&self, keys: &[StateKey]) -> Result<Vec<Change>, StoreError> {
        let cf = self.cf(Column::Records)?;
        let encoded: Vec<Vec<u8>> = keys.iter().map(encoding::encode).collect();
        let mut out = Vec::new();
        for (key, value) in encoded.iter().zip(self.db.batched_multi_get_cf(cf, &encoded, false)) {
            if let Some(v) = value? {
                out.push(decode_change(Column::Records, key, &v)?);
            }
        }
        Ok(out)
    }

    /// Repair: drop the entries of each `(community, from, to)` range (and checkpoints beyond
    /// `from`), and replace the whole derived state with `state`, in one synced batch.
    pub fn truncate_and_rebuild(&self, cuts: &[(CommunityId, u64, u64)], state: &State) -> Result<(), StoreError> {
        let mut b = WriteBatch::default();
        let (entries, leaves, by_hash) =
            (self.cf(Column::Entries)?, self.cf(Column::Leaves)?, self.cf(Column::ByHash)?);
        let checkpoints = self.cf(Column::Checkpoints)?;
        for (c, from, to) in cuts {
            for seq in *from..*to {
                let key = position_key(c, seq);
                if let Ok(Some(h)) = self.db.get_cf(leaves, &key) {
                    b.delete_cf(by_hash, h);
                }
                b.delete_cf(entries, &key);
                b.delete_cf(leaves, &key);
            }
            b.delete_range_cf(checkpoints, position_key(c, from.saturating_add(1)), position_key(c, u64::MAX));
            self.delete_subtrees_from(&mut b, c, *from)?;
        }
        for column in [Column::State, Column::Records] {
            let cf = self.cf(column)?;
            for item in self.db.iterator_cf(cf, IteratorMode::Start) {
                let (k, _) = item?;
                b.delete_cf(cf, k);
            }
        }
        for c in state.to_changes() {
            let key = c.key();
            b.put_cf(self.state_column(&key)?, encoding::encode(&key), encoding::encode(&c));
        }
        self.write(b)
    }

    /// Check that the stored heads agree with the state: for each community in the genesis, the
    /// leaves column's last seq and hash equal the state's head, and every entry's stored hash
    /// matches its content. Returns the first disagreement.
    pub fn check_heads(&self, genesis: &Genesis, state: &State) -> Result<(), StoreError> {
        let gh = genesis.hash();
        for c in &genesis.communities {
            let (size, head) = self.head(&c.id)?;
            let ledger = state.ledgers.get(&c.id);
            let (want_size, want_head) = ledger.map(|l| (l.next_seq, l.head)).unwrap_or((0, Hash::ZERO));
            if size != want_size || head != want_head {
                return Err(StoreError::Corrupt {
                    community: c.id.clone(),
                    seq: size.min(want_size),
                    reason: format!(
                        "log head (size {size}, hash {head}) disagrees with state head (size {want_size}, hash {want_head})"
                    ),
                });
            }
            if size > 0 {
                let last = size.saturating_sub(1);
                let e = self.entry(&c.id, last)?.ok_or_else(|| StoreError::Corrupt {
                    community: c.id.clone(),
                    seq: last,
                    reason: "entry missing".into(),
                })?;
                if e.hash(&gh) != head {
                    return Err(StoreError::Corrupt {
                        community: c.id.clone(),
                        seq: last,
                        reason: "stored entry does not hash to its recorded hash".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Compact every column family fully (maintenance, and disk figures after compaction).
    pub fn compact(&self) {
        for c in Column::ALL {
            if let Some(cf) = self.db.cf_handle(c.name()) {
                self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
            }
        }
    }

    /// Approximate on-disk size of each column family, in bytes (for metrics).
    pub fn sizes(&self) -> Vec<(&'static str, u64)> {
        self.cf_property("rocksdb.total-sst-files-size")
    }

    /// Memory RocksDB holds in its bounded caches: the memtables of every column family (at
    /// most [`MEMTABLE_BUDGET_BYTES`] together) and the shared block cache with its index and
    /// filter blocks (at most [`BLOCK_CACHE_BYTES`]).
    pub fn cache_bytes(&self) -> u64 {
        let memtables: u64 = self.cf_property("rocksdb.cur-size-all-mem-tables").iter().map(|(_, b)| b).sum();
        // One cache is shared: every column family reports the same usage.
        let block_cache = self.cf_property("rocksdb.block-cache-usage").iter().map(|(_, b)| *b).max().unwrap_or(0);
        memtables.saturating_add(block_cache)
    }

    /// An integer RocksDB property (e.g. `rocksdb.estimate-num-keys`) of each column family.
    pub fn cf_property(&self, property: &str) -> Vec<(&'static str, u64)> {
        Column::ALL
            .iter()
            .filter_map(|c| {
                let cf = self.db.cf_handle(c.name())?;
                let n = self.db.property_int_value_cf(cf, property).ok().flatten()?;
                Some((c.name(), n))
            })
            .collect()
    }
}

/// Decode a stored state row, refusing one stored under another key or in the wrong column.
fn decode_change(column: Column, key: &[u8], value: &[u8]) -> Result<Change, StoreError> {
    let change: Change = encoding::decode("state change", value, MAX_MESSAGE_BYTES)?;
    let state_key = change.key();
    if encoding::encode(&state_key) != key {
        return Err(StoreError::CorruptRecord(format!("state row {state_key:?} stored under the wrong key")));
    }
    if state_key.is_record() != (column == Column::Records) {
        return Err(StoreError::CorruptRecord(format!("state row {state_key:?} stored in column {}", column.name())));
    }
    Ok(change)
}

/// Decode a stored entry (checked size limit), for tools that read raw rows.
pub fn decode_entry(bytes: &[u8]) -> Result<SignedEntry, DecodeError> {
    encoding::decode("signed entry", bytes, MAX_ENTRY_BYTES)
}

#[cfg(test)]
mod tests;
