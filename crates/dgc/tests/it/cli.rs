//! The README quickstart, run through the CLI against a real server.

use crate::{Server, http};

#[test]
fn quickstart_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let agent = s
        .cli(&[
            "agent",
            "create",
            "researcher",
            "--description",
            "reads papers",
        ])
        .ok()
        .to_string();
    assert!(agent.starts_with("ag_"), "{agent}");
    let m1 = s
        .cli(&[
            "memory",
            "add",
            &agent,
            "The deploy failed at 3am because of a bad config",
            "--tag",
            "ops",
        ])
        .ok()
        .to_string();
    assert!(m1.starts_with("mem_"));
    s.cli(&[
        "memory",
        "add",
        &agent,
        "Kubernetes upgrade went fine",
        "--kind",
        "semantic",
    ])
    .ok();
    let refl = s
        .cli(&[
            "memory",
            "add",
            &agent,
            "Night deploys are risky",
            "--kind",
            "reflection",
            "--link",
            &m1,
        ])
        .ok()
        .to_string();
    let found = s
        .cli(&["memory", "search", &agent, "deploy config"])
        .ok()
        .to_string();
    assert!(found.lines().next().unwrap().starts_with(&m1), "{found}");
    let shown = s.cli(&["memory", "show", &agent, &m1]).ok().to_string();
    assert!(
        shown.contains(&refl),
        "backlink from the reflection: {shown}"
    );

    // A read-only key scoped to the agent.
    let key = s
        .cli(&[
            "auth",
            "issue",
            "--capabilities",
            "memory.read,agents.read",
            "--expires",
            "1h",
            "--agent",
            &agent,
            "--name",
            "reader",
        ])
        .ok()
        .to_string();
    assert!(key.starts_with("dgc_sk_"));
    assert!(
        s.cli_with_key(&key, &["memory", "search", &agent, "kubernetes"])
            .ok()
            .contains("Kubernetes")
    );
    let denied = s.cli_with_key(&key, &["memory", "add", &agent, "nope"]);
    assert_eq!(denied.code, 1);
    assert!(
        denied.stderr.contains("forbidden") && denied.stderr.contains("memory.write"),
        "{denied:?}"
    );
    let listed = s.cli(&["auth", "list"]).ok().to_string();
    assert!(
        listed.contains("reader") && !listed.contains("dgc_sk_"),
        "{listed}"
    );
    let key_id = listed
        .lines()
        .find(|l| l.contains("reader"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    s.cli(&["auth", "revoke", &key_id]).ok();
    let revoked = s.cli_with_key(&key, &["agent", "list"]);
    assert_eq!(revoked.code, 1);
    assert!(revoked.stderr.contains("revoked"), "{revoked:?}");

    assert!(s.cli(&["agent", "list"]).ok().contains("researcher"));
    s.cli(&["memory", "delete", &agent, &m1]).ok();
    assert!(
        s.cli(&["--json", "agent", "delete", &agent])
            .ok()
            .contains("\"memories_deleted\": 2")
    );
    // Health endpoints need no key.
    assert_eq!(http(&s.url, "GET", "/readyz", None, None).0, 200);
}

#[test]
fn cli_reports_unreachable_server_and_missing_key() {
    let out = std::process::Command::new(crate::BIN)
        .args(["agent", "list"])
        .env("DGC_URL", "http://127.0.0.1:9")
        .env(
            "DGC_API_KEY",
            "dgc_sk_0000000000000000000000000000000000000000000",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `dgc serve` running"));
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::BIN)
        .current_dir(dir.path())
        .args(["agent", "list"])
        .env_remove("DGC_API_KEY")
        .env_remove("DGC_API_KEY_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API key"));
}
