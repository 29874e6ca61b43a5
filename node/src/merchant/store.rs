//! The light node's own small RocksDB store: verified sale receipts, sales sequenced but not yet
//! verified (resumed after a restart), settlements, equivocation proofs heard (communities
//! whose proofs are refused), and the community key histories it verified (key rotations). Every write is synced: a receipt shown to a cashier survives a
//! crash. The schema version and genesis hash are checked at open.

use linli_protocol::body::{Payment, Signed};
use linli_protocol::checkpoint::EquivocationProof;
use linli_protocol::encoding::{self, MAX_MESSAGE_BYTES};
use linli_protocol::light::{EntryProof, KeyHistory};
use linli_protocol::{CommunityId, EntryRef, Genesis, Hash, PublicKey};
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Version of the receipts store layout.
/// 2: settlements carry their proof and where the till learned of them; the home-ledger scan
/// cursor (`settle_scan` in `Meta`).
pub const TILL_SCHEMA_VERSION: u32 = 2;

/// The column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TillColumn {
    /// `issuer 0x00 seq(BE)` → [`SaleReceipt`].
    Receipts,
    /// `issuer 0x00 seq(BE)` → [`PendingSale`]: sequenced, proof not verified yet.
    Pending,
    /// `nonce(BE)` → [`Settlement`].
    Settlements,
    /// `community 0x00 position(BE)` → verified [`EquivocationProof`].
    Alerts,
    /// `schema_version`, `genesis_hash`, `settle_scan` (how far the home ledger was scanned
    /// for this merchant's settlements: next seq and the hash of the entry before it).
    Meta,
    /// `community` → `(community, KeyHistory)`: keys followed past the genesis, verified.
    KeyHistories,
}

impl TillColumn {
    const ALL: [TillColumn; 6] = [
        TillColumn::Receipts,
        TillColumn::Pending,
        TillColumn::Settlements,
        TillColumn::Alerts,
        TillColumn::Meta,
        TillColumn::KeyHistories,
    ];
    fn name(self) -> &'static str {
        match self {
            TillColumn::Receipts => "receipts",
            TillColumn::Pending => "pending",
            TillColumn::Settlements => "settlements",
            TillColumn::Alerts => "alerts",
            TillColumn::Meta => "meta",
            TillColumn::KeyHistories => "key_histories",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TillStoreError {
    #[error("receipts store: RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("receipts store schema version is {actual}, this light node needs {expected}")]
    Schema { expected: u32, actual: u32 },
    #[error("receipts store belongs to federation {actual}, the genesis file is {expected}")]
    Genesis { expected: Hash, actual: Hash },
    #[error("receipts store is corrupt: {0}")]
    Corrupt(String),
}

/// A sale the light node accepted after verifying its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleReceipt {
    /// The `Pay` entry on the payer's home ledger.
    pub at: EntryRef,
    pub payer: PublicKey,
    pub points: u64,
    pub price_fen: u64,
    /// What the customer pays in cash: `price_fen - points × 10`.
    pub cash_fen: u64,
    pub nonce: u64,
    pub checkpoint_size: u64,
    pub witnesses: u64,
    pub accepted_ms: u64,
    /// The `Credit` on the merchant's home ledger, once reconciled.
    pub credit: Option<EntryRef>,
    /// What was verified (kept so anyone can check the receipt again).
    pub proof: EntryProof,
}

/// A sale sequenced by the payer's home community whose proof was not verified yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSale {
    pub at: EntryRef,
    pub payment: Signed<Payment>,
    pub since_ms: u64,
}

/// A settlement the merchant's home community sequenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub at: EntryRef,
    pub issuer: CommunityId,
    pub points: u64,
    pub fen: u64,
    pub nonce: u64,
    pub time_ms: u64,
    /// How the till learned of it: `Till` (it asked and got the signed entry back) or
    /// `Ledger` (found on the home ledger: made outside this till, or its answer was lost).
    pub origin: SettlementOrigin,
    /// The entry's inclusion proof into a checkpoint signed by the home community and
    /// cosigned by enough witnesses, once verified (as for a sale's receipt).
    pub proof: Option<EntryProof>,
    pub checkpoint_size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementOrigin {
    Till,
    Ledger,
}

