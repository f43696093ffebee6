//! The gVisor tier (runsc from Debian's `runsc` package; scripts/test installs it): the same
//! profile under runsc, with network none, limits through DGC's cgroup, and refusals.

use std::time::Duration;

use dgc_sandbox::{
    NetworkPolicy, ProtectionKind, SandboxCommand, SandboxError, SandboxProfile, SandboxTier,
    Termination,
};
use dgc_types::egress::{EgressAllowlist, HostPattern};
use dgc_types::{DurationSpec, size::ByteSize};

use crate::common::*;

fn gvisor() -> SandboxProfile {
    assert!(
        std::path::Path::new("/usr/bin/runsc").exists(),
        "runsc is missing: scripts/test installs it with `apt-get install -y runsc`"
    );
    SandboxProfile {
        tier: SandboxTier::Gvisor,
        ..SandboxProfile::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gvisor_runs_the_profile() {
    let s = sandbox();
    let t = tools();
    let ws = owned_dir("dgc-it-gv-");
    let mut p = gvisor();
    p.writable = vec![ws.path().to_path_buf()];
    let script = format!(
        "id -u; hostname; echo hi > /tmp/x && cat /tmp/x; echo w > {}/out; echo no > /etc/dgc-gvisor-escape || echo refused",
        ws.path().display()
    );
    let out = run(&s, &p, &["/bin/sh", "-c", &script]).await;
    assert!(out.result.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "65534\ndgc-sandbox\nhi\nrefused\n");
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out")).unwrap(),
        "w\n"
    );
    assert!(!std::path::Path::new("/etc/dgc-gvisor-escape").exists());
    assert_eq!(out.result.tier, SandboxTier::Gvisor);
    assert!(
        out.result
            .protections
            .iter()
            .any(|p| p.kind == ProtectionKind::Gvisor)
    );
    assert!(
        out.result
            .protections
            .iter()
            .any(|p| p.kind == ProtectionKind::Cgroups)
    );
    // No network, and hidden paths stay hidden.
    assert_blocked(&s, &t, &p, &["connect-tcp", "192.0.2.1:80"]).await;
    assert_blocked(&s, &t, &p, &["read", "/root/.bashrc"]).await;
    assert_blocked(&s, &t, &p, &["read", "/etc/shadow"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gvisor_limits_and_timeouts_hold() {
    let s = sandbox();
    let t = tools();
    let mut p = gvisor();
    p.limits.memory = ByteSize(128 << 20);
    let out = run(&s, &p, &[t.harness.to_str().unwrap(), "probe", "membomb"]).await;
    assert_eq!(
        out.result.termination(),
        Termination::OutOfMemory,
        "{:?}",
        out.result
    );
    let mut p = gvisor();
    p.limits.timeout = DurationSpec(Duration::from_secs(2));
    let out = run(&s, &p, &["/bin/sleep", "60"]).await;
    assert_eq!(out.result.termination(), Termination::TimedOut);
    assert!(out.result.duration < Duration::from_secs(20));
    let out = run(&s, &gvisor(), &["/bin/sh", "-c", "exit 9"]).await;
    assert_eq!(out.result.termination(), Termination::Exited { code: 9 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gvisor_with_an_allowlist_is_refused_not_degraded() {
    let s = sandbox();
    let mut p = gvisor();
    p.network = NetworkPolicy::Allowlist {
        allow: EgressAllowlist(vec![HostPattern::parse("example.com").unwrap()]),
    };
    let cmd = SandboxCommand::new(vec!["/bin/true".into()]).unwrap();
    match s.spawn(cmd, &p).await {
        Err(SandboxError::Setup(f)) => assert_eq!(f.protection, ProtectionKind::EgressProxy),
        other => panic!("{other:?}"),
    }
}
