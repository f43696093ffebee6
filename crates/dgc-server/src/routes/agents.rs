//! `/v1/agents`: create, list, read, patch (JSON merge patch) and delete agents. Each agent gets its
//! own Ed25519 identity at creation; its private key is stored sealed with the master key.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dgc_store::{AgentFilter, AgentRecord};
use dgc_types::agent::{Agent, AgentSpec, AgentStatus, CreateAgent};
use dgc_types::{AgentId, ErrorBody, FieldError, Page};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{PageParams, parse_id};
use crate::AppState;
use crate::auth::Principal;
use crate::crypto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// The record registering a new agent's key: signed by the instance and by the agent key itself
/// (proof of possession).
fn key_added_record(
    state: &AppState,
    id: &AgentId,
    signing_key: ed25519_dalek::SigningKey,
) -> ApiResult<dgc_store::AuditRecord> {
    let origin = &state.instance().audit.origin;
    let name = dgc_audit::agent_key_name(origin, id.as_str()).map_err(ApiError::internal)?;
    let signer = dgc_audit::Signer::from_signing_key(name, signing_key);
    let entry = dgc_audit::Entry::AgentKeyAdded(dgc_audit::entry::AgentKeyAdded {
        agent_id: id.to_string(),
        key: signer.verifier().clone(),
    });
    Ok(dgc_store::AuditRecord::cosigned(entry, signer))
}

