//! The disclosure page of a federated node with two months of history, in headless Chromium.
//! The ledger is written beforehand through the sequencer core with an injected clock (the
//! simulator's [`Clock`]) into a real RocksDB directory: awards 62 and 45 days ago and today,
//! and the time bank on two of those days. Then two nodes run on real libp2p sockets (peers and
//! a cosigned checkpoint), and an equivocation proof about a third community raises the alert.
//! The page must show the series over time, exclude last month's awards from the month's top
//! volunteers, show peers and cosigners above 0 and the alert banner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::browser::{attr, dump_dom, figure, screenshot, tags};
use common::port::free_port;
use common::TOKEN;
use linli_node::config::{Config, ConfigFile};
use linli_node::keyfile;
use linli_node::sequencer::{Clock, Draft, Input, Output, Sequencer};
use linli_node::store::Store;
use linli_protocol::body::{Award, Body, Enroll, Signed, TimeDraw, TimeService};
use linli_protocol::checkpoint::EquivocationProof;
use linli_protocol::genesis::{RawCommunity, RawGenesis};
use linli_protocol::rules::{AwardClaim, RuleTable};
use linli_protocol::testkit::key;
use linli_protocol::{CommunityId, Entry, Genesis, Hash, Keypair, PublicKey, SignedEntry};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY_MS: u64 = 86_400_000;

/// (when, resident, activity, minutes, rating, bonuses)
type Planned<'a> = (u64, &'a Keypair, &'a str, u64, u8, &'a [&'a str]);

/// lianhua and shatou with libp2p addresses; futian is in the genesis but never runs.
fn genesis(p2p: &[u16; 2]) -> Genesis {
    let ids = ["lianhua", "shatou", "futian"];
    let raw = RawGenesis {
        federation: "page-history".into(),
        fen_per_point: 10,
        created_ms: 0,
        communities: ids
            .iter()
            .enumerate()
            .map(|(i, id)| RawCommunity {
                id: (*id).into(),
                name: format!("{id} street office"),
                district: "futian".into(),
                signing_key: key(&format!("{id}/signing")).public().to_hex(),
                recovery_key: key(&format!("{id}/recovery")).public().to_hex(),
                p2p_addresses: p2p.get(i).map(|p| vec![format!("/ip4/127.0.0.1/tcp/{p}")]).unwrap_or_default(),
                http_address: None,
            })
            .collect(),
    };
    Genesis::try_from(raw).unwrap()
}

/// Keys, token, genesis and a networked config for `id` under `dir`.
fn files(dir: &Path, id: &str, genesis: &Genesis, p2p: u16) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("genesis.toml"), genesis.to_toml()).unwrap();
    keyfile::write_key(&dir.join("signing.key"), &key(&format!("{id}/signing"))).unwrap();
    keyfile::write_secret(&dir.join("operator.token"), TOKEN).unwrap();
    let cfg = ConfigFile {
        community: id.into(),
        data_dir: "data".into(),
        genesis_file: "genesis.toml".into(),
        signing_key_file: "signing.key".into(),
        operator_token_file: "operator.token".into(),
        http_listen: "127.0.0.1:0".into(),
        p2p_listen: Some(format!("/ip4/127.0.0.1/tcp/{p2p}")),
        checkpoint_interval_ms: 1000,
        follow: None,
        mdns: false,
    };
    let path = dir.join("node.toml");
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    path
}

/// China Standard Time day number of `ms` (the page's days and months are UTC+8).
fn cst_day(ms: u64) -> u64 {
    (ms + 8 * 3_600_000) / DAY_MS
}

