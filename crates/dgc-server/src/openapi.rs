//! The static part of the OpenAPI document: info, security scheme, tags. Paths and schemas are
//! collected from the handlers' `#[utoipa::path]` annotations.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DGC API",
        description = "A self-hosted runtime for AI agents in which every action is gated, sandboxed and attested.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(dgc_types::ErrorBody, dgc_types::ErrorCode)),
    tags(
        (name = "keys", description = "API keys and capabilities"),
        (name = "agents", description = "Agents and their configuration"),
        (name = "memory", description = "Agent memories and full-text search"),
        (name = "audit", description = "The signed, verifiable audit log"),
        (name = "health", description = "Liveness, readiness and metrics (no key needed)")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("dgc_sk_…")
                    .description(Some(
                        "An API key. `X-DGC-Capability: a,b` narrows a request to fewer capabilities.",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}
