//! The simulated users and what they ask for: enrolments, awards (some invalid, some resubmitted),
//! redemptions, payments within and across communities (overdrafts, expired ones, a nonce reused
//! for a second payment, exact resubmissions), settlements (some with a wrong fen figure),
//! clearings and the time bank. Each resident's balance is kept here too, from the receipts the
//! nodes return: the oracle that accepted spending never exceeds what was earned, and that the
//! home node's balance equals it.

use super::rng::Rng;
use anyhow::{bail, Result};
use linli_node::sequencer::{Draft, Receipt, SubmitError};
use linli_protocol::body::{
    Award, Body, Enroll, ExposureLimit, Payment, Redemption, RegisterMerchant, SettlementRequest, TimeDraw, TimeService,
};
use linli_protocol::rules::RuleTable;
use linli_protocol::{CommunityId, Hash, Keypair, Signed, State};

pub struct Resident {
    pub home: usize,
    pub key: Keypair,
    pub enrolled: bool,
    /// Points and minutes as the oracle counts them from accepted receipts.
    pub points: u64,
    pub minutes: u64,
    nonce: u64,
    /// The last accepted payment and its entry hash (for resubmissions and reused nonces).
    last_pay: Option<(Signed<Payment>, Hash)>,
}

pub struct Merchant {
    pub home: usize,
    pub key: Keypair,
    nonce: u64,
}

/// What a request must do (checked against the node's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Anything,
    /// A second payment under a used nonce: must be refused.
    Refused(&'static str),
    /// An exact resubmission: must return the original entry.
    Duplicate(Hash),
}

/// What an accepted request changes in the oracle.
#[derive(Debug, Clone, Copy)]
pub enum Effect {
    None,
    Enrolled(usize),
    Earn(usize),
    Spend(usize),
    EarnMinutes(usize),
    SpendMinutes(usize),
}

pub struct Op {
    pub node: usize,
    pub draft: Draft,
    pub expect: Expect,
    pub effect: Effect,
}

/// An accepted payment, as the merchant's till must then verify it.
#[derive(Debug, Clone)]
pub struct Sale {
    pub payment: Signed<Payment>,
    pub at: linli_protocol::EntryRef,
}

pub struct Workload {
    pub ids: Vec<CommunityId>,
    /// Payments accepted since the tills last took them.
    pub sales: Vec<Sale>,
    pub genesis_hash: Hash,
    pub residents: Vec<Resident>,
    pub merchants: Vec<Merchant>,
    /// A community that equivocates in this run: nothing of another ledger will cite its entries.
    pub equivocator: Option<usize>,
    request_id: u64,
    pub accepted: u64,
    pub refused: u64,
}

const ACTIVITIES: &[&str] =
    &["cleanup", "mediation", "elder-care", "patrol", "hazard-report", "hourly-service", "juggling"];

impl Workload {
    pub fn new(seed: u64, ids: Vec<CommunityId>, genesis_hash: Hash, per: (usize, usize), eq: Option<usize>) -> Self {
        let n = ids.len();
        let residents = (0..n * per.0)
            .map(|i| Resident {
                home: i % n,
                key: Keypair::from_label(&format!("sim/{seed}/resident/{i}")),
                enrolled: false,
                points: 0,
                minutes: 0,
                nonce: 0,
                last_pay: None,
            })
            .collect();
        let merchants = (0..n * per.1)
            .map(|i| Merchant { home: i % n, key: Keypair::from_label(&format!("sim/{seed}/merchant/{i}")), nonce: 0 })
            .collect();
        Workload {
            ids,
            sales: Vec::new(),
            genesis_hash,
            residents,
            merchants,
            equivocator: eq,
            request_id: 0,
            accepted: 0,
            refused: 0,
        }
    }

    fn op(node: usize, body: Body) -> Op {
        Op { node, draft: Draft::Body(body), expect: Expect::Anything, effect: Effect::None }
    }

    /// Every community publishes its rules, registers its merchants, enrols its residents and
    /// extends credit to every other issuer.
    pub fn bootstrap(&mut self, rng: &mut Rng) -> Vec<Op> {
        let mut ops = Vec::new();
        for (c, _) in self.ids.iter().enumerate() {
            let table = if c % 2 == 0 { RuleTable::default_table(1) } else { RuleTable::council_table(1) };
            ops.push(Self::op(c, Body::SetRules(table)));
            for (i, issuer) in self.ids.iter().enumerate().filter(|(i, _)| *i != c) {
                let limit_fen = rng.range(20, 400) * 10;
                let _ = i;
                ops.push(Self::op(c, Body::SetExposureLimit(ExposureLimit { issuer: issuer.clone(), limit_fen })));
            }
        }
        for m in &self.merchants {
            let body = RegisterMerchant { merchant: m.key.public(), name: "shop".into(), category: "grocery".into() };
            ops.push(Self::op(m.home, Body::RegisterMerchant(body)));
        }
        for (i, r) in self.residents.iter().enumerate() {
            let mut op =
                Self::op(r.home, Body::Enroll(Enroll { resident: r.key.public(), profile_hash: Hash([7; 32]) }));
            op.effect = Effect::Enrolled(i);
            ops.push(op);
        }
        ops
    }

