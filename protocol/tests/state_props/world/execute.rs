//! How the `World` builds the entry of each operation, predicts whether it is accepted and
//! updates the model when it is.

use super::World;
use crate::ops::Op;
use crate::shadow::new_account;
use crate::{C, MAX_MINUTES};
use linli_protocol::body::*;
use linli_protocol::rules::{AwardClaim, RuleTable};
use linli_protocol::state::Role;
use linli_protocol::testkit::key;
use linli_protocol::{Hash, Keypair, PublicKey};
use proptest::prelude::*;

impl World {
    pub(super) fn execute(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let label = op.label();
        match *op {
            Op::Enroll { c, slot, merchant_key } => {
                let c = usize::from(c);
                let k = if merchant_key { self.merchant(c, slot) } else { self.resident(c, slot) }.public();
                let ok = self.model.account(c, &k).is_none();
                let body = Body::Enroll(Enroll { resident: k, profile_hash: Hash([slot; 32]) });
                if self.step(label, c, body, ok)?.is_some() {
                    self.model.accounts.insert((c, k), new_account(Role::Resident));
                }
            }
            Op::Merchant { c, slot, bad_name } => {
                let c = usize::from(c);
                let k = self.merchant(c, slot).public();
                let ok = !bad_name && self.model.account(c, &k).is_none();
                let name = if bad_name { String::new() } else { format!("Shop {slot}") };
                let body = Body::RegisterMerchant(RegisterMerchant { merchant: k, name, category: "food".into() });
                if self.step(label, c, body, ok)?.is_some() {
                    self.model.accounts.insert((c, k), new_account(Role::Merchant));
                }
            }
            Op::Rules { c, bump, council } => {
                let c = usize::from(c);
                let current = self.model.rules.get(&c).map(|r| r.version).unwrap_or(0);
                let version = (current + u32::from(bump)).saturating_sub(1);
                let table = if council { RuleTable::council_table(version) } else { RuleTable::default_table(version) };
                if self.step(label, c, Body::SetRules(table.clone()), version > current)?.is_some() {
                    self.model.rules.insert(c, table);
                }
            }
            Op::Award { c, slot, act, minutes, rating, bonus, wrong, reuse_request } => {
                let c = usize::from(c);
                let r = self.resident(c, slot).public();
                let rules = self.model.rules.get(&c).cloned();
                let (activity, bonuses) = match &rules {
                    Some(t) => {
                        let i = usize::from(act) % (t.activities.len() + 1);
                        match t.activities.get(i) {
                            Some(a) => {
                                let bonuses = match (bonus, a.bonuses.first()) {
                                    (false, _) => vec![],
                                    (true, Some(b)) => vec![b.id.clone()],
                                    (true, None) => vec!["not-a-bonus".to_string()],
                                };
                                (a.id.clone(), bonuses)
                            }
                            None => ("karaoke".to_string(), vec![]),
                        }
                    }
                    None => ("cleanup".to_string(), vec![]),
                };
                let minutes = u64::from(minutes);
                let prior = self.model.account(c, &r).map(|a| a.awards).unwrap_or(0);
                let by_rules = rules.as_ref().map(|t| {
                    t.award_points(&AwardClaim {
                        activity: &activity,
                        minutes,
                        rating,
                        bonuses: &bonuses,
                        prior_awards: prior,
                    })
                });
                let right = match &by_rules {
                    Some(Ok(p)) => *p,
                    _ => 10,
                };
                let reused = if reuse_request {
                    self.model.requests.iter().find(|(cc, _)| *cc == c).map(|(_, n)| *n)
                } else {
                    None
                };
                let request_id = reused.unwrap_or_else(|| {
                    self.next_request += 1;
                    self.next_request
                });
                let ok = wrong == 0
                    && reused.is_none()
                    && matches!(by_rules, Some(Ok(_)))
                    && minutes <= MAX_MINUTES
                    && self.model.active(c, &r, Role::Resident);
                let points = right + u64::from(wrong);
                let body = Body::Award(Award {
                    resident: r,
                    activity,
                    minutes,
                    rating,
                    bonuses,
                    points,
                    rules_version: rules.as_ref().map(|t| t.version).unwrap_or(1),
                    request_id,
                });
                if self.step(label, c, body, ok)?.is_some() {
                    let earns = rating >= rules.as_ref().unwrap().min_rating;
                    let a = self.model.account_mut(c, &r);
                    a.points += points;
                    a.served += minutes;
                    a.awards += u64::from(earns);
                    self.model.requests.insert((c, request_id));
                }
            }
            Op::Redeem { c, slot, points, reuse_nonce, retired } => {
                let c = usize::from(c);
                let old = self.retired.iter().find(|(rc, _)| *rc == c).map(|(_, k)| k.clone());
                let r = match (retired, old) {
                    (true, Some(k)) => k,
                    _ => self.resident(c, slot),
                };
                let (nonce, fresh) = self.nonce(c, &r.public(), reuse_nonce);
                let points = u64::from(points);
                let ok = match (self.model.account(c, &r.public()), self.model.rules.get(&c)) {
                    (Some(a), Some(t)) => {
                        points > 0
                            && fresh
                            && self.model.active(c, &r.public(), Role::Resident)
                            && a.served >= t.min_hours_before_redeem * 60
                            && a.points >= points
                    }
                    _ => false,
                };
                let red = self.sign(Redemption { resident: r.public(), points, item: "rice".into(), nonce }, &r);
                if self.step(label, c, Body::Redeem(red), ok)?.is_some() {
                    self.model.account_mut(c, &r.public()).points -= points;
                    self.model.nonces.insert((c, r.public(), nonce));
                }
            }
            Op::Pay { c, slot, mc, m, points, fit, extra_fen, limit, reuse_nonce, expired } => {
                let c = usize::from(c);
                let mc = usize::from(mc);
                let payer = self.resident(c, slot);
                let merchant = self.merchant(mc, m);
                let (here, creditor) = (self.ids[c].clone(), self.ids[mc].clone());
                let state = self.state();
                let pair_limits = || state.limits.values().filter(|l| l.at.community == creditor && l.issuer == here);
                let cited = if mc != c {
                    match limit % 5 {
                        0 | 1 => state.latest_limit(&creditor, &here).map(|l| l.at.clone()),
                        2 => None,
                        // Another pair's limit.
                        3 => state
                            .limits
                            .values()
                            .find(|l| !(l.at.community == creditor && l.issuer == here))
                            .map(|l| l.at.clone()),
                        // A limit of the pair older than the newest one cited: stale.
                        _ => {
                            let newest_cited = self.model.exposure.get(&(c, mc)).and_then(|x| x.0).unwrap_or(0);
                            pair_limits()
                                .filter(|l| l.at.seq < newest_cited)
                                .max_by_key(|l| l.at.seq)
                                .or_else(|| pair_limits().min_by_key(|l| l.at.seq))
                                .map(|l| l.at.clone())
                        }
                    }
                } else if limit % 5 == 3 {
                    state.limits.values().next().map(|l| l.at.clone())
                } else {
                    None
                };
                let cited_record = cited.as_ref().map(|r| state.limits[&r.hash].clone());
                let (limit_seq, paid, cleared) = self.model.exposure.get(&(c, mc)).copied().unwrap_or_default();
                let uncleared = paid - cleared;
                // `fit` 1 and 2: exactly the room left under the cited limit, and one more point.
                let points = match (fit, &cited_record) {
                    (1 | 2, Some(l)) if mc != c => (l.limit_fen / 10).saturating_sub(uncleared) + u64::from(fit) - 1,
                    _ => u64::from(points),
                };
                let price_fen = u64::try_from((points as i64 * 10 + i64::from(extra_fen)).max(0)).unwrap();
                let (nonce, fresh) = self.nonce(c, &payer.public(), reuse_nonce);
                let mut p = self.f.payment(&payer, &merchant, C[mc], points, price_fen, nonce);
                if expired {
                    p.expiry_ms = 1;
                }
                let limit_ok = if mc == c {
                    cited.is_none()
                } else {
                    match (&cited, &cited_record) {
                        (Some(r), Some(l)) => {
                            l.at.community == creditor
                                && l.issuer == here
                                && limit_seq.is_none_or(|s| r.seq >= s)
                                && (uncleared + points) * 10 <= l.limit_fen
                        }
                        _ => false,
                    }
                };
                let ok = points > 0
                    && points * 10 <= price_fen
                    && !expired
                    && fresh
                    && limit_ok
                    && self.model.active(c, &payer.public(), Role::Resident)
                    && self.model.account(c, &payer.public()).is_some_and(|a| a.points >= points);
                let payment = self.sign(p, &payer);
                let body = Body::Pay(PayEntry { payment, exposure_limit: cited.clone() });
                if self.step(label, c, body, ok)?.is_some() {
                    self.model.account_mut(c, &payer.public()).points -= points;
                    self.model.nonces.insert((c, payer.public(), nonce));
                    if mc != c {
                        let x = self.model.exposure.entry((c, mc)).or_default();
                        x.0 = cited.map(|r| r.seq);
                        x.1 += points;
                    }
                }
            }
            Op::Credit { pick, uncredited, wrong } => {
                let all = self.state().pays.values();
                let open: Vec<_> = all.clone().filter(|p| !self.model.credited.contains(&p.at.hash)).cloned().collect();
                let pays = if uncredited && !open.is_empty() { open } else { all.cloned().collect() };
                if pays.is_empty() {
                    return self.skip();
                }
                let rec = pick.get(&pays).clone();
                let home = self.index(&rec.merchant_community);
                let issuer = self.index(&rec.at.community);
                // The merchant's key now, following replacements.
                let mut merchant = rec.merchant;
                while let Some(next) = self.replacement(home, &merchant) {
                    merchant = next;
                }
                let ok = wrong == 0
                    && !self.model.credited.contains(&rec.at.hash)
                    && self.model.active(home, &merchant, Role::Merchant);
                let mut credit =
                    Credit { source: rec.at.clone(), merchant, issuer: rec.at.community.clone(), points: rec.points };
                let mut at = home;
                match wrong {
                    1 => credit.points += 1,
                    2 => credit.merchant = key("mallory").public(),
                    3 => credit.issuer = self.ids[(issuer + 1) % 3].clone(),
                    4 => at = (home + 1) % 3,
                    _ => {}
                }
                if self.step(label, at, Body::Credit(credit), ok)?.is_some() {
                    self.model.credited.insert(rec.at.hash);
                    *self.model.holding_mut(home, &merchant, issuer) += rec.points;
                }
            }
            Op::Settle { held, c, m, issuer, portion, wrong_fen, wrong_total, reuse_nonce } => {
                // Mostly a merchant with points to settle, else any merchant slot and issuer.
                let holders: Vec<(usize, Keypair, usize)> = self
                    .model
                    .holdings
                    .iter()
                    .filter(|(_, p)| **p > 0)
                    .filter_map(|((hc, k, i), _)| {
                        let pair = self.merchants[*hc].iter().find(|m| &m.public() == k)?.clone();
                        Some((*hc, pair, *i))
                    })
                    .collect();
                let (c, merchant, issuer) = match held {
                    Some(pick) if !holders.is_empty() => pick.get(&holders).clone(),
                    _ => (usize::from(c), self.merchant(usize::from(c), m), usize::from(issuer)),
                };
                let held = self.model.holding(c, &merchant.public(), issuer);
                let points = match portion {
                    0 | 5 => held,
                    1 => held / 2,
                    2 => 1,
                    3 => held + 1,
                    _ => 0,
                };
                let (nonce, fresh) = self.nonce(c, &merchant.public(), reuse_nonce);
                let before = self.model.settled_by.get(&(c, issuer)).copied().unwrap_or(0);
                let ok = points > 0
                    && points <= held
                    && fresh
                    && !wrong_fen
                    && !wrong_total
                    && self.model.active(c, &merchant.public(), Role::Merchant);
                let request = self.sign(
                    SettlementRequest {
                        merchant: merchant.public(),
                        issuer: self.ids[issuer].clone(),
                        points,
                        fen: points * 10 + u64::from(wrong_fen),
                        nonce,
                    },
                    &merchant,
                );
                let body =
                    Body::Settle(SettleEntry { request, settled_total: before + points + u64::from(wrong_total) });
                if self.step(label, c, body, ok)?.is_some() {
                    *self.model.holding_mut(c, &merchant.public(), issuer) -= points;
                    *self.model.settled_by.entry((c, issuer)).or_default() += points;
                    self.model.nonces.insert((c, merchant.public(), nonce));
                }
            }
            Op::Clearing { c, other, cite, wrong } => {
                let c = usize::from(c);
                let o = if wrong == 5 { c } else { (c + 1 + usize::from(other % 2)) % 3 };
                let (here, other) = (self.ids[c].clone(), self.ids[o].clone());
                let (prev_here, prev_there) = self.model.clearings.get(&(c, o)).copied().unwrap_or_default();
                let settled_here = self.model.settled_by.get(&(c, o)).copied().unwrap_or(0);
                let state = self.state();
                let cited = match cite {
                    0 => state
                        .settles
                        .values()
                        .filter(|s| s.at.community == other && s.issuer == here)
                        .max_by_key(|s| s.settled_total),
                    1 => None,
                    _ => state.settles.values().next(),
                };
                let settled_there = cited.map(|s| s.settled_total).unwrap_or(prev_there);
                let cite_ok =
                    cited.is_none_or(|s| s.at.community == other && s.issuer == here) && settled_there >= prev_there;
                let mut body = Clearing {
                    counterparty: other,
                    settled_here_total: settled_here,
                    settled_there_total: settled_there,
                    settled_there_ref: cited.map(|s| s.at.clone()),
                    receivable_fen: (settled_here - prev_here) * 10,
                    payable_fen: settled_there.saturating_sub(prev_there) * 10,
                };
                match wrong {
                    1 => body.receivable_fen += 10,
                    2 => body.payable_fen += 10,
                    3 => body.settled_here_total += 1,
                    4 => body.settled_there_total += 1,
                    _ => {}
                }
                if self.step(label, c, Body::Clearing(body), wrong == 0 && cite_ok)?.is_some() {
                    self.model.clearings.insert((c, o), (settled_here, settled_there));
                    self.model.exposure.entry((c, o)).or_default().2 = settled_there;
                }
            }
            Op::Limit { c, issuer, fen, twice } => {
                let c = usize::from(c);
                let issuer = (c + usize::from(issuer)) % 3;
                for round in 0..=u16::from(twice) {
                    let limit_fen = u64::from(fen + round * 50) * 10;
                    let body = Body::SetExposureLimit(ExposureLimit { issuer: self.ids[issuer].clone(), limit_fen });
                    self.step(label, c, body, issuer != c)?;
                }
            }
            Op::TimeCredit { c, provider, sc, served, minutes, reuse_nonce } => {
                let c = usize::from(c);
                let provider = self.resident(c, provider).public();
                let served = self.resident(usize::from(sc), served);
                let minutes = u64::from(minutes);
                let (nonce, fresh) = self.nonce(c, &served.public(), reuse_nonce);
                let ok = (1..=MAX_MINUTES).contains(&minutes)
                    && provider != served.public()
                    && fresh
                    && self.model.active(c, &provider, Role::Resident)
                    && self.model.active(c, &served.public(), Role::Resident);
                let svc = self.sign(
                    TimeService { provider, served: served.public(), minutes, service: "tutoring".into(), nonce },
                    &served,
                );
                if self.step(label, c, Body::TimeCredit(svc), ok)?.is_some() {
                    self.model.account_mut(c, &provider).minutes += minutes;
                    self.model.nonces.insert((c, served.public(), nonce));
                }
            }
            Op::TimeSpend { c, slot, serving, minutes, reuse_nonce } => {
                let c = usize::from(c);
                let r = self.resident(c, slot);
                let minutes = u64::from(minutes);
                let (nonce, fresh) = self.nonce(c, &r.public(), reuse_nonce);
                let ok = minutes >= 1
                    && fresh
                    && self.model.active(c, &r.public(), Role::Resident)
                    && self.model.account(c, &r.public()).is_some_and(|a| a.minutes >= minutes);
                let draw = self.sign(
                    TimeDraw {
                        resident: r.public(),
                        minutes,
                        serving_community: self.ids[usize::from(serving)].clone(),
                        service: "repair".into(),
                        nonce,
                    },
                    &r,
                );
                if self.step(label, c, Body::TimeSpend(draw), ok)?.is_some() {
                    self.model.account_mut(c, &r.public()).minutes -= minutes;
                    self.model.nonces.insert((c, r.public(), nonce));
                }
            }
            Op::TimeFulfil { pick, unfulfilled, wrong } => {
                let all = self.state().draws.values();
                let open: Vec<_> =
                    all.clone().filter(|d| !self.model.fulfilled.contains(&d.at.hash)).cloned().collect();
                let draws = if unfulfilled && !open.is_empty() { open } else { all.cloned().collect() };
                if draws.is_empty() {
                    return self.skip();
                }
                let rec = pick.get(&draws).clone();
                let mut at = self.index(&rec.serving_community);
                let mut minutes = rec.minutes;
                match wrong {
                    1 => minutes += 1,
                    2 => at = (at + 1) % 3,
                    _ => {}
                }
                let ok = wrong == 0 && !self.model.fulfilled.contains(&rec.at.hash);
                let body = Body::TimeFulfil(TimeFulfil { source: rec.at.clone(), minutes });
                if self.step(label, at, body, ok)?.is_some() {
                    self.model.fulfilled.insert(rec.at.hash);
                }
            }
            Op::Replace { c, merchant, slot, to_existing } => {
                let c = usize::from(c);
                let old = if merchant { self.merchant(c, slot) } else { self.resident(c, slot) }.public();
                let existing = self.model.accounts.keys().find(|(cc, k)| *cc == c && k != &old).map(|(_, k)| *k);
                let (new_key, new_pair) = match (to_existing, existing) {
                    (true, Some(k)) => (k, None),
                    _ => {
                        let label = format!("{}/{}-{slot}", C[c], if merchant { "merchant" } else { "resident" });
                        let k = self.fresh_key(&label);
                        (k.public(), Some(k))
                    }
                };
                let ok = self.model.account(c, &old).is_some_and(|a| !a.replaced)
                    && self.model.account(c, &new_key).is_none();
                let body = Body::ReplaceKey(ReplaceKey { old_key: old, new_key });
                if self.step(label, c, body, ok)?.is_some() {
                    let moved = self.model.account(c, &old).cloned().unwrap();
                    self.model.accounts.insert((c, new_key), moved);
                    let a = self.model.account_mut(c, &old);
                    (a.replaced, a.points, a.minutes) = (true, 0, 0);
                    self.model.replaced_by.insert((c, old), new_key);
                    let held: Vec<(usize, u64)> = self
                        .model
                        .holdings
                        .iter()
                        .filter(|((hc, k, _), _)| *hc == c && k == &old)
                        .map(|((_, _, i), p)| (*i, *p))
                        .collect();
                    for (issuer, p) in held {
                        *self.model.holding_mut(c, &old, issuer) = 0;
                        *self.model.holding_mut(c, &new_key, issuer) += p;
                    }
                    let slots = if merchant { &mut self.merchants[c] } else { &mut self.residents[c] };
                    let i = usize::from(slot) % slots.len();
                    self.retired.push((c, std::mem::replace(&mut slots[i], new_pair.unwrap())));
                }
            }
            Op::Rotate { c, reuse } => {
                let c = usize::from(c);
                let id = self.ids[c].clone();
                let retired = self.old_signing[c].first().cloned();
                let (new, fresh) = match (reuse, retired) {
                    (1, _) | (3, None) => (self.f.keys[&id].clone(), false),
                    (2, _) => (self.f.recovery[&id].clone(), false),
                    (3, Some(k)) => (k, false),
                    _ => (self.fresh_key(&format!("{}/signing", C[c])), true),
                };
                let seq = self.state().ledgers[&id].next_seq;
                let sig = new.sign("rotate-key", &self.f.genesis_hash, &rotation_message(&id, seq));
                let body = Body::RotateKey(RotateKey { new_key: new.public(), new_key_signature: sig });
                if self.step(label, c, body, fresh)?.is_some() {
                    let old = self.f.keys.insert(id, new).unwrap();
                    self.old_signing[c].push(old);
                }
            }
            Op::Revoke { c } => {
                let c = usize::from(c);
                let id = self.ids[c].clone();
                let new = self.fresh_key(&format!("{}/signing", C[c]));
                let seq = self.state().ledgers[&id].next_seq;
                let sig = new.sign("rotate-key", &self.f.genesis_hash, &rotation_message(&id, seq));
                let revoked_key = self.f.keys[&id].public();
                let body = Body::RevokeKey(RevokeKey { revoked_key, new_key: new.public(), new_key_signature: sig });
                if self.step(label, c, body, true)?.is_some() {
                    let old = self.f.keys.insert(id, new).unwrap();
                    self.old_signing[c].push(old);
                }
            }
        }
        Ok(())
    }

    /// The key that replaced `k`, per the model.
    fn replacement(&self, c: usize, k: &PublicKey) -> Option<PublicKey> {
        self.model.replaced_by.get(&(c, *k)).copied()
    }
}