/// A settlement as version 1 of the store kept it (read only to upgrade the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SettlementV1 {
    at: EntryRef,
    issuer: CommunityId,
    points: u64,
    fen: u64,
    nonce: u64,
    time_ms: u64,
}

impl SettlementV1 {
    fn upgraded(self) -> Settlement {
        let SettlementV1 { at, issuer, points, fen, nonce, time_ms } = self;
        Settlement {
            at,
            issuer,
            points,
            fen,
            nonce,
            time_ms,
            origin: SettlementOrigin::Till,
            proof: None,
            checkpoint_size: None,
        }
    }
}

/// The receipts store; cheap to clone.
#[derive(Clone)]
pub struct TillStore {
    db: Arc<DB>,
}

fn position_key(c: &CommunityId, n: u64) -> Vec<u8> {
    crate::store::position_key(c, n)
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl TillStore {
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Self, TillStoreError> {
        let mut o = Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        o.set_paranoid_checks(true);
        let cfs = TillColumn::ALL.iter().map(|c| ColumnFamilyDescriptor::new(c.name(), Options::default()));
        let db = DB::open_cf_descriptors(&o, path, cfs)?;
        let store = TillStore { db: Arc::new(db) };
        store.check_meta(&genesis.hash())?;
        Ok(store)
    }

    fn check_meta(&self, genesis_hash: &Hash) -> Result<(), TillStoreError> {
        let cf = self.cf(TillColumn::Meta)?;
        let version = match self.db.get_cf(cf, b"schema_version")? {
            None => {
                let mut b = WriteBatch::default();
                b.put_cf(cf, b"schema_version", TILL_SCHEMA_VERSION.to_be_bytes());
                b.put_cf(cf, b"genesis_hash", genesis_hash.0);
                self.db.write_opt(b, &synced())?;
                return Ok(());
            }
            Some(v) => v.as_slice().try_into().map(u32::from_be_bytes).unwrap_or(0),
        };
        if version != TILL_SCHEMA_VERSION && version != 1 {
            return Err(TillStoreError::Schema { expected: TILL_SCHEMA_VERSION, actual: version });
        }
        let stored = self.db.get_cf(cf, b"genesis_hash")?.unwrap_or_default();
        let actual = Hash(stored.as_slice().try_into().unwrap_or([0; 32]));
        if actual != *genesis_hash {
            return Err(TillStoreError::Genesis { expected: *genesis_hash, actual });
        }
        if version == 1 {
            self.upgrade_from_v1()?;
        }
        Ok(())
    }

    /// Version 1 kept settlements without their proof or origin. They become settlements the
    /// till made (`Till`) with no proof yet; the next reconciliation scans the home ledger from
    /// its start and proves them. One synced batch: the store is either still version 1 or
    /// wholly version 2.
    fn upgrade_from_v1(&self) -> Result<(), TillStoreError> {
        let cf = self.cf(TillColumn::Settlements)?;
        let mut b = WriteBatch::default();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, v) = item?;
            let old: SettlementV1 = encoding::decode("settlement (version 1)", &v, MAX_MESSAGE_BYTES)
                .map_err(|e| TillStoreError::Corrupt(e.to_string()))?;
            b.put_cf(cf, key, encoding::encode(&old.upgraded()));
        }
        b.put_cf(self.cf(TillColumn::Meta)?, b"schema_version", TILL_SCHEMA_VERSION.to_be_bytes());
        Ok(self.db.write_opt(b, &synced())?)
    }

    fn cf(&self, c: TillColumn) -> Result<&rocksdb::ColumnFamily, TillStoreError> {
        self.db
            .cf_handle(c.name())
            .ok_or_else(|| TillStoreError::Corrupt(format!("column family {} missing", c.name())))
    }

    fn all<T: DeserializeOwned + Serialize>(&self, c: TillColumn) -> Result<Vec<T>, TillStoreError> {
        let cf = self.cf(c)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (_, v) = item?;
            out.push(
                encoding::decode(c.name(), &v, MAX_MESSAGE_BYTES)
                    .map_err(|e| TillStoreError::Corrupt(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Record a sequenced sale before its proof is verified.
    pub fn put_pending(&self, p: &PendingSale) -> Result<(), TillStoreError> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(TillColumn::Pending)?, position_key(&p.at.community, p.at.seq), encoding::encode(p));
        Ok(self.db.write_opt(b, &synced())?)
    }

    /// Record a verified receipt (and drop its pending record) atomically.
    pub fn put_receipt(&self, r: &SaleReceipt) -> Result<(), TillStoreError> {
        let key = position_key(&r.at.community, r.at.seq);
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(TillColumn::Receipts)?, &key, encoding::encode(r));
        b.delete_cf(self.cf(TillColumn::Pending)?, &key);
        Ok(self.db.write_opt(b, &synced())?)
    }

    pub fn receipt(&self, at: &CommunityId, seq: u64) -> Result<Option<SaleReceipt>, TillStoreError> {
        match self.db.get_cf(self.cf(TillColumn::Receipts)?, position_key(at, seq))? {
            Some(v) => Ok(Some(
                encoding::decode("receipt", &v, MAX_MESSAGE_BYTES)
                    .map_err(|e| TillStoreError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    pub fn receipts(&self) -> Result<Vec<SaleReceipt>, TillStoreError> {
        self.all(TillColumn::Receipts)
    }

    pub fn pending(&self) -> Result<Vec<PendingSale>, TillStoreError> {
        self.all(TillColumn::Pending)
    }

    pub fn put_settlement(&self, s: &Settlement) -> Result<(), TillStoreError> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(TillColumn::Settlements)?, s.nonce.to_be_bytes(), encoding::encode(s));
        Ok(self.db.write_opt(b, &synced())?)
    }

    pub fn settlements(&self) -> Result<Vec<Settlement>, TillStoreError> {
        self.all(TillColumn::Settlements)
    }

    /// How far the home ledger was scanned for settlements: (next seq, hash of the entry
    /// before it); (0, zero) before the first scan.
    pub fn settle_scan(&self) -> Result<(u64, Hash), TillStoreError> {
        match self.db.get_cf(self.cf(TillColumn::Meta)?, b"settle_scan")? {
            Some(v) => encoding::decode("settle scan", &v, 64).map_err(|e| TillStoreError::Corrupt(e.to_string())),
            None => Ok((0, Hash::ZERO)),
        }
    }

    pub fn put_settle_scan(&self, next_seq: u64, prev_hash: Hash) -> Result<(), TillStoreError> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(TillColumn::Meta)?, b"settle_scan", encoding::encode(&(next_seq, prev_hash)));
        Ok(self.db.write_opt(b, &synced())?)
    }

    /// Store a verified equivocation proof (its community's proofs are refused from now on).
    pub fn put_alert(&self, proof: &EquivocationProof) -> Result<(), TillStoreError> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(TillColumn::Alerts)?, position_key(proof.community(), proof.position()), proof.to_bytes());
        Ok(self.db.write_opt(b, &synced())?)
    }

    /// Keep a community key history this light node verified.
    pub fn put_key_history(&self, community: &CommunityId, history: &KeyHistory) -> Result<(), TillStoreError> {
        let mut b = WriteBatch::default();
        let value = encoding::encode(&(community.clone(), history.clone()));
        b.put_cf(self.cf(TillColumn::KeyHistories)?, community.as_str().as_bytes(), value);
        Ok(self.db.write_opt(b, &synced())?)
    }

    /// Every community key history verified so far.
    pub fn key_histories(&self) -> Result<Vec<(CommunityId, KeyHistory)>, TillStoreError> {
        self.all(TillColumn::KeyHistories)
    }

    /// Communities proven faulty.
    pub fn faulty(&self) -> Result<Vec<CommunityId>, TillStoreError> {
        let cf = self.cf(TillColumn::Alerts)?;
        let mut out: Vec<CommunityId> = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (_, v) = item?;
            let p = EquivocationProof::from_bytes(&v).map_err(|e| TillStoreError::Corrupt(e.to_string()))?;
            if !out.contains(p.community()) {
                out.push(p.community().clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linli_protocol::testkit;

    #[test]
    fn refuses_another_federation() {
        let dir = tempfile::tempdir().unwrap();
        drop(TillStore::open(dir.path(), &testkit::genesis(&["a", "b"])).unwrap());
        let err = TillStore::open(dir.path(), &testkit::genesis(&["a", "c"])).err().unwrap();
        assert!(matches!(err, TillStoreError::Genesis { .. }), "{err}");
    }

    /// A settlement of 30 points (300 fen) as version 1 of the store kept it.
    fn settlement_v1() -> SettlementV1 {
        SettlementV1 {
            at: EntryRef { community: testkit::cid("b"), seq: 4, hash: Hash([1; 32]) },
            issuer: testkit::cid("a"),
            points: 30,
            fen: 300,
            nonce: 7,
            time_ms: 1,
        }
    }

    #[test]
    fn settlements_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let g = testkit::genesis(&["a", "b"]);
        let s = Settlement { origin: SettlementOrigin::Ledger, ..settlement_v1().upgraded() };
        TillStore::open(dir.path(), &g).unwrap().put_settlement(&s).unwrap();
        TillStore::open(dir.path(), &g).unwrap().put_settle_scan(5, Hash([2; 32])).unwrap();
        let store = TillStore::open(dir.path(), &g).unwrap();
        assert_eq!(store.settlements().unwrap(), vec![s]);
        assert_eq!(store.settle_scan().unwrap(), (5, Hash([2; 32])));
    }

    #[test]
    fn a_version_1_store_is_upgraded_and_keeps_its_settlements() {
        let dir = tempfile::tempdir().unwrap();
        let g = testkit::genesis(&["a", "b"]);
        let v1 = settlement_v1();
        {
            // Write what version 1 wrote: its settlement layout and schema version 1.
            let store = TillStore::open(dir.path(), &g).unwrap();
            let mut b = WriteBatch::default();
            b.put_cf(store.cf(TillColumn::Settlements).unwrap(), 7u64.to_be_bytes(), encoding::encode(&v1));
            b.put_cf(store.cf(TillColumn::Meta).unwrap(), b"schema_version", 1u32.to_be_bytes());
            store.db.write_opt(b, &synced()).unwrap();
        }
        let store = TillStore::open(dir.path(), &g).unwrap();
        let upgraded = store.settlements().unwrap();
        assert_eq!(upgraded, vec![v1.clone().upgraded()]);
        assert_eq!(
            (upgraded[0].points, upgraded[0].origin, upgraded[0].proof.is_none()),
            (30, SettlementOrigin::Till, true)
        );
        assert_eq!(store.settle_scan().unwrap(), (0, Hash::ZERO), "the next reconciliation scans from the start");
        drop(store);
        let meta = TillStore::open(dir.path(), &g).unwrap();
        let version = meta.db.get_cf(meta.cf(TillColumn::Meta).unwrap(), b"schema_version").unwrap().unwrap();
        assert_eq!(version, TILL_SCHEMA_VERSION.to_be_bytes());
    }

    #[test]
    fn a_newer_or_unknown_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let g = testkit::genesis(&["a", "b"]);
        {
            let store = TillStore::open(dir.path(), &g).unwrap();
            let mut b = WriteBatch::default();
            b.put_cf(store.cf(TillColumn::Meta).unwrap(), b"schema_version", 3u32.to_be_bytes());
            store.db.write_opt(b, &synced()).unwrap();
        }
        let err = TillStore::open(dir.path(), &g).err().unwrap();
        assert!(matches!(err, TillStoreError::Schema { expected: 2, actual: 3 }), "{err}");
    }

    #[test]
    fn key_histories_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let g = testkit::genesis(&["a", "b"]);
        let k = |l: &str| testkit::key(l).public();
        let h = KeyHistory {
            recovery: k("a/recovery"),
            keys: vec![(0, k("a/signing")), (4, k("a/next"))],
            revoked: vec![],
            proven_at: 9,
        };
        TillStore::open(dir.path(), &g).unwrap().put_key_history(&testkit::cid("a"), &h).unwrap();
        assert_eq!(TillStore::open(dir.path(), &g).unwrap().key_histories().unwrap(), vec![(testkit::cid("a"), h)]);
    }
}
