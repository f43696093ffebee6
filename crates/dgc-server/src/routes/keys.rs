//! `/v1/keys`: issuing, listing and revoking API keys. A key mints only keys narrower than itself:
//! a subset of its capabilities, no later expiry, no wider agent scope.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dgc_store::{KeyFilter, KeyRecord};
use dgc_types::key::{CreateKey, CreatedKey, KeyInfo};
use dgc_types::{ErrorBody, FieldError, KeyId, Page};
use serde::Serialize;
use utoipa::ToSchema;

use super::{PageParams, parse_id};
use crate::AppState;
use crate::audit;
use crate::auth::{Principal, generate_secret, hash_secret};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::request_id;

/// Issue a key. The secret is in this response only.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    principal.require("keys.manage")?;
    req.validate()?;
    let missing = principal.capabilities.missing_from(&req.capabilities);
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(ApiError::forbidden(format!(
            "a key can only mint keys with capabilities it holds; not held: {}",
            names.join(", ")
        )));
    }
    let now = dgc_types::now();
    let expires_at = match req.expires_in {
        None => principal.expires_at,
        Some(d) => {
            let at = now
                .checked_add(time::Duration::try_from(d.as_duration()).map_err(|_| too_long())?)
                .ok_or_else(too_long)?;
            if let Some(parent) = principal.expires_at
                && at > parent
            {
                return Err(ApiError::forbidden(format!(
                    "expires_in would outlive the calling key, which expires at {}",
                    parent
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                )));
            }
            Some(at)
        }
    };
    let agent_ids = match (&principal.agent_ids, req.agent_ids) {
        (Some(parent), None) => Some(parent.as_ref().clone()),
        (Some(parent), Some(asked)) => {
            if asked.iter().any(|a| !parent.contains(a)) {
                return Err(ApiError::forbidden(
                    "agent_ids may only name agents the calling key can access",
                ));
            }
            Some(asked)
        }
        (None, asked) => asked,
    };
    if let Some(ids) = &agent_ids {
        for (i, id) in ids.iter().enumerate() {
            if state.store().get_agent(id).await?.is_none() {
                return Err(FieldError::new(
                    format!("agent_ids[{i}]"),
                    format!("agent {id} does not exist"),
                )
                .into());
            }
        }
    }
    let secret = generate_secret();
    let info = KeyInfo {
        id: KeyId::generate(),
        name: req.name,
        capabilities: req.capabilities,
        agent_ids,
        parent_id: Some(principal.key_id.clone()),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    state
        .store()
        .insert_key(
            KeyRecord {
                info: info.clone(),
                secret_hash: hash_secret(&secret),
            },
            vec![audit::key_issued(&info, &request_id::current())],
        )
        .await?;
    tracing::info!(key_id = %info.id, parent = %principal.key_id, "issued API key");
    Ok((StatusCode::CREATED, Json(CreatedKey { info, key: secret })))
}

fn too_long() -> ApiError {
    FieldError::new("expires_in", "is too far in the future").into()
}

/// List keys: every key for holders of `admin`, otherwise the calling key and the keys it minted.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<KeyInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<KeyInfo>>> {
    principal.require("keys.manage")?;
    let filter = KeyFilter {
        descendants_of: if principal.is_admin() {
            None
        } else {
            Some(principal.key_id.clone())
        },
    };
    let listed = state
        .store()
        .list_keys(&filter, page.after.as_deref(), page.limit()?)
        .await?;
    Ok(Json(Page {
        data: listed.items,
        next_cursor: listed.next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub id: KeyId,
    /// Every key revoked by this call: the key and the keys minted from it.
    pub revoked: Vec<KeyId>,
}

/// Revoke a key and every key minted from it. Takes effect on the next request.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "key id")),
    security(("bearer" = [])),
    responses((status = 200, body = Revoked), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Revoked>> {
    principal.require("keys.manage")?;
    let id: KeyId = parse_id(&id)?;
    if !principal.is_admin()
        && !state
            .store()
            .key_descends_from(&id, &principal.key_id)
            .await?
    {
        return Err(ApiError::not_found("key"));
    }
    let revoked = state
        .store()
        .revoke_key(&id, dgc_types::now(), {
            let (root, rid) = (id.to_string(), request_id::current());
            Box::new(move |ids: &Vec<KeyId>| {
                ids.iter()
                    .map(|k| {
                        let reason = if k.as_str() == root {
                            "revoked".to_string()
                        } else {
                            format!("revoked with the key that minted it ({root})")
                        };
                        audit::key_revoked(k.as_str(), reason, &rid)
                    })
                    .collect()
            })
        })
        .await
        .map_err(|e| match e {
            dgc_store::StoreError::NotFound => ApiError::not_found("key"),
            e => e.into(),
        })?;
    state.key_cache().evict(&revoked);
    tracing::info!(key_id = %id, count = revoked.len(), by = %principal.key_id, "revoked API key");
    Ok(Json(Revoked { id, revoked }))
}
