//! DGC's egress proxy: the only way out of a sandbox's network namespace. It serves `CONNECT`
//! and absolute-form HTTP on a listener that lives inside the sandbox's namespace (created there
//! by the sandbox init and handed over with `SCM_RIGHTS`), checks each destination against the
//! profile's allowlist (normalised by [`dgc_types::egress`]), resolves names itself, refuses
//! private/loopback/link-local/metadata answers unless explicitly allowed, connects to exactly the
//! address it checked, compares the TLS SNI with the `CONNECT` host, and reports every decision.

pub mod addr;
pub mod http;
pub mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dgc_types::egress::{EgressAllowlist, Host, normalize_host};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// Most decisions kept in a sandbox's result (later ones are counted, not stored).
pub const MAX_RECORDED_DECISIONS: usize = 10_000;

/// Resolves host names for the proxy. The system resolver is the default; a static table is
/// available for pinned names and for tests (DNS is outside the machine).
pub trait Resolve: Send + Sync + std::fmt::Debug {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// `getaddrinfo` through tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host, port))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A fixed name → addresses table (names are normalised like allowlist entries).
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    map: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        let key = match normalize_host(name) {
            Ok(Host::Name(n)) => n,
            _ => name.to_ascii_lowercase(),
        };
        self.map.insert(key, addrs.to_vec());
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        let r = self
            .map
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"));
        Box::pin(async move { r })
    }
}

/// Host-level proxy settings (not part of an agent's profile).
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub resolver: Arc<dyn Resolve>,
    /// Resolved addresses allowed even though they are private/loopback (operator's choice, e.g.
    /// an internal service, or a loopback test server). Never set by default.
    pub allowed_private: Vec<IpAddr>,
    pub max_connections: usize,
    pub connect_timeout: Duration,
    /// Time allowed for the request head and for the TLS ClientHello.
    pub header_timeout: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            resolver: Arc::new(SystemResolver),
            allowed_private: Vec::new(),
            max_connections: 64,
            connect_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a request was allowed or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EgressReason {
    Allowed,
    NotAllowlisted,
    IpLiteral,
    PrivateAddress,
    DnsFailure,
    SniMismatch,
    NoSni,
    NotTls,
    HostHeaderMismatch,
    BadRequest,
    TooManyConnections,
    ConnectFailed,
}

impl EgressReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::NotAllowlisted => "not-allowlisted",
            Self::IpLiteral => "ip-literal",
            Self::PrivateAddress => "private-address",
            Self::DnsFailure => "dns-failure",
            Self::SniMismatch => "sni-mismatch",
            Self::NoSni => "no-sni",
            Self::NotTls => "not-tls",
            Self::HostHeaderMismatch => "host-header-mismatch",
            Self::BadRequest => "bad-request",
            Self::TooManyConnections => "too-many-connections",
            Self::ConnectFailed => "connect-failed",
        }
    }
}

/// One egress decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressDecision {
    pub seq: u64,
    /// `CONNECT`, `GET`, … (empty when the request could not be parsed).
    pub method: String,
    /// Host as requested (before normalisation), and port.
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    pub reason: EgressReason,
    /// The address connected to (allowed requests) or refused.
    pub address: Option<SocketAddr>,
    pub detail: String,
}

/// Per-sandbox egress totals and the recorded decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressSummary {
    pub decisions: Vec<EgressDecision>,
    pub allowed: u64,
    pub denied: u64,
    /// Bytes from the sandbox to destinations.
    pub bytes_sent: u64,
    /// Bytes from destinations to the sandbox.
    pub bytes_received: u64,
    /// Decisions counted but not stored (past [`MAX_RECORDED_DECISIONS`]).
    pub decisions_dropped: u64,
}

/// One proxy instance (one per sandbox): policy, counters and the decision log.
#[derive(Debug)]
pub struct EgressProxy {
    allowlist: EgressAllowlist,
    options: ProxyOptions,
    seq: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    log: Mutex<EgressSummary>,
    events: Option<mpsc::Sender<EgressDecision>>,
    conns: Semaphore,
}

impl EgressProxy {
    /// `events` receives every decision as it is made (dropped if the receiver lags).
    pub fn new(
        allowlist: EgressAllowlist,
        options: ProxyOptions,
        events: Option<mpsc::Sender<EgressDecision>>,
    ) -> Arc<Self> {
        let conns = Semaphore::new(options.max_connections);
        Arc::new(Self {
            allowlist,
            options,
            seq: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            log: Mutex::new(EgressSummary::default()),
            events,
            conns,
        })
    }

