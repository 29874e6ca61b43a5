//! `linli compare`: fetch every node's view of each ledger (size, head, newest checkpoint) and
//! report whether the views agree:
//!
//! * two nodes' ledgers must agree on their common prefix: the shorter ledger's last entry must
//!   be the longer one's entry at that seq (entry hashes recomputed from the entries fetched);
//! * two checkpoints of one size must have one root; of different sizes, the node holding the
//!   larger one must prove the smaller one consistent with it (verified against both signed roots).
//!
//! When two nodes hold different entries at one seq, a binary search finds the first such seq
//! and the two entries, both signed by the community key in force there, are printed as an
//! equivocation proof (as are two signed checkpoints of one size with different roots).

use crate::fail::{Finding, Reported};
use crate::keyring::KeyHistory;
use crate::out;
use crate::proof::{EquivocationFile, ProofFile};
use crate::source::{self, Source};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use linli_protocol::checkpoint::{CosignedCheckpoint, EquivocationProof};
use linli_protocol::{CommunityId, Genesis, Hash, SignedEntry};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// A node's HTTP API (give two or more).
    #[arg(long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// The federation's genesis file (TOML).
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Compare only this ledger (repeatable). Default: every community in the genesis.
    #[arg(long, value_name = "C")]
    pub community: Vec<String>,
}

/// One node's view of one ledger.
#[derive(Debug, Serialize)]
struct View {
    url: String,
    size: u64,
    head: Hash,
    checkpoint_size: Option<u64>,
    checkpoint_root: Option<Hash>,
    #[serde(skip)]
    checkpoint: Option<CosignedCheckpoint>,
}

#[derive(Debug, Serialize)]
struct LedgerComparison {
    community: CommunityId,
    agree: bool,
    nodes: Vec<View>,
    problems: Vec<String>,
    equivocations: Vec<ProofFile>,
}

struct Node {
    url: String,
    source: Source,
}

pub fn run(args: &CompareArgs, json_out: bool) -> Result<()> {
    if args.urls.len() < 2 {
        bail!("give at least two nodes: --url URL1 --url URL2");
    }
    let genesis = source::load_genesis(&args.genesis)?;
    let mut nodes = Vec::new();
    for url in &args.urls {
        let source = Source::open_http(url, &genesis)?;
        nodes.push(Node { url: url.trim_end_matches('/').to_string(), source });
    }
    let ids: Vec<CommunityId> = if args.community.is_empty() {
        genesis.communities.iter().map(|c| c.id.clone()).collect()
    } else {
        args.community.iter().map(|c| source::community(&genesis, c)).collect::<Result<_>>()?
    };
    let mut results = Vec::new();
    for id in &ids {
        results.push(compare_ledger(&genesis, &nodes, id)?);
    }
    let disagree: Vec<String> = results.iter().filter(|r| !r.agree).map(|r| r.community.to_string()).collect();
    let finding = (!disagree.is_empty())
        .then(|| Finding(format!("the nodes disagree on {} ledger(s): {}", disagree.len(), disagree.join(", "))));
    if json_out {
        let report = serde_json::json!({"agree": disagree.is_empty(), "ledgers": results});
        return match finding {
            None => out::json(&report),
            // `main` prints the report with the error added.
            Some(f) => Err(Reported { report, finding: f.into() }.into()),
        };
    }
    print_human(&results)?;
    finding.map_or(Ok(()), |f| Err(f.into()))
}

fn print_human(results: &[LedgerComparison]) -> Result<()> {
    for r in results {
        if r.agree {
            let sizes: Vec<String> = r.nodes.iter().map(|v| v.size.to_string()).collect();
            out::line(&format!("{}: agree (sizes {})", r.community, sizes.join(", ")))?;
            continue;
        }
        out::line(&format!("{}: DISAGREE", r.community))?;
        let mut t = out::Table::new(&["  node", "size", "head", "checkpoint", "root"]);
        for v in &r.nodes {
            t.row(vec![
                format!("  {}", v.url),
                v.size.to_string(),
                out::short(&v.head),
                v.checkpoint_size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                v.checkpoint_root.as_ref().map(out::short).unwrap_or_else(|| "-".into()),
            ]);
        }
        t.print()?;
        for p in &r.problems {
            out::line(&format!("  {p}"))?;
        }
        for e in &r.equivocations {
            out::line("  equivocation proof (check it with `linli proof check --file FILE --genesis G`):")?;
            out::line(&serde_json::to_string_pretty(e)?)?;
        }
    }
    Ok(())
}

