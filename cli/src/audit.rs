//! The replay engine behind `verify`, `inspect account` and `export --what balances`.
//!
//! Each ledger is read in chunks; a chunk's signatures are batch-verified on all cores,
//! following key rotations ([`verify::verify_run`]); its entries are then applied to one fresh
//! [`State`] round-robin across ledgers, so an entry citing another ledger (a `Credit` citing a
//! `Pay`) waits until the cited entry has been applied. A ledger cited by the ones asked for is
//! pulled in as a dependency. Beyond the state machine's rules (seq, chain, signer, awards,
//! exchange figures, nonces, credits, balances), the engine checks:
//!
//! * every stored checkpoint: signed by the community key in force at its size, its root equal
//!   to the Merkle root of that many verified entries, its witnesses' cosignatures valid;
//! * the store's own records: each entry's leaf (hash column), the recorded ledger size (so an
//!   entry missing at the end is found), and the stored derived state (equal to the replay);
//! * conservation of points and minutes for every issuer, after every chunk and at the end.
//!
//! The first failure stops the run and names the community, the seq and the rule.

use crate::prefetch::{read_chunk, Item, Prefetch};
use crate::source::Source;
use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use linli_protocol::checkpoint::CosignedCheckpoint;
use linli_protocol::merkle::Frontier;
use linli_protocol::state::Rejection;
use linli_protocol::verify::{SignerKeys, VerifiedEntry, VerifyError};
use linli_protocol::{ApplyContext, CommunityId, EntryRef, Genesis, Hash, RejectedEntry, State};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

pub use crate::prefetch::CHUNK;

/// The first thing found wrong, with where and which rule.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub community: CommunityId,
    /// The entry's seq (for a checkpoint: the last seq it covers).
    pub seq: Option<u64>,
    pub kind: Option<&'static str>,
    /// Set when the failure is a stored checkpoint's.
    pub checkpoint_size: Option<u64>,
    pub rule: String,
    pub message: String,
}

impl Failure {
    pub(crate) fn at(community: &CommunityId, seq: u64, rule: &str, message: String) -> Self {
        Failure {
            community: community.clone(),
            seq: Some(seq),
            kind: None,
            checkpoint_size: None,
            rule: rule.into(),
            message,
        }
    }

    fn checkpoint(community: &CommunityId, size: u64, rule: &str, message: String) -> Self {
        Failure {
            community: community.clone(),
            seq: size.checked_sub(1),
            kind: None,
            checkpoint_size: Some(size),
            rule: rule.into(),
            message,
        }
    }

    fn rejected(e: RejectedEntry) -> Self {
        Failure {
            rule: e.rejection.rule().to_string(),
            message: e.rejection.to_string(),
            community: e.community,
            seq: Some(e.seq),
            kind: Some(e.kind),
            checkpoint_size: None,
        }
    }

    pub(crate) fn signature(e: VerifyError, kind: Option<&'static str>) -> Self {
        Failure {
            kind,
            ..Failure::at(&e.community, e.seq, "signature", format!("{} signature refused: {}", e.what, e.error))
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "community {}", self.community)?;
        match (self.checkpoint_size, self.seq) {
            (Some(size), Some(seq)) => write!(f, " checkpoint of size {size} (after seq {seq})")?,
            (Some(size), None) => write!(f, " checkpoint of size {size}")?,
            (None, Some(seq)) => write!(f, " seq {seq}")?,
            (None, None) => {}
        }
        if let Some(kind) = self.kind {
            write!(f, " ({kind})")?;
        }
        write!(f, ": rule {}: {}", self.rule, self.message)
    }
}

/// What was verified of one ledger.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerReport {
    pub community: CommunityId,
    pub entries: u64,
    pub checkpoints_verified: u64,
    /// Distinct valid witness cosignatures over all verified checkpoints.
    pub cosignatures: u64,
    /// Pulled in because a ledger asked for cites it.
    pub dependency: bool,
    pub points_issued: u64,
    pub points_redeemed: u64,
    pub points_settled: u64,
    pub minutes_credited: u64,
    pub minutes_spent: u64,
}

