//! `linli-node`: create a community's keys and configuration, build a genesis file from member
//! files, check a store, and run the node.

/// mimalloc: the ingest path allocates and frees many small objects per entry.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use linli_node::config::{Config, ConfigFile};
use linli_node::keyfile;
use linli_protocol::genesis::{RawCommunity, RawGenesis};
use linli_protocol::{Genesis, FEN_PER_POINT};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(version, about = "Linli community node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a community's keys (0600 files), operator token, node.toml and member.toml in DIR.
    Init {
        #[arg(long)]
        community: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "default")]
        district: String,
        #[arg(long, default_value = "127.0.0.1:8101")]
        http: String,
        #[arg(long, default_value = "/ip4/127.0.0.1/tcp/4101")]
        p2p: String,
        /// Use this genesis file instead of writing a one-community genesis.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Combine member.toml files (public keys and addresses) into a genesis file.
    Genesis {
        #[arg(long, default_value = "linli")]
        federation: String,
        #[arg(long)]
        out: PathBuf,
        members: Vec<PathBuf>,
    },
    /// Run the node.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Replay every ledger from genesis before serving and refuse to start on any disagreement.
        #[arg(long)]
        check: bool,
    },
    /// Print the default award rule table (JSON) to publish with POST /v1/operator/rules.
    DefaultRules {
        /// Print the council-style table instead (council 10/meeting, volunteering 5/hour, skill sharing 15).
        #[arg(long)]
        council: bool,
    },
    /// Generate a resident's or merchant's key file (0600) and print its public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Check the store (full replay from genesis) and exit.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Create a merchant light node in DIR: merchant key (0600), till token, merchant.toml.
    /// Register the printed public key with the home community (POST /v1/operator/merchants).
    MerchantInit {
        #[arg(long)]
        home: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8201")]
        http: String,
        /// Community nodes to connect to (libp2p multiaddrs); default: the home community's.
        #[arg(long = "full-node")]
        full_nodes: Vec<String>,
        /// Witness cosignatures a checkpoint needs before a sale is accepted.
        #[arg(long, default_value_t = 1)]
        min_witnesses: usize,
    },
    /// Run a merchant light node (the till).
    Merchant {
        #[arg(long)]
        config: PathBuf,
    },
    /// Repair a damaged store (node stopped): cut damaged peer ledgers back to their last good
    /// entry and rebuild the state; the node re-fetches the rest from its peers when it starts.
    Repair {
        #[arg(long)]
        config: PathBuf,
    },
    /// Revoke the community's compromised signing key with the offline recovery key (node
    /// stopped): appends a RevokeKey entry and installs a new signing key.
    Revoke {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        recovery_key: PathBuf,
    },
}

fn merchant_init(
    home: String,
    dir: PathBuf,
    genesis: PathBuf,
    http: String,
    full_nodes: Vec<String>,
    min_witnesses: usize,
) -> Result<()> {
    let g = linli_node::node::read_genesis(&genesis)?;
    linli_node::merchant::config::check_against_genesis(&home, min_witnesses, &g)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = keyfile::generate_key(&dir.join("merchant.key"))?;
    let token = hex::encode(linli_protocol::Keypair::generate().seed());
    keyfile::write_secret(&dir.join("till.token"), &format!("{token}\n"))?;
    let cfg = linli_node::merchant::config::MerchantConfigFile {
        home,
        genesis_file: std::fs::canonicalize(&genesis).with_context(|| format!("genesis {}", genesis.display()))?,
        merchant_key_file: "merchant.key".into(),
        till_token_file: "till.token".into(),
        data_dir: "till-data".into(),
        http_listen: http,
        full_nodes: if full_nodes.is_empty() { None } else { Some(full_nodes) },
        min_witnesses,
        proof_timeout_ms: 5000,
    };
    std::fs::write(dir.join("merchant.toml"), toml::to_string_pretty(&cfg)?)?;
    println!("created {}/merchant.toml; merchant public key {}", dir.display(), key.public());
    Ok(())
}

