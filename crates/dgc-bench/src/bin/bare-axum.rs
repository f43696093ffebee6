//! Baseline for the HTTP benchmark: a bare axum JSON handler with no auth, store or middleware,
//! returning a body of the same size as `GET /v1/agents/{id}`.
#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7080")]
    listen: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let body: serde_json::Value = serde_json::json!({
            "id": "ag_01m87x3g2z39vmw3p4j9354zaq", "name": "researcher",
            "config": {"tools": {"allow": [], "deny": []}, "gates": {}, "sandbox": {"tier": "process",
            "memory": 536870912, "pids": 128, "cpu": 1.0, "timeout": 60, "output": 1048576,
            "workspace_writable": true, "egress": []}, "memory": {"sync": false, "retrieve_top_k": 8,
            "record_tasks": false}, "autonomy": "guarded", "skills": []}, "status": "active",
            "public_key": "2fYB3kzOG4hldVKcePqdlOUueCD/JCYE0tjGP1BzQUw=",
            "created_at": "2026-11-24T23:08:54.24Z", "updated_at": "2026-11-24T23:08:54.24Z"
        });
        let app = axum::Router::new().route(
            "/v1/agents/{id}",
            axum::routing::get(move |axum::extract::Path(_id): axum::extract::Path<String>| {
                let b = body.clone();
                async move { axum::Json(b) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        println!("bare axum listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}
