//! Gossipsub settings shared by community nodes, merchant light nodes and test peers.
//!
//! Every Linli gossip message is self-authenticating (a community-signed entry or checkpoint, an
//! equivocation proof of two signed statements), so gossipsub's own per-message ed25519
//! signature would only be a second signature to check, on every copy a node receives (a node
//! in a mesh receives most messages several times, and the signature is checked before
//! duplicates are dropped). Messages are therefore anonymous (no author, sequence number or
//! signature) and named by the BLAKE3 hash of their bytes, so the same bytes from any peer are
//! one message. Peer scoring still applies: an invalid message penalises the peer it came from.

use super::messages::MAX_GOSSIP_BYTES;
use libp2p::gossipsub::{self, ConfigBuilder, MessageAuthenticity, MessageId, ValidationMode};

/// How this node's messages are authored: anonymously (see the module docs).
pub fn authenticity() -> MessageAuthenticity {
    MessageAuthenticity::Anonymous
}

/// A message's id: the BLAKE3 hash of its bytes.
pub fn message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::new(blake3::hash(&message.data).as_bytes())
}

/// The shared settings: anonymous messages (anything signed by gossipsub is refused), ids by
/// content, and the size limit. An anonymous message has no author for peers to leave out when
/// they forward it, so a node's own message can come back to it: that is a duplicate, not an
/// offence (gossipsub would otherwise penalise the peer that relayed it as "self origin").
pub fn config_builder() -> ConfigBuilder {
    let mut b = ConfigBuilder::default();
    b.validation_mode(ValidationMode::Anonymous)
        .message_id_fn(message_id)
        .allow_self_origin(true)
        .max_transmit_size(MAX_GOSSIP_BYTES);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &[u8]) -> gossipsub::Message {
        gossipsub::Message {
            source: None,
            data: data.to_vec(),
            sequence_number: None,
            topic: gossipsub::TopicHash::from_raw("t"),
        }
    }

    #[test]
    fn the_same_bytes_are_the_same_message() {
        assert_eq!(message_id(&message(b"entry")), message_id(&message(b"entry")));
        assert_ne!(message_id(&message(b"entry")), message_id(&message(b"entrz")));
    }

    #[test]
    fn the_settings_build() {
        let c = config_builder().validate_messages().build().unwrap();
        assert_eq!(c.max_transmit_size(), MAX_GOSSIP_BYTES);
        assert!(matches!(c.validation_mode(), ValidationMode::Anonymous));
    }
}
