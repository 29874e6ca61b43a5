//! The node's RocksDB store: one module owns every column family and every write.
//!
//! Column families ([`Column`]): entries by `(community, seq)`, entry hashes by `(community,
//! seq)` (the Merkle leaves), entries by hash, derived state (the latest [`Change`] of each
//! [`StateKey`]), checkpoints with cosignatures by `(community, size)`, and node metadata
//! (schema version, genesis hash). A group of appended entries and the state changes they make
//! go into one `WriteBatch`, written with a synced WAL ([`Store::commit`]): after a crash, the
//! log and the state never disagree. The schema version and genesis hash are checked at open.

use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::encoding::{self, DecodeError, MAX_ENTRY_BYTES, MAX_MESSAGE_BYTES};
use linli_protocol::merkle::{self, LeafSource};
use linli_protocol::{Change, CommunityId, Genesis, Hash, SignedEntry, State, StateKey};
use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::sync::Arc;

/// Version of the on-disk layout; a store of another version is refused.
pub const SCHEMA_VERSION: u32 = 2;

/// The column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `community 0x00 seq(BE)` → canonical `SignedEntry`.
    Entries,
    /// `community 0x00 seq(BE)` → 32-byte entry hash (Merkle leaves, heads).
    Leaves,
    /// entry hash → `community 0x00 seq(BE)`.
    ByHash,
    /// canonical `StateKey` → canonical `Change`.
    State,
    /// `community 0x00 size(BE)` → canonical `CosignedCheckpoint`.
    Checkpoints,
    /// metadata: `schema_version`, `genesis_hash`.
    Meta,
    /// `community 0x00 position(BE)` → canonical `EquivocationProof` (verified before storing).
    Alerts,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::Entries,
        Column::Leaves,
        Column::ByHash,
        Column::State,
        Column::Checkpoints,
        Column::Meta,
        Column::Alerts,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Column::Entries => "entries",
            Column::Leaves => "leaves",
            Column::ByHash => "by_hash",
            Column::State => "state",
            Column::Checkpoints => "checkpoints",
            Column::Meta => "meta",
            Column::Alerts => "alerts",
        }
    }
}

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("store schema version is {actual}, this node needs {expected}")]
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

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_paranoid_checks(true);
    o
}

