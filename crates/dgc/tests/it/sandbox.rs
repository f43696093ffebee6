//! `dgc sandbox run` and `dgc doctor` through the real binary (the sandbox child re-execs `dgc`).

use std::process::Command;

fn dgc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(crate::BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn sandbox_run_streams_output_and_exits_with_the_workload_code() {
    let (code, out, err) = dgc(&[
        "sandbox",
        "run",
        "--timeout",
        "10s",
        "--",
        "/bin/sh",
        "-c",
        "echo inside; id -u; exit 7",
    ]);
    assert_eq!(code, 7, "{err}");
    assert!(out.contains("inside"), "{out}");
    assert_ne!(
        out.lines().nth(1),
        Some("0"),
        "the workload does not run as root: {out}"
    );
}

#[test]
fn sandbox_run_reports_timeouts_and_cannot_reach_the_network() {
    let (code, _, err) = dgc(&[
        "sandbox",
        "run",
        "--timeout",
        "1s",
        "--",
        "/bin/sleep",
        "30",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.to_lowercase().contains("timeout") || err.to_lowercase().contains("timed out"),
        "{err}"
    );
    let (code, _, _) = dgc(&[
        "sandbox",
        "run",
        "--timeout",
        "5s",
        "--",
        "/bin/sh",
        "-c",
        "exec 3<>/dev/tcp/127.0.0.1/22",
    ]);
    assert_ne!(code, 0, "no network without an allowlist");
}

#[test]
fn doctor_probes_and_reports_ready_tiers() {
    let (code, out, err) = dgc(&["doctor"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("landlock") && out.contains("process tier: ready"),
        "{out}"
    );
}
