//! `/v1/audit`: the signed checkpoint, the public keys, proofs, and the raw records and stored
//! checkpoints that let anyone replay and verify the log (`dgc audit verify --url`).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use dgc_store::AgentFilter;
use dgc_types::{ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;

/// Most records or checkpoints one page returns.
const MAX_PAGE: u32 = 10_000;

/// The current tree head as a C2SP signed note (tlog-checkpoint), signed by the instance key.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", security(("bearer" = [])),
    responses((status = 200, content_type = "text/plain; charset=utf-8", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn checkpoint(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Response> {
    principal.require("audit.read")?;
    let cp = state.store().audit_checkpoint().await?;
    state.witnesses().publish(&cp.note);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note,
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditKeys {
    /// The instance key first, then one key per agent.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<dgc_audit::KeyInfo>,
}

/// Public keys that sign records, checkpoints and attestations: `{name, key_id, algorithm,
/// public_key, vkey}` for the instance and every agent visible to the caller.
#[utoipa::path(get, path = "/v1/audit/keys", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditKeys), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn keys(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<AuditKeys>> {
    principal.require("audit.read")?;
    let audit = &state.instance().audit;
    let mut keys = vec![audit.signer.verifier().describe()];
    let filter = AgentFilter {
        ids: principal.agent_ids.as_ref().map(|a| a.as_ref().clone()),
        skill: None,
    };
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store()
            .list_agents(&filter, after.as_deref(), 500)
            .await?;
        keys.extend(
            page.items
                .iter()
                .filter_map(|a| audit.agent_verifier(a))
                .map(|v| v.describe()),
        );
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    Ok(Json(AuditKeys { keys }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// Older tree size (at least 1).
    pub from: u64,
    /// Newer tree size (at most the current size).
    pub to: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// Base64 SHA-256 node hashes (RFC 6962 §2.1.2).
    pub proof: Vec<String>,
}

/// A consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit", params(ConsistencyParams),
    security(("bearer" = [])),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn consistency(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(p): ApiQuery<ConsistencyParams>,
) -> ApiResult<Json<ConsistencyProof>> {
    principal.require("audit.read")?;
    let size = state.store().audit_size().await?;
    if p.from == 0 || p.from > p.to || p.to > size {
        return Err(ApiError::bad_request(format!(
            "need 1 <= from <= to <= {size} (the current tree size); got from={} to={}",
            p.from, p.to
        )));
    }
    let proof = state.store().audit_consistency_proof(p.from, p.to).await?;
    Ok(Json(ConsistencyProof {
        from: p.from,
        to: p.to,
        proof: proof.iter().map(|h| B64.encode(h.0)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    /// Record index.
    pub index: u64,
    /// Tree size the proof is for (default: the current size).
    pub size: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Base64 SHA-256 of the record's leaf (`SHA-256(0x00 ‖ record)`).
    pub leaf_hash: String,
    pub proof: Vec<String>,
}

/// An inclusion proof for one record.
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit", params(InclusionParams),
    security(("bearer" = [])),
    responses((status = 200, body = InclusionProof), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn inclusion(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(p): ApiQuery<InclusionParams>,
) -> ApiResult<Json<InclusionProof>> {
    principal.require("audit.read")?;
    let current = state.store().audit_size().await?;
    let size = p.size.unwrap_or(current);
    if size > current || p.index >= size {
        return Err(ApiError::bad_request(format!(
            "need index < size <= {current} (the current tree size); got index={} size={size}",
            p.index
        )));
    }
    let record = state.store().audit_records(p.index, 1).await?;
    let bytes = record
        .first()
        .map(|r| r.1.clone())
        .ok_or_else(|| ApiError::not_found("record"))?;
    let proof = state.store().audit_inclusion_proof(p.index, size).await?;
    Ok(Json(InclusionProof {
        index: p.index,
        size,
        leaf_hash: B64.encode(dgc_audit::hash::leaf_hash(&bytes).0),
        proof: proof.iter().map(|h| B64.encode(h.0)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// First index (default 0).
    pub from: Option<u64>,
    /// Page size, 1–10000 (default 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordOut {
    pub index: u64,
    /// Base64 of the record's canonical bytes (a signed DSSE envelope, see docs/audit.md).
    pub record: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecords {
    /// The log size when this page was read.
    pub size: u64,
    pub records: Vec<AuditRecordOut>,
}

/// Raw records, in index order, for independent replay and verification.
#[utoipa::path(get, path = "/v1/audit/records", tag = "audit", params(RecordsParams), security(("bearer" = [])),
    responses((status = 200, body = AuditRecords), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn records(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(p): ApiQuery<RecordsParams>,
) -> ApiResult<Json<AuditRecords>> {
    principal.require("audit.read")?;
    let limit = p.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let size = state.store().audit_size().await?;
    let rows = state
        .store()
        .audit_records(p.from.unwrap_or(0), limit)
        .await?;
    Ok(Json(AuditRecords {
        size,
        records: rows
            .into_iter()
            .map(|(index, b)| AuditRecordOut {
                index,
                record: B64.encode(b),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsParams {
    /// Only checkpoints for tree sizes greater than this.
    pub after: Option<u64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoredCheckpointOut {
    pub size: u64,
    /// The signed note, as served by `/v1/audit/checkpoint` at the time.
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditCheckpoints {
    pub checkpoints: Vec<StoredCheckpointOut>,
}

/// Every checkpoint this instance has signed and kept, smallest tree first.
#[utoipa::path(get, path = "/v1/audit/checkpoints", tag = "audit", params(CheckpointsParams),
    security(("bearer" = [])),
    responses((status = 200, body = AuditCheckpoints), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn checkpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(p): ApiQuery<CheckpointsParams>,
) -> ApiResult<Json<AuditCheckpoints>> {
    principal.require("audit.read")?;
    let limit = p.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let rows = state.store().audit_checkpoints(p.after, limit).await?;
    Ok(Json(AuditCheckpoints {
        checkpoints: rows
            .into_iter()
            .map(|c| StoredCheckpointOut {
                size: c.size,
                note: c.note,
            })
            .collect(),
    }))
}