fn compare_ledger(genesis: &Genesis, nodes: &[Node], id: &CommunityId) -> Result<LedgerComparison> {
    let mut views = Vec::new();
    for n in nodes {
        let status = match &n.source {
            Source::Http { status, .. } => status.ledgers.iter().find(|l| &l.community == id),
            _ => None,
        };
        let checkpoint = n.source.latest_checkpoint(id)?;
        views.push(View {
            url: n.url.clone(),
            size: status.map(|s| s.size).unwrap_or(0),
            head: status.map(|s| s.head).unwrap_or(Hash::ZERO),
            checkpoint_size: checkpoint.as_ref().map(|c| c.signed.checkpoint.size),
            checkpoint_root: checkpoint.as_ref().map(|c| c.signed.checkpoint.root),
            checkpoint,
        });
    }
    let mut cmp =
        Comparer { genesis, nodes, id, cache: BTreeMap::new(), problems: Vec::new(), equivocations: Vec::new() };
    for (i, v) in views.iter().enumerate() {
        cmp.check_own_checkpoint(i, v)?;
    }
    for i in 0..views.len() {
        for j in i.saturating_add(1)..views.len() {
            if let (Some(a), Some(b)) = (views.get(i), views.get(j)) {
                cmp.compare_heads(i, a, j, b)?;
                cmp.compare_checkpoints(i, a, j, b)?;
            }
        }
    }
    Ok(LedgerComparison {
        community: id.clone(),
        agree: cmp.problems.is_empty(),
        nodes: views,
        problems: cmp.problems,
        equivocations: cmp.equivocations,
    })
}

struct Comparer<'a> {
    genesis: &'a Genesis,
    nodes: &'a [Node],
    id: &'a CommunityId,
    cache: BTreeMap<(usize, u64), (SignedEntry, Hash)>,
    problems: Vec<String>,
    equivocations: Vec<ProofFile>,
}

