//! Attacks and observations run *inside* a sandbox by the integration tests, through the test
//! harness binary (`dgc-sandbox-harness probe NAME ARGS…`). Each prints one line; the exit code
//! is 0 when the attack was blocked (or the observation made), 99 when the attack succeeded and
//! 2 on bad usage. Not part of the public API.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

const ESCAPED: u8 = 99;

fn blocked(what: impl std::fmt::Display) -> ExitCode {
    println!("BLOCKED {what}");
    ExitCode::SUCCESS
}

fn escaped(what: impl std::fmt::Display) -> ExitCode {
    println!("ESCAPED {what}");
    ExitCode::from(ESCAPED)
}

fn usage() -> ExitCode {
    eprintln!("usage: probe NAME ARGS…");
    ExitCode::from(2)
}

fn outcome<T>(what: &str, r: std::io::Result<T>) -> ExitCode {
    match r {
        Ok(_) => escaped(what),
        Err(e) => blocked(format!("{what}: {e}")),
    }
}

/// Raw system call returning `-errno` as an error.
fn raw(nr: libc::c_long, args: [usize; 6]) -> std::io::Result<libc::c_long> {
    // SAFETY: every probe passes either integers or pointers to memory it owns for the call;
    // the point of the probe is to see the kernel (or seccomp) refuse.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn arg(args: &[String], i: usize) -> Option<&str> {
    args.get(i).map(String::as_str)
}