/// The outcome of a run.
pub struct Report {
    pub ledgers: Vec<LedgerReport>,
    pub entries: u64,
    pub state: State,
    pub elapsed: Duration,
    /// True when the store's derived state was compared with the replay.
    pub stored_state_checked: bool,
    /// Entries of proven equivocators, past their conflict, taken as evidence for citations.
    pub evidence: u64,
    pub failure: Option<Failure>,
}

/// What to replay.
pub struct Options {
    /// `None`: every community of the genesis.
    pub communities: Option<Vec<CommunityId>>,
    pub progress: bool,
}

/// Called after each applied entry with the state after it.
pub type Hook<'a> = &'a mut dyn FnMut(&VerifiedEntry, &State);

struct Cursor {
    keys: SignerKeys,
    next_read: u64,
    queue: VecDeque<Item>,
    /// The read-ahead thread (RocksDB directories).
    ahead: Option<Prefetch>,
    pending: Option<Failure>,
    exhausted: bool,
    finished: bool,
    frontier: Frontier,
    checkpoints: VecDeque<CosignedCheckpoint>,
    claimed: Option<u64>,
    witnesses: BTreeSet<CommunityId>,
    report: LedgerReport,
}

struct Engine<'a> {
    genesis: &'a Genesis,
    gh: Hash,
    source: &'a Source,
    state: State,
    cursors: BTreeMap<CommunityId, Cursor>,
    bar: ProgressBar,
    applied: u64,
    checked_at: u64,
    last: Option<(CommunityId, u64)>,
    /// Equivocators' entries taken as evidence for citations.
    evidence: u64,
}

enum Stop {
    Done,
    Blocked(RejectedEntry),
}

/// Replay the ledgers of `source` from genesis, checking everything. `Err` only when the
/// source cannot be read; a ledger found wrong is `Report::failure`.
pub fn run(genesis: &Genesis, source: &Source, opts: &Options, mut hook: Option<Hook<'_>>) -> Result<Report> {
    let started = Instant::now();
    let mut engine = Engine {
        genesis,
        gh: genesis.hash(),
        source,
        state: State::new(genesis),
        cursors: BTreeMap::new(),
        bar: ProgressBar::hidden(),
        applied: 0,
        checked_at: 0,
        last: None,
        evidence: 0,
    };
    let wanted: Vec<CommunityId> = match &opts.communities {
        Some(list) => list.clone(),
        None => genesis.communities.iter().map(|c| c.id.clone()).collect(),
    };
    for id in &wanted {
        engine.activate(id, false)?;
    }
    if opts.progress {
        let total = engine.cursors.values().filter_map(|c| c.claimed).sum();
        engine.bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} verifying [{bar:30}] {human_pos}/{human_len} entries, {per_sec}, eta {eta}",
        ) {
            engine.bar.set_style(style.progress_chars("=> "));
        }
    }
    let failure = engine.replay(&mut hook)?;
    let failure = match failure {
        Some(f) => Some(f),
        None => engine.final_checks(opts.communities.is_none())?,
    };
    engine.bar.finish_and_clear();
    let stored_state_checked = opts.communities.is_none() && matches!(source, Source::Db { .. }) && failure.is_none();
    let mut ledgers: Vec<LedgerReport> = Vec::new();
    for (id, cursor) in engine.cursors {
        let mut r = cursor.report;
        if let Some(t) = engine.state.totals.get(&id) {
            r.points_issued = t.minted;
            r.points_redeemed = t.redeemed;
            r.points_settled = t.settled;
            r.minutes_credited = t.minutes_credited;
            r.minutes_spent = t.minutes_spent;
        }
        ledgers.push(r);
    }
    Ok(Report {
        ledgers,
        entries: engine.applied,
        state: engine.state,
        elapsed: started.elapsed(),
        stored_state_checked,
        evidence: engine.evidence,
        failure,
    })
}

