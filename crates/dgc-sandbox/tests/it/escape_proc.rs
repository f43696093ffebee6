//! Process escapes: ptrace/process_vm_readv/kill of other processes, privilege (capabilities,
//! no_new_privs, setuid binaries), leaked descriptors, and daemons that try to outlive the run.

use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use dgc_sandbox::SandboxProfile;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptrace_process_vm_readv_and_kill_of_other_processes_fail() {
    let s = sandbox();
    let t = tools();
    let p = SandboxProfile::default();
    // A host process the workload would love to touch.
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = victim.id().to_string();
    for target in ["1", pid.as_str()] {
        assert_blocked(&s, &t, &p, &["ptrace", target]).await;
        assert_blocked(&s, &t, &p, &["process-vm-readv", target]).await;
    }
    assert_blocked(&s, &t, &p, &["kill", &pid]).await;
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process was killed"
    );
    // The sandbox init ignores signals from inside its namespace: the run ends normally.
    let out = run(
        &s,
        &p,
        &["/bin/sh", "-c", "kill -9 1; kill -STOP 1; echo alive"],
    )
    .await;
    assert!(out.result.success(), "{:?}", out.result);
    assert_eq!(text(&out.stdout), "alive\n");
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_capabilities_no_new_privs_and_setuid_does_not_escalate() {
    let s = sandbox();
    let t = tools();
    let p = SandboxProfile::default();
    let (code, out) = probe(&s, &t, &p, &["ids"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("uid=1000 euid=1000"), "{out}");
    assert!(
        out.contains("caps=0000000000000000 bnd=0000000000000000 nnp=1 seccomp=2"),
        "{out}"
    );

    // A setuid-root copy of the harness: running it must not make the workload root.
    let suid = t.dir.path().join("suid-harness");
    std::fs::copy(HARNESS, &suid).unwrap();
    std::os::unix::fs::chown(&suid, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let out = run(&s, &p, &[suid.to_str().unwrap(), "probe", "ids"]).await;
    let o = text(&out.stdout);
    assert!(out.result.success(), "setuid binary escalated: {o}");
    assert!(o.contains("euid=1000"), "{o}");
    // And a real setuid program from the host stays powerless.
    if std::path::Path::new("/usr/bin/su").exists() {
        let out = run(&s, &p, &["/usr/bin/su", "-c", "id"]).await;
        assert!(!out.result.success(), "su succeeded: {}", text(&out.stdout));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descriptors_beyond_stdio_leak_into_the_sandbox() {
    let s = sandbox();
    let t = tools();
    // Leak-prone descriptors in the parent: an inheritable file and socket.
    let f = std::fs::File::open("/etc/hostname").unwrap();
    let raw = f.into_raw_fd();
    let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _keep = (raw, sock.as_raw_fd());
    clear_cloexec(raw);
    clear_cloexec(sock.as_raw_fd());
    assert_blocked(&s, &t, &SandboxProfile::default(), &["fds"]).await;
}

/// Clears close-on-exec the way careless code in the parent would.
#[allow(unsafe_code)]
fn clear_cloexec(fd: i32) {
    // SAFETY: F_SETFD on a descriptor this test owns.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    assert_eq!(r, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setsid_daemon_does_not_survive_the_sandbox() {
    let s = sandbox();
    let t = tools();
    let marker = format!("dgc-it-daemon-{}-{}", std::process::id(), rand_suffix());
    let (code, out) = probe(&s, &t, &SandboxProfile::default(), &["daemon", &marker]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DAEMONIZED"), "{out}");
    // The result is only reported once the sandbox's pid namespace is empty.
    let survivors = find_processes(&marker);
    assert!(survivors.is_empty(), "daemon survived: {survivors:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(find_processes(&marker).is_empty());
}

pub fn rand_suffix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{n:x}")
}

pub fn find_processes(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if c.contains(marker) {
                found.push(format!("{name}: {c}"));
            }
        }
    }
    found
}
