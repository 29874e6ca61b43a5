//! Output helpers shared by the commands: writing to stdout without panicking on a closed pipe,
//! plain-text tables, JSON, CSV quoting, times and one-line summaries of entry bodies.

use anyhow::{Context, Result};
use linli_protocol::body::Body;
use linli_protocol::{Hash, PublicKey, SignedEntry};
use serde::Serialize;
use std::io::Write;

/// Write `text` and a newline to stdout. A closed pipe (`linli ... | head`) is an I/O error the
/// caller propagates; `main` ends quietly on it.
pub fn line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Pretty JSON of `value` on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    line(&serde_json::to_string_pretty(value).context("encoding JSON")?)
}

/// A plain-text table: a header row and left-aligned columns separated by two spaces.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text lines (no trailing spaces).
    pub fn render(&self) -> Vec<String> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                let w = cell.chars().count();
                match widths.get_mut(i) {
                    Some(old) => *old = (*old).max(w),
                    None => widths.push(w),
                }
            }
        }
        let fmt = |cells: &[String]| {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                s.push_str(cell);
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
                s.extend(std::iter::repeat_n(' ', pad));
            }
            s.trim_end().to_string()
        };
        let mut lines = vec![fmt(&self.header)];
        lines.extend(self.rows.iter().map(|r| fmt(r)));
        lines
    }

    pub fn print(&self) -> Result<()> {
        for l in self.render() {
            line(&l)?;
        }
        Ok(())
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, or leading or
/// trailing spaces; quotes are doubled.
pub fn csv_field(field: &str) -> String {
    let needs = field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// One CSV record (without the line ending).
pub fn csv_record<S: AsRef<str>>(fields: &[S]) -> String {
    fields.iter().map(|f| csv_field(f.as_ref())).collect::<Vec<_>>().join(",")
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm` UTC.
pub fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm), in u64/i64 without overflow
    // for any u64 input.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}", rem / 3600, (rem % 3600) / 60, rem % 60, ms % 1000)
}

/// First 8 hex digits of a hash.
pub fn short(h: &Hash) -> String {
    let mut s = h.to_hex();
    s.truncate(8);
    s
}

/// First 8 hex digits of a key.
pub fn key(k: &PublicKey) -> String {
    k.short()
}

/// The amounts an entry carries: (points, fen, minutes), each when the kind has one.
pub fn figures(body: &Body) -> (Option<u64>, Option<u64>, Option<u64>) {
    match body {
        Body::Award(a) => (Some(a.points), None, Some(a.minutes)),
        Body::Redeem(r) => (Some(r.payload.points), None, None),
        Body::Pay(p) => (Some(p.payment.payload.points), Some(p.payment.payload.price_fen), None),
        Body::Credit(c) => (Some(c.points), None, None),
        Body::Settle(s) => (Some(s.request.payload.points), Some(s.request.payload.fen), None),
        Body::Clearing(c) => (None, Some(c.receivable_fen.saturating_add(c.payable_fen)), None),
        Body::SetExposureLimit(l) => (None, Some(l.limit_fen), None),
        Body::TimeCredit(t) => (None, None, Some(t.payload.minutes)),
        Body::TimeSpend(t) => (None, None, Some(t.payload.minutes)),
        Body::TimeFulfil(t) => (None, None, Some(t.minutes)),
        Body::Enroll(_)
        | Body::RegisterMerchant(_)
        | Body::SetRules(_)
        | Body::RotateKey(_)
        | Body::RevokeKey(_)
        | Body::ReplaceKey(_) => (None, None, None),
    }
}

/// A one-line human description of an entry body.
pub fn describe(body: &Body) -> String {
    match body {
        Body::Enroll(e) => format!("resident {} enrolled", key(&e.resident)),
        Body::RegisterMerchant(m) => format!("merchant {} {:?} ({})", key(&m.merchant), m.name, m.category),
        Body::SetRules(t) => format!("rule table v{} ({} activities)", t.version, t.activities.len()),
        Body::Award(a) => {
            let bonuses = if a.bonuses.is_empty() { String::new() } else { format!(" +{}", a.bonuses.join(",")) };
            format!(
                "{} pts to {} for {} ({} min, rating {}{bonuses}, rules v{})",
                a.points,
                key(&a.resident),
                a.activity,
                a.minutes,
                a.rating,
                a.rules_version
            )
        }
        Body::Redeem(r) => {
            format!("{} redeems {} pts for {:?}", key(&r.payload.resident), r.payload.points, r.payload.item)
        }
        Body::Pay(p) => {
            let q = &p.payment.payload;
            format!(
                "{} pays {} pts (price {} fen) to {}@{}",
                key(&q.payer),
                q.points,
                q.price_fen,
                key(&q.merchant),
                q.merchant_community
            )
        }
        Body::Credit(c) => format!(
            "{} credited {} pts of {} for {} seq {}",
            key(&c.merchant),
            c.points,
            c.issuer,
            c.source.community,
            c.source.seq
        ),
        Body::Settle(s) => {
            let r = &s.request.payload;
            format!("{} settles {} pts of {} for {} fen", key(&r.merchant), r.points, r.issuer, r.fen)
        }
        Body::Clearing(c) => format!(
            "clearing with {}: receivable {} fen, payable {} fen",
            c.counterparty, c.receivable_fen, c.payable_fen
        ),
        Body::SetExposureLimit(l) => format!("exposure limit for {}: {} fen", l.issuer, l.limit_fen),
        Body::TimeCredit(t) => format!(
            "{} served {} for {} min ({:?})",
            key(&t.payload.provider),
            key(&t.payload.served),
            t.payload.minutes,
            t.payload.service
        ),
        Body::TimeSpend(t) => format!(
            "{} draws {} min in {} ({:?})",
            key(&t.payload.resident),
            t.payload.minutes,
            t.payload.serving_community,
            t.payload.service
        ),
        Body::TimeFulfil(f) => format!("{} min given for {} seq {}", f.minutes, f.source.community, f.source.seq),
        Body::RotateKey(r) => format!("community key rotated to {}", key(&r.new_key)),
        Body::RevokeKey(r) => format!("community key {} revoked; new key {}", key(&r.revoked_key), key(&r.new_key)),
        Body::ReplaceKey(r) => format!("account {} moved to {}", key(&r.old_key), key(&r.new_key)),
    }
}

/// An entry as the CLI prints and exports it: the node API's shape (`hash`, `kind`, then the
/// signed entry's own fields). `hash` and `kind` are informational; readers recompute them.
#[derive(Debug, Serialize)]
pub struct EntryView<'a> {
    pub hash: Hash,
    pub kind: &'static str,
    #[serde(flatten)]
    pub signed: &'a SignedEntry,
}

impl<'a> EntryView<'a> {
    pub fn new(signed: &'a SignedEntry, genesis_hash: &Hash) -> Self {
        EntryView { hash: signed.hash(genesis_hash), kind: signed.entry.body.kind(), signed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" pad"), "\" pad\"");
        assert_eq!(csv_record(&["1", "x,y", ""]), "1,\"x,y\",");
    }

    #[test]
    fn times() {
        assert_eq!(time(0), "1970-01-01 00:00:00.000");
        assert_eq!(time(1_790_000_000_123), "2026-09-21 14:13:20.123");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00.000");
        // Never panics, even far in the future.
        assert!(!time(u64::MAX).is_empty());
    }

    #[test]
    fn table_alignment() {
        let mut t = Table::new(&["a", "bb"]);
        t.row(vec!["long".into(), "x".into()]);
        assert_eq!(t.render(), vec!["a     bb", "long  x"]);
    }
}
