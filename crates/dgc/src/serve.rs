//! `dgc serve`: open the store, bootstrap the instance, serve HTTP until SIGINT/SIGTERM, then stop
//! accepting, drain in-flight requests (bounded by the grace period) and close the store cleanly.

use std::os::unix::fs::DirBuilderExt;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use dgc_server::{AppState, StateOptions};
use dgc_store::{SqliteOptions, SqliteStore, Store};
use tokio::net::TcpListener;

use crate::config::ServeConfig;

pub async fn serve(cfg: ServeConfig) -> anyhow::Result<ExitCode> {
    if !cfg.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.data_dir)
            .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    }
    let db_path = cfg.data_dir.join("dgc.db");
    let store = SqliteStore::open(&SqliteOptions::new(&db_path))
        .with_context(|| format!("opening the database {}", db_path.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let instance = match dgc_server::bootstrap(&cfg.data_dir, store.as_ref()).await {
        Ok(i) => i,
        Err(e) => {
            store.close().await;
            return Err(e).context("initialising the instance");
        }
    };
    if let Some(p) = &instance.admin_key_path {
        println!(
            "Created an admin API key (all capabilities) in {} (mode 0600).",
            p.display()
        );
        println!(
            "Use it with the CLI from this directory, or: export DGC_API_KEY=$(cat {})",
            p.display()
        );
    }
    let instance_id = instance.id.clone();
    let witness = dgc_server::audit::WitnessConfig {
        dir: cfg.witness_dir.clone(),
    };
    let witnesses = dgc_server::audit::Witnesses::new(&witness, &instance.audit.origin)
        .context("setting up the checkpoint witness")?;
    let opts = StateOptions {
        limits: cfg.limits.clone(),
        access_log: cfg.access_log,
        witness,
        ..StateOptions::default()
    };
    let state = AppState::new(store.clone(), instance, opts)
        .await
        .map_err(anyhow::Error::msg)?;

    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "dgc {} listening on http://{addr} (instance {instance_id}, sqlite store in {})",
        env!("CARGO_PKG_VERSION"),
        cfg.data_dir.display()
    );
    tracing::info!(%addr, instance = %instance_id, "serving");

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let checkpointer = dgc_server::audit::spawn_checkpointer(
        store.clone(),
        witnesses,
        cfg.checkpoint_interval,
        stop_tx.subscribe(),
    );
    let server = axum::serve(listener, dgc_server::app(state)).with_graceful_shutdown(async move {
        let _ = stop_rx.changed().await;
    });
    let server = server.into_future();
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r.context("the HTTP server failed"),
        sig = shutdown_signal() => {
            tracing::info!(signal = sig, grace_s = cfg.shutdown_grace.as_secs(), "shutting down: no new connections, draining in-flight requests");
            let _ = stop_tx.send(true);
            match tokio::time::timeout(cfg.shutdown_grace, &mut server).await {
                Ok(r) => r.context("the HTTP server failed while draining"),
                Err(_) => {
                    tracing::warn!("grace period over; closing with requests still in flight");
                    Ok(())
                }
            }
        }
    };
    let _ = stop_tx.send(true);
    if let Err(e) = checkpointer.await {
        tracing::warn!(error = %e, "the checkpointer did not stop cleanly");
    }
    store.close().await;
    tracing::info!("stopped; store closed cleanly");
    result.map(|()| ExitCode::SUCCESS)
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
