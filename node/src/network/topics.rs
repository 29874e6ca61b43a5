//! Gossipsub topic names. Every name starts with the genesis hash, so two federations never share
//! a topic. Checkpoints and alerts have one topic each for the whole federation (every node and
//! light node needs every alert, and checkpoints are few); new entries go on the topic of their
//! community's district (`entries/<district>`), and a node subscribes to the districts of the
//! ledgers it follows. At city scale a node following its district then receives only its
//! district's entries: following is a configuration, not a rewrite (DESIGN.md, "Network").

use libp2p::gossipsub::IdentTopic;
use linli_protocol::{CommunityId, Genesis};
use std::collections::{BTreeMap, BTreeSet};

/// The federation-wide topic `name` (`checkpoints`, `alerts`).
pub fn topic(genesis: &Genesis, name: &str) -> IdentTopic {
    IdentTopic::new(format!("/linli/{}/{name}", genesis.hash()))
}

/// The topic new entries of `district`'s communities are gossiped on.
pub fn entries_topic(genesis: &Genesis, district: &str) -> IdentTopic {
    topic(genesis, &format!("entries/{district}"))
}

/// Every district's entries topic (for peer scoring, which is set per topic).
pub fn all_entries_topics(genesis: &Genesis) -> Vec<IdentTopic> {
    let districts: BTreeSet<&str> = genesis.communities.iter().map(|c| c.district.as_str()).collect();
    districts.into_iter().map(|d| entries_topic(genesis, d)).collect()
}

/// Which entries topic each community of the genesis gossips on.
#[derive(Debug, Clone)]
pub struct EntryTopics(BTreeMap<CommunityId, IdentTopic>);

impl EntryTopics {
    pub fn new(genesis: &Genesis) -> Self {
        EntryTopics(genesis.communities.iter().map(|c| (c.id.clone(), entries_topic(genesis, &c.district))).collect())
    }

    /// The topic `community`'s entries go on (`None` for a community not in the genesis).
    pub fn of(&self, community: &CommunityId) -> Option<&IdentTopic> {
        self.0.get(community)
    }

    /// The topics a node of `own` that replicates `followed` subscribes to (each once).
    pub fn subscriptions<'a>(
        &self,
        own: &'a CommunityId,
        followed: impl IntoIterator<Item = &'a CommunityId>,
    ) -> Vec<IdentTopic> {
        let mut seen = BTreeSet::new();
        std::iter::once(own)
            .chain(followed)
            .filter_map(|c| self.of(c))
            .filter(|t| seen.insert(t.hash()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use linli_protocol::testkit;

    /// Topics compare by hash (the topic type has no equality of its own).
    fn hashes(topics: &[IdentTopic]) -> Vec<libp2p::gossipsub::TopicHash> {
        topics.iter().map(|t| t.hash()).collect()
    }

    #[test]
    fn entries_go_on_their_district_topic() {
        // The testkit's genesis puts even-numbered communities in "east", odd in "west".
        let g = testkit::genesis(&["a", "b", "c", "d"]);
        let topics = EntryTopics::new(&g);
        let of = |c: &str| topics.of(&testkit::cid(c)).map(|t| t.hash());
        assert_eq!(of("a"), of("c"));
        assert_ne!(of("a"), of("b"));
        assert_eq!(of("a").unwrap().to_string(), format!("/linli/{}/entries/east", g.hash()));
        assert_eq!(of("zz"), None);
        assert_eq!(all_entries_topics(&g).len(), 2);
    }

    #[test]
    fn a_node_subscribes_only_to_the_districts_it_follows() {
        let g = testkit::genesis(&["a", "b", "c", "d"]);
        let topics = EntryTopics::new(&g);
        let (a, b, c) = (testkit::cid("a"), testkit::cid("b"), testkit::cid("c"));
        let east_only = topics.subscriptions(&a, [&c]);
        assert_eq!(hashes(&east_only), hashes(&[entries_topic(&g, "east")]));
        let both = topics.subscriptions(&a, [&b, &c, &a]);
        assert_eq!(hashes(&both), hashes(&[entries_topic(&g, "east"), entries_topic(&g, "west")]));
    }

    #[test]
    fn another_federation_has_other_topics() {
        let g1 = testkit::genesis(&["a", "b"]);
        let g2 = testkit::genesis(&["a", "c"]);
        assert_ne!(topic(&g1, "alerts").hash(), topic(&g2, "alerts").hash());
        assert_ne!(entries_topic(&g1, "east").hash(), entries_topic(&g2, "east").hash());
    }
}
