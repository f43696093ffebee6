//! `dgc serve`: first start, restart, graceful shutdown, refusal cases, configuration layers.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::{Server, http};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_creates_identity_and_admin_key_and_never_logs_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &["--log-format", "json"]);
    let admin = s.admin_key();
    assert!(admin.starts_with("dgc_sk_"));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("admin.key")), 0o600);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(mode(&data.join("dgc.db")), 0o600);
    let (st, body) = http(
        &s.url,
        "POST",
        "/v1/agents",
        Some(&admin),
        Some(r#"{"name":"a"}"#),
    );
    assert_eq!(st, 201, "{body}");
    let (st, _) = http(
        &s.url,
        "GET",
        "/v1/agents",
        Some("dgc_sk_wrongwrongwrongwrongwrongwrongwrong12"),
        None,
    );
    assert_eq!(st, 401);
    let (code, out, err) = s.stop("TERM");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("admin.key"),
        "stdout says where the admin key is: {out}"
    );
    assert!(
        !out.contains(&admin) && !err.contains(&admin),
        "the admin secret is never printed or logged"
    );
    // JSON logs, one object per line, with request ids.
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["span"]["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_"))
            && l["status"] == 201),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "stopped; store closed cleanly"),
        "{err}"
    );
    let master = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert!(
        !err.contains(master.trim()),
        "the master key is never logged"
    );
}

#[test]
fn restart_keeps_data_and_does_not_mint_another_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let admin = s.admin_key();
    let id = s.cli(&["agent", "create", "persistent"]).ok().to_string();
    s.cli(&["memory", "add", &id, "remember me"]).ok();
    assert_eq!(s.stop("INT").0, 0);
    let s = Server::start(dir.path(), &[]);
    assert!(!s.stdout.lock().unwrap().contains("Created an admin"));
    assert_eq!(s.admin_key(), admin);
    let out = s
        .cli(&["memory", "search", &id, "remember"])
        .ok()
        .to_string();
    assert!(out.contains("remember me"), "{out}");
}

#[test]
fn sigterm_drains_in_flight_requests_then_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let admin = s.admin_key();
    let id = s.cli(&["agent", "create", "a"]).ok().to_string();
    // Hold the database write lock so a write request is in flight when SIGTERM arrives.
    let blocker = rusqlite::Connection::open(dir.path().join("dgc.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let url = s.url.clone();
    let path = format!("/v1/agents/{id}/memory");
    let inflight = std::thread::spawn(move || {
        http(
            &url,
            "POST",
            &path,
            Some(&admin),
            Some(r#"{"content":"in flight"}"#),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let pid = s.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused while draining.
    assert!(
        std::net::TcpStream::connect(s.url.trim_start_matches("http://")).is_err(),
        "stopped accepting"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let (status, body) = inflight.join().unwrap();
    assert_eq!(status, 201, "the in-flight request completed: {body}");
    let (code, _, err) = s.stop("TERM");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("draining") && err.contains("store closed cleanly"),
        "{err}"
    );
    // The write is durable.
    let s = Server::start(dir.path(), &[]);
    assert!(s.cli(&["memory", "list", &id]).ok().contains("in flight"));
}

#[test]
fn refuses_a_database_newer_than_this_build_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    assert_eq!(s.stop("TERM").0, 0);
    let db = dir.path().join("dgc.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(c);
    let before = std::fs::read(&db).unwrap();
    let (_, err) = Server::try_start(dir.path(), &[]).expect_err("must refuse");
    assert!(
        err.contains("schema is version 999") && err.contains("newer than this build"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was not modified"
    );
}

#[test]
fn wrong_master_key_is_a_clear_error_and_destroys_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let id = s.cli(&["agent", "create", "a"]).ok().to_string();
    assert_eq!(s.stop("TERM").0, 0);
    let key_path = dir.path().join("master.key");
    let good = std::fs::read(&key_path).unwrap();
    std::fs::write(&key_path, format!("{}\n", "ab".repeat(32))).unwrap();
    let (_, err) = Server::try_start(dir.path(), &[]).expect_err("must refuse");
    assert!(
        err.contains("cannot decrypt") && err.contains("master.key"),
        "{err}"
    );
    std::fs::write(&key_path, good).unwrap();
    let s = Server::start(dir.path(), &[]);
    assert!(
        s.cli(&["agent", "show", &id])
            .ok()
            .contains("\"name\": \"a\"")
    );
}

#[test]
fn config_file_env_and_flags_layer_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dgc.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:1\"\n[limits]\nmemory_content = \"10\"\nbody = \"256K\"\n",
    )
    .unwrap();
    // The flag overrides the file's listen address; the file's limits apply.
    let s = Server::start(&dir.path().join("d"), &["--config", cfg.to_str().unwrap()]);
    let id = s.cli(&["agent", "create", "a"]).ok().to_string();
    let out = s.cli(&["memory", "add", &id, "more than ten bytes"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("payload_too_large"), "{out:?}");
    drop(s);
    // Environment beats the file, the flag beats the environment.
    let out = std::process::Command::new(crate::BIN)
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            dir.path().join("e").to_str().unwrap(),
        ])
        .env("DGC_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-an-address"));
    // Typos in the file are errors that name the key.
    std::fs::write(&cfg, "lisen = \"127.0.0.1:7070\"\n").unwrap();
    let (_, err) = Server::try_start(&dir.path().join("f"), &["--config", cfg.to_str().unwrap()])
        .expect_err("typo");
    assert!(err.contains("lisen"), "{err}");
}