impl Store {
    /// Open (creating if needed) the store at `path` for the federation of `genesis`.
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Self, StoreError> {
        let cfs = Column::ALL.iter().map(|c| ColumnFamilyDescriptor::new(c.name(), options()));
        let db = DB::open_cf_descriptors(&options(), path, cfs)?;
        let store = Store { db: Arc::new(db) };
        store.check_meta(genesis, true)?;
        Ok(store)
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
        let (entries, leaves, by_hash, state, checkpoints) = (
            self.cf(Column::Entries)?,
            self.cf(Column::Leaves)?,
            self.cf(Column::ByHash)?,
            self.cf(Column::State)?,
            self.cf(Column::Checkpoints)?,
        );
        let alerts = self.cf(Column::Alerts)?;
        let mut b = WriteBatch::default();
        for proof in &batch.alerts {
            b.put_cf(alerts, position_key(proof.community(), proof.position()), proof.to_bytes());
        }
        for (e, hash) in &batch.entries {
            let key = position_key(&e.entry.community, e.entry.seq);
            b.put_cf(entries, &key, e.to_bytes());
            b.put_cf(leaves, &key, hash.0);
            b.put_cf(by_hash, hash.0, &key);
        }
        // Only the last change of each state item in the group is written (every entry moves
        // its ledger's head: a group of 2,048 entries would otherwise write it 2,048 times).
        let mut written = std::collections::HashSet::with_capacity(batch.changes.len());
        for c in batch.changes.iter().rev() {
            let key = encoding::encode(&c.key());
            if !written.contains(&key) {
                b.put_cf(state, &key, encoding::encode(c));
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

    /// Load the derived state (genesis defaults overlaid with every stored change).
    pub fn load_state(&self, genesis: &Genesis) -> Result<State, StoreError> {
        let mut state = State::new(genesis);
        let cf = self.cf(Column::State)?;
        let mut changes = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item?;
            let change: Change = encoding::decode("state change", &v, MAX_MESSAGE_BYTES)?;
            if encoding::encode(&change.key()) != k.as_ref() {
                return Err(StoreError::CorruptRecord(format!(
                    "state row {:?} stored under the wrong key",
                    change.key()
                )));
            }
            changes.push(change);
        }
        state.commit(changes);
        Ok(state)
    }

    /// The latest stored change of one state item.
    pub fn state_item(&self, key: &StateKey) -> Result<Option<Change>, StoreError> {
        let cf = self.cf(Column::State)?;
        match self.db.get_cf(cf, encoding::encode(key))? {
            Some(v) => Ok(Some(encoding::decode("state change", &v, MAX_MESSAGE_BYTES)?)),
            None => Ok(None),
        }
    }

    /// One entry.
    pub fn entry(&self, community: &CommunityId, seq: u64) -> Result<Option<SignedEntry>, StoreError> {
        let cf = self.cf(Column::Entries)?;
        match self.db.get_cf(cf, position_key(community, seq))? {
            Some(v) => SignedEntry::from_bytes(&v).map(Some).map_err(|e| StoreError::Corrupt {
                community: community.clone(),
                seq,
                reason: e.to_string(),
            }),
            None => Ok(None),
        }
    }

    /// An entry by its hash.
    pub fn entry_by_hash(&self, hash: &Hash) -> Result<Option<SignedEntry>, StoreError> {
        let cf = self.cf(Column::ByHash)?;
        let Some(key) = self.db.get_cf(cf, hash.0)? else { return Ok(None) };
        let (community, seq) =
            parse_position_key(&key).ok_or_else(|| StoreError::CorruptRecord(format!("by_hash row for {hash}")))?;
        self.entry(&community, seq)
    }

    /// Up to `limit` consecutive entries from `from`, at most `max_bytes` encoded (at least one).
    pub fn entries(
        &self,
        community: &CommunityId,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let cf = self.cf(Column::Entries)?;
        let start = position_key(community, from);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut expected = from;
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            let Some((c, seq)) = parse_position_key(&k) else { break };
            if &c != community || out.len() >= limit {
                break;
            }
            if seq != expected {
                return Err(StoreError::Corrupt {
                    community: community.clone(),
                    seq: expected,
                    reason: format!("entry missing (next stored is seq {seq})"),
                });
            }
            if !out.is_empty() && bytes.saturating_add(v.len()) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(v.len());
            let e = SignedEntry::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                community: community.clone(),
                seq,
                reason: e.to_string(),
            })?;
            if e.entry.community != *community || e.entry.seq != seq {
                return Err(StoreError::Corrupt {
                    community: community.clone(),
                    seq,
                    reason: format!("stored entry says community {} seq {}", e.entry.community, e.entry.seq),
                });
            }
            out.push(e);
            expected = expected.saturating_add(1);
        }
        Ok(out)
    }

    /// All entries of a community (for replays).
    pub fn all_entries(&self, community: &CommunityId) -> Result<Vec<SignedEntry>, StoreError> {
        self.entries(community, 0, usize::MAX, usize::MAX)
    }

    /// Number of entries and the hash of the last one, from the leaves column.
    pub fn head(&self, community: &CommunityId) -> Result<(u64, Hash), StoreError> {
        let cf = self.cf(Column::Leaves)?;
        let upper = position_key(community, u64::MAX);
        let mut it = self.db.iterator_cf(cf, IteratorMode::From(&upper, Direction::Reverse));
        match it.next() {
            Some(item) => {
                let (k, v) = item?;
                match parse_position_key(&k) {
                    Some((c, seq)) if &c == community => {
                        let hash = Hash(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                            community: community.clone(),
                            seq,
                            reason: "leaf is not 32 bytes".into(),
                        })?);
                        Ok((seq.saturating_add(1), hash))
                    }
                    _ => Ok((0, Hash::ZERO)),
                }
            }
            None => Ok((0, Hash::ZERO)),
        }
    }

    /// The recorded leaves (entry hashes) of positions `from..from+count`, by one range scan; a
    /// position without a well-formed leaf is `None`.
    pub fn leaf_range(
        &self,
        community: &CommunityId,
        from: u64,
        count: usize,
    ) -> Result<Vec<Option<Hash>>, StoreError> {
        let cf = self.cf(Column::Leaves)?;
        let mut out = vec![None; count];
        let start = position_key(community, from);
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            let Some((c, seq)) = parse_position_key(&k) else { break };
            let Some(slot) = usize::try_from(seq.saturating_sub(from)).ok().filter(|_| &c == community) else { break };
            match out.get_mut(slot) {
                Some(s) => *s = v.as_ref().try_into().ok().map(Hash),
                None => break,
            }
        }
        Ok(out)
    }

    /// The Merkle leaves (entry hashes) of a community, readable by index.
    pub fn leaves<'a>(&'a self, community: &'a CommunityId) -> StoreLeaves<'a> {
        StoreLeaves { store: self, community }
    }

    /// The Merkle root of the first `size` entries.
    pub fn root(&self, community: &CommunityId, size: u64) -> Result<Hash, StoreError> {
        merkle::root_from(&self.leaves(community), size).map_err(|e| StoreError::CorruptRecord(e.to_string()))
    }

    /// The newest stored checkpoint of a community.
    pub fn latest_checkpoint(&self, community: &CommunityId) -> Result<Option<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        let upper = position_key(community, u64::MAX);
        if let Some(item) = self.db.iterator_cf(cf, IteratorMode::From(&upper, Direction::Reverse)).next() {
            let (k, v) = item?;
            if matches!(parse_position_key(&k), Some((c, _)) if &c == community) {
                return Ok(Some(
                    CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?,
                ));
            }
        }
        Ok(None)
    }

    /// The stored checkpoint of a community at `size`.
    pub fn checkpoint(&self, community: &CommunityId, size: u64) -> Result<Option<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        match self.db.get_cf(cf, position_key(community, size))? {
            Some(v) => {
                Ok(Some(CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?))
            }
            None => Ok(None),
        }
    }

    /// All checkpoints of a community, oldest first.
    pub fn checkpoints(&self, community: &CommunityId) -> Result<Vec<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        let start = position_key(community, 0);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            if !matches!(parse_position_key(&k), Some((c, _)) if &c == community) {
                break;
            }
            out.push(CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?);
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
        }
        let cf = self.cf(Column::State)?;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, _) = item?;
            b.delete_cf(cf, k);
        }
        for c in state.to_changes() {
            b.put_cf(cf, encoding::encode(&c.key()), encoding::encode(&c));
        }
        self.write(b)
    }

    /// Up to `limit` stored checkpoints of a community that cover entry `seq` (size > seq),
    /// smallest first.
    pub fn checkpoints_covering(
        &self,
        community: &CommunityId,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<CosignedCheckpoint>, StoreError> {
        let cf = self.cf(Column::Checkpoints)?;
        let start = position_key(community, seq.saturating_add(1));
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward)) {
            let (k, v) = item?;
            if out.len() >= limit || !matches!(parse_position_key(&k), Some((c, _)) if &c == community) {
                break;
            }
            out.push(CosignedCheckpoint::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?);
        }
        Ok(out)
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

    /// Every stored equivocation proof.
    pub fn alerts(&self) -> Result<Vec<EquivocationProof>, StoreError> {
        let cf = self.cf(Column::Alerts)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (_, v) = item?;
            out.push(EquivocationProof::from_bytes(&v).map_err(|e| StoreError::CorruptRecord(e.to_string()))?);
        }
        Ok(out)
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

/// Merkle leaves read from the store.
pub struct StoreLeaves<'a> {
    store: &'a Store,
    community: &'a CommunityId,
}

impl LeafSource for StoreLeaves<'_> {
    fn len(&self) -> u64 {
        self.store.head(self.community).map(|(n, _)| n).unwrap_or(0)
    }
    fn leaf(&self, index: u64) -> Option<Hash> {
        let cf = self.store.cf(Column::Leaves).ok()?;
        let v = self.store.db.get_cf(cf, position_key(self.community, index)).ok()??;
        Some(Hash(v.as_slice().try_into().ok()?))
    }
}

/// Decode a stored entry (checked size limit), for tools that read raw rows.
pub fn decode_entry(bytes: &[u8]) -> Result<SignedEntry, DecodeError> {
    encoding::decode("signed entry", bytes, MAX_ENTRY_BYTES)
}

#[cfg(test)]
mod tests {
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
}
