//! Network escapes and the egress proxy: direct egress (IP, UDP/53, IPv6) with the proxy
//! variables unset, host Unix sockets, allowlist tricks, SNI ≠ CONNECT host, names resolving
//! to loopback/private/metadata addresses, and the decisions and byte counts reported.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use dgc_sandbox::proxy::ProxyOptions;
use dgc_sandbox::{
    EgressReason, NetworkPolicy, Sandbox, SandboxConfig, SandboxProfile, StaticResolver,
};
use dgc_types::egress::{EgressAllowlist, Host, HostPattern, normalize_host};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// A loopback upstream that records what it receives: HTTP gets a 200, anything else (a TLS
/// ClientHello through a tunnel) gets a fixed marker back.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn upstream() -> Upstream {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let rec = rec.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let data = buf[..n].to_vec();
                let reply: &[u8] = if data.starts_with(b"GET") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\nConnection: close\r\n\r\nhello-from-upstream"
                } else {
                    b"UPSTREAM-GOT-HELLO"
                };
                rec.lock().unwrap().push(data);
                let _ = s.write_all(reply).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Upstream { port, seen }
}

fn lookalike() -> String {
    // "exаmple.test" with a Cyrillic а, as the proxy will see it on the wire (punycode).
    match normalize_host("ex\u{0430}mple.test").unwrap() {
        Host::Name(n) => n,
        Host::Ip(_) => unreachable!(),
    }
}

fn proxied_sandbox() -> Sandbox {
    require_root();
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let resolver = StaticResolver::new()
        .with("allowed.test", &[lo])
        .with("api.allowed.test", &[lo])
        .with("example.test", &[lo])
        .with(&lookalike(), &[lo])
        .with("rebind.test", &["127.0.0.2".parse().unwrap()])
        .with("private.test", &["10.0.0.7".parse().unwrap()])
        .with("meta.test", &["169.254.169.254".parse().unwrap()])
        .with("mapped.test", &["::ffff:127.0.0.3".parse().unwrap()]);
    let mut c = SandboxConfig::new(HARNESS);
    c.warm_pool = 0;
    // Tests may allow the loopback test server explicitly; production defaults never do.
    c.proxy = ProxyOptions {
        resolver: Arc::new(resolver),
        allowed_private: vec![lo],
        ..ProxyOptions::default()
    };
    Sandbox::new(c)
}

fn allow(patterns: &[String]) -> SandboxProfile {
    SandboxProfile {
        network: NetworkPolicy::Allowlist {
            allow: EgressAllowlist(
                patterns
                    .iter()
                    .map(|p| HostPattern::parse(p).unwrap())
                    .collect(),
            ),
        },
        ..SandboxProfile::default()
    }
}

