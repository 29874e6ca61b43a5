//! `linli proof`: make inclusion and consistency proofs against a signed checkpoint, verify
//! them locally, save them, and check saved proofs (and equivocation proofs from `compare`).
//!
//! A proof file is JSON with a `type` (`inclusion`, `consistency`, `equivocation`), the genesis
//! hash, and everything needed to check it offline with the genesis file: the entry, the Merkle
//! path, the signed checkpoint(s) and the community key that signed them (followed through key
//! rotations when the proof was made; a key other than the genesis key is reported as such).

use crate::fail::Finding;
use crate::keyring::KeyHistory;
use crate::out;
use crate::source::{self, Source, SourceArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::merkle::{ConsistencyProof, InclusionProof};
use linli_protocol::verify::verify_entry;
use linli_protocol::{CommunityId, Genesis, Hash, PublicKey, SignedEntry};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ProofCommand {
    /// Prove that an entry is in the ledger a signed checkpoint commits to, and verify it.
    Inclusion(InclusionArgs),
    /// Prove that the ledger of OLD entries is a prefix of the ledger of NEW entries, and verify it.
    Consistency(ConsistencyArgs),
    /// Check a saved proof (inclusion, consistency or equivocation) offline.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct InclusionArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The community whose ledger to read.
    #[arg(long, value_name = "C")]
    pub community: String,
    /// The entry's seq.
    #[arg(long, value_name = "N")]
    pub seq: u64,
    /// Tree size (a checkpoint's size). Default: the newest checkpoint covering the entry.
    #[arg(long, value_name = "S")]
    pub size: Option<u64>,
    /// Also save the proof to FILE (for `linli proof check`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ConsistencyArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The community whose ledger to read.
    #[arg(long, value_name = "C")]
    pub community: String,
    /// The older (smaller) tree size.
    #[arg(long, value_name = "OLD")]
    pub old: u64,
    /// The newer (larger) tree size. Default: the newest checkpoint's size (the ledger's size
    /// when there is no checkpoint).
    #[arg(long, value_name = "NEW")]
    pub new: Option<u64>,
    /// Also save the proof to FILE (for `linli proof check`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A proof saved by `linli proof ... --out` or printed with `--json` (or by `linli compare`).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// The federation's genesis file (TOML).
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
}

/// A self-contained proof (one at a time: its size does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ProofFile {
    Inclusion(InclusionFile),
    Consistency(ConsistencyFile),
    Equivocation(EquivocationFile),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InclusionFile {
    pub genesis_hash: Hash,
    pub community: CommunityId,
    pub seq: u64,
    pub entry_hash: Hash,
    pub entry: SignedEntry,
    /// The community key in force at the entry's seq.
    pub entry_signer: PublicKey,
    pub tree_size: u64,
    pub root: Hash,
    /// The signed checkpoint of `tree_size` entries (absent: the root is only the source's word).
    pub checkpoint: Option<CosignedCheckpoint>,
    pub checkpoint_signer: Option<PublicKey>,
    pub proof: InclusionProof,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsistencyFile {
    pub genesis_hash: Hash,
    pub community: CommunityId,
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: Hash,
    pub new_root: Hash,
    pub old_checkpoint: Option<CosignedCheckpoint>,
    pub old_signer: Option<PublicKey>,
    pub new_checkpoint: Option<CosignedCheckpoint>,
    pub new_signer: Option<PublicKey>,
    pub proof: ConsistencyProof,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EquivocationFile {
    pub genesis_hash: Hash,
    pub community: CommunityId,
    /// The seq (two entries) or size (two checkpoints) of the conflict.
    pub position: u64,
    /// The community key in force there, which signed both statements.
    pub key: PublicKey,
    pub proof: EquivocationProof,
}

pub fn run(cmd: &ProofCommand, json_out: bool) -> Result<()> {
    match cmd {
        ProofCommand::Inclusion(a) => inclusion(a, json_out),
        ProofCommand::Consistency(a) => consistency(a, json_out),
        ProofCommand::Check(a) => check_file(a, json_out),
    }
}

fn inclusion(a: &InclusionArgs, json_out: bool) -> Result<()> {
    let (genesis, src) = a.source.open()?;
    let c = source::community(&genesis, &a.community)?;
    let gh = genesis.hash();
    let entry = src.entry(&c, a.seq)?.ok_or_else(|| anyhow!("{} has no entry {} of {c}", src.describe(), a.seq))?;
    let (size, checkpoint) = match a.size {
        Some(s) => (s, src.checkpoint_at(&c, s)?),
        None => match covering_checkpoint(&src, &c, a.seq)? {
            Some(cp) => (cp.signed.checkpoint.size, Some(cp)),
            None => (src.claimed_size(&c)?.unwrap_or(0), None),
        },
    };
    if a.seq >= size {
        bail!("a tree of {size} entries does not contain seq {}", a.seq);
    }
    let keys = KeyHistory::walk(&src, &genesis, &c, size)?;
    if keys.walked() < size {
        bail!("{} holds only {} entries of {c}, fewer than the tree size {size}", src.describe(), keys.walked());
    }
    let (leaf, source_root, proof) = src.inclusion(&c, a.seq, size)?;
    let entry_hash = entry.hash(&gh);
    let file = InclusionFile {
        genesis_hash: gh,
        community: c.clone(),
        seq: a.seq,
        entry_hash,
        entry_signer: keys.signer_of(&entry),
        tree_size: size,
        root: checkpoint.as_ref().map(|cp| cp.signed.checkpoint.root).unwrap_or(source_root),
        checkpoint_signer: checkpoint.as_ref().map(|_| keys.key_after(size)).transpose()?,
        checkpoint,
        proof,
        entry,
    };
    if leaf != entry_hash {
        return Err(Finding(format!(
            "{}: its leaf for {c} seq {} is {leaf}, but the entry hashes to {entry_hash}",
            src.describe(),
            a.seq
        ))
        .into());
    }
    if source_root != file.root {
        return Err(Finding(format!(
            "{}: its tree of {size} entries has root {source_root}, but its signed checkpoint says {}",
            src.describe(),
            file.root
        ))
        .into());
    }
    emit(ProofFile::Inclusion(file), &genesis, a.out.as_ref(), json_out)
}

fn consistency(a: &ConsistencyArgs, json_out: bool) -> Result<()> {
    let (genesis, src) = a.source.open()?;
    let c = source::community(&genesis, &a.community)?;
    let new = match a.new {
        Some(n) => n,
        None => match src.latest_checkpoint(&c)? {
            Some(cp) => cp.signed.checkpoint.size,
            None => src.claimed_size(&c)?.unwrap_or(0),
        },
    };
    if a.old > new {
        bail!("--old {} is larger than --new {new}", a.old);
    }
    let keys = KeyHistory::walk(&src, &genesis, &c, new)?;
    if keys.walked() < new {
        bail!("{} holds only {} entries of {c}, fewer than {new}", src.describe(), keys.walked());
    }
    let (old_cp, new_cp) = (src.checkpoint_at(&c, a.old)?, src.checkpoint_at(&c, new)?);
    let (src_old_root, src_new_root, proof) = src.consistency(&c, a.old, new)?;
    for (cp, root) in [(&old_cp, src_old_root), (&new_cp, src_new_root)] {
        if let Some(cp) = cp {
            if cp.signed.checkpoint.root != root {
                return Err(Finding(format!(
                    "{}: its tree of {} entries has root {root}, but its signed checkpoint says {}",
                    src.describe(),
                    cp.signed.checkpoint.size,
                    cp.signed.checkpoint.root
                ))
                .into());
            }
        }
    }
    let file = ConsistencyFile {
        genesis_hash: genesis.hash(),
        community: c,
        old_size: a.old,
        new_size: new,
        old_root: src_old_root,
        new_root: src_new_root,
        old_signer: old_cp.as_ref().map(|_| keys.key_after(a.old)).transpose()?,
        new_signer: new_cp.as_ref().map(|_| keys.key_after(new)).transpose()?,
        old_checkpoint: old_cp,
        new_checkpoint: new_cp,
        proof,
    };
    emit(ProofFile::Consistency(file), &genesis, a.out.as_ref(), json_out)
}

/// The newest stored checkpoint that covers `seq`.
fn covering_checkpoint(src: &Source, c: &CommunityId, seq: u64) -> Result<Option<CosignedCheckpoint>> {
    Ok(src
        .checkpoints(c)?
        .into_iter()
        .filter(|cp| cp.signed.checkpoint.size > seq)
        .max_by_key(|cp| cp.signed.checkpoint.size))
}

/// Verify a freshly made proof, save it if asked, print it.
fn emit(file: ProofFile, genesis: &Genesis, save: Option<&PathBuf>, json_out: bool) -> Result<()> {
    let notes = check(&file, genesis).map_err(|e| Finding(format!("the proof does not verify: {e}")))?;
    let text = serde_json::to_string_pretty(&file)?;
    if let Some(path) = save {
        std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    if json_out {
        return out::line(&text);
    }
    out::line(&headline(&file))?;
    for n in notes {
        out::line(&format!("  {n}"))?;
    }
    if let Some(path) = save {
        out::line(&format!("  saved to {}", path.display()))?;
    }
    Ok(())
}

fn headline(file: &ProofFile) -> String {
    match file {
        ProofFile::Inclusion(f) => format!(
            "OK: {} seq {} ({}) is in the tree of {} entries with root {}",
            f.community,
            f.seq,
            f.entry.entry.body.kind(),
            f.tree_size,
            f.root
        ),
        ProofFile::Consistency(f) => format!(
            "OK: the {} ledger of {} entries (root {}) is a prefix of the one of {} entries (root {})",
            f.community, f.old_size, f.old_root, f.new_size, f.new_root
        ),
        ProofFile::Equivocation(f) => {
            format!("OK: community {} signed two conflicting statements at {}", f.community, f.position)
        }
    }
}

fn check_file(a: &CheckArgs, json_out: bool) -> Result<()> {
    let genesis = source::load_genesis(&a.genesis)?;
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let file: ProofFile =
        serde_json::from_str(&text).with_context(|| format!("{}: not a linli proof file", a.file.display()))?;
    match check(&file, &genesis) {
        Ok(notes) => {
            if json_out {
                out::json(&serde_json::json!({"ok": true, "proof": headline(&file), "notes": notes}))
            } else {
                out::line(&headline(&file))?;
                notes.iter().try_for_each(|n| out::line(&format!("  {n}")))
            }
        }
        Err(e) => Err(Finding(format!("{}: the proof does not verify: {e}", a.file.display())).into()),
    }
}

/// Where a key comes from, for the notes.
fn key_note(genesis: &Genesis, c: &CommunityId, key: &PublicKey, what: &str) -> String {
    match genesis.community(c) {
        Some(info) if info.signing_key == *key => format!("{what} verifies under {c}'s genesis key {}", key.short()),
        _ => format!(
            "{what} verifies under {}, a rotated key of {c} recorded in the proof (not the genesis key)",
            key.short()
        ),
    }
}

fn checkpoint_note(genesis: &Genesis, cp: &CosignedCheckpoint, signer: &PublicKey) -> Result<String> {
    let c = &cp.signed.checkpoint;
    cp.signed.verify(&genesis.hash(), signer)?;
    let witnesses = cp
        .cosignatures
        .iter()
        .filter(|w| {
            genesis.community(&w.witness).is_some_and(|i| i.signing_key == w.key)
                && w.witness != c.community
                && cp.signed.verify_cosignature(&genesis.hash(), w).is_ok()
        })
        .count();
    Ok(format!(
        "{}; checkpoint of size {} signed at {}, {witnesses} valid witness cosignature(s) (by genesis keys)",
        key_note(genesis, &c.community, signer, "the checkpoint signature"),
        c.size,
        out::time(c.time_ms)
    ))
}

/// Check a proof file against the genesis; returns what was established.
pub fn check(file: &ProofFile, genesis: &Genesis) -> Result<Vec<String>> {
    let gh = genesis.hash();
    let file_gh = match file {
        ProofFile::Inclusion(f) => f.genesis_hash,
        ProofFile::Consistency(f) => f.genesis_hash,
        ProofFile::Equivocation(f) => f.genesis_hash,
    };
    if file_gh != gh {
        bail!("the proof is for the federation with genesis hash {file_gh}; the genesis file hashes to {gh}");
    }
    let mut notes = Vec::new();
    match file {
        ProofFile::Inclusion(f) => {
            let e = &f.entry.entry;
            if e.community != f.community || e.seq != f.seq {
                bail!("the entry is {} seq {}, not {} seq {}", e.community, e.seq, f.community, f.seq);
            }
            let hash = f.entry.hash(&gh);
            if hash != f.entry_hash {
                bail!("the entry hashes to {hash}, not {}", f.entry_hash);
            }
            verify_entry(&gh, f.entry.clone(), f.entry_signer)?;
            notes.push(key_note(genesis, &f.community, &f.entry_signer, "the entry signature"));
            if f.proof.leaf_index != f.seq || f.proof.tree_size != f.tree_size {
                bail!(
                    "the path is for leaf {} of {}, not {} of {}",
                    f.proof.leaf_index,
                    f.proof.tree_size,
                    f.seq,
                    f.tree_size
                );
            }
            f.proof.verify(&hash, &f.root)?;
            notes.push(format!("Merkle path of {} hashes leads to root {}", f.proof.path.len(), f.root));
            match (&f.checkpoint, &f.checkpoint_signer) {
                (Some(cp), Some(signer)) => {
                    same_checkpoint(cp, &f.community, f.tree_size, &f.root)?;
                    notes.push(checkpoint_note(genesis, cp, signer)?);
                }
                _ => notes.push(format!(
                    "WARNING: no signed checkpoint of size {}: the root is only the source's word",
                    f.tree_size
                )),
            }
        }
        ProofFile::Consistency(f) => {
            if f.proof.old_size != f.old_size || f.proof.new_size != f.new_size {
                bail!(
                    "the path is for sizes {} and {}, not {} and {}",
                    f.proof.old_size,
                    f.proof.new_size,
                    f.old_size,
                    f.new_size
                );
            }
            f.proof.verify(&f.old_root, &f.new_root)?;
            notes.push(format!("consistency path of {} hashes verifies", f.proof.path.len()));
            for (cp, signer, size, root) in [
                (&f.old_checkpoint, &f.old_signer, f.old_size, &f.old_root),
                (&f.new_checkpoint, &f.new_signer, f.new_size, &f.new_root),
            ] {
                match (cp, signer) {
                    (Some(cp), Some(signer)) => {
                        same_checkpoint(cp, &f.community, size, root)?;
                        notes.push(checkpoint_note(genesis, cp, signer)?);
                    }
                    _ => notes.push(format!(
                        "WARNING: no signed checkpoint of size {size}: its root is only the source's word"
                    )),
                }
            }
        }
        ProofFile::Equivocation(f) => {
            if f.proof.community() != &f.community || f.proof.position() != f.position {
                bail!("the proof is about {} at {}", f.proof.community(), f.proof.position());
            }
            f.proof.verify(&gh, &f.key)?;
            let what = match f.proof {
                EquivocationProof::Entries(..) => format!("two different entries at seq {}", f.position),
                EquivocationProof::Checkpoints(..) => {
                    format!("two checkpoints of size {} with different roots", f.position)
                }
            };
            notes.push(format!("{what}, both signed"));
            notes.push(key_note(genesis, &f.community, &f.key, "each signature"));
        }
    }
    Ok(notes)
}

fn same_checkpoint(cp: &CosignedCheckpoint, c: &CommunityId, size: u64, root: &Hash) -> Result<()> {
    let k = &cp.signed.checkpoint;
    if &k.community != c || k.size != size || &k.root != root {
        bail!(
            "the checkpoint ({} size {} root {}) is not the one the proof uses ({c} size {size} root {root})",
            k.community,
            k.size,
            k.root
        );
    }
    Ok(())
}
