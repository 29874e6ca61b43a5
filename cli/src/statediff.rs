//! The first difference between a node's stored derived state and a replay from genesis, named
//! by community and item (an attacker who edits a balance in the state column is found here).

use linli_protocol::{CommunityId, State};
use std::collections::BTreeMap;
use std::fmt::Debug;

const MAX_SHOWN: usize = 400;

fn shown<V: Debug>(v: Option<&V>) -> String {
    match v {
        Some(v) => {
            let mut s = format!("{v:?}");
            if s.len() > MAX_SHOWN {
                let mut end = MAX_SHOWN;
                while !s.is_char_boundary(end) {
                    end = end.saturating_sub(1);
                }
                s.truncate(end);
                s.push_str("...");
            }
            s
        }
        None => "nothing".into(),
    }
}

/// The first key whose value differs; `name(key)` says which community and what it is.
fn diff<K: Ord + Clone, V: PartialEq + Debug>(
    stored: &BTreeMap<K, V>,
    replayed: &BTreeMap<K, V>,
    name: impl Fn(&K, Option<&V>, Option<&V>) -> (CommunityId, String),
) -> Option<(CommunityId, String)> {
    let mut keys: Vec<&K> = stored.keys().chain(replayed.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().find(|k| stored.get(*k) != replayed.get(*k)).map(|k| {
        let (s, r) = (stored.get(k), replayed.get(k));
        let (community, what) = name(k, s, r);
        (community, format!("{what}: the store holds {}, a replay from genesis gives {}", shown(s), shown(r)))
    })
}

/// The first difference between `stored` and `replayed`, if any.
pub fn first_difference(stored: &State, replayed: &State) -> Option<(CommunityId, String)> {
    diff(&stored.ledgers, &replayed.ledgers, |c, _, _| (c.clone(), format!("ledger head and keys of {c}")))
        .or_else(|| {
            diff(&stored.accounts, &replayed.accounts, |(c, k), _, _| (c.clone(), format!("account {k} of {c}")))
        })
        .or_else(|| {
            diff(&stored.holdings, &replayed.holdings, |(c, m, i), _, _| {
                (c.clone(), format!("merchant {m} of {c}: points of {i} held"))
            })
        })
        .or_else(|| diff(&stored.totals, &replayed.totals, |c, _, _| (c.clone(), format!("issuer totals of {c}"))))
        .or_else(|| {
            diff(&stored.nonces, &replayed.nonces, |(c, k, n), _, _| (c.clone(), format!("nonce {n} of {k} at {c}")))
        })
        .or_else(|| {
            diff(&stored.request_ids, &replayed.request_ids, |(c, n), _, _| {
                (c.clone(), format!("award request id {n} of {c}"))
            })
        })
        .or_else(|| {
            diff(&stored.pays, &replayed.pays, |h, s, r| {
                (s.or(r).map(|p| p.at.community.clone()).unwrap_or_else(fallback), format!("payment record {h}"))
            })
        })
        .or_else(|| {
            diff(&stored.draws, &replayed.draws, |h, s, r| {
                (s.or(r).map(|d| d.at.community.clone()).unwrap_or_else(fallback), format!("time-bank draw {h}"))
            })
        })
        .or_else(|| {
            diff(&stored.limits, &replayed.limits, |h, s, r| {
                (s.or(r).map(|l| l.at.community.clone()).unwrap_or_else(fallback), format!("exposure limit {h}"))
            })
        })
        .or_else(|| {
            diff(&stored.settles, &replayed.settles, |h, s, r| {
                (s.or(r).map(|x| x.at.community.clone()).unwrap_or_else(fallback), format!("settlement {h}"))
            })
        })
        .or_else(|| {
            diff(&stored.exposure, &replayed.exposure, |(i, c), _, _| {
                (i.clone(), format!("exposure of issuer {i} towards {c}"))
            })
        })
        .or_else(|| {
            diff(&stored.settled_by, &replayed.settled_by, |(c, i), _, _| {
                (c.clone(), format!("points of {i} settled by {c}"))
            })
        })
        .or_else(|| {
            diff(&stored.clearings, &replayed.clearings, |(c, o), _, _| {
                (c.clone(), format!("clearing of {c} with {o}"))
            })
        })
}

fn fallback() -> CommunityId {
    // Every record names its community; this is only for the impossible empty case.
    CommunityId::new("unknown").unwrap_or_else(|_| fallback())
}
