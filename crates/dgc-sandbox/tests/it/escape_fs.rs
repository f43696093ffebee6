//! Filesystem escapes: writes outside the writable directories, protected paths, symlink and
//! hardlink tricks (including a symlink swapped in during setup), secrets on the host, and the
//! binaries a workload might try to overwrite.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dgc_sandbox::{ProtectionKind, SandboxCommand, SandboxError, SandboxProfile};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_outside_writable_dirs_fail_and_the_host_is_unchanged() {
    let s = sandbox();
    let t = tools();
    let ws = owned_dir("dgc-it-ws-");
    // A directory the sandbox user owns on the host but that is *not* writable in the profile:
    // only the sandbox (not plain permissions) can stop these writes.
    let outside = owned_dir("dgc-it-outside-");
    std::fs::write(outside.path().join("keep"), b"original").unwrap();
    std::fs::set_permissions(
        outside.path().join("keep"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let before = snapshot(outside.path());
    let p = profile_with(&[ws.path()]);
    let targets = [
        outside.path().join("new-file"),
        outside.path().join("keep"),
        "/etc/dgc-escape".into(),
        "/usr/local/bin/dgc-escape".into(),
        t.dir.path().join("escape"),
    ];
    for target in &targets {
        assert_blocked(&s, &t, &p, &["write", target.to_str().unwrap()]).await;
    }
    assert_blocked(
        &s,
        &t,
        &p,
        &["append", outside.path().join("keep").to_str().unwrap()],
    )
    .await;
    assert_blocked(
        &s,
        &t,
        &p,
        &["mkdir", outside.path().join("d").to_str().unwrap()],
    )
    .await;
    assert_blocked(
        &s,
        &t,
        &p,
        &["remove", outside.path().join("keep").to_str().unwrap()],
    )
    .await;
    assert_eq!(snapshot(outside.path()), before);
    for target in &targets[2..] {
        assert!(
            !target.exists(),
            "{} appeared on the host",
            target.display()
        );
    }

    // The writable directory and the private /tmp do work, and /tmp never reaches the host.
    let marker = format!("/tmp/dgc-it-private-{}", std::process::id());
    let out = run(
        &s,
        &p,
        &[
            "/bin/sh",
            "-c",
            &format!(
                "echo ok > {}/f && echo tmp > {marker} && cat {marker}",
                ws.path().display()
            ),
        ],
    )
    .await;
    assert!(out.result.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "tmp\n");
    assert_eq!(std::fs::read(ws.path().join("f")).unwrap(), b"ok\n");
    assert!(!std::path::Path::new(&marker).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_paths_inside_writable_dirs_stay_read_only() {
    let s = sandbox();
    let t = tools();
    let ws = owned_dir("dgc-it-git-");
    let hooks = ws.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("pre-commit"), b"#!/bin/sh\nexit 0\n").unwrap();
    for d in [ws.path().join(".git"), hooks.clone()] {
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::chown(hooks.join("pre-commit"), Some(65534), Some(65534)).unwrap();
    let git = ws.path().join(".git");
    let before = snapshot(&git);
    let mut p = profile_with(&[ws.path()]);
    p.protected = vec![".git/hooks".into()];
    let h = |n: &str| hooks.join(n).to_str().unwrap().to_string();
    assert_blocked(&s, &t, &p, &["write", &h("pre-commit")]).await;
    assert_blocked(&s, &t, &p, &["write", &h("post-checkout")]).await;
    assert_blocked(&s, &t, &p, &["remove", &h("pre-commit")]).await;
    assert_blocked(
        &s,
        &t,
        &p,
        &[
            "rename",
            hooks.to_str().unwrap(),
            git.join("hooks-old").to_str().unwrap(),
        ],
    )
    .await;
    // Moving the parent away to recreate it must fail too (the ancestors are pinned).
    assert_blocked(
        &s,
        &t,
        &p,
        &[
            "rename",
            git.to_str().unwrap(),
            ws.path().join("git-old").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(snapshot(&git), before);
    // The rest of the workspace stays writable.
    let (code, out) = probe(
        &s,
        &t,
        &p,
        &["write", ws.path().join("src.txt").to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 99, "{out}");

    // A protected path that does not exist yet is created empty and sealed.
    let fresh = owned_dir("dgc-it-fresh-");
    let mut p2 = profile_with(&[fresh.path()]);
    p2.protected = vec![".git/hooks".into()];
    assert_blocked(
        &s,
        &t,
        &p2,
        &[
            "write",
            fresh.path().join(".git/hooks/pre-commit").to_str().unwrap(),
        ],
    )
    .await;
    assert!(fresh.path().join(".git/hooks").is_dir());
    assert_eq!(
        std::fs::read_dir(fresh.path().join(".git/hooks"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_and_hardlink_escapes_fail() {
    let s = sandbox();
    let t = tools();
    let ws = owned_dir("dgc-it-links-");
    let victim_dir = owned_dir("dgc-it-victim-");
    let victim = victim_dir.path().join("secret.txt");
    std::fs::write(&victim, b"host data").unwrap();
    std::os::unix::fs::chown(&victim, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o666)).unwrap();
    let p = profile_with(&[ws.path()]);
    let v = victim.to_str().unwrap();
    assert_blocked(
        &s,
        &t,
        &p,
        &["symlink-write", v, ws.path().join("link").to_str().unwrap()],
    )
    .await;
    assert_blocked(
        &s,
        &t,
        &p,
        &[
            "symlink-write",
            "/etc/passwd",
            ws.path().join("passwd").to_str().unwrap(),
        ],
    )
    .await;
    assert_blocked(
        &s,
        &t,
        &p,
        &[
            "hardlink-write",
            v,
            ws.path().join("hard").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(std::fs::read(&victim).unwrap(), b"host data");
    assert!(!ws.path().join("hard").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_writable_dirs_are_refused_even_when_swapped_in_during_setup() {
    let s = sandbox();
    let t = tools();
    let base = owned_dir("dgc-it-swap-");
    let victim = owned_dir("dgc-it-swap-victim-");
    let real = base.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::chown(&real, Some(65534), Some(65534)).unwrap();
    let ws = base.path().join("ws");

    // A symlink present at spawn time is refused outright.
    std::os::unix::fs::symlink(victim.path(), &ws).unwrap();
    let p = profile_with(&[&ws]);
    let err = s
        .spawn(
            SandboxCommand::new(vec!["/bin/true".into()])
                .unwrap()
                .cwd("/"),
            &p,
        )
        .await
        .expect_err("a symlinked writable directory must be refused");
    match &err {
        SandboxError::Setup(f) => {
            assert_eq!(f.protection, ProtectionKind::WritablePaths);
            assert!(f.message.contains("symlink"), "{f}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&ws).unwrap();

    // Now race: flip `ws` between a real directory and a symlink to the victim while spawning.
    std::fs::rename(&real, &ws).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, ws, victim, real) = (
            stop.clone(),
            ws.clone(),
            victim.path().to_path_buf(),
            base.path().join("real"),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::rename(&ws, &real);
                let _ = std::os::unix::fs::symlink(&victim, &ws);
                std::thread::sleep(std::time::Duration::from_micros(300));
                let _ = std::fs::remove_file(&ws);
                let _ = std::fs::rename(&real, &ws);
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
        })
    };
    let (mut ran, mut refused) = (0, 0);
    for i in 0..12 {
        let target = ws.join(format!("marker-{i}"));
        let cmd = SandboxCommand::new(vec![
            t.harness.to_str().unwrap().into(),
            "probe".into(),
            "write".into(),
            target.to_str().unwrap().into(),
        ])
        .unwrap()
        .cwd("/");
        match s.spawn(cmd, &p).await {
            Ok(child) => {
                let _ = child.wait().await.unwrap();
                ran += 1;
            }
            Err(SandboxError::Setup(f)) => {
                assert_eq!(f.protection, ProtectionKind::WritablePaths, "{f}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert_eq!(
        std::fs::read_dir(victim.path()).unwrap().count(),
        0,
        "a write landed in the symlink target"
    );
    assert_eq!(ran + refused, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_secrets_and_the_parent_environment_are_out_of_reach() {
    let s = sandbox();
    let t = tools();
    // A fake home with an SSH key, under the default-hidden /home.
    let home = tempfile::Builder::new()
        .prefix("dgc-it-home-")
        .tempdir_in("/home")
        .unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::write(
        home.path().join(".ssh/id_ed25519"),
        b"-----BEGIN OPENSSH PRIVATE KEY-----",
    )
    .unwrap();
    std::fs::set_permissions(
        home.path().join(".ssh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        home.path().join(".ssh/id_ed25519"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let p = SandboxProfile::default();
    assert_blocked(
        &s,
        &t,
        &p,
        &[
            "read",
            home.path().join(".ssh/id_ed25519").to_str().unwrap(),
        ],
    )
    .await;
    assert_blocked(&s, &t, &p, &["list", "/root"]).await;
    assert_blocked(&s, &t, &p, &["list", "/home"]).await;
    assert_blocked(&s, &t, &p, &["read", "/etc/shadow"]).await;
    assert_blocked(&s, &t, &p, &["read", "/proc/1/environ"]).await;

    // Nothing of DGC's own environment reaches the workload.
    // SAFETY-free: set_var is unsafe in edition 2024; use a child-visible marker instead via the
    // profile's inherit list, which must only pass what it names.
    let secret_name = "DGC_IT_SECRET_TOKEN";
    let out = run(
        &s,
        &p,
        &[
            "/bin/sh",
            "-c",
            "env; cat /proc/self/environ | tr '\\0' '\\n'",
        ],
    )
    .await;
    let env = text(&out.stdout);
    assert!(!env.contains(secret_name));
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for n in &names {
        assert!(
            ["PATH", "HOME", "PWD", "SHLVL", "_", "OLDPWD"].contains(n),
            "unexpected variable {n} in {env}"
        );
    }
    // The parent's environ is not readable either (the supervisor and init are not ours to read).
    let out = run(&s, &p, &["/bin/sh", "-c", "ls /proc | grep -c '^[0-9]'"]).await;
    let procs: u32 = text(&out.stdout).trim().parse().unwrap();
    assert!(procs <= 4, "the sandbox sees {procs} processes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_cannot_overwrite_binaries_or_create_devices() {
    let s = sandbox();
    let t = tools();
    let ws = owned_dir("dgc-it-bin-");
    let p = profile_with(&[ws.path()]);
    let before = std::fs::read(&t.harness).unwrap();
    assert_blocked(&s, &t, &p, &["open-write", "/proc/self/exe"]).await;
    assert_blocked(&s, &t, &p, &["open-write", t.harness.to_str().unwrap()]).await;
    assert_blocked(&s, &t, &p, &["open-write", "/bin/sh"]).await;
    assert_blocked(
        &s,
        &t,
        &p,
        &["mknod", ws.path().join("null").to_str().unwrap()],
    )
    .await;
    assert_blocked(&s, &t, &p, &["write", "/dev/dgc-escape"]).await;
    assert_eq!(std::fs::read(&t.harness).unwrap(), before);
    let out = run(&s, &p, &["/bin/ls", "/dev"]).await;
    let mut devs: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    devs.sort();
    assert_eq!(
        devs,
        [
            "fd", "full", "null", "random", "stderr", "stdin", "stdout", "tty", "urandom", "zero"
        ]
    );
}
