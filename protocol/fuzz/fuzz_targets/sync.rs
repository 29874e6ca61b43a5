//! Sync requests (4 KiB limit) and responses (2 MiB limit) from peers and light nodes, with the
//! node's own decoders; proofs inside responses are checked against their own roots.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linli_fuzz::messages::{SyncRequest, SyncResponse};
use linli_protocol::encoding;

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
            }
            SyncResponse::Consistency(c) => {
                let _ = c.verify(&linli_protocol::Hash([1; 32]), &linli_protocol::Hash([2; 32]));
            }
            _ => {}
        }
    }
});