impl Comparer<'_> {
    fn node(&self, i: usize) -> Result<&Node> {
        self.nodes.get(i).ok_or_else(|| anyhow!("node {i} missing"))
    }

    /// Node `i`'s entry at `seq` and its recomputed hash.
    fn entry(&mut self, i: usize, seq: u64) -> Result<Option<(SignedEntry, Hash)>> {
        if let Some(hit) = self.cache.get(&(i, seq)) {
            return Ok(Some(hit.clone()));
        }
        let node = self.node(i)?;
        let Some(e) = node.source.entry(self.id, seq)? else { return Ok(None) };
        let h = e.hash(&self.genesis.hash());
        self.cache.insert((i, seq), (e.clone(), h));
        Ok(Some((e, h)))
    }

    fn hash_at(&mut self, i: usize, seq: u64) -> Result<Option<Hash>> {
        Ok(self.entry(i, seq)?.map(|(_, h)| h))
    }

    /// A node's own checkpoint must be signed by the key in force at its size.
    fn check_own_checkpoint(&mut self, i: usize, v: &View) -> Result<()> {
        let Some(cp) = &v.checkpoint else { return Ok(()) };
        let size = cp.signed.checkpoint.size;
        let node = self.node(i)?;
        let keys = KeyHistory::walk(&node.source, self.genesis, self.id, size)?;
        let ok = keys.key_after(size).is_ok_and(|k| cp.signed.verify(&self.genesis.hash(), &k).is_ok());
        if !ok || &cp.signed.checkpoint.community != self.id {
            self.problems.push(format!("{} serves a checkpoint of size {size} that {} did not sign", v.url, self.id));
        }
        Ok(())
    }

    /// The shorter ledger must be a prefix of the longer one.
    fn compare_heads(&mut self, i: usize, a: &View, j: usize, b: &View) -> Result<()> {
        let common = a.size.min(b.size);
        if common == 0 || (a.size == b.size && a.head == b.head) {
            return Ok(());
        }
        let last = common.saturating_sub(1);
        let (ha, hb) = (self.hash_at(i, last)?, self.hash_at(j, last)?);
        if ha.is_some() && ha == hb {
            return Ok(());
        }
        if ha.is_none() || hb.is_none() {
            let short = if ha.is_none() { &a.url } else { &b.url };
            self.problems
                .push(format!("{short} reports {common} or more entries of {} but serves no entry {last}", self.id));
            return Ok(());
        }
        // Hash chains make "differs at seq" monotone: binary-search the first differing seq.
        let (mut lo, mut hi) = (0u64, last);
        while lo < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            let (x, y) = (self.hash_at(i, mid)?, self.hash_at(j, mid)?);
            if x != y {
                hi = mid;
            } else {
                lo = mid.saturating_add(1);
            }
        }
        self.fork(i, a, j, b, lo)
    }

    /// Nodes `i` and `j` hold different entries at `seq`: prove the equivocation, if both are signed.
    fn fork(&mut self, i: usize, a: &View, j: usize, b: &View, seq: u64) -> Result<()> {
        let (Some((ea, _)), Some((eb, _))) = (self.entry(i, seq)?, self.entry(j, seq)?) else {
            bail!("entries at seq {seq} vanished during the comparison");
        };
        let node = self.node(i)?;
        let keys = KeyHistory::walk(&node.source, self.genesis, self.id, seq)?;
        let key = keys.signer_of(&ea);
        let proof = EquivocationProof::Entries(Box::new(ea), Box::new(eb));
        match proof.verify(&self.genesis.hash(), &key) {
            Ok(()) => {
                self.problems.push(format!(
                    "fork at seq {seq}: {} and {} hold different entries there, both signed by {}'s key {}",
                    a.url,
                    b.url,
                    self.id,
                    key.short()
                ));
                self.add_equivocation(seq, key, proof);
            }
            Err(e) => self.problems.push(format!(
                "{} and {} hold different entries at seq {seq}, but not both are signed by {} ({e}): a node's copy is corrupt",
                a.url, b.url, self.id
            )),
        }
        Ok(())
    }

    fn add_equivocation(&mut self, position: u64, key: linli_protocol::PublicKey, proof: EquivocationProof) {
        let same_kind = |p: &EquivocationProof| std::mem::discriminant(p) == std::mem::discriminant(&proof);
        let seen = self
            .equivocations
            .iter()
            .any(|f| matches!(f, ProofFile::Equivocation(e) if e.position == position && same_kind(&e.proof)));
        if !seen {
            self.equivocations.push(ProofFile::Equivocation(EquivocationFile {
                genesis_hash: self.genesis.hash(),
                community: self.id.clone(),
                position,
                key,
                proof,
            }));
        }
    }

    /// Checkpoints of one size must match; of two sizes, be consistent.
    fn compare_checkpoints(&mut self, i: usize, a: &View, j: usize, b: &View) -> Result<()> {
        let (Some(ca), Some(cb)) = (&a.checkpoint, &b.checkpoint) else { return Ok(()) };
        let (na, nb) = (ca.signed.checkpoint.size, cb.signed.checkpoint.size);
        let (ra, rb) = (ca.signed.checkpoint.root, cb.signed.checkpoint.root);
        if na == nb {
            if ra != rb {
                let node = self.node(i)?;
                let key = KeyHistory::walk(&node.source, self.genesis, self.id, na)?.key_after(na)?;
                let proof = EquivocationProof::Checkpoints(Box::new(ca.signed.clone()), Box::new(cb.signed.clone()));
                if proof.verify(&self.genesis.hash(), &key).is_ok() {
                    self.problems.push(format!(
                        "{} and {} hold checkpoints of size {na} with different roots, both signed by {}",
                        a.url, b.url, self.id
                    ));
                    self.add_equivocation(na, key, proof);
                }
            }
            return Ok(());
        }
        // The node with the larger checkpoint proves the smaller one is a prefix of it.
        let (small, large, provider, small_url, large_url) =
            if na < nb { (ca, cb, j, &a.url, &b.url) } else { (cb, ca, i, &b.url, &a.url) };
        let (old, new) = (small.signed.checkpoint.size, large.signed.checkpoint.size);
        let node = self.node(provider)?;
        let verdict = node
            .source
            .consistency(self.id, old, new)
            .and_then(|(_, _, proof)| Ok(proof.verify(&small.signed.checkpoint.root, &large.signed.checkpoint.root)?));
        if let Err(e) = verdict {
            self.problems.push(format!(
                "{small_url}'s checkpoint of size {old} is not consistent with {large_url}'s checkpoint of size {new}: {e}"
            ));
        }
        Ok(())
    }
}
