//! A gossip message as it arrives from a peer (the node's own decoder, 64 KiB limit): what
//! decodes re-encodes to the same bytes, and checkpoints and equivocation proofs verify or are
//! refused without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linli_fuzz::messages::GossipMessage;
use linli_protocol::Hash;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = GossipMessage::from_bytes(data) else { return };
    assert_eq!(msg.to_bytes(), data, "decoding is canonical");
    let gh = Hash([0; 32]);
    match msg {
        GossipMessage::Entry(e) => {
            let _ = e.hash(&gh);
        }
        GossipMessage::Checkpoint(cp) => {
            let key = cp.signed.checkpoint.community.as_str().len() as u8;
            let _ = cp.signed.verify(&gh, &linli_protocol::Keypair::from_seed([key; 32]).public());
            for c in &cp.cosignatures {
                let _ = cp.signed.verify_cosignature(&gh, c);
            }
        }
        GossipMessage::Alert(proof) => {
            let _ = proof.position();
            let _ = proof.verify(&gh, &linli_protocol::Keypair::from_seed([1; 32]).public());
        }
    }
});
