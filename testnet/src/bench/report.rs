//! The benchmark's one table: rows of figures, each also given as a ratio to the reference rate
//! (raw ed25519 batch verification on one core, measured first in the same run), printed as
//! text and written as JSON so two runs can be compared (`--compare OLD.json`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Ceiling, Ingest, Append, Gossip, Catch-up, Light client, Footprint, Verify.
    pub section: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// For a rate: value ÷ reference rate. For a latency: how many reference verifications fit
    /// in it (latency × reference rate). None for sizes.
    pub ratio: Option<f64>,
    /// The target, in words, when there is one.
    pub target: Option<String>,
    /// Whether the target is met.
    pub met: Option<bool>,
    /// How it was measured (repetitions, sizes).
    pub note: String,
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_mb: u64,
    pub os: String,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    pub profile: String,
    pub smoke: bool,
    pub started_unix: u64,
    pub seconds: f64,
    pub reference_name: String,
    pub reference_rate: f64,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn rate(
        &mut self,
        section: &str,
        name: &str,
        value: f64,
        unit: &str,
        target: Option<(f64, &str)>,
        note: String,
    ) {
        let ratio = (self.reference_rate > 0.0).then(|| value / self.reference_rate);
        let (target, met) = match (target, ratio) {
            (Some((min, words)), Some(r)) => (Some(words.to_string()), Some(r >= min)),
            (Some((_, words)), None) => (Some(words.to_string()), None),
            (None, _) => (None, None),
        };
        self.push(Row {
            section: section.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            ratio,
            target,
            met,
            note,
        });
    }

    /// A latency in milliseconds, with an optional upper bound.
    pub fn latency_ms(&mut self, section: &str, name: &str, ms: f64, max: Option<f64>, note: String) {
        let ratio = Some(ms / 1000.0 * self.reference_rate);
        let (target, met) = match max {
            Some(m) => (Some(format!("< {m} ms")), Some(ms < m)),
            None => (None, None),
        };
        self.push(Row {
            section: section.into(),
            name: name.into(),
            value: ms,
            unit: "ms".into(),
            ratio,
            target,
            met,
            note,
        });
    }

    /// A size, with an optional upper bound.
    pub fn size(&mut self, section: &str, name: &str, value: f64, unit: &str, max: Option<f64>, note: String) {
        let (target, met) = match max {
            Some(m) => (Some(format!("≤ {m} {unit}")), Some(value <= m)),
            None => (None, None),
        };
        self.push(Row {
            section: section.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            ratio: None,
            target,
            met,
            note,
        });
    }

    pub fn push(&mut self, row: Row) {
        eprintln!("  {:<13} {:<46} {} {}", row.section, row.name, fmt_value(row.value), row.unit);
        self.rows.push(row);
    }

    /// The table as text; with `previous`, a column comparing each row with the same row of
    /// another run.
    pub fn table(&self, previous: Option<&Report>) -> String {
        let old: BTreeMap<(String, String), f64> = previous
            .map(|p| p.rows.iter().map(|r| ((r.section.clone(), r.name.clone()), r.value)).collect())
            .unwrap_or_default();
        let mut header = vec!["section", "figure", "value", "unit", "× ref", "target", "met"];
        if previous.is_some() {
            header.push("previous run");
        }
        let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
        for r in &self.rows {
            let mut cells = vec![
                r.section.clone(),
                r.name.clone(),
                fmt_value(r.value),
                r.unit.clone(),
                r.ratio.map(|x| format!("{x:.3}")).unwrap_or_else(|| "—".into()),
                r.target.clone().unwrap_or_else(|| "—".into()),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "—".into(),
                },
            ];
            if previous.is_some() {
                cells.push(match old.get(&(r.section.clone(), r.name.clone())) {
                    Some(v) if *v != 0.0 => format!("{} ({:+.1} %)", fmt_value(*v), (r.value / v - 1.0) * 100.0),
                    Some(v) => fmt_value(*v),
                    None => "—".into(),
                });
            }
            lines.push(cells);
        }
        let widths: Vec<usize> =
            (0..lines[0].len()).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        out.push_str(&format!(
            "Linli benchmark — {} ({} cores, {} MB), {} build{}; reference: {} = {} /s\n",
            self.machine.cpu_model,
            self.machine.cores,
            self.machine.memory_mb,
            self.profile,
            if self.smoke { ", SMOKE sizes" } else { "" },
            self.reference_name,
            fmt_value(self.reference_rate)
        ));
        for (n, l) in lines.iter().enumerate() {
            let cells: Vec<String> = l
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    if i == 2 || i == 4 {
                        format!("{}{c}", " ".repeat(pad))
                    } else {
                        format!("{c}{}", " ".repeat(pad))
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
            if n == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
            }
        }
        out
    }
}

/// A figure with thousands separators (integers) or three significant decimals (small values).
pub fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        let n = v.round() as i64;
        let s = n.abs().to_string();
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        if n < 0 {
            format!("-{out}")
        } else {
            out
        }
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The median of `xs` (0 for none).
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

/// The `p`-th percentile (0..=100) of sorted `xs`, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