fn pseudonym(k: &PublicKey) -> String {
    let h = k.to_hex();
    format!("{}…{}", &h[..6], &h[h.len() - 4..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_page_of_a_federated_node_over_two_months() {
    let root = tempfile::tempdir().unwrap();
    let p2p = [free_port(), free_port()];
    let genesis = genesis(&p2p);
    let gh = genesis.hash();
    let lianhua_cfg = files(&root.path().join("lianhua"), "lianhua", &genesis, p2p[0]);
    let shatou_cfg = files(&root.path().join("shatou"), "shatou", &genesis, p2p[1]);

    // Two months of lianhua's ledger, written by the sequencer core at injected times.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let (t_old, t_last, t_now) = (now - 62 * DAY_MS, now - 45 * DAY_MS, now - 120_000);
    let time = Arc::new(AtomicU64::new(t_old));
    let clock: Clock = {
        let t = time.clone();
        Arc::new(move || t.load(Ordering::SeqCst))
    };
    let rules = RuleTable::default_table(1);
    let (a, b, c) = (key("veteran"), key("newcomer-b"), key("newcomer-c"));
    let awards: [Planned; 6] = [
        (t_old, &a, "cleanup", 60, 5, &[]),
        (t_old, &a, "mediation", 60, 5, &["complex"]),
        (t_last, &a, "patrol", 60, 5, &[]),
        (t_now, &b, "elder-care", 60, 5, &[]),
        (t_now, &c, "cleanup", 60, 5, &["bad-weather"]),
        (t_now, &b, "patrol", 60, 5, &["major-hazard"]),
    ];
    let mut issued_by_day: BTreeMap<u64, u64> = BTreeMap::new();
    let mut this_month: BTreeMap<PublicKey, u64> = BTreeMap::new();
    let mut lifetime: BTreeMap<PublicKey, u64> = BTreeMap::new();
    {
        let store = Store::open(&root.path().join("lianhua/data"), &genesis).unwrap();
        let state = store.load_state_without_records(&genesis).unwrap();
        let me = CommunityId::new("lianhua").unwrap();
        let mut core = Sequencer::new(me, genesis.clone(), key("lianhua/signing"), store, state, None, clock);
        let mut submit = |draft: Draft| match core.step(vec![Input::Submit(draft)]).pop() {
            Some(Output::Submit(Ok(r))) => r,
            other => panic!("refused: {other:?}"),
        };
        submit(Draft::Body(Body::SetRules(rules.clone())));
        for (i, r) in [&a, &b, &c].into_iter().enumerate() {
            submit(Draft::Body(Body::Enroll(Enroll { resident: r.public(), profile_hash: Hash([i as u8; 32]) })));
        }
        let mut prior: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for (n, (at, r, activity, minutes, rating, bonuses)) in awards.iter().enumerate() {
            time.store(*at, Ordering::SeqCst);
            let bonuses: Vec<String> = bonuses.iter().map(|s| s.to_string()).collect();
            let p = prior.entry(r.public()).or_default();
            let claim =
                AwardClaim { activity, minutes: *minutes, rating: *rating, bonuses: &bonuses, prior_awards: *p };
            let points = rules.award_points(&claim).unwrap();
            *p += 1;
            let award = Award {
                resident: r.public(),
                activity: activity.to_string(),
                minutes: *minutes,
                rating: *rating,
                bonuses,
                points: 0,
                rules_version: 0,
                request_id: n as u64,
            };
            submit(Draft::Award { award, points: Some(points) });
            *issued_by_day.entry(cst_day(*at)).or_default() += points;
            *lifetime.entry(r.public()).or_default() += points;
            if *at == t_now {
                *this_month.entry(r.public()).or_default() += points;
            }
            // The time bank: a serves b 90 minutes 45 days ago, and spends 60 of them today.
            if *at == t_last {
                let svc = TimeService {
                    provider: a.public(),
                    served: b.public(),
                    minutes: 90,
                    service: "tutoring".into(),
                    nonce: 1,
                };
                submit(Draft::Body(Body::TimeCredit(Signed::sign(svc, &b, &gh))));
            }
        }
        let draw = TimeDraw {
            resident: a.public(),
            minutes: 60,
            serving_community: CommunityId::new("shatou").unwrap(),
            service: "repair".into(),
            nonce: 2,
        };
        submit(Draft::Body(Body::TimeSpend(Signed::sign(draw, &a, &gh))));
    }
    assert_eq!(issued_by_day.len(), 3, "awards on three days: {issued_by_day:?}");

    // Both nodes run, federated over libp2p.
    let lianhua = linli_node::node::start(&Config::load(&lianhua_cfg).unwrap(), false).await.unwrap();
    let shatou = linli_node::node::start(&Config::load(&shatou_cfg).unwrap(), false).await.unwrap();
    let base = format!("http://{}", lianhua.http_addr);
    let http = reqwest::Client::new();
    // futian signed two different entries at seq 0: the proof raises the alert.
    let fork = |n: u8| {
        let body = Body::Enroll(Enroll { resident: key("ghost").public(), profile_hash: Hash([n; 32]) });
        let e =
            Entry { community: CommunityId::new("futian").unwrap(), seq: 0, prev_hash: Hash::ZERO, time_ms: now, body };
        Box::new(SignedEntry::sign(e, &key("futian/signing"), &gh))
    };
    assert!(lianhua.sequencer.alert(EquivocationProof::Entries(fork(1), fork(2))).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let d: Value = loop {
        let d: Value = http.get(format!("{base}/v1/disclosure")).send().await.unwrap().json().await.unwrap();
        let cosigners = d["checkpoint"]["cosigners"].as_array().map(Vec::len).unwrap_or(0);
        if d["connected_peers"].as_u64().unwrap_or(0) >= 1 && cosigners >= 1 {
            break d;
        }
        assert!(Instant::now() < deadline, "no peer or no cosigned checkpoint within 60 s: {d:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let url = format!("{base}/");
    let dom = dump_dom(&url).await;
    assert!(dom.contains("data-ready=\"true\""), "the page script did not finish:\n{dom}");

    // The series over time: one point per day with awards, in order, with that day's points.
    let issued: Vec<u64> =
        tags(&dom, "data-series=\"issued\"").iter().map(|t| attr(t, "data-value").unwrap().parse().unwrap()).collect();
    assert_eq!(issued, issued_by_day.values().copied().collect::<Vec<_>>());
    let months: std::collections::BTreeSet<&str> =
        tags(&dom, "data-series=\"issued\"").iter().map(|t| &attr(t, "data-day").unwrap()[..7]).collect();
    assert!(months.len() >= 2, "the series spans one month only: {months:?}");
    // The time bank per day: 90 minutes earned 45 days ago, 60 spent today.
    let series = |name: &str| -> Vec<u64> {
        tags(&dom, &format!("data-series=\"{name}\""))
            .iter()
            .map(|t| attr(t, "data-value").unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!((series("minutes-earned"), series("minutes-spent")), (vec![90, 0], vec![0, 60]));
    assert_eq!(figure(&dom, "minutes-held").0, 30);

    // Top volunteers of the month: b and c only; a earned the most, but last months.
    let mut expected: Vec<(PublicKey, u64)> = this_month.into_iter().collect();
    expected.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let rows = tags(&dom, "data-volunteer=");
    let shown: Vec<(&str, &str)> =
        rows.iter().map(|r| (attr(r, "data-volunteer").unwrap(), attr(r, "data-points").unwrap())).collect();
    let want: Vec<(String, String)> = expected.iter().map(|(k, p)| (pseudonym(k), p.to_string())).collect();
    assert_eq!(shown, want.iter().map(|(k, p)| (k.as_str(), p.as_str())).collect::<Vec<_>>());
    assert!(lifetime[&a.public()] > expected[0].1, "the veteran should out-earn this month's best overall");
    assert!(!dom.contains(&pseudonym(&a.public())), "last months' volunteer is listed this month");

    // Federation health: a peer, cosigners, and the equivocation banner naming futian.
    assert!(figure(&dom, "peers").0 >= 1);
    let (cosigners, text) = figure(&dom, "cosigners");
    assert!(cosigners >= 1 && text.contains("shatou"), "cosigners {cosigners}: {text}");
    assert!(dom.contains("data-alerts=\"1\""), "no alert on the page");
    let banner = tags(&dom, "id=\"alerts\"");
    assert!(banner.len() == 1 && !banner[0].contains("hidden"), "the alert banner is hidden: {banner:?}");
    assert!(dom.contains("双重签署警报") && dom.contains("Equivocation alert") && dom.contains("futian @ 0"));
    assert!(dom.contains("quarantined"), "futian's ledger is not shown quarantined");
    assert_eq!(d["month"].as_str().map(str::len), Some(7));

    let png = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("disclosure-page-federated.png");
    screenshot(&url, &png, 1280, 2800).await;
    eprintln!("screenshot of the federated node's page: {}", png.display());
    lianhua.stop().await;
    shatou.stop().await;
}
