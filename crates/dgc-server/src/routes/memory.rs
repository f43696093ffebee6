//! `/v1/agents/{id}/memory`: store, list, search (BM25 within the agent), read and delete memories.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dgc_store::{MemoryFilter, NewMemory, SearchTerms};
use dgc_types::memory::{CreateMemory, Memory, MemoryDetail, MemoryKind};
use dgc_types::{ErrorBody, ErrorCode, MemoryId, Page};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agents::{agent_not_found, visible_agent};
use super::{PageParams, parse_id};
use crate::AppState;
use crate::audit;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::request_id;
use dgc_audit::entry::MemoryOp;

/// Store a memory for an agent.
#[utoipa::path(post, path = "/v1/agents/{id}/memory", tag = "memory", request_body = CreateMemory,
    params(("id" = String, Path, description = "agent id")), security(("bearer" = [])),
    responses((status = 201, body = Memory), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_memory(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(agent): ApiPath<String>,
    ApiJson(req): ApiJson<CreateMemory>,
) -> ApiResult<Response> {
    principal.require("memory.write")?;
    let agent = visible_agent(&principal, &agent)?;
    let limits = state.limits();
    if req.content.len() > limits.memory_content_bytes {
        return Err(ApiError::too_large(format!(
            "content is {} bytes; the limit is {} bytes",
            req.content.len(),
            limits.memory_content_bytes
        )));
    }
    let meta_len = serde_json::to_string(&req.metadata)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if meta_len > limits.memory_metadata_bytes {
        return Err(ApiError::too_large(format!(
            "metadata is {meta_len} bytes of JSON; the limit is {} bytes",
            limits.memory_metadata_bytes
        )));
    }
    req.validate()?;
    let id = MemoryId::generate();
    let record = audit::memory_written(
        id.as_str(),
        agent.as_str(),
        MemoryOp::Create,
        Some(req.kind.as_str()),
        Some(&req.content),
        &request_id::current(),
    );
    let memory = state
        .store()
        .insert_memory(
            NewMemory {
                id,
                agent_id: agent.clone(),
                kind: req.kind,
                content: req.content,
                tags: req.tags,
                metadata: req.metadata,
                links: req.links,
                created_at: dgc_types::now(),
            },
            vec![record],
        )
        .await
        .map_err(agent_not_found)?;
    state.metrics().memories.inc();
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/v1/agents/{agent}/memory/{}", memory.id),
        )],
        Json(memory),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemoryQuery {
    /// Full-text query: plain words, BM25-ranked (results carry a `score`). Absent: newest first.
    pub q: Option<String>,
    /// `episodic`, `semantic`, `procedural` or `reflection`.
    pub kind: Option<String>,
    /// Only memories with this tag.
    pub tag: Option<String>,
    pub limit: Option<u32>,
    pub after: Option<String>,
}

/// List an agent's memories newest first, or search them with `q`.
#[utoipa::path(get, path = "/v1/agents/{id}/memory", tag = "memory",
    params(("id" = String, Path, description = "agent id"), MemoryQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Memory>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_memories(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(agent): ApiPath<String>,
    ApiQuery(q): ApiQuery<MemoryQuery>,
) -> ApiResult<Json<Page<Memory>>> {
    principal.require("memory.read")?;
    let agent = visible_agent(&principal, &agent)?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            MemoryKind::parse(k).ok_or_else(|| {
                ApiError::bad_request(
                    "kind must be one of episodic, semantic, procedural, reflection",
                )
            })
        })
        .transpose()?;
    if q.tag.as_ref().is_some_and(|t| t.is_empty() || t.len() > 64) {
        return Err(ApiError::bad_request("tag must be 1–64 bytes"));
    }
    let filter = MemoryFilter { kind, tag: q.tag };
    let page = PageParams {
        limit: q.limit,
        after: q.after,
    };
    let limit = page.limit()?;
    let listed = match q.q.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => {
            let terms = SearchTerms::parse(text)
                .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.to_string()))?;
            state
                .store()
                .search_memories(&agent, &terms, &filter, page.after.as_deref(), limit)
                .await
        }
        None => {
            state
                .store()
                .list_memories(&agent, &filter, page.after.as_deref(), limit)
                .await
        }
    }
    .map_err(agent_not_found)?;
    Ok(Json(Page {
        data: listed.items,
        next_cursor: listed.next_cursor,
    }))
}

/// Read one memory, with the memories that link to it.
#[utoipa::path(get, path = "/v1/agents/{id}/memory/{mid}", tag = "memory",
    params(("id" = String, Path, description = "agent id"), ("mid" = String, Path, description = "memory id")),
    security(("bearer" = [])),
    responses((status = 200, body = MemoryDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_memory(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((agent, mid)): ApiPath<(String, String)>,
) -> ApiResult<Json<MemoryDetail>> {
    principal.require("memory.read")?;
    let agent = visible_agent(&principal, &agent)?;
    let mid: MemoryId = parse_id(&mid)?;
    let m = state
        .store()
        .get_memory(&agent, &mid)
        .await
        .map_err(agent_not_found)?
        .ok_or_else(|| ApiError::not_found("memory"))?;
    Ok(Json(m))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryDeleted {
    pub id: MemoryId,
    pub deleted: bool,
}

/// Delete one memory.
#[utoipa::path(delete, path = "/v1/agents/{id}/memory/{mid}", tag = "memory",
    params(("id" = String, Path, description = "agent id"), ("mid" = String, Path, description = "memory id")),
    security(("bearer" = [])),
    responses((status = 200, body = MemoryDeleted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_memory(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((agent, mid)): ApiPath<(String, String)>,
) -> ApiResult<Json<MemoryDeleted>> {
    principal.require("memory.write")?;
    let agent = visible_agent(&principal, &agent)?;
    let mid: MemoryId = parse_id(&mid)?;
    if !state
        .store()
        .delete_memory(
            &agent,
            &mid,
            vec![audit::memory_written(
                mid.as_str(),
                agent.as_str(),
                MemoryOp::Delete,
                None,
                None,
                &request_id::current(),
            )],
        )
        .await
        .map_err(agent_not_found)?
    {
        return Err(ApiError::not_found("memory"));
    }
    state.metrics().memories.dec();
    Ok(Json(MemoryDeleted {
        id: mid,
        deleted: true,
    }))
}
