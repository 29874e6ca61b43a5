//! Key and token files: created with 0600 permissions, refused when readable by others.
//! A key file holds the 32-byte secret seed as hex on one line; the node never logs or serves it.

use linli_protocol::Keypair;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: permissions are {mode:o}; a secret file must be readable by its owner only (chmod 600)")]
    TooOpen { path: String, mode: u32 },
    #[error("{path}: not a key file (expected 64 hex digits)")]
    Malformed { path: String },
    #[error("{path}: already exists; refusing to overwrite a secret")]
    Exists { path: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io { path: path.display().to_string(), source }
}

/// Write a new secret file with mode 0600 (never overwrites).
pub fn write_secret(path: &Path, contents: &str) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists { path: path.display().to_string() });
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io(path))?;
    f.write_all(contents.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(())
}

/// Read a secret file, refusing one that group or others can read.
pub fn read_secret(path: &Path) -> Result<String, KeyFileError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen { path: path.display().to_string(), mode });
    }
    Ok(fs::read_to_string(path).map_err(io(path))?.trim().to_string())
}

/// Generate a key and write it to `path`.
pub fn generate_key(path: &Path) -> Result<Keypair, KeyFileError> {
    let key = Keypair::generate();
    write_secret(path, &format!("{}\n", hex::encode(key.seed())))?;
    Ok(key)
}

/// Write a given key to `path`.
pub fn write_key(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    write_secret(path, &format!("{}\n", hex::encode(key.seed())))
}

/// Load a key file.
pub fn read_key(path: &Path) -> Result<Keypair, KeyFileError> {
    let text = read_secret(path)?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.as_bytes(), &mut seed)
        .map_err(|_| KeyFileError::Malformed { path: path.display().to_string() })?;
    Ok(Keypair::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys/signing.key");
        let k = generate_key(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_key(&p).unwrap().public(), k.public());
        assert!(matches!(generate_key(&p), Err(KeyFileError::Exists { .. })));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_key(&p), Err(KeyFileError::TooOpen { mode: 0o644, .. })));
    }
}
