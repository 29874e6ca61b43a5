//! Where ledgers are read from: a node's RocksDB directory (opened read-only, or as a secondary
//! instance beside a running node), a node's HTTP API, or an exported JSON-lines file.
//!
//! Every source hands out entries by `(community, seq)` and reports a bad record as
//! [`ReadError::Corrupt`] naming the seq and a rule: `decode` (bytes that are not a canonical
//! entry), `missing-entry` (a gap), `misplaced-entry` (an entry stored under another position
//! than its content says). Nothing a source says is trusted: callers recompute hashes and check
//! signatures, chains and proofs.

use crate::http::{Http, HttpError};
use crate::wire;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use linli_node::store::{Store, StoreError};
use linli_protocol::checkpoint::CosignedCheckpoint;
use linli_protocol::merkle::{self, ConsistencyProof, InclusionProof, LeafSource};
use linli_protocol::{Change, CommunityId, EntryRef, Genesis, Hash, SignedEntry, State, StateKey};
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Most entries one HTTP range request asks for (the API's maximum).
pub const HTTP_PAGE: usize = 1000;

/// Where to read a ledger from.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// A node's RocksDB data directory, opened read-only.
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// With --db: open as a secondary instance instead, which works beside a running node;
    /// SCRATCH_DIR holds the secondary instance's own files.
    #[arg(long, value_name = "SCRATCH_DIR", requires = "db")]
    pub secondary: Option<PathBuf>,
    /// A node's HTTP API, e.g. http://127.0.0.1:8101.
    #[arg(long, value_name = "URL", conflicts_with = "db")]
    pub url: Option<String>,
    /// The federation's genesis file (TOML).
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
}

impl SourceArgs {
    /// Read the genesis and open the source.
    pub fn open(&self) -> Result<(Genesis, Source)> {
        let genesis = load_genesis(&self.genesis)?;
        let source = match (&self.db, &self.url) {
            (Some(dir), None) => Source::open_db(dir, self.secondary.as_deref(), &genesis)?,
            (None, Some(url)) => Source::open_http(url, &genesis)?,
            _ => bail!("say where the ledger is: --db DIR (a node's data directory) or --url http://HOST:PORT"),
        };
        Ok((genesis, source))
    }
}

/// Read and check a genesis file.
pub fn load_genesis(path: &Path) -> Result<Genesis> {
    linli_node::node::read_genesis(path).map_err(|e| anyhow!("{e}"))
}

/// A community id given on the command line, checked against the genesis.
pub fn community(genesis: &Genesis, id: &str) -> Result<CommunityId> {
    let c = CommunityId::new(id).map_err(|e| anyhow!("--community {id:?}: {e}"))?;
    if genesis.community(&c).is_none() {
        let known: Vec<String> = genesis.communities.iter().map(|c| c.id.to_string()).collect();
        bail!("community {c} is not in the genesis (it lists: {})", known.join(", "));
    }
    Ok(c)
}

