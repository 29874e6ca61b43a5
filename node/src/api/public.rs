//! Public read-only calls: ledger ranges, entries by hash, account balances, checkpoints,
//! inclusion and consistency proofs, federation status. Reads go straight to the store (off the
//! async threads); they see only durably committed data.

use super::{blocking, ApiError, ApiPath, ApiQuery, AppState};
use axum::extract::State;
use axum::Json;
use linli_protocol::checkpoint::CosignedCheckpoint;
use linli_protocol::merkle::{self, ConsistencyProof, InclusionProof};
use linli_protocol::state::{Account, LedgerState, Role};
use linli_protocol::{Change, CommunityId, Hash, PublicKey, SignedEntry, StateKey, FEN_PER_POINT};
use serde::{Deserialize, Serialize};

/// Most entries one range request returns.
pub const MAX_RANGE: usize = 1000;
/// Most bytes of entries one range request returns.
pub const MAX_RANGE_BYTES: usize = 1024 * 1024;

fn community(s: &AppState, id: &str) -> Result<CommunityId, ApiError> {
    let c = CommunityId::new(id).map_err(|e| ApiError::bad_request("bad-community", e.to_string()))?;
    if s.genesis.community(&c).is_none() {
        return Err(ApiError::not_found(format!("community {c} is not in the genesis")));
    }
    Ok(c)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RangeQuery {
    /// First seq (default 0).
    #[serde(default)]
    pub from: u64,
    /// Most entries (default and maximum 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct EntryView {
    pub hash: Hash,
    pub kind: &'static str,
    #[serde(flatten)]
    pub entry: SignedEntry,
}

#[utoipa::path(get, path = "/v1/ledgers/{community}/entries", params(("community" = String, Path), RangeQuery),
    responses((status = 200, description = "Consecutive entries from `from`"), (status = 404, body = ApiError)))]
pub async fn entries(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Json<Vec<EntryView>>, ApiError> {
    let c = community(&s, &id)?;
    let limit = q.limit.unwrap_or(MAX_RANGE).clamp(1, MAX_RANGE);
    let gh = s.genesis_hash;
    let store = s.store.clone();
    let list = blocking(move || Ok(store.entries(&c, q.from, limit, MAX_RANGE_BYTES)?)).await?;
    Ok(Json(list.into_iter().map(|e| EntryView { hash: e.hash(&gh), kind: e.entry.body.kind(), entry: e }).collect()))
}

#[utoipa::path(get, path = "/v1/entries/{hash}", params(("hash" = String, Path)),
    responses((status = 200, description = "The entry"), (status = 404, body = ApiError)))]
pub async fn entry_by_hash(
    State(s): State<AppState>,
    ApiPath(hash): ApiPath<String>,
) -> Result<Json<EntryView>, ApiError> {
    let h = Hash::from_hex(&hash).map_err(|e| ApiError::bad_request("bad-hash", format!("hash: {e}")))?;
    let store = s.store.clone();
    // A ledger entry, or an equivocator's entry this node holds as evidence for a citation.
    let e = blocking(move || Ok(store.entry_by_hash(&h)?.or(store.evidence_entry(&h)?)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no entry {h}")))?;
    Ok(Json(EntryView { hash: h, kind: e.entry.body.kind(), entry: e }))
}

#[derive(Debug, Serialize)]
pub struct HoldingView {
    pub issuer: CommunityId,
    pub points: u64,
    pub value_fen: u64,
}

#[derive(Debug, Serialize)]
pub struct AccountView {
    pub community: CommunityId,
    pub key: PublicKey,
    pub role: Role,
    pub points: u64,
    /// Value of the points in fen (1 point = 10 fen).
    pub points_value_fen: u64,
    pub minutes: u64,
    pub served_minutes: u64,
    pub awards: u64,
    pub lifetime_points: u64,
    pub star_level: usize,
    pub replaced_by: Option<PublicKey>,
    /// For merchants: points held per issuing community.
    pub holdings: Vec<HoldingView>,
}

#[utoipa::path(get, path = "/v1/accounts/{community}/{key}", params(("community" = String, Path), ("key" = String, Path)),
    responses((status = 200, description = "Balances of an account"), (status = 404, body = ApiError)))]
