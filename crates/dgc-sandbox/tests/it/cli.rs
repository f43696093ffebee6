//! `dgc sandbox run` and `dgc doctor` through the harness binary (which wires them exactly as
//! the `dgc` binary does).

use std::process::Command;

use crate::common::*;

fn harness(args: &[&str]) -> (i32, String, String) {
    require_root();
    let out = Command::new(HARNESS)
        .args(args)
        .current_dir("/")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn run_streams_output_and_exits_with_the_workload_code() {
    let (code, out, err) = harness(&[
        "run",
        "--",
        "/bin/sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (7, "out\n", "err\n"));
    let (code, _, err) = harness(&["run", "--", "/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(code, 143);
    assert!(err.contains("killed by signal 15"), "{err}");
}

#[test]
fn run_reports_timeouts_and_oom_distinctly() {
    let t = tools();
    let (code, _, err) = harness(&["run", "--timeout", "1s", "--", "/bin/sleep", "30"]);
    assert_eq!(code, 137);
    assert!(err.contains("timed out after 1s"), "{err}");
    let (code, _, err) = harness(&[
        "run",
        "--memory",
        "48M",
        "--",
        t.harness.to_str().unwrap(),
        "probe",
        "membomb",
    ]);
    assert_eq!(code, 137);
    assert!(err.contains("out of memory"), "{err}");
    assert!(!err.contains("timed out"));
}

#[test]
fn run_applies_flags() {
    let ws = owned_dir("dgc-it-cli-");
    let w = ws.path().to_str().unwrap();
    let (code, out, err) = harness(&[
        "run",
        "--write",
        w,
        "--env",
        "GREETING=hi",
        "--pids",
        "16",
        "--cpu",
        "0.5",
        "--",
        "/bin/sh",
        "-c",
        "echo $GREETING > f && cat f && ls /proc | grep -c '^[0-9]'",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("hi\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(ws.path().join("f")).unwrap(),
        "hi\n"
    );
    // Setup failures exit 125 with the fix; bad flags exit 2.
    let root_owned = tempfile::Builder::new()
        .prefix("dgc-it-cli-root-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let (code, _, err) = harness(&[
        "run",
        "--write",
        root_owned.path().to_str().unwrap(),
        "--",
        "/bin/true",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("writable directories could not be applied") && err.contains("fix: `chown"),
        "{err}"
    );
    let (code, _, err) = harness(&["run", "--memory", "lots", "--", "/bin/true"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = harness(&["run", "--allow-net", "*.com", "--", "/bin/true"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn run_allows_only_listed_destinations() {
    let t = tools();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let th = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = server.accept().unwrap();
        let mut b = [0u8; 4096];
        let _ = s.read(&mut b).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
    });
    let h = t.harness.to_str().unwrap();
    let report = tempfile::NamedTempFile::new().unwrap();
    let (code, out, err) = harness(&[
        "run",
        "--allow-net",
        &format!("127.0.0.1:{port}"),
        "--report",
        report.path().to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        &format!(
            "{h} probe proxy-get http://127.0.0.1:{port}/; {h} probe proxy-get http://example.com/; echo $HTTPS_PROXY"
        ),
    ]);
    th.join().unwrap();
    assert!(
        out.contains("ESCAPED HTTP/1.1 200 OK") && out.contains("body=ok"),
        "{out} {err}"
    );
    assert!(
        out.contains("BLOCKED HTTP/1.1 403") && out.contains("reason=not-allowlisted"),
        "{out}"
    );
    assert!(out.ends_with("http://127.0.0.1:3128\n"), "{out}");
    assert_eq!(code, 0);
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    assert_eq!(r["egress"]["allowed"], 1);
    assert_eq!(r["egress"]["denied"], 1);
}

#[test]
fn doctor_probes_this_host() {
    let (code, out, err) = harness(&["doctor", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let check = |name: &str| {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no check {name}: {out}"))
    };
    for name in [
        "user namespaces",
        "landlock",
        "seccomp",
        "cgroups",
        "process tier spawns",
        "process tier with egress proxy spawns",
    ] {
        assert_eq!(check(name)["ok"], true, "{name}: {}", check(name));
    }
    assert!(
        check("landlock")["detail"]
            .as_str()
            .unwrap()
            .starts_with("ABI ")
    );
    let (code, text_out, _) = harness(&["doctor"]);
    assert_eq!(code, 0);
    assert!(
        text_out.contains("✓ user namespaces") && text_out.contains("process tier: ready"),
        "{text_out}"
    );
}