/// Wait for Ctrl-C or SIGTERM.
async fn terminated() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn init(
    community: String,
    dir: PathBuf,
    name: String,
    district: String,
    http: String,
    p2p: String,
    genesis: Option<PathBuf>,
) -> Result<()> {
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let signing = keyfile::generate_key(&dir.join("keys/signing.key"))?;
    let recovery = keyfile::generate_key(&dir.join("keys/recovery.key"))?;
    let token = hex::encode(linli_protocol::Keypair::generate().seed());
    keyfile::write_secret(&dir.join("operator.token"), &format!("{token}\n"))?;
    let member = RawCommunity {
        id: community.clone(),
        name: if name.is_empty() { community.clone() } else { name },
        district,
        signing_key: signing.public().to_hex(),
        recovery_key: recovery.public().to_hex(),
        p2p_addresses: vec![p2p.clone()],
        http_address: Some(http.clone()),
    };
    std::fs::write(dir.join("member.toml"), toml::to_string_pretty(&member)?)?;
    let genesis_file = match genesis {
        Some(g) => std::fs::canonicalize(&g).with_context(|| format!("genesis {}", g.display()))?,
        None => {
            let raw = RawGenesis {
                federation: format!("{community}-solo"),
                fen_per_point: FEN_PER_POINT,
                created_ms: 0,
                communities: vec![member],
            };
            let g = Genesis::try_from(raw)?;
            std::fs::write(dir.join("genesis.toml"), g.to_toml())?;
            PathBuf::from("genesis.toml")
        }
    };
    let cfg = ConfigFile {
        community,
        data_dir: "data".into(),
        genesis_file,
        signing_key_file: "keys/signing.key".into(),
        operator_token_file: "operator.token".into(),
        http_listen: http,
        p2p_listen: Some(p2p),
        checkpoint_interval_ms: 2000,
        follow: None,
        mdns: false,
    };
    std::fs::write(dir.join("node.toml"), toml::to_string_pretty(&cfg)?)?;
    println!("created {}/node.toml (config), member.toml (public info for the genesis)", dir.display());
    println!("  keys/signing.key   community signing key (0600)");
    println!("  keys/recovery.key  offline recovery key: move it off this machine (0600)");
    println!("  operator.token     operator bearer token (0600)");
    Ok(())
}

fn genesis(federation: String, out: PathBuf, members: Vec<PathBuf>) -> Result<()> {
    if members.is_empty() {
        bail!("name at least one member.toml");
    }
    let mut communities = Vec::new();
    for m in &members {
        let text = std::fs::read_to_string(m).with_context(|| format!("reading {}", m.display()))?;
        communities.push(toml::from_str::<RawCommunity>(&text).with_context(|| format!("parsing {}", m.display()))?);
    }
    let g = Genesis::try_from(RawGenesis { federation, fen_per_point: FEN_PER_POINT, created_ms: 0, communities })?;
    std::fs::write(&out, g.to_toml())?;
    println!("wrote {} with {} communities; genesis hash {}", out.display(), g.communities.len(), g.hash());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Init { community, dir, name, district, http, p2p, genesis: g } => {
            init(community, dir, name, district, http, p2p, g)
        }
        Command::Genesis { federation, out, members } => genesis(federation, out, members),
        Command::DefaultRules { council } => {
            let t = if council {
                linli_protocol::rules::RuleTable::council_table(1)
            } else {
                linli_protocol::rules::RuleTable::default_table(1)
            };
            println!("{}", serde_json::to_string_pretty(&t)?);
            Ok(())
        }
        Command::Keygen { out } => {
            let k = keyfile::generate_key(&out)?;
            println!("{}", k.public());
            Ok(())
        }
        Command::Check { config } => {
            let config = Config::load(&config)?;
            let g = linli_node::node::read_genesis(&config.genesis_file)?;
            let store = linli_node::store::Store::open(&config.data_dir, &g)?;
            let state = store.load_state(&g)?;
            store.check_heads(&g, &state)?;
            linli_node::node::full_check(&store, &g, &state)?;
            println!(
                "store at {} verified: every ledger replays from genesis to the stored state",
                config.data_dir.display()
            );
            Ok(())
        }
        Command::Run { config, check } => {
            let config = Config::load(&config)?;
            let node = linli_node::node::start(&config, check).await?;
            println!("linli-node {} listening on http://{}", config.community, node.http_addr);
            terminated().await?;
            node.stop().await;
            Ok(())
        }
        Command::Repair { config } => {
            let config = Config::load(&config)?;
            let g = linli_node::node::read_genesis(&config.genesis_file)?;
            let store = linli_node::store::Store::open(&config.data_dir, &g)?;
            let report = linli_node::repair::repair(&store, &g, &config.community)?;
            for (c, kept, before, why) in &report.cut {
                println!("{c}: kept {kept} of {before} entries (seq {kept}: {why}); peers will restore the rest");
            }
            println!("store repaired: {} entries verified and kept", report.entries_kept);
            Ok(())
        }
        Command::Revoke { config, recovery_key } => {
            let config = Config::load(&config)?;
            let r = linli_node::rotation::revoke(&config, &recovery_key).await?;
            println!(
                "revoked the signing key of {} at seq {}; new key installed in {}",
                r.community,
                r.seq,
                config.signing_key_file.display()
            );
            Ok(())
        }
        Command::MerchantInit { home, dir, genesis, http, full_nodes, min_witnesses } => {
            merchant_init(home, dir, genesis, http, full_nodes, min_witnesses)
        }
        Command::Merchant { config } => {
            let config = linli_node::merchant::config::MerchantConfig::load(&config)?;
            let till = linli_node::merchant::start(&config).await?;
            println!("linli merchant light node of {} listening on http://{}", config.home, till.http_addr);
            terminated().await?;
            till.stop().await;
            Ok(())
        }
    }
}