async fn get(
    s: &Sandbox,
    t: &Tools,
    p: &SandboxProfile,
    url: &str,
    host: Option<&str>,
) -> (i32, String) {
    let mut args = vec!["proxy-get", url];
    if let Some(h) = host {
        args.push(h);
    }
    probe(s, t, p, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_requests_pass_and_tricks_are_refused_with_403() {
    let up = upstream().await;
    let s = proxied_sandbox();
    let t = tools();
    let port = up.port;
    let p = allow(&[
        format!("allowed.test:{port}"),
        format!("example.test:{port}"),
        "rebind.test".into(),
        "private.test".into(),
        "meta.test".into(),
        "mapped.test".into(),
    ]);

    let (code, out) = get(
        &s,
        &t,
        &p,
        &format!("http://allowed.test:{port}/index"),
        None,
    )
    .await;
    assert_eq!(code, 99, "allowed request failed: {out}");
    assert!(out.contains("hello-from-upstream"), "{out}");
    // Case and trailing dot are the same host.
    let (code, out) = get(
        &s,
        &t,
        &p,
        &format!("http://ALLOWED.Test.:{port}/"),
        Some(&format!("allowed.test:{port}")),
    )
    .await;
    assert_eq!(code, 99, "{out}");
    {
        let seen = up.seen.lock().unwrap();
        let first = String::from_utf8_lossy(&seen[0]);
        assert!(
            first.starts_with("GET /index HTTP/1.1\r\n"),
            "not rewritten to origin form: {first}"
        );
        assert!(first.contains("Connection: close"), "{first}");
    }
    let before = up.seen.lock().unwrap().len();

    let denied = [
        (
            format!("http://badallowed.test:{port}/"),
            None,
            "not-allowlisted",
        ),
        (
            format!("http://allowed.test.evil.test:{port}/"),
            None,
            "not-allowlisted",
        ),
        (
            format!("http://{}:{port}/", lookalike()),
            None,
            "not-allowlisted",
        ),
        (format!("http://127.0.0.1:{port}/"), None, "ip-literal"),
        (format!("http://[::1]:{port}/"), None, "ip-literal"),
        (
            format!("http://allowed.test:{}/", port.wrapping_add(1).max(1)),
            None,
            "not-allowlisted",
        ),
        (
            format!("http://allowed.test:{port}/"),
            Some("evil.test".to_string()),
            "host-header-mismatch",
        ),
        ("http://rebind.test/".to_string(), None, "private-address"),
        ("http://private.test/".to_string(), None, "private-address"),
        ("http://meta.test/".to_string(), None, "private-address"),
        ("http://mapped.test/".to_string(), None, "private-address"),
        ("http://unknown.test/".to_string(), None, "not-allowlisted"),
        (
            format!("http://allowed.test@evil.test:{port}/"),
            None,
            "bad-request",
        ),
    ];
    for (url, host, reason) in &denied {
        let (code, out) = get(&s, &t, &p, url, host.as_deref()).await;
        assert_eq!(code, 0, "{url} was not refused: {out}");
        let status = if *reason == "bad-request" {
            "400"
        } else {
            "403"
        };
        assert!(out.contains(&format!("HTTP/1.1 {status}")), "{url}: {out}");
        assert!(
            out.contains(&format!("X-DGC-Egress: denied; reason={reason}")),
            "{url}: {out}"
        );
    }
    assert_eq!(
        up.seen.lock().unwrap().len(),
        before,
        "a refused request reached the upstream"
    );

    // Wildcards mean subdomains only.
    let w = allow(&[format!("*.allowed.test:{port}")]);
    let (code, out) = get(
        &s,
        &t,
        &w,
        &format!("http://api.allowed.test:{port}/"),
        None,
    )
    .await;
    assert_eq!(code, 99, "{out}");
    let (code, out) = get(&s, &t, &w, &format!("http://allowed.test:{port}/"), None).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reason=not-allowlisted"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tunnels_require_a_matching_sni() {
    let up = upstream().await;
    let s = proxied_sandbox();
    let t = tools();
    let port = up.port;
    let p = allow(&[format!("allowed.test:{port}"), "rebind.test".into()]);
    let target = format!("allowed.test:{port}");

    let (code, out) = probe(&s, &t, &p, &["proxy-connect", &target, "allowed.test"]).await;
    assert_eq!(code, 99, "matching SNI should tunnel: {out}");
    assert!(out.contains("UPSTREAM-GOT-HELLO"), "{out}");
    let before = up.seen.lock().unwrap().len();
    for sni in ["evil.test", "-", "allowed.test.evil.test"] {
        let (code, out) = probe(&s, &t, &p, &["proxy-connect", &target, sni]).await;
        assert_eq!(code, 0, "SNI {sni} was not refused: {out}");
        assert!(out.contains("access_denied"), "{out}");
    }
    // Trailing dot / case in the SNI are the same name.
    let (code, out) = probe(&s, &t, &p, &["proxy-connect", &target, "ALLOWED.test."]).await;
    assert_eq!(code, 99, "{out}");
    assert_eq!(
        up.seen.lock().unwrap().len(),
        before + 1,
        "a refused tunnel forwarded its ClientHello"
    );

    let (code, out) = probe(
        &s,
        &t,
        &p,
        &["proxy-connect", &format!("127.0.0.1:{port}"), "-"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reason=ip-literal"), "{out}");
    let (code, out) = probe(
        &s,
        &t,
        &p,
        &["proxy-connect", "rebind.test:443", "rebind.test"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reason=private-address"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_and_byte_is_reported() {
    let up = upstream().await;
    let s = proxied_sandbox();
    let t = tools();
    let port = up.port;
    let p = allow(&[format!("allowed.test:{port}")]);
    let h = t.harness.to_str().unwrap();
    let script = format!(
        "{h} probe proxy-get http://allowed.test:{port}/a; {h} probe proxy-get http://denied.test/; {h} probe proxy-connect allowed.test:{port} evil.test; true"
    );
    let cmd = dgc_sandbox::SandboxCommand::new(vec!["/bin/sh".into(), "-c".into(), script])
        .unwrap()
        .cwd("/");
    let mut child = s.spawn(cmd, &p).await.unwrap();
    let mut events = child.take_egress_events().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let r = out.result;
    assert!(r.success(), "{}", text(&out.stderr));
    let reasons: Vec<EgressReason> = r.egress.decisions.iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        [
            EgressReason::Allowed,
            EgressReason::NotAllowlisted,
            EgressReason::SniMismatch
        ]
    );
    assert_eq!((r.egress.allowed, r.egress.denied), (1, 2));
    assert!(
        r.egress.decisions[0]
            .address
            .is_some_and(|a| a.port() == port)
    );
    assert!(
        r.egress.bytes_sent > 30 && r.egress.bytes_received >= 19,
        "{:?}",
        r.egress
    );
    let mut live = Vec::new();
    while let Ok(d) = events.try_recv() {
        live.push(d.reason);
    }
    assert_eq!(live, reasons, "live decisions differ from the result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_egress_without_the_proxy_goes_nowhere() {
    let s = proxied_sandbox();
    let t = tools();
    // A host listener the sandbox must not reach even though it is "local".
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let host_addr = host.local_addr().unwrap().to_string();
    let p = allow(&["example.com".into()]);
    for target in [
        host_addr.as_str(),
        "192.0.2.1:80",
        "[2001:db8::1]:80",
        "[::1]:80",
    ] {
        assert_blocked(&s, &t, &p, &["connect-tcp", target]).await;
    }
    for target in ["192.0.2.1:53", "[2001:db8::1]:53"] {
        assert_blocked(&s, &t, &p, &["udp", target]).await;
    }
    assert!(
        host.accept().is_err(),
        "the host listener received a connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_unix_sockets_are_unreachable() {
    use std::os::unix::fs::PermissionsExt;
    let s = sandbox();
    let t = tools();
    let dir = tempfile::Builder::new()
        .prefix("dgc-it-sock-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    // Even a world-writable socket, which plain permissions would let anyone use.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let name = format!("dgc-it-abstract-{}", std::process::id());
    let abstract_listener = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
    };
    abstract_listener.set_nonblocking(true).unwrap();
    for p in [SandboxProfile::default(), allow(&["example.com".into()])] {
        assert_blocked(&s, &t, &p, &["connect-unix", path.to_str().unwrap()]).await;
        assert_blocked(&s, &t, &p, &["connect-abstract", &name]).await;
        assert_blocked(&s, &t, &p, &["connect-unix", "/var/run/docker.sock"]).await;
        assert_blocked(&s, &t, &p, &["connect-unix", "/run/systemd/private"]).await;
    }
    assert!(
        listener.accept().is_err(),
        "the host path socket received a connection"
    );
    assert!(
        abstract_listener.accept().is_err(),
        "the host abstract socket received a connection"
    );
}