/// Create an agent.
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgent, security(("bearer" = [])),
    responses((status = 201, body = Agent), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_agent(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateAgent>,
) -> ApiResult<Response> {
    principal.require("agents.manage")?;
    if principal.agent_ids.is_some() {
        return Err(ApiError::forbidden(
            "an agent-scoped key cannot create agents",
        ));
    }
    req.validate()?;
    check_gate_overrides(builtin_policy()?, &req.config)?;
    let id = AgentId::generate();
    let (signing_key, public_key) = crypto::new_identity();
    let sealed = crypto::seal_signing_key(
        state.master_key(),
        &signing_key,
        &crypto::agent_key_purpose(id.as_str()),
    );
    let now = dgc_types::now();
    let agent = Agent {
        id: id.clone(),
        name: req.name,
        description: req.description,
        config: req.config,
        status: AgentStatus::Active,
        public_key,
        created_at: now,
        updated_at: now,
    };
    state
        .store()
        .insert_agent(
            AgentRecord {
                agent: agent.clone(),
                secret_key_enc: sealed,
            },
            vec![key_added_record(&state, &id, signing_key)?],
        )
        .await?;
    state.metrics().agents.inc();
    tracing::info!(agent_id = %id, by = %principal.key_id, "created agent");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/agents/{id}"))],
        Json(agent),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentListParams {
    pub limit: Option<u32>,
    pub after: Option<String>,
    /// Only agents advertising this skill.
    pub skill: Option<String>,
}

/// List the agents this key can see.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(AgentListParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Agent>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_agents(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AgentListParams>,
) -> ApiResult<Json<Page<Agent>>> {
    principal.require("agents.read")?;
    let page = PageParams {
        limit: q.limit,
        after: q.after,
    };
    let filter = AgentFilter {
        ids: principal.agent_ids.as_ref().map(|a| a.as_ref().clone()),
        skill: q.skill,
    };
    let listed = state
        .store()
        .list_agents(&filter, page.after.as_deref(), page.limit()?)
        .await?;
    Ok(Json(Page {
        data: listed.items,
        next_cursor: listed.next_cursor,
    }))
}

/// The built-in gate policy, loaded (and its embedded examples checked) once per process.
pub(crate) fn builtin_policy() -> Result<&'static dgc_gates::Policy, ApiError> {
    static POLICY: std::sync::OnceLock<Result<dgc_gates::Policy, String>> =
        std::sync::OnceLock::new();
    POLICY
        .get_or_init(|| dgc_gates::Policy::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(ApiError::internal)
}

/// Checks an agent's gate overrides (and autonomy) against the gate engine, so a bad override is a
/// 422 at configuration time, not a failure at the agent's first action.
fn check_gate_overrides(
    policy: &dgc_gates::Policy,
    config: &dgc_types::agent::AgentConfig,
) -> Result<(), FieldError> {
    let invalid = |m: String| FieldError::new("config.gates", m);
    let autonomy = serde_json::to_value(config.autonomy)
        .and_then(serde_json::from_value)
        .map_err(|e| invalid(e.to_string()))?;
    let overrides = dgc_gates::AgentOverrides {
        autonomy: Some(autonomy),
        gates: config.gates.clone(),
    };
    policy
        .with_overrides(&overrides)
        .map(|_| ())
        .map_err(|e| invalid(e.to_string()))
}

/// A store `NotFound` for an agent-scoped operation means the agent is missing.
pub(crate) fn agent_not_found(e: dgc_store::StoreError) -> ApiError {
    match e {
        dgc_store::StoreError::NotFound => ApiError::not_found("agent"),
        e => e.into(),
    }
}

/// Resolves a path id to an agent id the principal may see; otherwise 404 (existence is not leaked).
pub(crate) fn visible_agent(principal: &Principal, raw: &str) -> ApiResult<AgentId> {
    let id: AgentId = parse_id(raw)?;
    if !principal.can_see(&id) {
        return Err(ApiError::not_found("agent"));
    }
    Ok(id)
}

/// Read one agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "agent id")),
    security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_agent(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Agent>> {
    principal.require("agents.read")?;
    let id = visible_agent(&principal, &id)?;
    let rec = state
        .agent(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(Json(rec.agent.clone()))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            if let serde_json::Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Update an agent with a JSON merge patch (RFC 7386) over `{name, description, config}`; `null`
/// removes a field (restoring its default). The result is validated as a whole.
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "agent id")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_agent(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> ApiResult<Json<Agent>> {
    principal.require("agents.manage")?;
    let id = visible_agent(&principal, &id)?;
    if !patch.is_object() {
        return Err(ApiError::new(
            dgc_types::ErrorCode::ValidationFailed,
            "a merge patch must be a JSON object",
        ));
    }
    let policy = builtin_policy()?;
    let edit = Box::new(move |spec: AgentSpec| -> Result<AgentSpec, FieldError> {
        let mut doc =
            serde_json::to_value(&spec).map_err(|e| FieldError::new("config", e.to_string()))?;
        merge_patch(&mut doc, &patch);
        let new: AgentSpec = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            FieldError::new(
                if path == "." { "body".into() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        new.validate()?;
        check_gate_overrides(policy, &new.config)?;
        Ok(new)
    });
    let agent = state
        .store()
        .update_agent(&id, dgc_types::now(), edit)
        .await
        .map_err(agent_not_found)?;
    state.forget_agent(&id);
    Ok(Json(agent))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDeleted {
    pub id: AgentId,
    pub deleted: bool,
    /// Memories deleted with the agent.
    pub memories_deleted: u64,
}

/// Delete an agent and all its memories.
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "agent id")),
    security(("bearer" = [])),
    responses((status = 200, body = AgentDeleted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AgentDeleted>> {
    principal.require("agents.manage")?;
    let id = visible_agent(&principal, &id)?;
    let rec = state
        .store()
        .get_agent(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    let audit_id = &state.instance().audit;
    let key_id = audit_id
        .agent_verifier(&rec.agent)
        .ok_or_else(|| ApiError::internal(format!("agent {id} has a malformed public key")))?
        .key_id();
    let record =
        dgc_store::AuditRecord::new(dgc_audit::Entry::KeyRevoked(dgc_audit::entry::KeyRevoked {
            subject: dgc_audit::KeySubject::Agent {
                agent_id: id.to_string(),
            },
            key_id,
            reason: Some(format!(
                "agent deleted (request {})",
                crate::request_id::current()
            )),
        }));
    let n = state
        .store()
        .delete_agent(&id, vec![record])
        .await
        .map_err(agent_not_found)?;
    state.forget_agent(&id);
    state.metrics().agents.dec();
    state.metrics().memories.sub(n as i64);
    tracing::info!(agent_id = %id, memories = n, by = %principal.key_id, "deleted agent");
    Ok(Json(AgentDeleted {
        id,
        deleted: true,
        memories_deleted: n,
    }))
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut t, p, want) in cases {
            merge_patch(&mut t, &p);
            assert_eq!(t, want);
        }
    }
}
