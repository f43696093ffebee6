//! Resource limits: the pids limit holds a fork bomb, a memory bomb dies alone inside its cgroup
//! and is reported as OOM, a disk-filling write stops at the tmpfs size, timeouts and the output
//! limit kill the whole tree, and the limits land in the real cgroup.

use std::time::Duration;

use dgc_sandbox::{SandboxCommand, SandboxProfile, Termination};
use dgc_types::{DurationSpec, size::ByteSize};

use crate::common::*;
use crate::escape_proc::{find_processes, rand_suffix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_is_held_by_the_pids_limit() {
    let s = sandbox();
    let t = tools();
    let mut p = SandboxProfile::default();
    p.limits.pids = 24;
    let out = run(
        &s,
        &p,
        &[t.harness.to_str().unwrap(), "probe", "forkbomb", "5000"],
    )
    .await;
    let o = text(&out.stdout);
    assert!(
        o.starts_with("BLOCKED fork refused after"),
        "{o} {}",
        text(&out.stderr)
    );
    let n: usize = o.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(n <= 24, "forked {n} children");
    assert!(out.result.pids_limited);
    // The children (paused forever) died with the sandbox.
    assert!(
        out.result.success() || out.result.status == dgc_sandbox::ExitStatus::Exited { code: 0 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_killed_inside_its_cgroup_and_reported_as_oom() {
    let s = sandbox();
    let t = tools();
    let mut p = SandboxProfile::default();
    p.limits.memory = ByteSize(64 << 20);
    let out = run(&s, &p, &[t.harness.to_str().unwrap(), "probe", "membomb"]).await;
    assert!(out.result.oom_killed, "{:?}", out.result);
    assert_eq!(
        out.result.termination(),
        Termination::OutOfMemory,
        "{:?}",
        out.result
    );
    assert!(!text(&out.stdout).contains("ESCAPED"));
    // This process (outside the cgroup) is untouched, and the next sandbox works.
    let ok = run(&s, &SandboxProfile::default(), &["/bin/true"]).await;
    assert!(ok.result.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_filling_stops_at_the_tmpfs_size_and_file_size_limit() {
    let s = sandbox();
    let t = tools();
    let mut p = SandboxProfile::default();
    p.limits.tmp = ByteSize(4 << 20);
    let out = run(
        &s,
        &p,
        &[t.harness.to_str().unwrap(), "probe", "fill", "/tmp/big"],
    )
    .await;
    let o = text(&out.stdout);
    assert!(o.starts_with("BLOCKED fill stopped after"), "{o}");
    let n: u64 = o.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(n <= 4 << 20, "wrote {n} bytes into a 4 MiB /tmp");
    assert!(o.contains("No space left"), "{o}");

    let ws = owned_dir("dgc-it-fsize-");
    let mut p = profile_with(&[ws.path()]);
    p.limits.file_size = ByteSize(1 << 20);
    let target = ws.path().join("big");
    let _ = run(
        &s,
        &p,
        &[
            t.harness.to_str().unwrap(),
            "probe",
            "fill",
            target.to_str().unwrap(),
        ],
    )
    .await;
    assert!(std::fs::metadata(&target).unwrap().len() <= 1 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_tree() {
    let s = sandbox();
    let t = tools();
    let marker = format!("dgc-it-timeout-{}-{}", std::process::id(), rand_suffix());
    let mut p = SandboxProfile::default();
    p.limits.timeout = DurationSpec(Duration::from_millis(1500));
    let h = t.harness.to_str().unwrap();
    let script = format!("{h} probe daemon {marker}; exec {h} probe spin");
    let out = run(&s, &p, &["/bin/sh", "-c", &script]).await;
    assert!(out.result.timed_out);
    assert_eq!(out.result.termination(), Termination::TimedOut);
    assert!(
        out.result.duration < Duration::from_secs(10),
        "{:?}",
        out.result.duration
    );
    assert!(
        find_processes(&marker).is_empty(),
        "a process outlived the timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_output_limit_cuts_output_and_kills_the_tree() {
    let s = sandbox();
    let t = tools();
    let mut p = SandboxProfile::default();
    p.limits.output = ByteSize(100_000);
    let out = run(
        &s,
        &p,
        &[t.harness.to_str().unwrap(), "probe", "spew", "10000000"],
    )
    .await;
    assert_eq!(out.stdout.len() + out.stderr.len(), 100_000);
    assert!(out.result.output_limited);
    assert_eq!(out.result.termination(), Termination::OutputLimit);
    assert_eq!(out.result.stdout_bytes, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_written_to_the_sandbox_cgroup() {
    let s = sandbox();
    let t = tools();
    let mut p = SandboxProfile::default();
    p.limits.memory = ByteSize(96 << 20);
    p.limits.pids = 40;
    p.limits.cpu = 0.25;
    let cmd = SandboxCommand::new(vec![
        t.harness.to_str().unwrap().into(),
        "probe".into(),
        "sleep".into(),
        "x".into(),
        "30".into(),
    ])
    .unwrap()
    .cwd("/");
    let child = s.spawn(cmd, &p).await.unwrap();
    let id = child.id().to_string();
    let find = |ctrl: &str| {
        let mut hits = Vec::new();
        for e in walk(&format!("/sys/fs/cgroup/{ctrl}")) {
            if e.ends_with(&id) {
                hits.push(e);
            }
        }
        assert_eq!(hits.len(), 1, "cgroup {id} under {ctrl}: {hits:?}");
        hits.remove(0)
    };
    let read = |dir: &str, f: &str| {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .unwrap()
            .trim()
            .to_string()
    };
    let mem = find("memory");
    assert_eq!(
        read(&mem, "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    let pids = find("pids");
    assert_eq!(read(&pids, "pids.max"), "42");
    assert!(read(&pids, "cgroup.procs").lines().count() >= 1);
    let cpu = find("cpu");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "25000");
    child.kill();
    drop(child);
    // Removed once the sandbox is gone.
    for _ in 0..100 {
        if !std::path::Path::new(&mem).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cgroup {mem} was not removed");
}

fn walk(root: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(root)];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.push(e.path().display().to_string());
                    stack.push(e.path());
                }
            }
        }
    }
    out
}
