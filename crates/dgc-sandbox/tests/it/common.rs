//! Shared helpers: the harness binary, per-test workspaces owned by the sandbox user, and
//! running probes inside sandboxes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dgc_sandbox::{
    DEFAULT_HOST_ID, Sandbox, SandboxCommand, SandboxConfig, SandboxOutput, SandboxProfile,
};
use tempfile::TempDir;

pub const HARNESS: &str = env!("CARGO_BIN_EXE_dgc-sandbox-harness");

pub fn require_root() {
    // SAFETY-free check through the filesystem: /proc/self/status Uid line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert_eq!(
        uid, "0",
        "the sandbox integration tests need root (namespaces, cgroups, mapping the sandbox user to uid 65534), as on CI: run them through scripts/test as root"
    );
}

/// A sandbox spawner using the test harness as the re-exec target (no warm pool, so that each
/// spawn is self-contained).
pub fn sandbox() -> Sandbox {
    require_root();
    let mut c = SandboxConfig::new(HARNESS);
    c.warm_pool = 0;
    Sandbox::new(c)
}

/// A fresh directory on the host owned by the sandbox user (uid/gid 65534), so that the sandbox
/// can write it while it stays outside everything else.
pub fn owned_dir(prefix: &str) -> TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap();
    std::os::unix::fs::chown(d.path(), Some(DEFAULT_HOST_ID), Some(DEFAULT_HOST_ID)).unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A copy of the harness in a world-readable place (the build directory is under /root, which
/// sandboxes hide and uid 65534 cannot traverse anyway).
pub struct Tools {
    pub dir: TempDir,
    pub harness: PathBuf,
}

pub fn tools() -> Tools {
    let dir = tempfile::Builder::new()
        .prefix("dgc-it-tools-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let harness = dir.path().join("harness");
    if std::fs::hard_link(HARNESS, &harness).is_err() {
        std::fs::copy(HARNESS, &harness).unwrap();
    }
    std::fs::set_permissions(&harness, std::fs::Permissions::from_mode(0o755)).unwrap();
    Tools { dir, harness }
}

pub fn profile_with(writable: &[&Path]) -> SandboxProfile {
    SandboxProfile {
        writable: writable.iter().map(|p| p.to_path_buf()).collect(),
        ..SandboxProfile::default()
    }
}

pub async fn run(s: &Sandbox, profile: &SandboxProfile, argv: &[&str]) -> SandboxOutput {
    let cmd = SandboxCommand::new(argv.iter().map(|a| a.to_string()).collect())
        .unwrap()
        .cwd("/");
    s.spawn(cmd, profile)
        .await
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"))
        .wait_with_output()
        .await
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `harness probe ARGS…` in a sandbox and returns (exit code, stdout).
pub async fn probe(
    s: &Sandbox,
    t: &Tools,
    profile: &SandboxProfile,
    args: &[&str],
) -> (i32, String) {
    let h = t.harness.to_str().unwrap();
    let mut argv = vec![h, "probe"];
    argv.extend_from_slice(args);
    let out = run(s, profile, &argv).await;
    let code = match out.result.status {
        dgc_sandbox::ExitStatus::Exited { code } => code,
        other => panic!(
            "probe {args:?} did not exit normally: {other:?} {}",
            text(&out.stderr)
        ),
    };
    (code, text(&out.stdout) + &text(&out.stderr))
}

/// Asserts that an attack probe was blocked.
pub async fn assert_blocked(
    s: &Sandbox,
    t: &Tools,
    profile: &SandboxProfile,
    args: &[&str],
) -> String {
    let (code, out) = probe(s, t, profile, args).await;
    assert_eq!(code, 0, "attack {args:?} was not blocked: {out}");
    assert!(out.starts_with("BLOCKED"), "attack {args:?}: {out}");
    out
}

/// Snapshot of a directory tree (paths and contents) to prove the host is unchanged.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push((p.clone(), b"<dir>".to_vec()));
                walk(&p, out);
            } else if ft.is_symlink() {
                out.push((
                    p.clone(),
                    std::fs::read_link(&p)
                        .unwrap()
                        .to_string_lossy()
                        .as_bytes()
                        .to_vec(),
                ));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    walk(dir, &mut out);
    out
}
