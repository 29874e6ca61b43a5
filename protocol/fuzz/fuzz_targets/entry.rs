//! A signed entry from outside bytes (gossip, sync, exports): decode strictly; what decodes is
//! hashed, its signature checked and it is applied to a fresh state (refusals, never panics).
#![no_main]

use libfuzzer_sys::fuzz_target;
use linli_protocol::{ApplyContext, Genesis, SignedEntry, State};
use std::sync::OnceLock;

fn genesis() -> &'static Genesis {
    static G: OnceLock<Genesis> = OnceLock::new();
    G.get_or_init(|| linli_protocol::testkit::genesis(&["lianhua", "shatou"]))
}

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = SignedEntry::from_bytes(data) else { return };
    assert_eq!(entry.to_bytes(), data, "decoding is canonical");
    let g = genesis();
    let gh = g.hash();
    let _ = entry.hash(&gh);
    let state = State::new(g);
    let key = g.communities.first().map(|c| c.signing_key).unwrap_or_default();
    if let Ok(v) = linli_protocol::verify::verify_entry(&gh, entry, key) {
        let _ = state.check(&v, &ApplyContext { now_ms: Some(u64::MAX) });
    }
});