impl Engine<'_> {
    fn activate(&mut self, id: &CommunityId, dependency: bool) -> Result<()> {
        let info = self.genesis.community(id).ok_or_else(|| anyhow!("community {id} is not in the genesis"))?;
        let claimed = self.source.claimed_size(id)?;
        let mut checkpoints = self.source.checkpoints(id)?;
        checkpoints.sort_by_key(|c| c.signed.checkpoint.size);
        if dependency {
            self.bar.inc_length(claimed.unwrap_or(0));
        }
        let keys = SignerKeys { current: info.signing_key, recovery: info.recovery_key };
        let ahead = match self.source.own_handle() {
            Some(own) => Some(Prefetch::start(own, self.gh, id.clone(), keys)?),
            None => None,
        };
        self.cursors.insert(
            id.clone(),
            Cursor {
                keys,
                next_read: 0,
                queue: VecDeque::new(),
                ahead,
                pending: None,
                exhausted: false,
                finished: false,
                frontier: Frontier::new(),
                checkpoints: checkpoints.into(),
                claimed,
                witnesses: BTreeSet::new(),
                report: LedgerReport {
                    community: id.clone(),
                    entries: 0,
                    checkpoints_verified: 0,
                    cosignatures: 0,
                    dependency,
                    points_issued: 0,
                    points_redeemed: 0,
                    points_settled: 0,
                    minutes_credited: 0,
                    minutes_spent: 0,
                },
            },
        );
        Ok(())
    }

    /// Apply every ledger round-robin until all are done, one fails, or none can progress.
    fn replay(&mut self, hook: &mut Option<Hook<'_>>) -> Result<Option<Failure>> {
        loop {
            let before = (self.applied, self.cursors.len());
            let mut blocked: Option<RejectedEntry> = None;
            let mut waiting = Vec::new();
            let mut all_done = true;
            let ids: Vec<CommunityId> = self.cursors.keys().cloned().collect();
            for id in ids {
                match self.drain(&id, hook)? {
                    Ok(Stop::Done) => {}
                    Ok(Stop::Blocked(e)) => {
                        all_done = false;
                        if let Rejection::MissingDependency { reference, .. } = &e.rejection {
                            waiting.push(reference.clone());
                            let cited = reference.community.clone();
                            if !self.cursors.contains_key(&cited) && self.genesis.community(&cited).is_some() {
                                self.activate(&cited, true)?;
                            }
                        }
                        blocked.get_or_insert(e);
                    }
                    Err(f) => return Ok(Some(f)),
                }
            }
            if all_done {
                return Ok(None);
            }
            if (self.applied, self.cursors.len()) == before {
                match self.take_evidence(&waiting)? {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(f) => return Ok(Some(f)),
                }
                if let Some(e) = blocked {
                    let mut f = Failure::rejected(e);
                    f.message.push_str(" (no ledger read holds the cited entry)");
                    return Ok(Some(f));
                }
            }
        }
    }

    /// Every ledger waits on a cited entry: take the ones the source holds as evidence (an
    /// equivocator's entry past its conflict, on the branch the source did not take), checked
    /// as the node checked them ([`State::check_evidence`]). True when one made a new record.
    fn take_evidence(&mut self, waiting: &[EntryRef]) -> Result<Result<bool, Failure>> {
        let mut taken = false;
        for reference in waiting {
            let Some((entry, conflict_at)) = self.source.evidence(reference)? else { continue };
            let c = &reference.community;
            let Some(key) = self.state.ledgers.get(c).and_then(|l| l.key_in_force_at(conflict_at)) else { continue };
            let v = match linli_protocol::verify::verify_entry(&self.gh, entry, key) {
                Ok(v) => v,
                Err(e) => return Ok(Err(Failure::signature(e, None))),
            };
            if v.hash() != reference.hash {
                let message = format!("the evidence served for {reference:?} hashes to {}", v.hash());
                return Ok(Err(Failure::at(c, reference.seq, "evidence-hash", message)));
            }
            match self.state.check_evidence(&v, conflict_at) {
                Ok(changes) if changes.is_empty() => {}
                Ok(changes) => {
                    self.state.commit(changes);
                    self.evidence = self.evidence.saturating_add(1);
                    taken = true;
                }
                Err(e) => return Ok(Err(Failure::rejected(e))),
            }
        }
        Ok(Ok(taken))
    }

    /// Apply the entries of one ledger until it is done, blocked on another ledger, or wrong.
    fn drain(&mut self, id: &CommunityId, hook: &mut Option<Hook<'_>>) -> Result<Result<Stop, Failure>> {
        loop {
            if let Err(f) = self.check_due_checkpoints(id) {
                return Ok(Err(f));
            }
            let Some(cursor) = self.cursors.get_mut(id) else { return Ok(Ok(Stop::Done)) };
            if cursor.queue.is_empty() {
                if let Some(f) = cursor.pending.take() {
                    return Ok(Err(f));
                }
                if cursor.finished {
                    return Ok(Ok(Stop::Done));
                }
                if cursor.exhausted {
                    cursor.finished = true;
                    if let Some(f) = end_of_ledger(id, cursor) {
                        return Ok(Err(f));
                    }
                    continue;
                }
                self.refill(id)?;
                if let Some(f) = self.conservation() {
                    return Ok(Err(f));
                }
                continue;
            }
            let Some((v, _)) = cursor.queue.front() else { continue };
            match self.state.check(v, &ApplyContext::default()) {
                Ok(changes) => {
                    self.state.commit(changes);
                    let Some((v, leaf)) = cursor.queue.pop_front() else { continue };
                    cursor.frontier.push(&v.hash());
                    cursor.report.entries = cursor.report.entries.saturating_add(1);
                    let seq = v.signed().entry.seq;
                    if let Some(leaf) = leaf {
                        if leaf != Some(v.hash()) {
                            let stored = leaf.map(|h| h.to_hex()).unwrap_or_else(|| "nothing".into());
                            let mut f = Failure::at(
                                id,
                                seq,
                                "leaf-hash",
                                format!(
                                    "the store's leaves column holds {stored} for this entry, which hashes to {}",
                                    v.hash()
                                ),
                            );
                            f.kind = Some(v.signed().entry.body.kind());
                            return Ok(Err(f));
                        }
                    }
                    self.applied = self.applied.saturating_add(1);
                    self.last = Some((id.clone(), seq));
                    if self.applied.is_multiple_of(1024) {
                        self.bar.set_position(self.applied);
                    }
                    if let Some(h) = hook.as_mut() {
                        h(&v, &self.state);
                    }
                }
                Err(e) if e.rejection.is_missing_dependency() => return Ok(Ok(Stop::Blocked(e))),
                Err(e) => return Ok(Err(Failure::rejected(e))),
            }
        }
    }

    /// Take the next verified chunk of a ledger (from its read-ahead thread, or read it now). A
    /// bad record becomes the cursor's pending failure, reported once the entries before it have
    /// been applied.
    fn refill(&mut self, id: &CommunityId) -> Result<()> {
        let Some(cursor) = self.cursors.get_mut(id) else { return Ok(()) };
        let chunk = match &cursor.ahead {
            Some(ahead) => ahead.next()?,
            None => read_chunk(self.source, &self.gh, id, cursor.next_read, cursor.keys)?,
        };
        if chunk.exhausted {
            cursor.exhausted = true;
            cursor.ahead = None;
            return Ok(());
        }
        cursor.keys = chunk.keys;
        cursor.next_read = cursor.next_read.saturating_add(chunk.items.len() as u64);
        cursor.queue.extend(chunk.items);
        cursor.pending = chunk.failure;
        Ok(())
    }

    /// Check the ledger's stored checkpoints whose size the replay has reached.
    fn check_due_checkpoints(&mut self, id: &CommunityId) -> Result<(), Failure> {
        let Some(cursor) = self.cursors.get_mut(id) else { return Ok(()) };
        while cursor.checkpoints.front().is_some_and(|c| c.signed.checkpoint.size <= cursor.frontier.size()) {
            let Some(cp) = cursor.checkpoints.pop_front() else { break };
            let size = cp.signed.checkpoint.size;
            if size < cursor.frontier.size() {
                // Only reachable for a duplicate size: the first one of that size was checked.
                return Err(Failure::checkpoint(
                    id,
                    size,
                    "checkpoint-duplicate",
                    "two checkpoints of one size".into(),
                ));
            }
            let witnesses = check_checkpoint(&self.gh, self.genesis, &self.state, id, &cp, &cursor.frontier.root())?;
            cursor.report.checkpoints_verified = cursor.report.checkpoints_verified.saturating_add(1);
            cursor.report.cosignatures = cursor.report.cosignatures.saturating_add(witnesses.len() as u64);
            cursor.witnesses.extend(witnesses);
        }
        Ok(())
    }

    /// Conservation of points and minutes, checked whenever entries were applied since last time.
    fn conservation(&mut self) -> Option<Failure> {
        if self.checked_at == self.applied {
            return None;
        }
        self.checked_at = self.applied;
        let issuer = self.state.conservation_violation()?;
        let after = match &self.last {
            Some((c, s)) => format!("after {c} seq {s}"),
            None => "before any entry".into(),
        };
        Some(Failure {
            community: issuer.clone(),
            seq: self.last.as_ref().filter(|(c, _)| *c == issuer).map(|(_, s)| *s),
            kind: None,
            checkpoint_size: None,
            rule: "conservation".into(),
            message: format!(
                "points minted - redeemed - settled (or minutes credited - spent) of issuer {issuer} no longer equal what \
                 residents and merchants hold ({after})"
            ),
        })
    }

    /// After every ledger is applied: conservation, and the stored derived state.
    fn final_checks(&mut self, all_ledgers: bool) -> Result<Option<Failure>> {
        self.bar.set_position(self.applied);
        if let Some(f) = self.conservation() {
            return Ok(Some(f));
        }
        if !all_ledgers {
            return Ok(None);
        }
        let Some(stored) = self.source.stored_state(self.genesis)? else { return Ok(None) };
        let mut replayed = self.state.clone();
        // Quarantine flags come from equivocation proofs, not from the log.
        for (id, l) in &stored.ledgers {
            if l.faulty {
                replayed.mark_faulty(id, l.faulty_from);
            }
        }
        Ok(crate::statediff::first_difference(&stored, &replayed).map(|(community, message)| Failure {
            community,
            seq: None,
            kind: None,
            checkpoint_size: None,
            rule: "stored-state".into(),
            message,
        }))
    }
}

