//! Reading a node's `/v1/status` in tests: ledgers by community, and the equivocation proofs it
//! shows, decoded so a test can verify them itself.

use linli_protocol::checkpoint::EquivocationProof;
use serde_json::Value;

/// The status line of ledger `c`.
pub fn ledger<'a>(st: &'a Value, c: &str) -> &'a Value {
    st["ledgers"].as_array().and_then(|l| l.iter().find(|l| l["community"] == c)).unwrap_or(&Value::Null)
}

/// Size of ledger `c`.
pub fn size(st: &Value, c: &str) -> u64 {
    ledger(st, c)["size"].as_u64().unwrap_or(0)
}

/// Whether the node marks community `c` faulty (quarantined).
pub fn faulty(st: &Value, c: &str) -> bool {
    ledger(st, c)["faulty"] == true
}

/// The equivocation proofs the status shows, decoded from their canonical bytes.
pub fn proofs(st: &Value) -> Vec<EquivocationProof> {
    st["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    let bytes = hex_decode(a["proof"].as_str().unwrap_or_default());
                    EquivocationProof::from_bytes(&bytes).expect("an alert's proof decodes")
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).filter_map(|i| s.get(i..i + 2)).map(|b| u8::from_str_radix(b, 16).expect("hex")).collect()
}