    /// Accepts and serves connections until the task is aborted.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let me = self.clone();
                        tasks.spawn(async move { me.handle(stream).await });
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }

    /// Totals and decisions so far.
    pub fn summary(&self) -> EgressSummary {
        let mut s = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        s.bytes_sent = self.sent.load(Ordering::Relaxed);
        s.bytes_received = self.received.load(Ordering::Relaxed);
        s
    }

    fn record(
        &self,
        method: &str,
        host: &str,
        port: u16,
        reason: EgressReason,
        address: Option<SocketAddr>,
        detail: String,
    ) {
        let allowed = matches!(reason, EgressReason::Allowed | EgressReason::ConnectFailed);
        let d = EgressDecision {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            method: method.to_string(),
            host: host.chars().take(300).collect(),
            port,
            allowed,
            reason,
            address,
            detail,
        };
        tracing::debug!(host = %d.host, port, reason = reason.as_str(), "egress decision");
        if let Some(tx) = &self.events {
            let _ = tx.try_send(d.clone());
        }
        if let Ok(mut log) = self.log.lock() {
            if allowed {
                log.allowed += 1;
            } else {
                log.denied += 1;
            }
            if log.decisions.len() < MAX_RECORDED_DECISIONS {
                log.decisions.push(d);
            } else {
                log.decisions_dropped += 1;
            }
        }
    }

    async fn handle(self: Arc<Self>, mut client: TcpStream) {
        let Ok(_permit) = self.conns.try_acquire() else {
            self.record(
                "",
                "",
                0,
                EgressReason::TooManyConnections,
                None,
                format!(
                    "more than {} concurrent connections",
                    self.options.max_connections
                ),
            );
            let _ = refuse(
                &mut client,
                503,
                EgressReason::TooManyConnections,
                "too many connections",
            )
            .await;
            return;
        };
        let _ = client.set_nodelay(true);
        let mut buf = Vec::with_capacity(2048);
        let head = match tokio::time::timeout(
            self.options.header_timeout,
            read_head(&mut client, &mut buf),
        )
        .await
        {
            Ok(Ok(h)) => h,
            Ok(Err(msg)) => {
                self.record("", "", 0, EgressReason::BadRequest, None, msg.clone());
                let _ = refuse(&mut client, 400, EgressReason::BadRequest, &msg).await;
                return;
            }
            Err(_) => return,
        };
        let rest = buf[head.len..].to_vec();
        if head.method.eq_ignore_ascii_case("CONNECT") {
            self.connect(client, head, rest).await;
        } else {
            self.forward(client, head, rest).await;
        }
    }

    /// Policy for `host:port`: the addresses to try, or the refusal.
    async fn check(
        &self,
        host: &str,
        port: u16,
    ) -> Result<(Host, Vec<SocketAddr>), (EgressReason, String)> {
        let h = normalize_host(host).map_err(|e| (EgressReason::BadRequest, e.to_string()))?;
        match &h {
            Host::Ip(ip) => {
                if self.allowlist.names_ip(*ip, port) {
                    Ok((h.clone(), vec![SocketAddr::new(*ip, port)]))
                } else {
                    Err((
                        EgressReason::IpLiteral,
                        format!("IP literal {ip} is not in the allowlist"),
                    ))
                }
            }
            Host::Name(name) => {
                if !self.allowlist.allows(name, port) {
                    return Err((
                        EgressReason::NotAllowlisted,
                        format!("{name}:{port} matches no allowlist entry"),
                    ));
                }
                let ips = match tokio::time::timeout(
                    self.options.connect_timeout,
                    self.options.resolver.resolve(name, port),
                )
                .await
                {
                    Ok(Ok(ips)) if !ips.is_empty() => ips,
                    Ok(Ok(_)) => {
                        return Err((EgressReason::DnsFailure, format!("{name} has no addresses")));
                    }
                    Ok(Err(e)) => {
                        return Err((EgressReason::DnsFailure, format!("resolving {name}: {e}")));
                    }
                    Err(_) => {
                        return Err((
                            EgressReason::DnsFailure,
                            format!("resolving {name} timed out"),
                        ));
                    }
                };
                let mut ok = Vec::new();
                let mut refused = Vec::new();
                for ip in ips {
                    let ip = match ip {
                        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                        v4 => v4,
                    };
                    match addr::forbidden_reason(ip) {
                        Some(why)
                            if !self.options.allowed_private.contains(&ip)
                                && !self.allowlist.names_ip(ip, port) =>
                        {
                            refused.push(format!("{ip} ({why})"));
                        }
                        _ => ok.push(SocketAddr::new(ip, port)),
                    }
                }
                if ok.is_empty() {
                    return Err((
                        EgressReason::PrivateAddress,
                        format!(
                            "{name} resolves only to refused addresses: {}",
                            refused.join(", ")
                        ),
                    ));
                }
                Ok((h.clone(), ok))
            }
        }
    }

    async fn dial(&self, addrs: &[SocketAddr]) -> Result<TcpStream, String> {
        let mut last = String::from("no address");
        for a in addrs {
            match tokio::time::timeout(self.options.connect_timeout, TcpStream::connect(a)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Ok(Err(e)) => last = format!("{a}: {e}"),
                Err(_) => last = format!("{a}: connect timed out"),
            }
        }
        Err(last)
    }

    async fn connect(&self, mut client: TcpStream, head: http::Head, mut early: Vec<u8>) {
        let (host, port) = match http::split_authority(&head.target, None) {
            Ok(x) => x,
            Err(msg) => {
                self.record(
                    "CONNECT",
                    &head.target,
                    0,
                    EgressReason::BadRequest,
                    None,
                    msg.clone(),
                );
                let _ = refuse(&mut client, 400, EgressReason::BadRequest, &msg).await;
                return;
            }
        };
        let (normal, addrs) = match self.check(&host, port).await {
            Ok(x) => x,
            Err((reason, msg)) => {
                self.record("CONNECT", &host, port, reason, None, msg.clone());
                let _ = refuse(&mut client, 403, reason, &msg).await;
                return;
            }
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        // The tunnel only opens once the ClientHello names the host that was checked; the
        // refusal then can only be a TLS alert (the 200 is already on the wire).
        let verdict = tokio::time::timeout(self.options.header_timeout, async {
            loop {
                match tls::parse(&early) {
                    tls::Hello::NeedMore => {}
                    other => return other,
                }
                if early.len() > tls::MAX_HELLO + 5 * 8 {
                    return tls::Hello::Malformed("ClientHello too large");
                }
                let mut chunk = [0u8; 4096];
                match client.read(&mut chunk).await {
                    Ok(0) | Err(_) => {
                        return tls::Hello::Malformed("client closed before its ClientHello");
                    }
                    Ok(n) => early.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .unwrap_or(tls::Hello::Malformed("no ClientHello in time"));
        let refusal = match verdict {
            tls::Hello::ClientHello { sni: Some(sni) } => match (normalize_host(&sni), &normal) {
                (Ok(s), n) if &s == n => None,
                _ => Some((
                    EgressReason::SniMismatch,
                    format!("SNI {sni:?} differs from CONNECT host {host:?}"),
                )),
            },
            tls::Hello::ClientHello { sni: None } => match normal {
                Host::Ip(_) => None,
                Host::Name(_) => Some((
                    EgressReason::NoSni,
                    "TLS ClientHello without SNI for a named host".to_string(),
                )),
            },
            tls::Hello::NotTls => {
                Some((EgressReason::NotTls, "tunnels carry TLS only".to_string()))
            }
            tls::Hello::Malformed(why) => Some((EgressReason::NotTls, why.to_string())),
            tls::Hello::NeedMore => {
                Some((EgressReason::NotTls, "incomplete ClientHello".to_string()))
            }
        };
        if let Some((reason, msg)) = refusal {
            self.record("CONNECT", &host, port, reason, addrs.first().copied(), msg);
            let _ = client.write_all(&tls::ALERT_ACCESS_DENIED).await;
            let _ = client.shutdown().await;
            return;
        }
        // Only now, with the ClientHello checked, does anything reach the destination.
        let mut upstream = match self.dial(&addrs).await {
            Ok(s) => s,
            Err(msg) => {
                self.record(
                    "CONNECT",
                    &host,
                    port,
                    EgressReason::ConnectFailed,
                    addrs.first().copied(),
                    msg,
                );
                let _ = client.write_all(&tls::ALERT_INTERNAL_ERROR).await;
                let _ = client.shutdown().await;
                return;
            }
        };
        self.record(
            "CONNECT",
            &host,
            port,
            EgressReason::Allowed,
            upstream.peer_addr().ok(),
            String::new(),
        );
        if upstream.write_all(&early).await.is_err() {
            return;
        }
        self.sent.fetch_add(early.len() as u64, Ordering::Relaxed);
        self.splice(client, upstream).await;
    }

    async fn forward(&self, mut client: TcpStream, head: http::Head, early: Vec<u8>) {
        let (host, port, path) = match http::split_absolute(&head.target) {
            Ok(x) => x,
            Err(msg) => {
                self.record(
                    &head.method,
                    &head.target,
                    0,
                    EgressReason::BadRequest,
                    None,
                    msg.clone(),
                );
                let _ = refuse(&mut client, 400, EgressReason::BadRequest, &msg).await;
                return;
            }
        };
        // A Host header naming a different server than the URL is the plain-HTTP form of
        // domain fronting.
        let host_headers: Vec<&Vec<u8>> = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v)
            .collect();
        let mismatch = match host_headers.as_slice() {
            [] => None,
            [one] => {
                let v = String::from_utf8_lossy(one);
                match http::split_authority(v.trim(), Some(80)) {
                    Ok((hh, hp))
                        if hp == port && normalize_host(&hh).ok() == normalize_host(&host).ok() =>
                    {
                        None
                    }
                    _ => Some(format!(
                        "Host header {v:?} differs from the URL host {host}:{port}"
                    )),
                }
            }
            _ => Some("more than one Host header".to_string()),
        };
        if let Some(msg) = mismatch {
            self.record(
                &head.method,
                &host,
                port,
                EgressReason::HostHeaderMismatch,
                None,
                msg.clone(),
            );
            let _ = refuse(&mut client, 403, EgressReason::HostHeaderMismatch, &msg).await;
            return;
        }
        let (_, addrs) = match self.check(&host, port).await {
            Ok(x) => x,
            Err((reason, msg)) => {
                self.record(&head.method, &host, port, reason, None, msg.clone());
                let _ = refuse(&mut client, 403, reason, &msg).await;
                return;
            }
        };
        let mut upstream = match self.dial(&addrs).await {
            Ok(s) => s,
            Err(msg) => {
                self.record(
                    &head.method,
                    &host,
                    port,
                    EgressReason::ConnectFailed,
                    addrs.first().copied(),
                    msg.clone(),
                );
                let _ = refuse(&mut client, 502, EgressReason::ConnectFailed, &msg).await;
                return;
            }
        };
        self.record(
            &head.method,
            &host,
            port,
            EgressReason::Allowed,
            upstream.peer_addr().ok(),
            String::new(),
        );
        let host_header = if port == 80 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let mut req = http::rewrite(&head, &path, &host_header);
        req.extend_from_slice(&early);
        if upstream.write_all(&req).await.is_err() {
            return;
        }
        self.sent.fetch_add(req.len() as u64, Ordering::Relaxed);
        self.splice(client, upstream).await;
    }

    /// Copies both ways until both sides are done, counting bytes as they pass.
    async fn splice(&self, client: TcpStream, upstream: TcpStream) {
        let (cr, cw) = client.into_split();
        let (ur, uw) = upstream.into_split();
        tokio::join!(pump(cr, uw, &self.sent), pump(ur, cw, &self.received));
    }
}

async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut r: R,
    mut w: W,
    counter: &AtomicU64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = w.shutdown().await;
}

async fn read_head(client: &mut TcpStream, buf: &mut Vec<u8>) -> Result<http::Head, String> {
    let mut chunk = [0u8; 4096];
    loop {
        match http::parse_head(buf) {
            http::Parsed::Complete(h) => return Ok(h),
            http::Parsed::Invalid(msg) => return Err(msg),
            http::Parsed::Partial => {}
        }
        let n = client.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the request head ended".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn refuse(
    client: &mut TcpStream,
    status: u16,
    reason: EgressReason,
    msg: &str,
) -> io::Result<()> {
    let text = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    };
    let verdict = if status == 502 { "error" } else { "denied" };
    let body = format!("DGC egress proxy: {verdict} ({}): {msg}\n", reason.as_str());
    let resp = format!(
        "HTTP/1.1 {status} {text}\r\nX-DGC-Egress: {verdict}; reason={}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason.as_str(),
        body.len()
    );
    client.write_all(resp.as_bytes()).await?;
    client.shutdown().await
}
