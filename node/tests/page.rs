//! The public disclosure page in a real browser, `/v1/disclosure` on a large ledger, and
//! `/metrics` after traffic. A node with a real RocksDB directory is driven over real HTTP;
//! expected figures are computed here from what was submitted and the rule table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::browser::{attr, dump_dom, figure, screenshot, tags};
use common::{node_files, resident, TOKEN};
use linli_protocol::body::{Payment, Redemption, SettlementRequest, Signed, TimeDraw, TimeService};
use linli_protocol::rules::{AwardClaim, RuleTable};
use linli_protocol::{CommunityId, Hash, Keypair, PublicKey, FEN_PER_POINT};
use serde_json::{json, Value};
use std::collections::BTreeMap;

struct Api {
    base: String,
    http: reqwest::Client,
    gh: Hash,
}

impl Api {
    async fn send(&self, path: &str, body: Value, token: bool) -> Value {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if token {
            req = req.bearer_auth(TOKEN);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {v}");
        v
    }
    async fn op(&self, path: &str, body: Value) -> Value {
        self.send(path, body, true).await
    }
    async fn signed<T: serde::Serialize + linli_protocol::body::SignedPayload>(
        &self,
        path: &str,
        p: T,
        k: &Keypair,
    ) -> Value {
        self.send(path, serde_json::to_value(Signed::sign(p, k, &self.gh)).unwrap(), false).await
    }
    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

fn pseudonym(k: &PublicKey) -> String {
    let h = k.to_hex();
    format!("{}…{}", &h[..6], &h[h.len() - 4..])
}

fn yuan(fen: u64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// The visible text of the table row whose start tag contains `needle`, each cell followed
/// by `|`.
fn row_text(dom: &str, needle: &str) -> String {
    let at = dom.find(needle).unwrap_or_else(|| panic!("no row with {needle}"));
    let start = dom[..at].rfind("<tr").unwrap();
    let end = at + dom[at..].find("</tr>").unwrap();
    let mut out = String::new();
    let mut in_tag = false;
    for ch in dom[start..end].replace("</td>", "|</td>").chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
}

/// Group thousands as the page does (`toLocaleString('en-US')`).
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_page_renders_the_ledger_in_chromium() {
    let files = node_files(&["lianhua", "shatou"], "lianhua", "127.0.0.1:0");
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api { base: format!("http://{}", node.http_addr), http: reqwest::Client::new(), gh: files.genesis_hash };
    let rules = RuleTable::default_table(1);
    api.op("/v1/operator/rules", serde_json::to_value(&rules).unwrap()).await;
    let (r1, r2, r3, shop) = (resident("r1"), resident("r2"), resident("r3"), resident("shop"));
    for (i, r) in [&r1, &r2, &r3].into_iter().enumerate() {
        api.op("/v1/operator/residents", json!({"resident": r.public(), "profile_hash": Hash([i as u8; 32])})).await;
    }
    api.op("/v1/operator/merchants", json!({"merchant": shop.public(), "name": "茶馆 Tea house", "category": "food"}))
        .await;

    // Awards: (resident, activity, minutes, rating, bonuses). Points are priced here from the
    // rule table (newcomers' first awards doubled, a rating below the minimum earns nothing).
    let awards: [(&Keypair, &str, u64, u8, &[&str]); 6] = [
        (&r1, "mediation", 60, 5, &["complex"]),
        (&r1, "cleanup", 90, 5, &["bad-weather"]),
        (&r2, "patrol", 120, 4, &["major-hazard"]),
        (&r2, "cleanup", 60, 2, &[]),
        (&r3, "hourly-service", 150, 5, &[]),
        (&r2, "elder-care", 60, 5, &[]),
    ];
    let mut prior: BTreeMap<PublicKey, u64> = BTreeMap::new();
    let mut by_resident: BTreeMap<PublicKey, u64> = BTreeMap::new();
    let mut by_activity: BTreeMap<&str, u64> = BTreeMap::new();
    for (n, (r, activity, minutes, rating, bonuses)) in awards.iter().enumerate() {
        let bonuses: Vec<String> = bonuses.iter().map(|b| b.to_string()).collect();
        let p = prior.entry(r.public()).or_default();
        let claim = AwardClaim { activity, minutes: *minutes, rating: *rating, bonuses: &bonuses, prior_awards: *p };
        let points = rules.award_points(&claim).unwrap();
        if *rating >= rules.min_rating {
            *p += 1;
        }
        let body = json!({"resident": r.public(), "activity": activity, "minutes": minutes, "rating": rating,
            "bonuses": bonuses, "request_id": n, "points": points});
        api.op("/v1/operator/awards", body).await;
        *by_resident.entry(r.public()).or_default() += points;
        *by_activity.entry(activity).or_default() += points;
    }
    let issued: u64 = by_resident.values().sum();

    // Redeem, pay the merchant, the merchant settles part of it, and the time bank.
    let (redeemed, paid, settled) = (50u64, 30u64, 20u64);
    api.signed(
        "/v1/redeem",
        Redemption { resident: r1.public(), points: redeemed, item: "rice".into(), nonce: 1 },
        &r1,
    )
    .await;
    let lianhua = CommunityId::new("lianhua").unwrap();
    let pay = Payment {
        payer: r1.public(),
        merchant: shop.public(),
        merchant_community: lianhua.clone(),
        points: paid,
        price_fen: 450,
        nonce: 2,
        expiry_ms: u64::MAX,
        genesis: files.genesis_hash,
    };
    api.signed("/v1/pay", pay, &r1).await;
    let settle_fen = settled * FEN_PER_POINT;
    let req =
        SettlementRequest { merchant: shop.public(), issuer: lianhua, points: settled, fen: settle_fen, nonce: 1 };
    api.signed("/v1/settle", req, &shop).await;
    let (earned, spent) = (90u64, 60u64);
    let svc = TimeService {
        provider: r1.public(),
        served: r2.public(),
        minutes: earned,
        service: "tutoring".into(),
        nonce: 1,
    };
    api.signed("/v1/time/credit", svc, &r2).await;
    let shatou = CommunityId::new("shatou").unwrap();
    let draw = TimeDraw {
        resident: r1.public(),
        minutes: spent,
        serving_community: shatou,
        service: "repair".into(),
        nonce: 3,
    };
    api.signed("/v1/time/spend", draw, &r1).await;
    let cp = api.op("/v1/operator/checkpoints", json!({})).await;
    let cp_size = cp["signed"]["checkpoint"]["size"].as_u64().unwrap();
    let outstanding = issued - redeemed - settled;

    // The JSON the page reads agrees with the submitted figures.
    let (s, text) = api.get("/v1/disclosure").await;
    assert_eq!(s, 200, "{text}");
    let d: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["totals"]["points_issued"].as_u64(), Some(issued), "{d:#}");
    assert_eq!(d["outstanding"]["points"].as_u64(), Some(outstanding), "{d:#}");
    assert_eq!(d["outstanding"]["merchant_points"].as_u64(), Some(paid - settled));

    // The page, its assets and the OpenAPI entry are served.
    let (s, html) = api.get("/").await;
    assert!(s == 200 && html.contains("邻里积分公示") && html.contains("/page/app.js"), "{s} {html}");
    let (s, js) = api.get("/page/app.js").await;
    assert!(s == 200 && js.contains("/v1/disclosure"), "{s}");
    let (_, doc) = api.get("/openapi.json").await;
    assert!(doc.contains("\"/v1/disclosure\"") && doc.contains("DisclosureView"), "{doc}");

    // Headless Chromium renders it; every figure below was produced by the page's script.
    let url = format!("{}/", api.base);
    let dom = dump_dom(&url).await;
    assert!(dom.contains("data-ready=\"true\""), "the page script did not finish:\n{dom}");
    assert!(!dom.contains("data-error"), "{dom}");
    let check = |name: &str, expected: u64| {
        let (v, _) = figure(&dom, name);
        assert_eq!(v, expected, "figure {name}");
    };
    check("points-issued", issued);
    check("points-redeemed", redeemed);
    check("points-paid", paid);
    check("outstanding-points", outstanding);
    check("outstanding-fen", outstanding * FEN_PER_POINT);
    check("settled-fen", settle_fen);
    check("minutes-earned", earned);
    check("minutes-spent", spent);
    check("minutes-held", earned - spent);
    check("residents", 3);
    check("merchants", 1);
    check("awards", awards.len() as u64);
    check("checkpoint-size", cp_size);
    check("peers", 0);
    // Money is shown as yuan, formatted from integer fen; counts as grouped numbers.
    assert_eq!(figure(&dom, "outstanding-fen").1, yuan(outstanding * FEN_PER_POINT));
    assert_eq!(figure(&dom, "settled-fen").1, yuan(settle_fen));
    for (name, value) in [
        ("outstanding-points", outstanding),
        ("points-issued", issued),
        ("minutes-earned", earned),
        ("minutes-spent", spent),
        ("minutes-held", earned - spent),
    ] {
        assert_eq!(figure(&dom, name).1, grouped(value), "visible text of {name}");
    }
    // Every label is bilingual: Chinese and English side by side.
    for (zh, en) in [
        ("未兑付积分", "Points outstanding"),
        ("积分负债", "Liability (value of outstanding points)"),
        ("累计发放积分", "Points issued"),
        ("商户结算金额", "Merchant settlements"),
        ("时间银行存入", "Time bank: minutes earned"),
        ("时间银行支取", "Time bank: minutes spent"),
        ("每日积分发放与兑换", "Points issued and redeemed per day"),
        ("按活动类型发放积分", "Points issued by activity"),
        ("时间银行（分钟）", "Time bank minutes per day"),
        ("本月志愿者排行", "Top volunteers of the month"),
        ("积分发行社区", "issuing community"),
        ("现行积分规则", "Rule table in force"),
        ("新人加倍", "newcomer multiplier"),
        ("已连接节点", "connected peers"),
        ("联署社区", "cosigned by"),
    ] {
        let (z, e) = (format!(">{zh}<"), format!(">{en}<"));
        assert!(dom.contains(&z) && dom.contains(&e), "label {zh} / {en} not shown");
    }

    // The per-day chart's bars and the activity chart.
    let sum = |series: &str| -> u64 {
        tags(&dom, &format!("data-series=\"{series}\""))
            .iter()
            .map(|t| attr(t, "data-value").unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!((sum("issued"), sum("redeemed")), (issued, redeemed));
    let bars = tags(&dom, "data-activity=");
    let shown: BTreeMap<&str, u64> = bars
        .iter()
        .map(|t| (attr(t, "data-activity").unwrap(), attr(t, "data-value").unwrap().parse().unwrap()))
        .collect();
    assert_eq!(shown, by_activity);

    // Top volunteers: by pseudonym, most points first, stars from the rule table.
    let mut expected: Vec<(PublicKey, u64)> = by_resident.clone().into_iter().filter(|(_, p)| *p > 0).collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rows = tags(&dom, "data-volunteer=");
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    let star_tags = tags(&dom, "data-stars=");
    for (i, (k, points)) in expected.iter().enumerate() {
        assert_eq!(attr(rows[i], "data-volunteer"), Some(pseudonym(k).as_str()));
        assert_eq!(attr(rows[i], "data-points"), Some(points.to_string().as_str()));
        assert_eq!(attr(star_tags[i], "data-stars"), Some(rules.star_level(*points).to_string().as_str()));
    }
    assert!(!dom.contains(&r1.public().to_hex()), "a full resident key is on the page");
    // Settlements, rules in force, federation status from /v1/status.
    let m = tags(&dom, "data-merchant=");
    assert_eq!((m.len(), attr(m[0], "data-fen")), (1, Some(settle_fen.to_string().as_str())));
    assert!(attr(m[0], "data-merchant").unwrap().starts_with("茶馆 Tea house"));
    // Settlements by issuing community: lianhua's points, one settlement, in yuan.
    let i = tags(&dom, "data-issuer=");
    assert_eq!((i.len(), attr(i[0], "data-issuer"), attr(i[0], "data-fen")), (1, Some("lianhua"), Some("200")));
    assert_eq!(row_text(&dom, "data-issuer=\"lianhua\""), format!("lianhua|1|{settled}|{}|", yuan(settle_fen)));
    // The rule table in force, row by row, as published.
    assert_eq!(tags(&dom, "data-rule=").len(), rules.activities.len());
    for a in &rules.activities {
        let row = row_text(&dom, &format!("data-rule=\"{}\"", a.id));
        let unit =
            if a.unit == linli_protocol::rules::Unit::PerHour { "每小时 per hour" } else { "每次 per event" };
        let bonuses: Vec<String> = a.bonuses.iter().map(|b| format!("{} +{}", b.label, b.points)).collect();
        let bonuses = if bonuses.is_empty() { "—".to_string() } else { bonuses.join("；") };
        assert_eq!(row, format!("{}|{unit}|{}|{bonuses}|", a.label, a.base_points), "rule row {}", a.id);
    }
    for fact in [
        format!("最低评分 minimum rating: {} / 5", rules.min_rating),
        format!("单次上限 cap per award: {}", rules.award_cap),
        format!(
            "×{}（前 {} 次 / first {} awards）",
            rules.newcomer_multiplier, rules.newcomer_awards, rules.newcomer_awards
        ),
    ] {
        let text: String = dom
            .replace("</span> <span class=\"en\">", " ")
            .replace("<span class=\"zh\">", "")
            .replace("</span>", "")
            .replace("<span>", "");
        assert!(text.contains(&fact), "rule fact {fact:?} not shown");
    }
    let ledgers = tags(&dom, "data-ledger=");
    assert_eq!(ledgers.len(), 2);
    assert_eq!(attr(ledgers[0], "data-size"), d["ledger_size"].as_u64().map(|n| n.to_string()).as_deref());
    assert!(dom.contains("data-alerts=\"0\""));

    let png = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("disclosure-page.png");
    screenshot(&url, &png, 1280, 2400).await;
    eprintln!("screenshot of the disclosure page: {}", png.display());

    // Metrics after this traffic, over real HTTP.
    let bad = json!({"resident": r3.public(), "activity": "cleanup", "minutes": 60, "rating": 5, "request_id": 99, "points": 7});
    let resp =
        api.http.post(format!("{}/v1/operator/awards", api.base)).bearer_auth(TOKEN).json(&bad).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let overdraft = Redemption { resident: r3.public(), points: 10_000, item: "tv".into(), nonce: 1 };
    let body = serde_json::to_value(Signed::sign(overdraft, &r3, &files.genesis_hash)).unwrap();
    let resp = api.http.post(format!("{}/v1/redeem", api.base)).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let (s, metrics) = api.get("/metrics").await;
    assert_eq!(s, 200);
    let size = d["ledger_size"].as_u64().unwrap();
    let value = |line: &str| -> f64 {
        let l = metrics.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line} in\n{metrics}"));
        l[line.len()..].trim().parse().unwrap()
    };
    assert_eq!(value("linli_entries_appended_total "), size as f64);
    assert_eq!(value("linli_validation_failures_total{rule=\"award-points\",origin=\"local\"} "), 1.0);
    // r3 served 150 minutes (enough to redeem) but holds far fewer than 10,000 points.
    assert_eq!(value("linli_validation_failures_total{rule=\"insufficient-points\",origin=\"local\"} "), 1.0);
    assert_eq!(value("linli_connected_peers "), 0.0);
    assert!(value("linli_rocksdb_estimate_num_keys{cf=\"entries\"} ") >= 1.0, "{metrics}");
    assert!(metrics.contains("linli_rocksdb_total_sst_files_size_bytes{cf=\"state\"}"), "{metrics}");
    node.stop().await;
}

/// Enrol `residents` and give each `per` clean-up awards, concurrently through the sequencer.
async fn awards(node: &linli_node::node::RunningNode, label: &str, residents: usize, per: u64, first_id: u64) {
    use linli_node::sequencer::Draft;
    use linli_protocol::body::{Award, Body, Enroll};
    let mut tasks = Vec::new();
    for i in 0..residents {
        let seq = node.sequencer.clone();
        let key = resident(&format!("{label}-{i}")).public();
        tasks.push(tokio::spawn(async move {
            seq.submit(Draft::Body(Body::Enroll(Enroll { resident: key, profile_hash: Hash::ZERO }))).await.unwrap();
            for n in 0..per {
                let award = Award {
                    resident: key,
                    activity: "cleanup".into(),
                    minutes: 60,
                    rating: 5,
                    bonuses: vec![],
                    points: 0,
                    rules_version: 0,
                    request_id: first_id + i as u64 * per + n,
                };
                seq.submit(Draft::Award { award, points: None }).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_of_a_large_ledger_is_folded_incrementally() {
    use linli_node::sequencer::Draft;
    use std::time::Instant;
    let files = node_files(&["lianhua"], "lianhua", "127.0.0.1:0");
    let node = linli_node::node::start(&files.config(), false).await.unwrap();
    let api = Api { base: format!("http://{}", node.http_addr), http: reqwest::Client::new(), gh: files.genesis_hash };
    let rules = RuleTable::default_table(1);
    node.sequencer.submit(Draft::Body(linli_protocol::Body::SetRules(rules.clone()))).await.unwrap();
    let (residents, per) = (200usize, 100u64);
    let t = Instant::now();
    awards(&node, "big", residents, per, 0).await;
    let appended = t.elapsed();
    // Each resident: 3 newcomer awards of 2 x 20, then 20 each.
    let per_resident = |n: u64| 3 * 40 + (n - 3) * 20;
    let get = || async {
        let t = Instant::now();
        let (s, text) = api.get("/v1/disclosure").await;
        assert_eq!(s, 200, "{text}");
        (serde_json::from_str::<Value>(&text).unwrap(), t.elapsed())
    };
    let (d, first) = get().await;
    let size = d["ledger_size"].as_u64().unwrap();
    assert_eq!(size, 1 + residents as u64 * (per + 1));
    assert_eq!(d["totals"]["points_issued"].as_u64(), Some(residents as u64 * per_resident(per)));
    assert_eq!(d["totals"]["awards"].as_u64(), Some(residents as u64 * per));
    assert_eq!(d["outstanding"]["points"], d["totals"]["points_issued"]);
    let top = d["top_volunteers"].as_array().unwrap();
    assert_eq!(top.len(), 10);
    assert!(top.iter().all(|v| v["points"].as_u64() == Some(per_resident(per)) && v["star_level"] == 5), "{top:?}");
    let (_, cached) = get().await;
    // Growth is folded incrementally: only the new entries are read.
    awards(&node, "more", 10, 100, 1_000_000).await;
    let (d, grown) = get().await;
    assert_eq!(d["ledger_size"].as_u64(), Some(size + 10 * 101));
    assert_eq!(
        d["totals"]["points_issued"].as_u64(),
        Some(residents as u64 * per_resident(per) + 10 * per_resident(100))
    );
    eprintln!(
        "{size} entries appended in {appended:?}; /v1/disclosure: first (full fold) {first:?}, \
         again {cached:?}, after 1,010 more entries {grown:?}"
    );
    node.stop().await;
}
