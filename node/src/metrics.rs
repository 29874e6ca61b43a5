//! Prometheus metrics of a node, served at `/metrics` in the text exposition format
//! (`prometheus-client`): entries appended to the own ledger and received from peers, validation
//! failures by rule (`Rejection::rule()`), connected peers, gossip and sync latency histograms,
//! and RocksDB sizes per column family (read from the store when scraped): SST files on disk,
//! the estimated live data in them, and the memtables (data written and not yet flushed), so a
//! node whose data is all still in memtables reports a size above zero.
//!
//! [`Metrics`] is cheap to clone (one `Arc`); `node.rs` creates it and hands clones to the
//! sequencer thread, the network loop and the HTTP API.

use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;

/// Where a refused entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Submitted to this node (operator, resident or merchant call).
    Local,
    /// Received from a peer (gossip or sync).
    Peer,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Peer => "peer",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: &'static str,
    origin: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommunityLabels {
    community: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CfLabels {
    cf: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Debug)]
struct Inner {
    registry: Registry,
    appended: Counter,
    received: Family<CommunityLabels, Counter>,
    rejected: Family<RuleLabels, Counter>,
    evidence: Family<CommunityLabels, Counter>,
    peers: Gauge,
    gossip_latency: Histogram,
    sync_latency: HistogramFamily<KindLabels>,
    sst_bytes: Family<CfLabels, Gauge>,
    live_bytes: Family<CfLabels, Gauge>,
    memtable_bytes: Family<CfLabels, Gauge>,
    total_bytes: Gauge,
    keys: Family<CfLabels, Gauge>,
}