pub async fn account(
    State(s): State<AppState>,
    ApiPath((id, key)): ApiPath<(String, String)>,
) -> Result<Json<AccountView>, ApiError> {
    let c = community(&s, &id)?;
    let k = PublicKey::from_hex(&key).map_err(|e| ApiError::bad_request("bad-key", format!("key: {e}")))?;
    let store = s.store.clone();
    let issuers: Vec<CommunityId> = s.genesis.communities.iter().map(|x| x.id.clone()).collect();
    blocking(move || {
        let account: Account = match store.state_item(&StateKey::Account(c.clone(), k))? {
            Some(Change::Account(_, _, a)) => a,
            _ => return Err(ApiError::not_found(format!("no account {k} in {c}"))),
        };
        let rules = match store.state_item(&StateKey::Ledger(c.clone()))? {
            Some(Change::Ledger(_, l)) => l.rules.as_deref().cloned(),
            _ => None,
        };
        let mut holdings = Vec::new();
        if account.role == Role::Merchant {
            for issuer in issuers {
                if let Some(Change::Holding(_, _, _, p)) =
                    store.state_item(&StateKey::Holding(c.clone(), k, issuer.clone()))?
                {
                    if p > 0 {
                        holdings.push(HoldingView { issuer, points: p, value_fen: p.saturating_mul(FEN_PER_POINT) });
                    }
                }
            }
        }
        Ok(Json(AccountView {
            community: c,
            key: k,
            role: account.role,
            points: account.points,
            points_value_fen: account.points.saturating_mul(FEN_PER_POINT),
            minutes: account.minutes,
            served_minutes: account.served_minutes,
            awards: account.awards,
            lifetime_points: account.lifetime_points,
            star_level: rules.map(|r| r.star_level(account.lifetime_points)).unwrap_or(0),
            replaced_by: account.replaced_by,
            holdings,
        }))
    })
    .await
}

#[utoipa::path(get, path = "/v1/ledgers/{community}/checkpoint", params(("community" = String, Path)),
    responses((status = 200, description = "The latest checkpoint with its cosignatures"), (status = 404, body = ApiError)))]
