//! How a run ends when something is wrong: the error types the commands return, their exit
//! code (1 a finding, 2 any other error), and the machine-readable form `--json` prints.
//!
//! Under `--json`, stdout always carries exactly one JSON document. When a run fails, that
//! document has `"ok": false` and an `"error"` object (see [`ErrorView`]); a command whose report
//! describes the failure (`verify`, `compare`) prints its report with the `error` object added.
//! The human line (`FAILED: ...` or `error: ...`) still goes to stderr.

use crate::audit::Failure;
use crate::http::HttpError;
use crate::source::ReadError;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// A finding about a ledger, a node or a proof: the command worked and what it found is wrong.
#[derive(Debug)]
pub struct Finding(pub String);

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Finding {}

/// A finding with a place: a ledger that does not verify, at a community, seq and rule.
#[derive(Debug)]
pub struct Located {
    /// What the command was doing, e.g. "verification failed".
    pub context: String,
    pub failure: Failure,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.failure)
    }
}

impl std::error::Error for Located {}

/// A finding the command's JSON report describes: under `--json` the report is printed with the
/// `error` object added, instead of a bare error document.
#[derive(Debug)]
pub struct Reported {
    pub report: Value,
    pub finding: anyhow::Error,
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.finding)
    }
}

impl std::error::Error for Reported {}

/// The `error` object of a failed run's JSON. `community`, `seq`, `rule`, `kind` (the entry's
/// kind) and `checkpoint_size` are those of `verify`'s `failure`, when the error has a place.
#[derive(Debug, Serialize, PartialEq)]
pub struct ErrorView {
    /// `finding` (exit 1); `unreachable` (no usable answer from a node), `node` (the node
    /// answered with an error), `usage` (bad arguments, caught by the parser) or `error` (any
    /// other: unreadable files, bad values) for exit 2.
    pub category: &'static str,
    pub exit_code: u8,
    pub message: String,
    pub community: Option<String>,
    pub seq: Option<u64>,
    pub rule: Option<String>,
    pub kind: Option<&'static str>,
    pub checkpoint_size: Option<u64>,
    /// The URL a node error came from.
    pub url: Option<String>,
}

impl ErrorView {
    /// An error of `category`; the exit code follows from it (1 for a finding, 2 otherwise).
    fn new(category: &'static str, message: String) -> Self {
        ErrorView {
            category,
            exit_code: if category == "finding" { 1 } else { 2 },
            message,
            community: None,
            seq: None,
            rule: None,
            kind: None,
            checkpoint_size: None,
            url: None,
        }
    }

    /// A command-line parse error (clap's).
    pub fn usage(message: String) -> Self {
        ErrorView::new("usage", message)
    }

    /// The one-document JSON form of a failed run.
    pub fn document(&self, report: Option<&Value>) -> Value {
        let mut doc = match report {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        doc.insert("ok".into(), Value::Bool(false));
        doc.insert("error".into(), serde_json::to_value(self).unwrap_or(Value::Null));
        Value::Object(doc)
    }
}

/// Classify an error: exit code, category and, where known, its place.
pub fn classify(e: &anyhow::Error) -> ErrorView {
    let finding = || ErrorView::new("finding", format!("{e:#}"));
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<Reported>() {
            return classify(&r.finding);
        }
        if let Some(l) = cause.downcast_ref::<Located>() {
            let f = &l.failure;
            return ErrorView {
                community: Some(f.community.to_string()),
                seq: f.seq,
                rule: Some(f.rule.clone()),
                kind: f.kind,
                checkpoint_size: f.checkpoint_size,
                ..finding()
            };
        }
        if let Some(ReadError::Corrupt { community, seq, rule, .. }) = cause.downcast_ref::<ReadError>() {
            // A bad record is a finding about the ledger, wherever it was met.
            return ErrorView {
                community: Some(community.to_string()),
                seq: Some(*seq),
                rule: Some(rule.to_string()),
                ..finding()
            };
        }
        if cause.downcast_ref::<Finding>().is_some() {
            return finding();
        }
        if let Some(h) = cause.downcast_ref::<HttpError>() {
            let (category, url) = match h {
                HttpError::Api { url, .. } => ("node", url),
                HttpError::Transport { url, .. } => ("unreachable", url),
            };
            return ErrorView { url: Some(url.clone()), ..ErrorView::new(category, format!("{e:#}")) };
        }
    }
    ErrorView::new("error", format!("{e:#}"))
}

/// The report to print under `--json` with the error added, if the command made one.
pub fn report(e: &anyhow::Error) -> Option<&Value> {
    e.chain().find_map(|c| c.downcast_ref::<Reported>()).map(|r| &r.report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use linli_protocol::CommunityId;

    fn failure() -> Failure {
        Failure {
            community: CommunityId::new("lianhua").unwrap(),
            seq: Some(4),
            kind: Some("award"),
            checkpoint_size: None,
            rule: "award-points".into(),
            message: "award carries 210 points, but the rule table gives 200".into(),
        }
    }

    #[test]
    fn a_located_finding_keeps_its_place_and_exits_1() {
        let e: anyhow::Error = Located { context: "verification failed".into(), failure: failure() }.into();
        let v = classify(&e);
        assert_eq!((v.category, v.exit_code), ("finding", 1));
        assert_eq!(
            (v.community.as_deref(), v.seq, v.rule.as_deref()),
            (Some("lianhua"), Some(4), Some("award-points"))
        );
        assert!(v.message.starts_with("verification failed: community lianhua seq 4 (award): rule award-points"));
        // Wrapped in a report, it is still found, and the report is printed with it.
        let r: anyhow::Error = Reported { report: serde_json::json!({"entries": 4}), finding: e }.into();
        assert_eq!(classify(&r).seq, Some(4));
        let doc = classify(&r).document(report(&r));
        assert_eq!((doc["entries"].as_u64(), doc["ok"].as_bool()), (Some(4), Some(false)));
        assert_eq!(doc["error"]["rule"], "award-points");
    }

    #[test]
    fn other_errors_exit_2_with_a_category() {
        let e = anyhow::anyhow!("reading genesis.toml: no such file");
        let v = classify(&e);
        assert_eq!((v.category, v.exit_code, v.seq), ("error", 2, None));
        assert_eq!(report(&e), None);
        let e: anyhow::Error = HttpError::Transport { url: "http://x".into(), reason: "cannot connect".into() }.into();
        assert_eq!((classify(&e).category, classify(&e).url.as_deref()), ("unreachable", Some("http://x")));
        let e: anyhow::Error = Finding("the proof does not verify".into()).into();
        assert_eq!((classify(&e).category, classify(&e).exit_code), ("finding", 1));
        let doc = classify(&e).document(None);
        assert_eq!(doc["error"]["message"], "the proof does not verify");
    }
}