/// The node's metrics and their registry; clones share them.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (at zero).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("linli");
        let appended = Counter::default();
        registry.register("entries_appended", "Entries appended to this community's own ledger", appended.clone());
        let received = Family::<CommunityLabels, Counter>::default();
        registry.register(
            "entries_received",
            "Entries of other communities' ledgers received from peers, validated and stored",
            received.clone(),
        );
        let rejected = Family::<RuleLabels, Counter>::default();
        registry.register(
            "validation_failures",
            "Entries refused by a ledger rule (the Rejection::rule() name), by origin (local submission or peer)",
            rejected.clone(),
        );
        let evidence = Family::<CommunityLabels, Counter>::default();
        registry.register(
            "evidence_taken",
            "Entries of a proven equivocator, past its first conflict, taken as evidence for an honest ledger's citation",
            evidence.clone(),
        );
        let peers = Gauge::default();
        registry.register("connected_peers", "libp2p peers currently connected", peers.clone());
        let gossip_latency = latency_histogram();
        registry.register_with_unit(
            "gossip_latency",
            "Age of a peer's entry (its sequencing time to its validation and storage here) when accepted from gossip",
            Unit::Seconds,
            gossip_latency.clone(),
        );
        let sync_latency: HistogramFamily<KindLabels> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "sync_latency",
            "Round trip of a sync request (ledger head or entry range) to a peer",
            Unit::Seconds,
            sync_latency.clone(),
        );
        let sst_bytes = Family::<CfLabels, Gauge>::default();
        registry.register_with_unit(
            "rocksdb_total_sst_files_size",
            "RocksDB property rocksdb.total-sst-files-size per column family",
            Unit::Bytes,
            sst_bytes.clone(),
        );
        let live_bytes = Family::<CfLabels, Gauge>::default();
        registry.register_with_unit(
            "rocksdb_estimate_live_data_size",
            "RocksDB property rocksdb.estimate-live-data-size per column family (live data in SST files)",
            Unit::Bytes,
            live_bytes.clone(),
        );
        let memtable_bytes = Family::<CfLabels, Gauge>::default();
        registry.register_with_unit(
            "rocksdb_cur_size_all_mem_tables",
            "RocksDB property rocksdb.cur-size-all-mem-tables per column family (written, not yet flushed)",
            Unit::Bytes,
            memtable_bytes.clone(),
        );
        let total_bytes = Gauge::default();
        registry.register_with_unit(
            "rocksdb_size",
            "SST files plus memtables of every column family together",
            Unit::Bytes,
            total_bytes.clone(),
        );
        let keys = Family::<CfLabels, Gauge>::default();
        registry.register(
            "rocksdb_estimate_num_keys",
            "RocksDB property rocksdb.estimate-num-keys per column family",
            keys.clone(),
        );
        let inner = Inner {
            registry,
            appended,
            received,
            rejected,
            evidence,
            peers,
            gossip_latency,
            sync_latency,
            sst_bytes,
            live_bytes,
            memtable_bytes,
            total_bytes,
            keys,
        };
        Metrics { inner: Arc::new(inner) }
    }

    /// `n` entries were durably appended to the own ledger.
    pub fn appended(&self, n: usize) {
        self.inner.appended.inc_by(n as u64);
    }

    /// Entries of `community` received from peers were validated and stored.
    pub fn received(&self, community: &str, n: usize) {
        self.inner.received.get_or_create(&CommunityLabels { community: community.to_string() }).inc_by(n as u64);
    }

    /// An entry was refused by `rule`.
    pub fn rejected(&self, rule: &'static str, origin: Origin) {
        self.inner.rejected.get_or_create(&RuleLabels { rule, origin: origin.as_str() }).inc();
    }

    /// An entry of the equivocator `community` was taken as evidence.
    pub fn evidence_taken(&self, community: &str) {
        self.inner.evidence.get_or_create(&CommunityLabels { community: community.to_string() }).inc();
    }

    /// The number of connected peers changed.
    pub fn set_peers(&self, n: usize) {
        self.inner.peers.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Currently connected peers.
    pub fn peers(&self) -> u64 {
        u64::try_from(self.inner.peers.get()).unwrap_or(0)
    }

    /// A gossiped entry sequenced `age_ms` ago was accepted.
    pub fn gossip_accepted(&self, age_ms: u64) {
        self.inner.gossip_latency.observe(age_ms as f64 / 1000.0);
    }

    /// A sync request of `kind` (`head`, `range`) was answered after `elapsed`.
    pub fn sync_answered(&self, kind: &'static str, elapsed: std::time::Duration) {
        self.inner.sync_latency.get_or_create(&KindLabels { kind }).observe(elapsed.as_secs_f64());
    }

    /// Read the RocksDB size properties of every column family (blocking: call off the async
    /// threads).
    pub fn refresh_store(&self, store: &Store) {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut total = 0u64;
        for (cf, v) in store.cf_property("rocksdb.total-sst-files-size") {
            self.inner.sst_bytes.get_or_create(&CfLabels { cf }).set(gauge(v));
            total = total.saturating_add(v);
        }
        for (cf, v) in store.cf_property("rocksdb.cur-size-all-mem-tables") {
            self.inner.memtable_bytes.get_or_create(&CfLabels { cf }).set(gauge(v));
            total = total.saturating_add(v);
        }
        for (cf, v) in store.cf_property("rocksdb.estimate-live-data-size") {
            self.inner.live_bytes.get_or_create(&CfLabels { cf }).set(gauge(v));
        }
        for (cf, v) in store.cf_property("rocksdb.estimate-num-keys") {
            self.inner.keys.get_or_create(&CfLabels { cf }).set(gauge(v));
        }
        self.inner.total_bytes.set(gauge(total));
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_encode() {
        let m = Metrics::new();
        m.appended(3);
        m.received("shatou", 2);
        m.rejected("insufficient-points", Origin::Local);
        m.rejected("insufficient-points", Origin::Local);
        m.set_peers(4);
        m.gossip_accepted(12);
        m.sync_answered("head", std::time::Duration::from_millis(3));
        let text = m.encode().unwrap_or_default();
        assert!(text.contains("linli_entries_appended_total 3"), "{text}");
        assert!(text.contains("linli_entries_received_total{community=\"shatou\"} 2"), "{text}");
        assert!(
            text.contains("linli_validation_failures_total{rule=\"insufficient-points\",origin=\"local\"} 2"),
            "{text}"
        );
        assert!(text.contains("linli_connected_peers 4"), "{text}");
        assert!(text.contains("linli_gossip_latency_seconds_count 1"), "{text}");
        assert!(text.contains("linli_sync_latency_seconds_count{kind=\"head\"} 1"), "{text}");
        assert_eq!(m.peers(), 4);
    }
}
