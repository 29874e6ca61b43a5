//! Headless Chromium for page tests (Debian's `chromium`, installed by `scripts/setup.sh`),
//! and a few helpers to read the DOM it renders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Chromium binary: `$LINLI_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
/// Panics with what to do when there is none: a page test must not pass without a browser.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("LINLI_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium not found on the PATH: this test renders the disclosure page in a real browser. \
         Run ./scripts/setup.sh (it installs Debian's `chromium` package) or set LINLI_CHROMIUM."
    );
}

/// Run headless Chromium on `url` with `extra` flags in a fresh profile; its stdout.
pub async fn run(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("chromium did not finish within 120 s")
        .expect("starting chromium");
    assert!(out.status.success(), "chromium failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The rendered DOM of `url` after its scripts ran.
pub async fn dump_dom(url: &str) -> String {
    run(url, &["--dump-dom".to_string()]).await
}

/// A PNG screenshot of `url` at `path`.
pub async fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(path);
    run(url, &[format!("--screenshot={}", path.display()), format!("--window-size={width},{height}")]).await;
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "not a real screenshot: {} bytes", png.len());
}

/// Every start tag of `dom` containing `needle` (e.g. `data-figure="points-issued"`).
pub fn tags<'a>(dom: &'a str, needle: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = dom[from..].find(needle) {
        let at = from + i;
        let start = dom[..at].rfind('<').unwrap();
        let end = at + dom[at..].find('>').unwrap();
        out.push(&dom[start..=end]);
        from = end;
    }
    out
}

/// The value of attribute `name` in a start tag.
pub fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let j = tag[i..].find('"')?;
    Some(&tag[i..i + j])
}

/// The numeric `data-value` of the one element with `data-figure="name"`, and its text.
pub fn figure(dom: &str, name: &str) -> (u64, String) {
    let needle = format!("data-figure=\"{name}\"");
    let found = tags(dom, &needle);
    assert_eq!(found.len(), 1, "figure {name}: {found:?}");
    let value = attr(found[0], "data-value").unwrap().parse().unwrap();
    let at = dom.find(found[0]).unwrap() + found[0].len();
    let text = dom[at..].split('<').next().unwrap().to_string();
    (value, text)
}
