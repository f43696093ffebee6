//! Authentication and capabilities: API key secrets (`dgc_sk_…`, stored only as SHA-256 hashes and
//! compared in constant time), a short-lived cache of verified keys, and the request's
//! [`Principal`] with its effective (possibly narrowed) capabilities.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use dgc_store::KeyRecord;
use dgc_types::{AgentId, CapabilitySet, KeyId};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

pub use dgc_runtime::keys::{generate_secret, hash_secret, well_formed_secret};

use crate::AppState;
use crate::cache::TtlCache;
use crate::error::ApiError;

/// Header that narrows a request to fewer capabilities than its key holds.
pub const CAPABILITY_HEADER: &str = "x-dgc-capability";

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: KeyId,
    /// Capabilities in effect for this request (after `X-DGC-Capability` narrowing).
    pub capabilities: CapabilitySet,
    /// Agents the key is limited to (`None`: all agents).
    pub agent_ids: Option<Arc<Vec<AgentId>>>,
    pub expires_at: Option<OffsetDateTime>,
}

impl Principal {
    /// 403 unless the request holds `cap`.
    pub fn require(&self, cap: &str) -> Result<(), ApiError> {
        if self.capabilities.allows_str(cap) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this request needs the `{cap}` capability"
            )))
        }
    }

    /// Whether the key may see this agent at all (others are reported as not found).
    pub fn can_see(&self, agent: &AgentId) -> bool {
        self.agent_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(agent))
    }

    /// Holders of `admin` see and manage every key, not just the ones they minted.
    pub fn is_admin(&self) -> bool {
        self.capabilities.allows_str("admin")
    }
}

/// Verified keys by secret hash, kept briefly so authentication does not hit the store on every
/// request. Revocation on this instance evicts immediately; the TTL bounds how long a revocation
/// made elsewhere (another instance) can go unnoticed.
#[derive(Debug)]
pub struct KeyCache(TtlCache<[u8; 32], KeyRecord>);

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self(TtlCache::new(ttl, 100_000))
    }

    fn get(&self, hash: &[u8; 32]) -> Option<Arc<KeyRecord>> {
        self.0.get(hash)
    }

    fn put(&self, hash: [u8; 32], rec: Arc<KeyRecord>) {
        self.0.put(hash, rec);
    }

    /// Drops cached entries for these keys (after revocation).
    pub fn evict(&self, ids: &[KeyId]) {
        self.0.retain(|rec| !ids.contains(&rec.info.id));
    }
}

/// Looks up and checks a secret. Errors are 401s with a reason that reveals nothing about other keys.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<Arc<KeyRecord>, ApiError> {
    let fail = |reason: &'static str, msg: &str| {
        state
            .metrics()
            .auth_failures
            .with_label_values(&[reason])
            .inc();
        ApiError::unauthorized(msg.to_string())
    };
    if !well_formed_secret(secret) {
        return Err(fail(
            "malformed",
            "malformed API key: expected `Authorization: Bearer dgc_sk_…`",
        ));
    }
    let hash = hash_secret(secret);
    let rec = match state.key_cache().get(&hash) {
        Some(r) => r,
        None => {
            let found = state.store().key_by_hash(hash).await?;
            let Some(rec) = found else {
                return Err(fail("unknown", "invalid API key"));
            };
            let rec = Arc::new(rec);
            state.key_cache().put(hash, rec.clone());
            rec
        }
    };
    // The lookup matched on the hash; compare again in constant time so no early-exit comparison
    // in any backend or cache path decides authentication.
    if !bool::from(rec.secret_hash.ct_eq(&hash)) {
        return Err(fail("unknown", "invalid API key"));
    }
    if rec.info.revoked_at.is_some() {
        return Err(fail("revoked", "this API key has been revoked"));
    }
    if rec
        .info
        .expires_at
        .is_some_and(|e| e <= OffsetDateTime::now_utc())
    {
        return Err(fail("expired", "this API key has expired"));
    }
    Ok(rec)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                state
                    .metrics()
                    .auth_failures
                    .with_label_values(&["missing"])
                    .inc();
                ApiError::unauthorized("missing API key: send `Authorization: Bearer dgc_sk_…`")
            })?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthorized(
                "use the Bearer scheme: `Authorization: Bearer dgc_sk_…`",
            ));
        }
        let rec = authenticate(state, token.trim()).await?;

        let mut capabilities = rec.info.capabilities.clone();
        if let Some(h) = parts.headers.get(CAPABILITY_HEADER) {
            let text = h
                .to_str()
                .map_err(|_| ApiError::bad_request("X-DGC-Capability must be ASCII"))?;
            let asked = CapabilitySet::parse_list(text)
                .map_err(|e| ApiError::bad_request(format!("X-DGC-Capability: {e}")))?;
            let missing = capabilities.missing_from(&asked);
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
                return Err(ApiError::forbidden(format!(
                    "X-DGC-Capability asks for capabilities this key does not hold: {}",
                    names.join(", ")
                )));
            }
            capabilities = asked;
        }
        let p = Principal {
            key_id: rec.info.id.clone(),
            capabilities,
            agent_ids: rec.info.agent_ids.clone().map(Arc::new),
            expires_at: rec.info.expires_at,
        };
        parts.extensions.insert(p.clone());
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_documented_shape() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("dgc_sk_"));
        assert_eq!(a.len(), 7 + 43);
        assert!(well_formed_secret(&a));
        assert!(!well_formed_secret("dgc_sk_short"));
        assert!(!well_formed_secret(
            "sk_live_0123456789012345678901234567890123"
        ));
        assert!(!well_formed_secret(&format!("{a}!")));
    }
}