pub fn main(args: &[String]) -> ExitCode {
    let Some(name) = arg(args, 0) else {
        return usage();
    };
    let a1 = arg(args, 1).unwrap_or("");
    let a2 = arg(args, 2).unwrap_or("");
    match name {
        // --- filesystem
        "write" => outcome(&format!("write {a1}"), std::fs::write(a1, b"pwned")),
        "append" => outcome(
            &format!("append {a1}"),
            std::fs::OpenOptions::new()
                .append(true)
                .open(a1)
                .and_then(|mut f| f.write_all(b"pwned")),
        ),
        "mkdir" => outcome(&format!("mkdir {a1}"), std::fs::create_dir(a1)),
        "remove" => outcome(
            &format!("remove {a1}"),
            std::fs::remove_file(a1).or_else(|_| std::fs::remove_dir(a1)),
        ),
        "rename" => outcome(&format!("rename {a1} {a2}"), std::fs::rename(a1, a2)),
        "read" => match std::fs::read(a1) {
            Ok(b) if !b.is_empty() => escaped(format!("read {a1}: {} bytes", b.len())),
            Ok(_) => blocked(format!("read {a1}: empty")),
            Err(e) => blocked(format!("read {a1}: {e}")),
        },
        "list" => match std::fs::read_dir(a1) {
            Ok(d) => {
                let names: Vec<String> = d
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                if names.is_empty() {
                    blocked(format!("list {a1}: empty"))
                } else {
                    escaped(format!("list {a1}: {}", names.join(",")))
                }
            }
            Err(e) => blocked(format!("list {a1}: {e}")),
        },
        "open-write" => outcome(
            &format!("open {a1} for writing"),
            std::fs::OpenOptions::new().write(true).open(a1),
        ),
        "symlink-write" => {
            // Plant a symlink in a writable place pointing outside, then write through it.
            let _ = std::os::unix::fs::symlink(a1, a2);
            outcome(
                &format!("write through {a2} -> {a1}"),
                std::fs::write(a2, b"pwned"),
            )
        }
        "hardlink-write" => {
            let r = std::fs::hard_link(a1, a2)
                .and_then(|()| std::fs::OpenOptions::new().append(true).open(a2))
                .and_then(|mut f| f.write_all(b"pwned"));
            outcome(&format!("hard link {a1} as {a2} and write"), r)
        }
        "mknod" => {
            let c = CString::new(a1).unwrap_or_default();
            // SAFETY: `c` is a valid C string.
            let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
            outcome(
                "mknod",
                if r == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                },
            )
        }
        "fill" => {
            // Write until the filesystem refuses; print how much got through.
            let mut f = match std::fs::File::create(a1) {
                Ok(f) => f,
                Err(e) => return blocked(format!("create {a1}: {e}")),
            };
            let chunk = vec![0x5au8; 1 << 20];
            let mut total = 0u64;
            loop {
                match f.write(&chunk) {
                    Ok(0) => return blocked(format!("fill stopped after {total} bytes")),
                    Ok(n) => total += n as u64,
                    Err(e) => return blocked(format!("fill stopped after {total} bytes: {e}")),
                }
                if total > 8 << 30 {
                    return escaped(format!("wrote {total} bytes"));
                }
            }
        }

        // --- processes and privileges
        "ptrace" => {
            let pid: usize = a1.parse().unwrap_or(1);
            outcome(
                &format!("ptrace attach {pid}"),
                raw(
                    libc::SYS_ptrace,
                    [libc::PTRACE_ATTACH as usize, pid, 0, 0, 0, 0],
                ),
            )
        }
        "process-vm-readv" => {
            let pid: usize = a1.parse().unwrap_or(1);
            let mut buf = [0u8; 8];
            let local = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: 8,
            };
            let remote = libc::iovec {
                iov_base: 0x400000 as *mut libc::c_void,
                iov_len: 8,
            };
            outcome(
                &format!("process_vm_readv {pid}"),
                raw(
                    libc::SYS_process_vm_readv,
                    [
                        pid,
                        &local as *const _ as usize,
                        1,
                        &remote as *const _ as usize,
                        1,
                        0,
                    ],
                ),
            )
        }
        "kill" => {
            let pid: i32 = a1.parse().unwrap_or(0);
            // SAFETY: kill takes integers.
            let r = unsafe { libc::kill(pid, libc::SIGKILL) };
            outcome(
                &format!("kill {pid}"),
                if r == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                },
            )
        }
        "unshare" => {
            let flags = match a1 {
                "user" => libc::CLONE_NEWUSER,
                "mount" => libc::CLONE_NEWNS,
                "net" => libc::CLONE_NEWNET,
                "pid" => libc::CLONE_NEWPID,
                _ => return usage(),
            };
            outcome(
                &format!("unshare {a1}"),
                raw(libc::SYS_unshare, [flags as usize, 0, 0, 0, 0, 0]),
            )
        }
        "clone-newuser" => {
            // A fork-like clone asking for a new user namespace.
            match raw(
                libc::SYS_clone,
                [
                    (libc::CLONE_NEWUSER | libc::SIGCHLD) as usize,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
            ) {
                Ok(0) => std::process::exit(0),
                Ok(_) => escaped("clone(CLONE_NEWUSER)"),
                Err(e) => blocked(format!("clone(CLONE_NEWUSER): {e}")),
            }
        }
        "setns" => {
            let f = std::fs::File::open("/proc/self/ns/net");
            match f {
                Ok(f) => {
                    use std::os::fd::AsRawFd;
                    outcome(
                        "setns",
                        raw(libc::SYS_setns, [f.as_raw_fd() as usize, 0, 0, 0, 0, 0]),
                    )
                }
                Err(e) => blocked(format!("setns: {e}")),
            }
        }
        "mount" => {
            let t = CString::new("tmpfs").unwrap_or_default();
            let d = CString::new(if a1.is_empty() { "/tmp" } else { a1 }).unwrap_or_default();
            outcome(
                "mount tmpfs",
                raw(
                    libc::SYS_mount,
                    [
                        t.as_ptr() as usize,
                        d.as_ptr() as usize,
                        t.as_ptr() as usize,
                        0,
                        0,
                        0,
                    ],
                ),
            )
        }
        "umount" => {
            let d = CString::new(if a1.is_empty() { "/proc" } else { a1 }).unwrap_or_default();
            outcome(
                "umount",
                raw(
                    libc::SYS_umount2,
                    [d.as_ptr() as usize, libc::MNT_DETACH as usize, 0, 0, 0, 0],
                ),
            )
        }
        "pivot-root" => {
            let d = CString::new("/tmp").unwrap_or_default();
            outcome(
                "pivot_root",
                raw(
                    libc::SYS_pivot_root,
                    [d.as_ptr() as usize, d.as_ptr() as usize, 0, 0, 0, 0],
                ),
            )
        }
        "chroot" => {
            let d = CString::new("/tmp").unwrap_or_default();
            outcome(
                "chroot",
                raw(libc::SYS_chroot, [d.as_ptr() as usize, 0, 0, 0, 0, 0]),
            )
        }
        "bpf" => {
            // BPF_MAP_CREATE with a tiny array map.
            let attr: [u32; 16] = [2, 4, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            outcome(
                "bpf(BPF_MAP_CREATE)",
                raw(
                    libc::SYS_bpf,
                    [
                        0,
                        attr.as_ptr() as usize,
                        std::mem::size_of_val(&attr),
                        0,
                        0,
                        0,
                    ],
                ),
            )
        }
        "perf-event-open" => {
            let mut attr = [0u8; 128];
            attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size; type 0 = hardware, config 0 = cycles
            outcome(
                "perf_event_open",
                raw(
                    libc::SYS_perf_event_open,
                    [attr.as_ptr() as usize, 0, usize::MAX, usize::MAX, 0, 0],
                ),
            )
        }
        "userfaultfd" => outcome(
            "userfaultfd",
            raw(libc::SYS_userfaultfd, [0, 0, 0, 0, 0, 0]),
        ),
        "keyctl" => outcome(
            "keyctl(JOIN_SESSION_KEYRING)",
            raw(libc::SYS_keyctl, [1, 0, 0, 0, 0, 0]),
        ),
        "add-key" => {
            let t = CString::new("user").unwrap_or_default();
            let d = CString::new("dgc").unwrap_or_default();
            outcome(
                "add_key",
                raw(
                    libc::SYS_add_key,
                    [
                        t.as_ptr() as usize,
                        d.as_ptr() as usize,
                        d.as_ptr() as usize,
                        3,
                        (-3i32) as usize,
                        0,
                    ],
                ),
            )
        }
        "io-uring" => {
            let params = [0u8; 120];
            outcome(
                "io_uring_setup",
                raw(
                    libc::SYS_io_uring_setup,
                    [8, params.as_ptr() as usize, 0, 0, 0, 0],
                ),
            )
        }
        "kexec" => outcome("kexec_load", raw(libc::SYS_kexec_load, [0, 0, 0, 0, 0, 0])),
        "init-module" => outcome(
            "init_module",
            raw(libc::SYS_init_module, [0, 0, 0, 0, 0, 0]),
        ),
        "tiocsti" => {
            let c = b'x';
            outcome(
                "ioctl(TIOCSTI)",
                raw(
                    libc::SYS_ioctl,
                    [0, 0x5412, &c as *const u8 as usize, 0, 0, 0],
                ),
            )
        }
        "ids" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let pick = |k: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(k))
                    .map(|l| l[k.len()..].trim().to_string())
                    .unwrap_or_default()
            };
            // SAFETY: trivial getters.
            let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
            println!(
                "uid={uid} euid={euid} caps={} bnd={} nnp={} seccomp={}",
                pick("CapEff:"),
                pick("CapBnd:"),
                pick("NoNewPrivs:"),
                pick("Seccomp:")
            );
            if euid == 0 || pick("CapEff:") != "0000000000000000" {
                ExitCode::from(ESCAPED)
            } else {
                ExitCode::SUCCESS
            }
        }
        "fds" => {
            let mut extra = Vec::new();
            if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
                for e in d.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let target = std::fs::read_link(e.path())
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    if !matches!(n.as_str(), "0" | "1" | "2") && !target.starts_with("/proc/") {
                        extra.push(format!("{n}->{target}"));
                    }
                }
            }
            if extra.is_empty() {
                blocked("no descriptors beyond 0-2")
            } else {
                escaped(format!("leaked fds: {}", extra.join(", ")))
            }
        }

        // --- sockets
        "socket" => {
            let (domain, ty, proto) = match a1 {
                "vsock" => (libc::AF_VSOCK, libc::SOCK_STREAM, 0),
                "netlink" => (libc::AF_NETLINK, libc::SOCK_RAW, 0),
                "packet" => (libc::AF_PACKET, libc::SOCK_RAW, 0),
                "raw" => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
                "raw6" => (libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6),
                "inet" => (libc::AF_INET, libc::SOCK_STREAM, 0),
                _ => return usage(),
            };
            outcome(
                &format!("socket({a1})"),
                raw(
                    libc::SYS_socket,
                    [domain as usize, ty as usize, proto as usize, 0, 0, 0],
                ),
            )
        }
        "connect-unix" => outcome(&format!("connect {a1}"), UnixStream::connect(a1)),
        "connect-abstract" => {
            use std::os::linux::net::SocketAddrExt;
            let r = std::os::unix::net::SocketAddr::from_abstract_name(a1.as_bytes())
                .and_then(|a| UnixStream::connect_addr(&a));
            outcome(&format!("connect @{a1}"), r)
        }
        "connect-tcp" => match a1.parse::<SocketAddr>() {
            Ok(addr) => outcome(
                &format!("connect {addr}"),
                TcpStream::connect_timeout(&addr, Duration::from_secs(2)),
            ),
            Err(_) => usage(),
        },
        "udp" => match a1.parse::<SocketAddr>() {
            Ok(addr) => {
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let r = UdpSocket::bind(bind).and_then(|s| {
                    s.set_read_timeout(Some(Duration::from_secs(1)))?;
                    s.send_to(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", addr)?;
                    let mut b = [0u8; 512];
                    s.recv_from(&mut b)
                });
                outcome(&format!("udp to {addr}"), r)
            }
            Err(_) => usage(),
        },

        // --- through the egress proxy (127.0.0.1:3128 inside the sandbox)
        "proxy-get" => proxy_get(a1, a2),
        "proxy-connect" => proxy_connect(a1, a2),

        // --- resource limits
        "forkbomb" => forkbomb(a1.parse().unwrap_or(1000)),
        "membomb" => {
            let mut v: Vec<Vec<u8>> = Vec::new();
            for i in 0..100_000usize {
                let mut chunk = vec![0u8; 8 << 20];
                for j in (0..chunk.len()).step_by(4096) {
                    chunk[j] = i as u8;
                }
                v.push(chunk);
            }
            escaped(format!("allocated {} MiB", v.len() * 8))
        }
        "daemon" => daemon(a1),
        "sleep" => {
            std::thread::sleep(Duration::from_secs(a2.parse().unwrap_or(300)));
            ExitCode::SUCCESS
        }
        "spin" => loop {
            std::hint::spin_loop();
        },
        "echo-stdin" => {
            // Line-oriented echo for interactive tests.
            let mut line = String::new();
            let stdin = std::io::stdin();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => return ExitCode::SUCCESS,
                    Ok(_) => {
                        print!("echo: {line}");
                        let _ = std::io::stdout().flush();
                    }
                }
            }
        }
        "spew" => {
            let n: u64 = a1.parse().unwrap_or(1 << 20);
            let chunk = vec![b'y'; 64 * 1024];
            let mut out = std::io::stdout().lock();
            let mut sent = 0u64;
            while sent < n {
                let k = chunk.len().min((n - sent) as usize);
                if out.write_all(&chunk[..k]).is_err() {
                    break;
                }
                sent += k as u64;
            }
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}

