//! End-to-end tests of the `dgc` binary: a real `dgc serve` process on a loopback port, driven by
//! the CLI and plain HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

mod audit;
mod cli;
mod gates;
mod sandbox;
mod serve;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dgc");

/// A running `dgc serve` whose output is captured.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({})", self.url)
    }
}

fn pump(r: impl std::io::Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

impl Server {
    /// Starts `dgc serve` on a free port; waits until it prints its address.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::try_start(data_dir, extra).unwrap_or_else(|(out, err)| {
            panic!("dgc serve did not start\nstdout:\n{out}\nstderr:\n{err}")
        })
    }

    /// Like `start`, but returns the captured output if the process exits instead.
    pub fn try_start(data_dir: &Path, extra: &[&str]) -> Result<Self, (String, String)> {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir);
        cmd.args(extra)
            .env_remove("DGC_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn dgc");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        pump(child.stdout.take().unwrap(), stdout.clone());
        pump(child.stderr.take().unwrap(), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = stdout
                .lock()
                .unwrap()
                .lines()
                .find(|l| l.contains("listening on http://"))
                .map(|line| {
                    line.split("listening on ")
                        .nth(1)
                        .unwrap()
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_string()
                });
            if let Some(url) = found {
                return Ok(Self {
                    child,
                    url,
                    data_dir: data_dir.to_path_buf(),
                    stdout,
                    stderr,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err((
                    stdout.lock().unwrap().clone(),
                    stderr.lock().unwrap().clone(),
                ));
            }
            assert!(Instant::now() < deadline, "dgc serve did not start in 30s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.key"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Sends a signal and waits for exit; returns the exit code.
    pub fn stop(mut self, signal: &str) -> (i32, String, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{signal}"), &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "dgc serve did not exit after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), out, err)
    }

    /// Runs a CLI command against this server with the admin key.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_key(&self.admin_key(), args)
    }

    pub fn cli_with_key(&self, key: &str, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .args(args)
            .env("DGC_URL", &self.url)
            .env("DGC_API_KEY", key)
            .env_remove("DGC_API_KEY_FILE")
            .output()
            .expect("run dgc cli");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout.trim()
    }
}

/// Minimal blocking HTTP over a TCP socket, so these tests need no HTTP client crate.
pub fn http(
    url: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}