/// Why entries could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The ledger's record at `seq` is bad: this is a finding about the ledger.
    Corrupt { community: CommunityId, seq: u64, rule: &'static str, reason: String },
    /// The source could not be read (I/O, network).
    Other(anyhow::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Corrupt { community, seq, rule, reason } => {
                write!(f, "community {community} seq {seq}: rule {rule}: {reason}")
            }
            ReadError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// An opened ledger source.
pub enum Source {
    Db { store: Store, dir: PathBuf },
    Http { http: Http, status: wire::Status },
    Memory { ledgers: BTreeMap<CommunityId, Vec<SignedEntry>>, file: PathBuf },
}

impl Source {
    pub fn open_db(dir: &Path, secondary: Option<&Path>, genesis: &Genesis) -> Result<Source> {
        if !dir.join("CURRENT").is_file() {
            bail!("{}: not a RocksDB data directory (no CURRENT file)", dir.display());
        }
        let store = match secondary {
            Some(scratch) => {
                std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
                Store::open_secondary(dir, scratch, genesis)
            }
            None => Store::open_read_only(dir, genesis),
        }
        .map_err(|e| anyhow!("opening {}: {e}", dir.display()))?;
        Ok(Source::Db { store, dir: dir.to_path_buf() })
    }

    pub fn open_http(url: &str, genesis: &Genesis) -> Result<Source> {
        let http = Http::new(url)?;
        let status: wire::Status = http.get("/v1/status")?;
        let ours = genesis.hash();
        if status.genesis_hash != ours {
            bail!(
                "{}: the node belongs to the federation with genesis hash {}, but the genesis file hashes to {ours}",
                http.base(),
                status.genesis_hash
            );
        }
        Ok(Source::Http { http, status })
    }

    /// Entries exported as JSON lines (`linli export --what entries --format jsonl`). Each line
    /// is a signed entry; the informational `hash` and `kind` fields are ignored.
    pub fn open_export(file: &Path, genesis: &Genesis) -> Result<Source> {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let mut ledgers: BTreeMap<CommunityId, Vec<SignedEntry>> = BTreeMap::new();
        for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", file.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let e: SignedEntry = serde_json::from_str(&line)
                .with_context(|| format!("{} line {}: not an exported entry", file.display(), n.saturating_add(1)))?;
            if genesis.community(&e.entry.community).is_none() {
                bail!(
                    "{} line {}: community {} is not in the genesis",
                    file.display(),
                    n.saturating_add(1),
                    e.entry.community
                );
            }
            ledgers.entry(e.entry.community.clone()).or_default().push(e);
        }
        Ok(Source::Memory { ledgers, file: file.to_path_buf() })
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Db { dir, .. } => format!("RocksDB directory {}", dir.display()),
            Source::Http { http, .. } => format!("node {}", http.base()),
            Source::Memory { file, .. } => format!("export {}", file.display()),
        }
    }

    /// Up to `limit` consecutive entries of `community` from `from` (fewer at the end).
    pub fn read(&self, community: &CommunityId, from: u64, limit: usize) -> Result<Vec<SignedEntry>, ReadError> {
        match self {
            Source::Db { store, .. } => match store.entries(community, from, limit, usize::MAX) {
                Ok(v) => Ok(v),
                Err(StoreError::Corrupt { seq, reason, .. }) => Err(classify_db(store, community, seq, reason)),
                Err(e) => Err(ReadError::Other(anyhow!("reading {community} from seq {from}: {e}"))),
            },
            Source::Http { http, .. } => {
                let limit = limit.clamp(1, HTTP_PAGE);
                let path = format!("/v1/ledgers/{community}/entries?from={from}&limit={limit}");
                match http.get::<Vec<SignedEntry>>(&path) {
                    Ok(v) => check_positions(community, from, v),
                    Err(e) => Err(classify_http(community, e)),
                }
            }
            Source::Memory { ledgers, .. } => {
                let all = ledgers.get(community).map(Vec::as_slice).unwrap_or(&[]);
                let start = usize::try_from(from).unwrap_or(usize::MAX).min(all.len());
                let end = start.saturating_add(limit).min(all.len());
                check_positions(community, from, all.get(start..end).unwrap_or(&[]).to_vec())
            }
        }
    }

    /// The entry at `seq`, if the ledger is that long.
    pub fn entry(&self, community: &CommunityId, seq: u64) -> Result<Option<SignedEntry>> {
        Ok(self.read(community, seq, 1)?.into_iter().next())
    }

    /// An entry by its hash (any ledger the source holds).
    pub fn entry_by_hash(&self, genesis_hash: &Hash, hash: &Hash) -> Result<Option<SignedEntry>> {
        match self {
            Source::Db { store, .. } => store.entry_by_hash(hash).map_err(|e| anyhow!("{e}")),
            Source::Http { http, .. } => Ok(http.get_opt::<SignedEntry>(&format!("/v1/entries/{hash}"))?),
            Source::Memory { ledgers, .. } => {
                Ok(ledgers.values().flatten().find(|e| e.hash(genesis_hash) == *hash).cloned())
            }
        }
    }

    /// The entry `reference` names, held by the source as evidence (a proven equivocator's
    /// entry past its first conflict, on a branch the source did not take, that an honest ledger
    /// cites), with the position of that first proven conflict. Exports carry no evidence.
    pub fn evidence(&self, reference: &EntryRef) -> Result<Option<(SignedEntry, u64)>> {
        let c = &reference.community;
        match self {
            Source::Db { store, .. } => {
                let mut evidence = store.evidence().map_err(|e| anyhow!("{e}"))?;
                let conflict = evidence.conflicts.get(c).copied();
                Ok(evidence.entries.remove(&reference.hash).zip(conflict))
            }
            Source::Http { http, status } => {
                let Some(conflict) = status.alerts.iter().filter(|a| &a.community == c).map(|a| a.position).min()
                else {
                    return Ok(None);
                };
                let entry = http.get_opt::<SignedEntry>(&format!("/v1/entries/{}", reference.hash))?;
                Ok(entry.map(|e| (e, conflict)))
            }
            Source::Memory { .. } => Ok(None),
        }
    }

    /// How many entries the source itself records for a ledger (the store's leaves column and
    /// derived state, or the node's status), to detect entries missing at the end.
    pub fn claimed_size(&self, community: &CommunityId) -> Result<Option<u64>> {
        match self {
            Source::Db { store, .. } => {
                let (leaves, _) = store.head(community).map_err(|e| anyhow!("{e}"))?;
                let state = match store.state_item(&StateKey::Ledger(community.clone())) {
                    Ok(Some(Change::Ledger(_, l))) => l.next_seq,
                    _ => 0,
                };
                Ok(Some(leaves.max(state)))
            }
            Source::Http { status, .. } => {
                Ok(status.ledgers.iter().find(|l| &l.community == community).map(|l| l.size))
            }
            Source::Memory { .. } => Ok(None),
        }
    }

    /// Stored checkpoints of a ledger, oldest first (a node's API serves only its latest).
    pub fn checkpoints(&self, community: &CommunityId) -> Result<Vec<CosignedCheckpoint>> {
        match self {
            Source::Db { store, .. } => store.checkpoints(community).map_err(|e| anyhow!("{e}")),
            Source::Http { .. } => Ok(self.latest_checkpoint(community)?.into_iter().collect()),
            Source::Memory { .. } => Ok(Vec::new()),
        }
    }

    /// The newest checkpoint of a ledger.
    pub fn latest_checkpoint(&self, community: &CommunityId) -> Result<Option<CosignedCheckpoint>> {
        match self {
            Source::Db { store, .. } => store.latest_checkpoint(community).map_err(|e| anyhow!("{e}")),
            Source::Http { http, .. } => Ok(http.get_opt(&format!("/v1/ledgers/{community}/checkpoint"))?),
            Source::Memory { .. } => Ok(None),
        }
    }

    /// The stored checkpoint of a ledger at `size`, if the source has it.
    pub fn checkpoint_at(&self, community: &CommunityId, size: u64) -> Result<Option<CosignedCheckpoint>> {
        match self {
            Source::Db { store, .. } => store.checkpoint(community, size).map_err(|e| anyhow!("{e}")),
            _ => Ok(self.latest_checkpoint(community)?.filter(|c| c.signed.checkpoint.size == size)),
        }
    }

    /// The store's recorded hashes of entries `from..from+count` (one range scan), for
    /// directories only (`None` otherwise); a position without a leaf is `None`.
    pub fn leaf_range(&self, community: &CommunityId, from: u64, count: usize) -> Result<Option<Vec<Option<Hash>>>> {
        match self {
            Source::Db { store, .. } => Ok(Some(store.leaf_range(community, from, count).map_err(|e| anyhow!("{e}"))?)),
            _ => Ok(None),
        }
    }

    /// Another handle on the same RocksDB directory, for a read-ahead thread (directories only).
    pub fn own_handle(&self) -> Option<Source> {
        match self {
            Source::Db { store, dir } => Some(Source::Db { store: store.clone(), dir: dir.clone() }),
            _ => None,
        }
    }

    /// The derived state a node stored beside its log (directories only).
    pub fn stored_state(&self, genesis: &Genesis) -> Result<Option<State>> {
        match self {
            Source::Db { store, .. } => Ok(Some(store.load_state(genesis).map_err(|e| anyhow!("{e}"))?)),
            _ => Ok(None),
        }
    }

    /// An inclusion proof of entry `seq` in the tree of `size` entries, with the source's leaf
    /// and root (both still to be checked by the caller).
    pub fn inclusion(&self, community: &CommunityId, seq: u64, size: u64) -> Result<(Hash, Hash, InclusionProof)> {
        match self {
            Source::Db { store, .. } => {
                let leaves = store.leaves(community);
                let proof = merkle::prove_inclusion_from(&leaves, seq, size)?;
                let root = merkle::root_from(&leaves, size)?;
                let leaf = leaves.leaf(seq).ok_or_else(|| anyhow!("no leaf stored for {community} seq {seq}"))?;
                Ok((leaf, root, proof))
            }
            Source::Http { http, .. } => {
                let v: wire::InclusionView =
                    http.get(&format!("/v1/ledgers/{community}/proofs/inclusion?seq={seq}&size={size}"))?;
                Ok((v.entry_hash, v.root, v.proof))
            }
            Source::Memory { .. } => bail!("an export holds no Merkle tree; use --db or --url"),
        }
    }

    /// A consistency proof between tree sizes `old` and `new`, with the source's two roots.
    pub fn consistency(&self, community: &CommunityId, old: u64, new: u64) -> Result<(Hash, Hash, ConsistencyProof)> {
        match self {
            Source::Db { store, .. } => {
                let leaves = store.leaves(community);
                let proof = merkle::prove_consistency_from(&leaves, old, new)?;
                Ok((merkle::root_from(&leaves, old)?, merkle::root_from(&leaves, new)?, proof))
            }
            Source::Http { http, .. } => {
                let v: wire::ConsistencyView =
                    http.get(&format!("/v1/ledgers/{community}/proofs/consistency?old={old}&new={new}"))?;
                Ok((v.old_root, v.new_root, v.proof))
            }
            Source::Memory { .. } => bail!("an export holds no Merkle tree; use --db or --url"),
        }
    }
}