fn forkbomb(max: usize) -> ExitCode {
    let mut n = 0usize;
    for _ in 0..max {
        // SAFETY: the probe is single-threaded; children only pause and never return here.
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            },
            -1 => {
                let e = std::io::Error::last_os_error();
                return blocked(format!("fork refused after {n} children: {e}"));
            }
            _ => n += 1,
        }
    }
    escaped(format!("forked {n} children"))
}

fn daemon(marker: &str) -> ExitCode {
    // Classic double fork + setsid; the grandchild re-execs itself with the marker in argv so the
    // test can look for it on the host afterwards.
    let exe = std::env::current_exe().unwrap_or_default();
    // SAFETY: single-threaded probe; the children exec or exit immediately.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: as above.
            unsafe { libc::setsid() };
            // SAFETY: as above.
            if unsafe { libc::fork() } == 0 {
                let err = std::os::unix::process::CommandExt::exec(
                    std::process::Command::new(exe)
                        .args(["probe", "sleep", marker, "300"])
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null()),
                );
                eprintln!("exec: {err}");
            }
            std::process::exit(0);
        }
        -1 => blocked("fork failed"),
        _ => {
            std::thread::sleep(Duration::from_millis(300));
            println!("DAEMONIZED {marker}");
            ExitCode::SUCCESS
        }
    }
}

