//! Sync requests (4 KiB limit) and responses (2 MiB limit) from peers and light nodes, with the
//! node's own decoders; proofs inside responses are checked against their own roots and by a
//! light client (entry proofs, key histories).
#![no_main]

use libfuzzer_sys::fuzz_target;
use linli_fuzz::messages::{SyncRequest, SyncResponse};
use linli_protocol::encoding;

/// What a light client trusts: a federation of three test communities, one witness needed
/// (built once; each input gets a fresh copy).
fn trust() -> linli_protocol::light::LightTrust {
    static TRUST: std::sync::OnceLock<linli_protocol::light::LightTrust> = std::sync::OnceLock::new();
    TRUST
        .get_or_init(|| linli_protocol::light::LightTrust::new(linli_protocol::testkit::genesis(&["a", "b", "c"]), 1))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SyncRequest::from_bytes(data) {
        assert_eq!(encoding::encode(&r), data, "decoding is canonical");
    }
    if let Ok(r) = SyncResponse::from_bytes(data) {
        assert_eq!(encoding::encode(&r), data, "decoding is canonical");
        match r {
            SyncResponse::Proof(p) => {
                let entry_hash = p.entry.hash(&linli_protocol::Hash([0; 32]));
                let _ = p.inclusion.verify(&entry_hash, &p.checkpoint.signed.checkpoint.root);
                let _ = trust().verify(&p);
            }
            SyncResponse::KeyHistory(p) => {
                // A light client checking a key history it was sent: refused or learned, never a panic.
                let mut t = trust();
                if let Ok(Some(history)) = t.learn_keys(&p) {
                    assert!(history.keys.len() > 1, "a learned history adds a key");
                }
            }
            SyncResponse::Consistency(c) => {
                let _ = c.verify(&linli_protocol::Hash([1; 32]), &linli_protocol::Hash([2; 32]));
            }
            _ => {}
        }
    }
});
