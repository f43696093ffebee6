//! The library API: interactive stdio (as MCP servers need), kill and drop, the warm pool,
//! environment injection, exec errors and concurrent spawns.

use std::time::Duration;

use dgc_sandbox::{
    ExitStatus, ProtectionKind, Sandbox, SandboxCommand, SandboxConfig, SandboxProfile, StdinMode,
    Termination,
};
use tokio::io::AsyncWriteExt;

use crate::common::*;
use crate::escape_proc::{find_processes, rand_suffix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_stdio_round_trips() {
    let s = sandbox();
    let t = tools();
    let cmd = SandboxCommand::new(vec![
        t.harness.to_str().unwrap().into(),
        "probe".into(),
        "echo-stdin".into(),
    ])
    .unwrap()
    .stdin(StdinMode::Piped)
    .cwd("/");
    let mut child = s.spawn(cmd, &SandboxProfile::default()).await.unwrap();
    let mut stdin = child.take_stdin().unwrap();
    for msg in ["hello", "second line"] {
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\n") {
            let c = tokio::time::timeout(Duration::from_secs(10), child.next_output())
                .await
                .unwrap()
                .unwrap();
            got.extend_from_slice(&c.data);
        }
        assert_eq!(text(&got), format!("echo: {msg}\n"));
    }
    drop(stdin);
    let r = child.wait().await.unwrap();
    assert_eq!(r.status, ExitStatus::Exited { code: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_drop_end_the_whole_tree() {
    let s = sandbox();
    let t = tools();
    let h = t.harness.to_str().unwrap();
    for by_drop in [false, true] {
        let marker = format!("dgc-it-kill-{}-{}", std::process::id(), rand_suffix());
        let script = format!("{h} probe daemon {marker}; exec {h} probe sleep {marker} 300");
        let cmd = SandboxCommand::new(vec!["/bin/sh".into(), "-c".into(), script])
            .unwrap()
            .cwd("/");
        let mut child = s.spawn(cmd, &SandboxProfile::default()).await.unwrap();
        // Wait until the daemon announced itself.
        let first = tokio::time::timeout(Duration::from_secs(10), child.next_output())
            .await
            .unwrap()
            .unwrap();
        assert!(text(&first.data).contains("DAEMONIZED"));
        assert!(!find_processes(&marker).is_empty());
        if by_drop {
            drop(child);
        } else {
            child.kill();
            let r = child.wait().await.unwrap();
            assert!(r.cancelled);
            assert_eq!(r.termination(), Termination::Cancelled);
        }
        let mut gone = false;
        for _ in 0..100 {
            if find_processes(&marker).is_empty() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            gone,
            "processes survived {}: {:?}",
            if by_drop { "drop" } else { "kill" },
            find_processes(&marker)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_pool_spawns_are_fully_protected() {
    require_root();
    let mut c = SandboxConfig::new(HARNESS);
    c.warm_pool = 1;
    let s = Sandbox::new(c);
    let ws = owned_dir("dgc-it-warm-");
    let mut p = profile_with(&[ws.path()]);
    p.limits.pids = 8;
    for i in 0..4 {
        let out = run(
            &s,
            &p,
            &[
                "/bin/sh",
                "-c",
                &format!(
                    "echo {i} > {}/f{i}; cat /proc/self/status | grep NoNewPrivs",
                    ws.path().display()
                ),
            ],
        )
        .await;
        assert!(out.result.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("NoNewPrivs:\t1"));
        let kinds: Vec<ProtectionKind> = out.result.protections.iter().map(|p| p.kind).collect();
        for k in [
            ProtectionKind::Cgroups,
            ProtectionKind::Landlock,
            ProtectionKind::Seccomp,
            ProtectionKind::ReadOnlyRoot,
        ] {
            assert!(kinds.contains(&k), "{k:?} missing from {kinds:?}");
        }
        assert_eq!(
            std::fs::read_to_string(ws.path().join(format!("f{i}"))).unwrap(),
            format!("{i}\n")
        );
    }
    // The pool's supervisor got the profile's limits, not the defaults.
    let t = tools();
    let out = run(
        &s,
        &p,
        &[t.harness.to_str().unwrap(), "probe", "forkbomb", "100"],
    )
    .await;
    assert!(
        text(&out.stdout).starts_with("BLOCKED"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_exactly_profile_plus_injected() {
    let s = sandbox();
    let mut p = SandboxProfile::default();
    p.env.set.insert("FROM_PROFILE".into(), "p".into());
    p.env.inherit = vec!["TERM_DOES_NOT_EXIST_HOPEFULLY".into()];
    let cmd = SandboxCommand::new(vec!["/usr/bin/env".into()])
        .unwrap()
        .env("INJECTED_SECRET", "s3cr3t")
        .cwd("/");
    let out = s
        .spawn(cmd, &p)
        .await
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    let mut vars: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "FROM_PROFILE=p",
            "HOME=/tmp",
            "INJECTED_SECRET=s3cr3t",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    );
    let bad = SandboxCommand::new(vec!["/bin/true".into()])
        .unwrap()
        .env("HTTPS_PROXY", "http://evil");
    assert!(s.spawn(bad, &p).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_errors_and_exit_statuses_are_reported() {
    let s = sandbox();
    let p = SandboxProfile::default();
    let out = run(&s, &p, &["/nonexistent/tool"]).await;
    assert_eq!(out.result.status, ExitStatus::Exited { code: 127 });
    assert!(
        out.result
            .exec_error
            .as_deref()
            .unwrap_or("")
            .contains("/nonexistent/tool"),
        "{:?}",
        out.result.exec_error
    );
    let out = run(&s, &p, &["/bin/sh", "-c", "exit 42"]).await;
    assert_eq!(out.result.termination(), Termination::Exited { code: 42 });
    let out = run(&s, &p, &["/bin/sh", "-c", "kill -TERM $$"]).await;
    assert_eq!(
        out.result.termination(),
        Termination::Signaled { signal: 15 }
    );
    assert_eq!(out.result.shell_code(), 143);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spawns_are_independent() {
    let s = sandbox();
    let mut handles = Vec::new();
    for i in 0..4 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let out = run(
                &s,
                &SandboxProfile::default(),
                &["/bin/sh", "-c", &format!("echo {i}; hostname")],
            )
            .await;
            assert!(out.result.success());
            text(&out.stdout)
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), format!("{i}\ndgc-sandbox\n"));
    }
}
