//! The merchant light node: it holds the merchant key and its own small receipts store, and
//! replicates no ledger. A sale's path through it: the till API ([`api`]) takes the resident's
//! signed payment → the till ([`till`]) checks it and sends it over the link ([`link`]) to the
//! payer's home community through any connected community node → it fetches the `Pay` entry's
//! proof until a checkpoint cosigned by enough witnesses covers it, verifies it
//! (`linli_protocol::light`) → the receipt is stored ([`store`]) and the sale accepted. Later
//! the merchant settles with its home community ([`settlement`]) and reconciles receipts and
//! settlements against the home ledger ([`reconcile`]).

pub mod api;
pub mod config;
#[cfg(test)]
mod forged_tests;
pub mod link;
pub mod reconcile;
pub mod settlement;
pub mod store;
pub mod till;

use crate::keyfile;
use crate::node::{read_genesis, NodeError};
use config::MerchantConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use till::Till;
use tokio_util::sync::CancellationToken;

/// A running light node.
pub struct RunningTill {
    pub http_addr: SocketAddr,
    pub till: Till,
    pub shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningTill {
    /// Stop the HTTP server, the link and background work; the store closes when this returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn file_error(what: &'static str, path: &std::path::Path, reason: impl ToString) -> NodeError {
    NodeError::File { what, path: path.display().to_string(), reason: reason.to_string() }
}

/// Open the receipts store, connect to the federation and serve the till API.
pub async fn start(config: &MerchantConfig) -> Result<RunningTill, NodeError> {
    let genesis = read_genesis(&config.genesis_file)?;
    config::check_against_genesis(config.home.as_str(), config.min_witnesses, &genesis)?;
    let key = keyfile::read_key(&config.merchant_key_file)
        .map_err(|e| file_error("merchant key", &config.merchant_key_file, e))?;
    let token = keyfile::read_secret(&config.till_token_file)
        .map_err(|e| file_error("till token", &config.till_token_file, e))?;
    let dial = link::dial_list(&genesis, &config.home, config.full_nodes.as_deref())
        .map_err(|e| file_error("configuration", std::path::Path::new("full_nodes"), e))?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store = {
        let (dir, g) = (config.data_dir.clone(), genesis.clone());
        tokio::task::spawn_blocking(move || store::TillStore::open(&dir, &g))
            .await
            .map_err(|e| NodeError::Io(std::io::Error::other(e)))?
            .map_err(|e| file_error("receipts store", &config.data_dir, e))?
    };
    let shutdown = CancellationToken::new();
    let (alerts_tx, mut alerts_rx) = tokio::sync::mpsc::channel(64);
    let (link, link_task) = link::spawn(genesis.clone(), &config.home, dial, alerts_tx, shutdown.clone())
        .await
        .map_err(|e| NodeError::Io(std::io::Error::other(e.to_string())))?;
    let till = Till::new(
        config.home.clone(),
        key,
        genesis,
        config.min_witnesses,
        Duration::from_millis(config.proof_timeout_ms),
        store,
        link,
    );
    let mut tasks = vec![link_task];
    let (t, stop) = (till.clone(), shutdown.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(proof) = alerts_rx.recv() => {
                    match t.take_alert(&proof) {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(community = %proof.community(), "an equivocation alert did not verify"),
                        Err(e) => tracing::error!(error = %e, "could not record an equivocation alert"),
                    }
                }
            }
        }
    }));
    let (t, stop) = (till.clone(), shutdown.clone());
    tasks.push(tokio::spawn(async move { catch_up(t, stop).await }));

    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| NodeError::Bind { addr: config.http_listen, source })?;
    let http_addr = listener.local_addr()?;
    let app = api::router(api::TillState { till: till.clone(), token: Arc::new(token) });
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
    }));
    tracing::info!(home = %config.home, merchant = %till.merchant(), %http_addr, "merchant light node serving");
    Ok(RunningTill { http_addr, till, shutdown, tasks })
}

/// After a start: once connected, learn the communities' key changes and the alerts held by the
/// federation, and finish sales left pending (the light node may have been offline while they were confirmed).
async fn catch_up(till: Till, stop: CancellationToken) {
    for _ in 0..100 {
        if stop.is_cancelled() {
            return;
        }
        if let Err(e) = till.refresh_keys().await {
            tracing::warn!(error = %e, "could not ask for key histories");
        }
        match till.fetch_alerts().await {
            Ok(_) => {
                match till.reconcile().await {
                    Ok(r) => tracing::info!(receipts = r.receipts, pending = r.pending, "reconciled after start"),
                    Err(e) => tracing::warn!(error = %e, "reconciliation after start failed"),
                }
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
