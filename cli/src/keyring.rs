//! The community key in force at each seq of a ledger, learned by walking the ledger from seq 0
//! and checking every `RotateKey` and `RevokeKey` entry's signatures (a forged rotation is
//! refused), so proofs and checkpoints are checked against the right key, never just the
//! genesis key.

use crate::source::Source;
use anyhow::{anyhow, bail, Result};
use linli_protocol::body::Body;
use linli_protocol::verify::{verify_entry, SignerKeys};
use linli_protocol::{CommunityId, Genesis, Hash, PublicKey, SignedEntry};

/// Keys of one ledger over its first `walked` entries.
pub struct KeyHistory {
    start: SignerKeys,
    /// `(seq, keys in force from seq + 1 on)` for each rotation or revocation entry.
    changes: Vec<(u64, SignerKeys)>,
    walked: u64,
}

impl KeyHistory {
    /// Walk `community`'s first `upto` entries (fewer if the ledger is shorter).
    pub fn walk(source: &Source, genesis: &Genesis, community: &CommunityId, upto: u64) -> Result<KeyHistory> {
        let info =
            genesis.community(community).ok_or_else(|| anyhow!("community {community} is not in the genesis"))?;
        let gh = genesis.hash();
        let start = SignerKeys { current: info.signing_key, recovery: info.recovery_key };
        let mut h = KeyHistory { start, changes: Vec::new(), walked: 0 };
        let mut keys = start;
        while h.walked < upto {
            let want = usize::try_from(upto.saturating_sub(h.walked)).unwrap_or(usize::MAX).min(crate::audit::CHUNK);
            let chunk = source.read(community, h.walked, want)?;
            if chunk.is_empty() {
                break;
            }
            for e in chunk {
                keys = step_checked(&gh, keys, e, &mut h.changes)?;
                h.walked = h.walked.saturating_add(1);
            }
        }
        Ok(h)
    }

    /// How many entries were walked.
    pub fn walked(&self) -> u64 {
        self.walked
    }

    /// The keys in force for entry `seq`.
    pub fn keys_for(&self, seq: u64) -> SignerKeys {
        self.changes.iter().take_while(|(at, _)| *at < seq).last().map(|(_, k)| *k).unwrap_or(self.start)
    }

    /// The key that must have signed `entry` (the recovery key for a revocation).
    pub fn signer_of(&self, entry: &SignedEntry) -> PublicKey {
        self.keys_for(entry.entry.seq).step(entry).0
    }

    /// The key that signs checkpoints of `size` entries: the one in force after them.
    pub fn key_after(&self, size: u64) -> Result<PublicKey> {
        if size > self.walked {
            bail!("the ledger has only {} entries; no key is known after {size}", self.walked);
        }
        Ok(self.keys_for(size).current)
    }
}

fn step_checked(
    gh: &Hash,
    keys: SignerKeys,
    e: SignedEntry,
    changes: &mut Vec<(u64, SignerKeys)>,
) -> Result<SignerKeys> {
    if !matches!(e.entry.body, Body::RotateKey(_) | Body::RevokeKey(_)) {
        return Ok(keys);
    }
    let (signer, next) = keys.step(&e);
    let seq = e.entry.seq;
    let community = e.entry.community.clone();
    verify_entry(gh, e, signer).map_err(|err| {
        anyhow!("community {community} seq {seq}: key change refused: {err}; keys cannot be followed")
    })?;
    changes.push((seq, next));
    Ok(next)
}