    fn sign<T: linli_protocol::body::SignedPayload>(&self, payload: T, key: &Keypair) -> Signed<T> {
        Signed::sign(payload, key, &self.genesis_hash)
    }

    /// One random request (None when the dice pick something not possible yet).
    pub fn next<'a>(
        &mut self,
        rng: &mut Rng,
        now_ms: u64,
        state_of: impl Fn(usize) -> Option<&'a State>,
    ) -> Option<Op> {
        let r = rng.index(self.residents.len());
        if !self.residents[r].enrolled {
            return None;
        }
        let home = self.residents[r].home;
        let eq = self.equivocator;
        match rng.below(100) {
            0..=29 => {
                self.request_id += 1;
                let request_id =
                    if rng.chance(100) { self.request_id.saturating_sub(1).max(1) } else { self.request_id };
                let activity = rng.pick(ACTIVITIES).copied().unwrap_or("cleanup").to_string();
                let bonuses = if rng.chance(300) { vec!["bad-weather".to_string()] } else { vec![] };
                let award = Award {
                    resident: self.residents[r].key.public(),
                    activity,
                    minutes: rng.range(10, 240),
                    rating: rng.range(1, 5) as u8,
                    bonuses,
                    points: 0,
                    rules_version: 0,
                    request_id,
                };
                Some(Op {
                    node: home,
                    draft: Draft::Award { award, points: None },
                    expect: Expect::Anything,
                    effect: Effect::Earn(r),
                })
            }
            30..=64 => {
                let res = &self.residents[r];
                if rng.chance(150) {
                    if let Some((pay, hash)) = res.last_pay.clone() {
                        if rng.chance(500) {
                            return Some(Op {
                                node: home,
                                draft: Draft::Pay(pay),
                                expect: Expect::Duplicate(hash),
                                effect: Effect::Spend(r),
                            });
                        }
                        // A double spend: the same nonce for another amount.
                        let mut p = pay.payload.clone();
                        p.points += 1;
                        p.price_fen += 10;
                        let signed = self.sign(p, &res.key);
                        return Some(Op {
                            node: home,
                            draft: Draft::Pay(signed),
                            expect: Expect::Refused("nonce reused"),
                            effect: Effect::Spend(r),
                        });
                    }
                }
                let candidates: Vec<usize> =
                    (0..self.merchants.len()).filter(|&m| eq != Some(home) || self.merchants[m].home == home).collect();
                let m = *rng.pick(&candidates)?;
                let points = rng.range(1, res.points + 20);
                let price_fen = if rng.chance(50) { points * 10 - 1 } else { points * 10 + rng.below(500) };
                let expiry_ms = if rng.chance(30) { now_ms.saturating_sub(1) } else { now_ms + 3_600_000 };
                let payment = Payment {
                    payer: res.key.public(),
                    merchant: self.merchants[m].key.public(),
                    merchant_community: self.ids[self.merchants[m].home].clone(),
                    points,
                    price_fen,
                    nonce: res.nonce,
                    expiry_ms,
                    genesis: self.genesis_hash,
                };
                let signed = self.sign(payment, &res.key);
                self.residents[r].nonce += 1;
                Some(Op { node: home, draft: Draft::Pay(signed), expect: Expect::Anything, effect: Effect::Spend(r) })
            }
            65..=72 => {
                let res = &self.residents[r];
                let redemption = Redemption {
                    resident: res.key.public(),
                    points: rng.range(1, res.points + 10),
                    item: "rice".into(),
                    nonce: res.nonce,
                };
                let signed = self.sign(redemption, &res.key);
                self.residents[r].nonce += 1;
                Some(Op {
                    node: home,
                    draft: Draft::Body(Body::Redeem(signed)),
                    expect: Expect::Anything,
                    effect: Effect::Spend(r),
                })
            }
            73..=82 => {
                let m = rng.index(self.merchants.len());
                let mhome = self.merchants[m].home;
                let issuer = rng.index(self.ids.len());
                let held = state_of(mhome)?
                    .holdings
                    .get(&(self.ids[mhome].clone(), self.merchants[m].key.public(), self.ids[issuer].clone()))
                    .copied()
                    .unwrap_or(0);
                let points = rng.range(1, held + 3);
                let fen = if rng.chance(50) { points * 10 + 1 } else { points * 10 };
                let req = SettlementRequest {
                    merchant: self.merchants[m].key.public(),
                    issuer: self.ids[issuer].clone(),
                    points,
                    fen,
                    nonce: self.merchants[m].nonce,
                };
                self.merchants[m].nonce += 1;
                let signed = self.sign(req, &self.merchants[m].key);
                Some(Op { node: mhome, draft: Draft::Settle(signed), expect: Expect::Anything, effect: Effect::None })
            }
            83..=86 => {
                let other = rng.index(self.ids.len());
                if other == home || eq == Some(home) || eq == Some(other) {
                    return None;
                }
                Some(Op {
                    node: home,
                    draft: Draft::Clearing { counterparty: self.ids[other].clone() },
                    expect: Expect::Anything,
                    effect: Effect::None,
                })
            }
            87..=93 => {
                // Time credit: provider `r` earns at home, confirmed by the served resident,
                // mostly a neighbour (an enrolled resident of the same home); now and then anyone,
                // which the home refuses unless it is a neighbour.
                let s = if rng.chance(900) {
                    let neighbours: Vec<usize> = (0..self.residents.len())
                        .filter(|&i| i != r && self.residents[i].home == home && self.residents[i].enrolled)
                        .collect();
                    *rng.pick(&neighbours)?
                } else {
                    rng.index(self.residents.len())
                };
                let served = &self.residents[s];
                let service = TimeService {
                    provider: self.residents[r].key.public(),
                    served: served.key.public(),
                    minutes: rng.range(10, 120),
                    service: "tutoring".into(),
                    nonce: served.nonce,
                };
                let signed = self.sign(service, &served.key);
                self.residents[s].nonce += 1;
                Some(Op {
                    node: home,
                    draft: Draft::Body(Body::TimeCredit(signed)),
                    expect: Expect::Anything,
                    effect: Effect::EarnMinutes(r),
                })
            }
            _ => {
                let res = &self.residents[r];
                let serving = if eq == Some(home) { home } else { rng.index(self.ids.len()) };
                let draw = TimeDraw {
                    resident: res.key.public(),
                    minutes: rng.range(1, res.minutes + 30),
                    serving_community: self.ids[serving].clone(),
                    service: "repair".into(),
                    nonce: res.nonce,
                };
                let signed = self.sign(draw, &res.key);
                self.residents[r].nonce += 1;
                Some(Op {
                    node: home,
                    draft: Draft::Body(Body::TimeSpend(signed)),
                    expect: Expect::Anything,
                    effect: Effect::SpendMinutes(r),
                })
            }
        }
    }

    /// Record the node's answer to `op`; an error names a broken invariant.
    pub fn answered(&mut self, op: &Op, result: &Result<Receipt, SubmitError>, home_honest: bool) -> Result<()> {
        let receipt = match (result, &op.expect) {
            (Ok(r), Expect::Refused(why)) => {
                bail!("accepted a request that must be refused ({why}): seq {} {}", r.seq, r.kind)
            }
            (Ok(r), Expect::Duplicate(h)) if !r.duplicate || r.hash != *h => {
                bail!("a resubmitted payment was not answered with its original entry (seq {})", r.seq)
            }
            (Err(e), Expect::Duplicate(_)) if home_honest => {
                bail!("a resubmitted payment was refused instead of answered with its original: {e}")
            }
            (Err(SubmitError::Storage(e)), _) => bail!("storage failure in the simulator: {e}"),
            (Err(_), _) => {
                self.refused += 1;
                return Ok(());
            }
            (Ok(r), _) if r.duplicate => return Ok(()),
            (Ok(r), _) => r,
        };
        self.accepted += 1;
        let body = &receipt.entry.entry.body;
        match (op.effect, body) {
            (Effect::Enrolled(i), _) => self.residents[i].enrolled = true,
            (Effect::Earn(i), Body::Award(a)) => self.residents[i].points += a.points,
            (Effect::Spend(i), Body::Pay(p)) => {
                let res = &mut self.residents[i];
                let points = p.payment.payload.points;
                res.points = res.points.checked_sub(points).ok_or_else(|| {
                    anyhow::anyhow!(
                        "payment of {points} accepted (seq {}) with only {} points earned",
                        receipt.seq,
                        res.points
                    )
                })?;
                res.last_pay = Some((p.payment.clone(), receipt.hash));
                let at = linli_protocol::EntryRef {
                    community: receipt.community.clone(),
                    seq: receipt.seq,
                    hash: receipt.hash,
                };
                self.sales.push(Sale { payment: p.payment.clone(), at });
            }
            (Effect::Spend(i), Body::Redeem(s)) => {
                let res = &mut self.residents[i];
                let points = s.payload.points;
                res.points = res.points.checked_sub(points).ok_or_else(|| {
                    anyhow::anyhow!(
                        "redemption of {points} accepted (seq {}) with only {} points earned",
                        receipt.seq,
                        res.points
                    )
                })?;
            }
            (Effect::EarnMinutes(i), Body::TimeCredit(s)) => self.residents[i].minutes += s.payload.minutes,
            (Effect::SpendMinutes(i), Body::TimeSpend(s)) => {
                let res = &mut self.residents[i];
                res.minutes = res.minutes.checked_sub(s.payload.minutes).ok_or_else(|| {
                    anyhow::anyhow!("draw of {} minutes accepted with only {} earned", s.payload.minutes, res.minutes)
                })?;
            }
            (Effect::None, _) => {}
            (effect, _) => bail!("receipt of kind {} for a request of effect {effect:?}", receipt.kind),
        }
        Ok(())
    }
}
