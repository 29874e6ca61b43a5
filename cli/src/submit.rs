//! `linli submit`: build a resident's (or merchant's) transaction, sign it with the key file
//! (`Signed::sign`, bound to the genesis hash) and submit it to a node over HTTP. The node must
//! belong to the same federation as the genesis file: a key never signs for another one.

use crate::fail::Finding;
use crate::http::{Http, HttpError};
use crate::inspect::parse_key;
use crate::out;
use crate::source;
use crate::wire::{Receipt, Status};
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use linli_node::keyfile;
use linli_protocol::body::{Payment, Redemption, SettlementRequest, Signed, SignedPayload, TimeDraw, TimeService};
use linli_protocol::{CommunityId, Hash, Keypair, FEN_PER_POINT};
use rand_core::RngCore;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct Common {
    /// The signer's key file (0600).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The node to submit to (the payer's home community node).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The federation's genesis file (TOML): signatures are bound to its hash.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Single-use nonce. Default: a random one.
    #[arg(long)]
    pub nonce: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum SubmitCommand {
    /// Pay a merchant with points (the rest of the price in cash).
    Pay {
        #[command(flatten)]
        common: Common,
        /// The merchant's public key.
        #[arg(long, value_name = "KEY")]
        merchant: String,
        /// The merchant's home community.
        #[arg(long, value_name = "C")]
        merchant_community: String,
        /// Points to pay (1 point = 10 fen).
        #[arg(long)]
        points: u64,
        /// The full price in fen; must be at least points x 10.
        #[arg(long)]
        price_fen: u64,
        /// Seconds the signed payment stays valid.
        #[arg(long, default_value_t = 600)]
        valid_for: u64,
        /// Sign only: print the sale request a merchant's till takes (POST /v1/till/sales:
        /// `{"payer_community", "payment"}`, the payer's community being the --url node's)
        /// instead of submitting it. The till submits it and accepts the sale once proven.
        #[arg(long)]
        print: bool,
    },
    /// Spend points on the community's own goods and services.
    Redeem {
        #[command(flatten)]
        common: Common,
        /// Points to spend.
        #[arg(long)]
        points: u64,
        /// What they are spent on.
        #[arg(long)]
        item: String,
    },
    /// Confirm, as the served resident, that PROVIDER served you for MINUTES (time bank).
    TimeCredit {
        #[command(flatten)]
        common: Common,
        /// The provider's public key (a resident of the node's community).
        #[arg(long, value_name = "KEY")]
        provider: String,
        /// Minutes of service received.
        #[arg(long)]
        minutes: u64,
        /// What the service was.
        #[arg(long)]
        service: String,
    },
    /// Draw time-bank minutes for a service received in SERVING_COMMUNITY.
    TimeSpend {
        #[command(flatten)]
        common: Common,
        /// Minutes to draw.
        #[arg(long)]
        minutes: u64,
        /// The community where the service is given.
        #[arg(long, value_name = "C")]
        serving_community: String,
        /// What the service is.
        #[arg(long)]
        service: String,
    },
    /// As a merchant, cash out points of one issuer at exactly 10 fen a point.
    Settle {
        #[command(flatten)]
        common: Common,
        /// The community that issued the points.
        #[arg(long, value_name = "C")]
        issuer: String,
        /// Points to cash out.
        #[arg(long)]
        points: u64,
        /// Default: points x 10 (any other figure is refused by every node).
        #[arg(long)]
        fen: Option<u64>,
    },
}

struct Ctx {
    key: Keypair,
    http: Http,
    genesis_hash: Hash,
    nonce: u64,
}

fn open(c: &Common) -> Result<(Ctx, linli_protocol::Genesis)> {
    let genesis = source::load_genesis(&c.genesis)?;
    let key = keyfile::read_key(&c.key).map_err(|e| anyhow!("{e}"))?;
    let http = Http::new(&c.url)?;
    let status: Status = http.get("/v1/status")?;
    let genesis_hash = genesis.hash();
    if status.genesis_hash != genesis_hash {
        bail!(
            "{} belongs to the federation with genesis hash {}, not {genesis_hash}: refusing to sign for it",
            http.base(),
            status.genesis_hash
        );
    }
    let nonce = c.nonce.unwrap_or_else(|| rand_core::OsRng.next_u64());
    Ok((Ctx { key, http, genesis_hash, nonce }, genesis))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

fn send<T: SignedPayload + Serialize>(ctx: &Ctx, path: &str, payload: T, json_out: bool) -> Result<()> {
    let signed = Signed::sign(payload, &ctx.key, &ctx.genesis_hash);
    signed
        .verify(&ctx.genesis_hash)
        .map_err(|e| anyhow!("the key file's key is not the signer of this transaction: {e}"))?;
    let receipt: Receipt = match ctx.http.post(path, &signed) {
        Ok(r) => r,
        Err(HttpError::Api { status, error, message, .. }) if (400..500).contains(&status) => {
            return Err(Finding(format!("refused by the node ({error}): {message}")).into());
        }
        Err(e) => return Err(e.into()),
    };
    let computed = receipt.entry.hash(&ctx.genesis_hash);
    if computed != receipt.hash {
        return Err(Finding(format!(
            "the node's receipt claims hash {}, but its entry hashes to {computed}",
            receipt.hash
        ))
        .into());
    }
    if json_out {
        return out::json(&receipt);
    }
    let again = if receipt.duplicate { " (already sequenced: the original entry)" } else { "" };
    out::line(&format!(
        "sequenced: community {} seq {} ({}) hash {}{again}",
        receipt.community, receipt.seq, receipt.kind, receipt.hash
    ))?;
    out::line(&format!("  {}", out::describe(&receipt.entry.entry.body)))
}

/// The community of the node at `--url` (the payer's home community).
#[derive(serde::Deserialize)]
struct NodeCommunity {
    community: CommunityId,
}

/// What a merchant's till takes at `POST /v1/till/sales`.
#[derive(Serialize)]
struct SaleRequest {
    payer_community: CommunityId,
    payment: Signed<Payment>,
}

/// Sign a payment and print it as a till's sale request, without submitting it.
fn print_sale(ctx: &Ctx, payment: Payment) -> Result<()> {
    let payer_community = ctx.http.get::<NodeCommunity>("/v1/status")?.community;
    let payment = Signed::sign(payment, &ctx.key, &ctx.genesis_hash);
    payment.verify(&ctx.genesis_hash).map_err(|e| anyhow!("the key file's key is not the payer: {e}"))?;
    out::json(&SaleRequest { payer_community, payment })
}

pub fn run(cmd: &SubmitCommand, json_out: bool) -> Result<()> {
    match cmd {
        SubmitCommand::Pay { common, merchant, merchant_community, points, price_fen, valid_for, print } => {
            let (ctx, genesis) = open(common)?;
            let merchant_community = source::community(&genesis, merchant_community)?;
            if points.saturating_mul(FEN_PER_POINT) > *price_fen {
                bail!(
                    "{points} points are worth {} fen, more than the price of {price_fen} fen",
                    points.saturating_mul(FEN_PER_POINT)
                );
            }
            let payment = Payment {
                payer: ctx.key.public(),
                merchant: parse_key(merchant)?,
                merchant_community,
                points: *points,
                price_fen: *price_fen,
                nonce: ctx.nonce,
                expiry_ms: now_ms().saturating_add(valid_for.saturating_mul(1000)),
                genesis: ctx.genesis_hash,
            };
            if *print {
                return print_sale(&ctx, payment);
            }
            send(&ctx, "/v1/pay", payment, json_out)
        }
        SubmitCommand::Redeem { common, points, item } => {
            let (ctx, _) = open(common)?;
            let r = Redemption { resident: ctx.key.public(), points: *points, item: item.clone(), nonce: ctx.nonce };
            send(&ctx, "/v1/redeem", r, json_out)
        }
        SubmitCommand::TimeCredit { common, provider, minutes, service } => {
            let (ctx, _) = open(common)?;
            let t = TimeService {
                provider: parse_key(provider)?,
                served: ctx.key.public(),
                minutes: *minutes,
                service: service.clone(),
                nonce: ctx.nonce,
            };
            send(&ctx, "/v1/time/credit", t, json_out)
        }
        SubmitCommand::TimeSpend { common, minutes, serving_community, service } => {
            let (ctx, genesis) = open(common)?;
            let t = TimeDraw {
                resident: ctx.key.public(),
                minutes: *minutes,
                serving_community: source::community(&genesis, serving_community)?,
                service: service.clone(),
                nonce: ctx.nonce,
            };
            send(&ctx, "/v1/time/spend", t, json_out)
        }
        SubmitCommand::Settle { common, issuer, points, fen } => {
            let (ctx, genesis) = open(common)?;
            let issuer: CommunityId = source::community(&genesis, issuer)?;
            let r = SettlementRequest {
                merchant: ctx.key.public(),
                issuer,
                points: *points,
                fen: fen.unwrap_or_else(|| points.saturating_mul(FEN_PER_POINT)),
                nonce: ctx.nonce,
            };
            send(&ctx, "/v1/settle", r, json_out)
        }
    }
}