/// When a ledger has been read to its end: nothing the store or a checkpoint records is missing.
fn end_of_ledger(id: &CommunityId, cursor: &Cursor) -> Option<Failure> {
    let count = cursor.frontier.size();
    if let Some(claimed) = cursor.claimed.filter(|c| *c > count) {
        return Some(Failure::at(
            id,
            count,
            "missing-entry",
            format!("the ledger ends after {count} entries, but the source records {claimed}"),
        ));
    }
    if let Some(cp) = cursor.checkpoints.front() {
        let size = cp.signed.checkpoint.size;
        return Some(Failure::at(
            id,
            count,
            "missing-entry",
            format!("a checkpoint of size {size} is stored, but the ledger ends after {count} entries"),
        ));
    }
    None
}

/// Check one checkpoint against the replay at its size; returns its valid witnesses.
fn check_checkpoint(
    gh: &Hash,
    genesis: &Genesis,
    state: &State,
    id: &CommunityId,
    cp: &CosignedCheckpoint,
    root: &Hash,
) -> Result<BTreeSet<CommunityId>, Failure> {
    let c = &cp.signed.checkpoint;
    if &c.community != id {
        return Err(Failure::checkpoint(
            id,
            c.size,
            "checkpoint-community",
            format!("stored checkpoint is {}'s", c.community),
        ));
    }
    let key = state.ledgers.get(id).map(|l| l.key).unwrap_or_default();
    cp.signed
        .verify(gh, &key)
        .map_err(|e| Failure::checkpoint(id, c.size, "checkpoint-signature", format!("{e} (key in force: {key})")))?;
    if &c.root != root {
        return Err(Failure::checkpoint(
            id,
            c.size,
            "checkpoint-root",
            format!("the checkpoint signs root {}, but the first {} entries have Merkle root {root}", c.root, c.size),
        ));
    }
    let mut valid = BTreeSet::new();
    for cs in &cp.cosignatures {
        let known = cs.witness != *id
            && (genesis.community(&cs.witness).is_some_and(|w| w.signing_key == cs.key)
                || state.ledgers.get(&cs.witness).is_some_and(|l| l.key == cs.key || l.retired_keys.contains(&cs.key)));
        if !known {
            continue; // a key we cannot attribute (e.g. a rotation on a ledger not replayed): not counted
        }
        if let Err(e) = cp.signed.verify_cosignature(gh, cs) {
            return Err(Failure::checkpoint(
                id,
                c.size,
                "checkpoint-cosignature",
                format!("witness {}'s cosignature does not verify: {e}", cs.witness),
            ));
        }
        valid.insert(cs.witness.clone());
    }
    Ok(valid)
}