fn proxy_stream() -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(
        &"127.0.0.1:3128".parse().map_err(std::io::Error::other)?,
        Duration::from_secs(5),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 16384 {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn summarize(head: &str) -> String {
    let status = head.lines().next().unwrap_or("").to_string();
    let egress = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-dgc-egress:"))
        .unwrap_or("")
        .to_string();
    format!("{status} | {egress}")
}

/// `proxy-get URL [HOST-HEADER]`: absolute-form GET through the proxy; prints status and body.
fn proxy_get(url: &str, host_header: &str) -> ExitCode {
    let mut s = match proxy_stream() {
        Ok(s) => s,
        Err(e) => return blocked(format!("proxy unreachable: {e}")),
    };
    let host = if host_header.is_empty() {
        url.trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    } else {
        host_header.to_string()
    };
    let req = format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if let Err(e) = s.write_all(req.as_bytes()) {
        return blocked(format!("write: {e}"));
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let head_end = text.find("\r\n\r\n").unwrap_or(text.len());
    let body = text.get(head_end + 4..).unwrap_or("").trim().to_string();
    let line = format!("{} | body={body:.200}", summarize(&text[..head_end]));
    if text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200") {
        escaped(line)
    } else {
        blocked(line)
    }
}

/// `proxy-connect HOST:PORT SNI|-`: CONNECT, then a TLS ClientHello naming SNI (`-`: none).
/// Prints what came back; "ESCAPED" when the upstream answered through the tunnel.
fn proxy_connect(target: &str, sni: &str) -> ExitCode {
    let mut s = match proxy_stream() {
        Ok(s) => s,
        Err(e) => return blocked(format!("proxy unreachable: {e}")),
    };
    if let Err(e) =
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
    {
        return blocked(format!("write: {e}"));
    }
    let head = read_head(&mut s);
    if !head.starts_with("HTTP/1.1 200") {
        return blocked(format!("CONNECT refused: {}", summarize(&head)));
    }
    let hello = crate::proxy::tls::client_hello(if sni == "-" { None } else { Some(sni) });
    if let Err(e) = s.write_all(&hello) {
        return blocked(format!("tunnel closed: {e}"));
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    if resp.starts_with(&crate::proxy::tls::ALERT_ACCESS_DENIED) {
        blocked("tunnel refused with a TLS access_denied alert")
    } else if resp.is_empty() {
        blocked("tunnel closed without data")
    } else {
        escaped(format!(
            "upstream answered: {}",
            String::from_utf8_lossy(&resp)
                .chars()
                .take(100)
                .collect::<String>()
        ))
    }
}