/// Name what is wrong with the stored row at `seq` by looking at it alone.
fn classify_db(store: &Store, community: &CommunityId, seq: u64, reason: String) -> ReadError {
    let corrupt = |rule, reason| ReadError::Corrupt { community: community.clone(), seq, rule, reason };
    match store.entry(community, seq) {
        Ok(None) => corrupt("missing-entry", reason),
        Ok(Some(e)) if e.entry.community != *community || e.entry.seq != seq => corrupt("misplaced-entry", reason),
        Ok(Some(_)) => corrupt("store", reason),
        Err(StoreError::Corrupt { reason, .. }) => corrupt("decode", reason),
        Err(e) => ReadError::Other(anyhow!("reading {community} seq {seq}: {e}")),
    }
}

/// A node reports store corruption as `... community C seq N: reason`; keep the seq.
fn classify_http(community: &CommunityId, e: HttpError) -> ReadError {
    if let HttpError::Api { message, .. } = &e {
        let marker = format!("community {community} seq ");
        if let Some(rest) = message.find(&marker).and_then(|i| message.get(i.saturating_add(marker.len())..)) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(seq) = digits.parse::<u64>() {
                let rule = if message.contains("entry missing") {
                    "missing-entry"
                } else if message.contains("stored entry says") {
                    "misplaced-entry"
                } else {
                    "decode"
                };
                return ReadError::Corrupt { community: community.clone(), seq, rule, reason: e.to_string() };
            }
        }
    }
    ReadError::Other(e.into())
}

/// Entries handed out from `from` must sit at their own positions.
fn check_positions(
    community: &CommunityId,
    from: u64,
    entries: Vec<SignedEntry>,
) -> Result<Vec<SignedEntry>, ReadError> {
    let mut want = from;
    for e in &entries {
        if e.entry.community != *community || e.entry.seq != want {
            let (rule, reason) = if e.entry.community == *community && e.entry.seq > want {
                ("missing-entry", format!("entry missing (the next one is seq {})", e.entry.seq))
            } else {
                (
                    "misplaced-entry",
                    format!("entry at this position says community {} seq {}", e.entry.community, e.entry.seq),
                )
            };
            return Err(ReadError::Corrupt { community: community.clone(), seq: want, rule, reason });
        }
        want = want.saturating_add(1);
    }
    Ok(entries)
}
