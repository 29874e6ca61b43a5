//! Community key changes, with the key file following the ledger.
//!
//! * **Rotation** (online, `POST /v1/operator/rotate-key`): the node generates the new key,
//!   writes it to `<signing key file>.next` (0600), has the sequencer append a `RotateKey` entry
//!   signed by the old key and the new one, and once that is durable renames the old file to
//!   `<file>.retired-<seq>` and the new one into place.
//! * **Revocation** (offline, `linli-node revoke`, with the node stopped): the office brings
//!   the offline recovery key; a `RevokeKey` entry signed by it names the compromised key and
//!   the new one. Nothing the revoked key signs after that point is accepted by any node.
//!
//! A crash between the durable entry and the rename is repaired at start: if the key file holds
//! a retired key and `.next` holds the key in force, `.next` is installed.

use crate::config::Config;
use crate::keyfile::{self, KeyFileError};
use crate::node::{read_genesis, NodeError};
use crate::sequencer::{self, Draft, Receipt, SequencerHandle};
use crate::store::Store;
use linli_protocol::{Keypair, PublicKey};
use std::path::{Path, PathBuf};

fn next_path(key_file: &Path) -> PathBuf {
    let mut s = key_file.as_os_str().to_owned();
    s.push(".next");
    PathBuf::from(s)
}

/// Generate the next key and write it beside the key file (before the entry is sequenced).
pub fn prepare_next_key(key_file: &Path) -> Result<Keypair, KeyFileError> {
    let next = next_path(key_file);
    if next.exists() {
        // A rotation that never reached the ledger: its key was never in force.
        let _ = std::fs::remove_file(&next);
    }
    keyfile::generate_key(&next)
}

/// The rotation entry at `seq` is durable: retire the old key file and install the new one.
pub fn install_next_key(key_file: &Path, seq: u64) -> Result<(), KeyFileError> {
    let mut retired = key_file.as_os_str().to_owned();
    retired.push(format!(".retired-{seq}"));
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| KeyFileError::Io { path, source }
    };
    std::fs::rename(key_file, PathBuf::from(retired)).map_err(io(key_file))?;
    let next = next_path(key_file);
    std::fs::rename(&next, key_file).map_err(io(&next))
}

/// At start: the key to sign with. If the key file holds another key than the one in force
/// but `.next` holds it (a crash after a rotation was written), install `.next`.
pub fn key_in_force(key_file: &Path, in_force: &PublicKey, seq: u64) -> Result<Option<Keypair>, KeyFileError> {
    let key = keyfile::read_key(key_file)?;
    if key.public() == *in_force {
        return Ok(Some(key));
    }
    let next = next_path(key_file);
    if next.exists() && keyfile::read_key(&next)?.public() == *in_force {
        tracing::warn!("installing the rotated key left in {} by an interrupted rotation", next.display());
        install_next_key(key_file, seq)?;
        return Ok(Some(keyfile::read_key(key_file)?));
    }
    Ok(None)
}

/// Rotate the running node's key through its sequencer; returns the rotation entry's receipt.
pub async fn rotate(sequencer: &SequencerHandle, key_file: &Path) -> Result<Receipt, NodeError> {
    let file_error = |e: KeyFileError| NodeError::File {
        what: "signing key",
        path: key_file.display().to_string(),
        reason: e.to_string(),
    };
    let new = prepare_next_key(key_file).map_err(file_error)?;
    let receipt = sequencer
        .submit(Draft::RotateKey { new: Box::new(new) })
        .await
        .map_err(|e| NodeError::Io(std::io::Error::other(e.to_string())))?;
    install_next_key(key_file, receipt.seq).map_err(file_error)?;
    Ok(receipt)
}

/// Revoke the community's key in force with the offline recovery key (node stopped).
pub async fn revoke(config: &Config, recovery_key_file: &Path) -> Result<Receipt, NodeError> {
    let genesis = read_genesis(&config.genesis_file)?;
    let file_error = |what: &'static str, path: &Path, e: KeyFileError| NodeError::File {
        what,
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let recovery =
        keyfile::read_key(recovery_key_file).map_err(|e| file_error("recovery key", recovery_key_file, e))?;
    let (store, state) = {
        let (dir, g) = (config.data_dir.clone(), genesis.clone());
        tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let store = Store::open(&dir, &g)?;
            let state = store.load_state_without_records(&g)?;
            store.check_heads(&g, &state)?;
            Ok((store, state))
        })
        .await
        .map_err(|e| NodeError::Io(std::io::Error::other(e)))??
    };
    let ledger =
        state.ledgers.get(&config.community).ok_or_else(|| NodeError::NotInGenesis(config.community.clone()))?;
    if recovery.public() != ledger.recovery_key {
        return Err(NodeError::WrongKey {
            community: config.community.clone(),
            expected: ledger.recovery_key.to_hex(),
            actual: recovery.public().to_hex(),
        });
    }
    // The compromised key may be gone or unreadable: the sequencer only signs with the
    // recovery key here, so any key stands in until the new one is installed.
    let placeholder = Keypair::generate();
    let new = prepare_next_key(&config.signing_key_file)
        .map_err(|e| file_error("signing key", &config.signing_key_file, e))?;
    let (handle, thread) = sequencer::spawn(
        config.community.clone(),
        genesis,
        placeholder,
        store,
        state,
        None,
        crate::metrics::Metrics::new(),
    )?;
    let receipt = handle
        .submit(Draft::RevokeKey { recovery: Box::new(recovery), new: Box::new(new) })
        .await
        .map_err(|e| NodeError::Io(std::io::Error::other(e.to_string())))?;
    drop(handle);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    if config.signing_key_file.exists() {
        install_next_key(&config.signing_key_file, receipt.seq)
    } else {
        std::fs::rename(next_path(&config.signing_key_file), &config.signing_key_file)
            .map_err(|source| KeyFileError::Io { path: config.signing_key_file.display().to_string(), source })
    }
    .map_err(|e| file_error("signing key", &config.signing_key_file, e))?;
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_rotation_is_completed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("signing.key");
        let old = keyfile::generate_key(&file).unwrap();
        let new = prepare_next_key(&file).unwrap();
        // The ledger says the new key is in force, but the files were not renamed yet.
        let got = key_in_force(&file, &new.public(), 7).unwrap().unwrap();
        assert_eq!(got.public(), new.public());
        assert_eq!(keyfile::read_key(&file).unwrap().public(), new.public());
        let retired = dir.path().join("signing.key.retired-7");
        assert_eq!(keyfile::read_key(&retired).unwrap().public(), old.public());
        // A key file that matches nothing in force is refused.
        assert!(key_in_force(&file, &Keypair::generate().public(), 8).unwrap().is_none());
    }
}
