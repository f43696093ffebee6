//! Egress proxy cost: added latency per plain-HTTP request (new connection each, as the proxy
//! forces `Connection: close`) and throughput of a 50 MB download from a loopback server,
//! each against the same request made directly, interleaved in one run.
//!
//! `cargo bench -p dgc-sandbox --bench proxy` (env: `DGC_BENCH_REQUESTS`, default 2000;
//! `DGC_BENCH_DOWNLOADS`, default 10).
// A benchmark binary aborts on setup errors, like a test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dgc_sandbox::StaticResolver;
use dgc_sandbox::proxy::{EgressProxy, ProxyOptions};
use dgc_types::egress::{EgressAllowlist, HostPattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIG: usize = 50 * 1000 * 1000;

async fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let body = Arc::new(vec![b'x'; BIG]);
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let big = got.starts_with(b"GET /big");
                let len = if big { BIG } else { 2 };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = if big {
                    s.write_all(&body).await
                } else {
                    s.write_all(b"ok").await
                };
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

async fn fetch(connect: SocketAddr, request: &str) -> usize {
    let mut s = TcpStream::connect(connect).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

fn pct(mut v: Vec<Duration>, q: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("proxy: benchmark");
        return;
    }
    let requests: usize = std::env::var("DGC_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let downloads: usize = std::env::var("DGC_BENCH_DOWNLOADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let up = upstream().await;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let options = ProxyOptions {
            resolver: Arc::new(StaticResolver::new().with("bench.test", &[lo])),
            allowed_private: vec![lo],
            ..ProxyOptions::default()
        };
        let allow = EgressAllowlist(vec![
            HostPattern::parse(&format!("bench.test:{}", up.port())).unwrap(),
        ]);
        let proxy = EgressProxy::new(allow, options, None);
        let pl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let paddr = pl.local_addr().unwrap();
        tokio::spawn(proxy.clone().serve(pl));

        let direct_req = format!(
            "GET /small HTTP/1.1\r\nHost: bench.test:{}\r\nConnection: close\r\n\r\n",
            up.port()
        );
        let proxied_req = format!(
            "GET http://bench.test:{p}/small HTTP/1.1\r\nHost: bench.test:{p}\r\n\r\n",
            p = up.port()
        );
        for _ in 0..50 {
            fetch(up, &direct_req).await;
            fetch(paddr, &proxied_req).await;
        }
        let (mut d, mut p) = (Vec::new(), Vec::new());
        for _ in 0..requests {
            let t = Instant::now();
            fetch(up, &direct_req).await;
            d.push(t.elapsed());
            let t = Instant::now();
            fetch(paddr, &proxied_req).await;
            p.push(t.elapsed());
        }
        println!("plain HTTP request, new connection each, {requests} interleaved runs:");
        let (d50, d99, p50, p99) = (
            pct(d.clone(), 0.5),
            pct(d, 0.99),
            pct(p.clone(), 0.5),
            pct(p, 0.99),
        );
        println!("  direct      p50 {d50:>8.1} µs  p99 {d99:>8.1} µs");
        println!("  via proxy   p50 {p50:>8.1} µs  p99 {p99:>8.1} µs");
        println!(
            "  added       p50 {:>8.1} µs  p99 {:>8.1} µs",
            p50 - d50,
            p99 - d99
        );

        let direct_big = format!(
            "GET /big HTTP/1.1\r\nHost: bench.test:{}\r\nConnection: close\r\n\r\n",
            up.port()
        );
        let proxied_big = format!(
            "GET http://bench.test:{p}/big HTTP/1.1\r\nHost: bench.test:{p}\r\n\r\n",
            p = up.port()
        );
        let (mut dt, mut pt) = (Vec::new(), Vec::new());
        for _ in 0..downloads {
            let t = Instant::now();
            assert!(fetch(up, &direct_big).await > BIG);
            dt.push(t.elapsed());
            let t = Instant::now();
            assert!(fetch(paddr, &proxied_big).await > BIG);
            pt.push(t.elapsed());
        }
        let mbps = |v: Vec<Duration>| BIG as f64 / 1e6 / (pct(v, 0.5) / 1e6);
        println!("50 MB download from a loopback server, {downloads} interleaved runs (median):");
        let (a, b) = (mbps(dt), mbps(pt));
        println!("  direct      {a:>8.0} MB/s");
        println!(
            "  via proxy   {b:>8.0} MB/s  ({:.0}% of direct)",
            b / a * 100.0
        );
        let s = proxy.summary();
        println!(
            "  proxy counted {} allowed decisions, {} bytes received",
            s.allowed, s.bytes_received
        );
    });
}
