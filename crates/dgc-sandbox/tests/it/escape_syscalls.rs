//! Kernel attack surface: namespace creation, mounts, bpf, perf, userfaultfd, keyrings, kexec,
//! modules, io_uring, terminal injection, and socket families (vsock, netlink, packet, raw),
//! both with no network and with the egress proxy (where inet sockets are allowed).

use dgc_sandbox::{NetworkPolicy, SandboxProfile};
use dgc_types::egress::{EgressAllowlist, HostPattern};

use crate::common::*;

fn with_proxy() -> SandboxProfile {
    SandboxProfile {
        network: NetworkPolicy::Allowlist {
            allow: EgressAllowlist(vec![HostPattern::parse("example.com").unwrap()]),
        },
        ..SandboxProfile::default()
    }
}

const ATTACKS: &[&[&str]] = &[
    &["unshare", "user"],
    &["unshare", "mount"],
    &["unshare", "net"],
    &["unshare", "pid"],
    &["clone-newuser"],
    &["setns"],
    &["mount", "/tmp"],
    &["umount", "/proc"],
    &["pivot-root"],
    &["chroot"],
    &["bpf"],
    &["perf-event-open"],
    &["userfaultfd"],
    &["keyctl"],
    &["add-key"],
    &["kexec"],
    &["init-module"],
    &["io-uring"],
    &["tiocsti"],
    &["socket", "vsock"],
    &["socket", "netlink"],
    &["socket", "packet"],
    &["socket", "raw"],
    &["socket", "raw6"],
    &["connect-abstract", "dgc-it-nonexistent"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_attack_surface_is_refused_without_network() {
    let s = sandbox();
    let t = tools();
    let p = SandboxProfile::default();
    for a in ATTACKS {
        assert_blocked(&s, &t, &p, a).await;
    }
    // No network mode: not even inet sockets.
    assert_blocked(&s, &t, &p, &["socket", "inet"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_attack_surface_is_refused_with_the_egress_proxy() {
    let s = sandbox();
    let t = tools();
    let p = with_proxy();
    for a in ATTACKS {
        assert_blocked(&s, &t, &p, a).await;
    }
}
