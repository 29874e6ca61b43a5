//! `linli keys`: generate a resident, merchant or community key into a 0600 file, and show a key
//! file's public key. The secret never leaves the file: nothing here prints it.

use crate::out;
use anyhow::{anyhow, Result};
use clap::{Subcommand, ValueEnum};
use linli_node::keyfile;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Resident,
    Merchant,
    Community,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a key into a new file (mode 0600; an existing file is never overwritten).
    Generate {
        /// Whose key: a resident's, a merchant's (till) or a community's (node signing key).
        #[arg(long, value_enum)]
        role: Role,
        /// The new key file (its directory is created; an existing file is refused).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Show a key file's public key (the secret is never printed).
    Show {
        /// A key file written by `linli keys generate` or `linli-node init` (mode 0600).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(cmd: &KeysCommand, json_out: bool) -> Result<()> {
    match cmd {
        KeysCommand::Generate { role, out: path } => {
            let key = keyfile::generate_key(path).map_err(|e| anyhow!("{e}"))?;
            if json_out {
                return out::json(&serde_json::json!({"role": role, "file": path, "public_key": key.public()}));
            }
            out::line(&format!("{:?} key written to {} (mode 0600)", role, path.display()))?;
            out::line(&format!("public key: {}", key.public()))?;
            match role {
                Role::Resident => out::line("give the public key to your community office to be enrolled"),
                Role::Merchant => out::line("give the public key to your community office to be registered as a merchant"),
                Role::Community => out::line(
                    "put the public key in the genesis file as signing_key (generate a second, offline key for recovery_key)",
                ),
            }
        }
        KeysCommand::Show { file } => {
            let key = keyfile::read_key(file).map_err(|e| anyhow!("{e}"))?;
            if json_out {
                return out::json(&serde_json::json!({"file": file, "public_key": key.public()}));
            }
            out::line(&key.public().to_hex())
        }
    }
}
