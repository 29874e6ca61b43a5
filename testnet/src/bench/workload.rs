//! The benchmark's ledger: one community's valid ledger of any length, in the mix of a
//! community's daily work, produced by the protocol's test federation
//! ([`linli_protocol::testkit`]) and streamed in chunks so a million entries never sit in memory.
//!
//! After the set-up (rule table, a merchant, `residents` enrolments) it repeats, for one
//! resident after another: an award (cleanup, 60 minutes), a second award, a payment of 10
//! points at the community's merchant (resident-signed), the merchant's credit for it, and a
//! redemption of 5 points (resident-signed). That is 7 signatures per 5 entries (1.4 per entry).

use linli_protocol::body::{Award, Body, Credit, Enroll, PayEntry, Redemption, RegisterMerchant};
use linli_protocol::rules::RuleTable;
use linli_protocol::testkit::{cid, key, ChainWriter, TestFederation};
use linli_protocol::{EntryRef, Genesis, Hash, Keypair, SignedEntry};

/// Signatures per entry in the steady-state mix (awards 1, pay 2, credit 1, redeem 2).
pub const SIGNATURES_PER_ENTRY: f64 = 7.0 / 5.0;

/// Produces the entries of one community's ledger, in order.
pub struct Workload {
    f: TestFederation,
    chain: ChainWriter,
    residents: Vec<Keypair>,
    awards: Vec<u32>,
    merchant: Keypair,
    /// Entries produced so far.
    produced: u64,
    setup: Vec<Body>,
    round: u64,
    nonce: u64,
    last_pay: Option<EntryRef>,
}

impl Workload {
    /// The ledger of `community` in the federation of `genesis` (whose keys are the testkit's
    /// labelled keys), with `residents` enrolled residents. Entry times start `back_ms` before
    /// now, so a live node's clock-skew rule accepts them.
    pub fn new(genesis: Genesis, community: &str, residents: usize, back_ms: u64) -> Workload {
        let mut f = TestFederation::with_genesis(genesis);
        f.time_ms = now_ms().saturating_sub(back_ms);
        let chain = f.chain(community);
        let residents: Vec<Keypair> = (0..residents).map(|i| key(&format!("{community}/bench-r{i}"))).collect();
        let merchant = key(&format!("{community}/bench-shop"));
        let mut setup = vec![
            Body::SetRules(RuleTable::default_table(1)),
            Body::RegisterMerchant(RegisterMerchant {
                merchant: merchant.public(),
                name: "bench shop".into(),
                category: "grocery".into(),
            }),
        ];
        setup.extend(
            residents.iter().map(|r| Body::Enroll(Enroll { resident: r.public(), profile_hash: Hash([7; 32]) })),
        );
        setup.reverse();
        let awards = vec![0; residents.len()];
        Workload { f, chain, residents, awards, merchant, produced: 0, setup, round: 0, nonce: 0, last_pay: None }
    }

    pub fn genesis_hash(&self) -> Hash {
        self.f.genesis_hash
    }

    /// The next `n` entries.
    pub fn take(&mut self, n: usize) -> Vec<SignedEntry> {
        (0..n).map(|_| self.next_entry()).collect()
    }

    fn next_entry(&mut self) -> SignedEntry {
        self.produced += 1;
        if let Some(body) = self.setup.pop() {
            return self.chain.next(body);
        }
        let step = self.round % 5;
        let who = ((self.round / 5) % self.residents.len() as u64) as usize;
        self.round += 1;
        let resident = self.residents[who].clone();
        let body = match step {
            0 | 1 => {
                let prior = self.awards[who];
                self.awards[who] += 1;
                Body::Award(Award {
                    resident: resident.public(),
                    activity: "cleanup".into(),
                    minutes: 60,
                    rating: 5,
                    bonuses: vec![],
                    points: if prior < 3 { 40 } else { 20 },
                    rules_version: 1,
                    request_id: self.round,
                })
            }
            2 => {
                self.nonce += 1;
                let mut payment =
                    self.f.payment(&resident, &self.merchant, self.chain.community.as_str(), 10, 150, self.nonce);
                payment.expiry_ms = self.chain.time_ms + 3_600_000;
                let payment = self.f.sign(payment, &resident);
                Body::Pay(PayEntry { payment, exposure_limit: None })
            }
            3 => {
                let source = self.last_pay.clone().unwrap_or(EntryRef {
                    community: self.chain.community.clone(),
                    seq: 0,
                    hash: Hash::ZERO,
                });
                Body::Credit(Credit {
                    source,
                    merchant: self.merchant.public(),
                    issuer: self.chain.community.clone(),
                    points: 10,
                })
            }
            _ => {
                self.nonce += 1;
                let r = Redemption { resident: resident.public(), points: 5, item: "rice".into(), nonce: self.nonce };
                Body::Redeem(self.f.sign(r, &resident))
            }
        };
        let e = self.chain.next(body);
        if step == 2 {
            self.last_pay = Some(e.entry_ref(&self.f.genesis_hash));
        }
        e
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The community id `c` (for callers holding a `&str`).
pub fn community(c: &str) -> linli_protocol::CommunityId {
    cid(c)
}