pub async fn checkpoint(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CosignedCheckpoint>, ApiError> {
    let c = community(&s, &id)?;
    let store = s.store.clone();
    let cp = blocking(move || Ok(store.latest_checkpoint(&c)?)).await?;
    cp.map(Json).ok_or_else(|| ApiError::not_found(format!("no checkpoint of {id} yet")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InclusionQuery {
    pub seq: u64,
    /// Tree size (a checkpoint's size); default: the current ledger size.
    pub size: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct InclusionView {
    pub entry_hash: Hash,
    pub root: Hash,
    pub proof: InclusionProof,
}

#[utoipa::path(get, path = "/v1/ledgers/{community}/proofs/inclusion", params(("community" = String, Path), InclusionQuery),
    responses((status = 200, description = "Inclusion proof of entry `seq` in the tree of `size` entries"), (status = 400, body = ApiError)))]
pub async fn inclusion_proof(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionView>, ApiError> {
    let c = community(&s, &id)?;
    let store = s.store.clone();
    blocking(move || {
        let (len, _) = store.head(&c)?;
        let size = q.size.unwrap_or(len);
        let leaves = store.leaves(&c);
        let proof = merkle::prove_inclusion_from(&leaves, q.seq, size)
            .map_err(|e| ApiError::bad_request("bad-proof-request", e.to_string()))?;
        let root =
            merkle::root_from(&leaves, size).map_err(|e| ApiError::bad_request("bad-proof-request", e.to_string()))?;
        let entry_hash =
            merkle::LeafSource::leaf(&leaves, q.seq).ok_or_else(|| ApiError::not_found("no such entry"))?;
        Ok(Json(InclusionView { entry_hash, root, proof }))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ConsistencyQuery {
    pub old: u64,
    pub new: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ConsistencyView {
    pub old_root: Hash,
    pub new_root: Hash,
    pub proof: ConsistencyProof,
}

#[utoipa::path(get, path = "/v1/ledgers/{community}/proofs/consistency", params(("community" = String, Path), ConsistencyQuery),
    responses((status = 200, description = "Consistency proof between two tree sizes"), (status = 400, body = ApiError)))]
pub async fn consistency_proof(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyView>, ApiError> {
    let c = community(&s, &id)?;
    let store = s.store.clone();
    blocking(move || {
        let (len, _) = store.head(&c)?;
        let new = q.new.unwrap_or(len);
        let leaves = store.leaves(&c);
        let bad = |e: merkle::MerkleError| ApiError::bad_request("bad-proof-request", e.to_string());
        let proof = merkle::prove_consistency_from(&leaves, q.old, new).map_err(bad)?;
        Ok(Json(ConsistencyView {
            old_root: merkle::root_from(&leaves, q.old).map_err(bad)?,
            new_root: merkle::root_from(&leaves, new).map_err(bad)?,
            proof,
        }))
    })
    .await
}

#[derive(Debug, Serialize)]
pub struct LedgerStatus {
    pub community: CommunityId,
    pub name: String,
    pub district: String,
    pub size: u64,
    pub head: Hash,
    pub faulty: bool,
    pub rules_version: Option<u32>,
    pub latest_checkpoint_size: Option<u64>,
    pub latest_checkpoint_root: Option<Hash>,
    pub latest_checkpoint_cosigners: usize,
}

#[derive(Debug, Serialize)]
pub struct FederationStatus {
    pub community: CommunityId,
    pub federation: String,
    pub genesis_hash: Hash,
    pub fen_per_point: u64,
    pub ledgers: Vec<LedgerStatus>,
    /// Verified equivocation proofs this node holds (the accused communities are quarantined).
    pub alerts: Vec<AlertView>,
    /// This node's libp2p peer id (new at every start), when networking is configured.
    pub peer_id: Option<String>,
    /// libp2p peers connected now.
    pub connected_peers: u64,
}

#[derive(Debug, Serialize)]
pub struct AlertView {
    pub community: CommunityId,
    /// The seq (conflicting entries) or size (conflicting checkpoints).
    pub position: u64,
    /// The canonical bytes of the proof, hex; anyone can verify it with the genesis.
    pub proof: String,
}

#[utoipa::path(get, path = "/v1/status", responses((status = 200, description = "Federation status: every ledger's head and checkpoint")))]
pub async fn status(State(s): State<AppState>) -> Result<Json<FederationStatus>, ApiError> {
    let store = s.store.clone();
    let genesis = s.genesis.clone();
    let me = s.community.clone();
    let gh = s.genesis_hash;
    let peer_id = s.network.as_ref().map(|n| n.peer_id.to_string());
    let connected_peers = s.metrics.peers();
    blocking(move || {
        let mut ledgers = Vec::new();
        for c in &genesis.communities {
            let ledger: Option<LedgerState> = match store.state_item(&StateKey::Ledger(c.id.clone()))? {
                Some(Change::Ledger(_, l)) => Some(l),
                _ => None,
            };
            let cp = store.latest_checkpoint(&c.id)?;
            ledgers.push(LedgerStatus {
                community: c.id.clone(),
                name: c.name.clone(),
                district: c.district.clone(),
                size: ledger.as_ref().map(|l| l.next_seq).unwrap_or(0),
                head: ledger.as_ref().map(|l| l.head).unwrap_or(Hash::ZERO),
                faulty: ledger.as_ref().map(|l| l.faulty).unwrap_or(false),
                rules_version: ledger.as_ref().and_then(|l| l.rules.as_ref().map(|r| r.version)),
                latest_checkpoint_size: cp.as_ref().map(|c| c.signed.checkpoint.size),
                latest_checkpoint_root: cp.as_ref().map(|c| c.signed.checkpoint.root),
                latest_checkpoint_cosigners: cp.as_ref().map(|c| c.cosignatures.len()).unwrap_or(0),
            });
        }
        let alerts = store
            .alerts()?
            .into_iter()
            .map(|p| AlertView {
                community: p.community().clone(),
                position: p.position(),
                proof: hex::encode(p.to_bytes()),
            })
            .collect();
        Ok(Json(FederationStatus {
            community: me,
            federation: genesis.federation.clone(),
            genesis_hash: gh,
            fen_per_point: genesis.fen_per_point,
            ledgers,
            alerts,
            peer_id,
            connected_peers,
        }))
    })
    .await
}
