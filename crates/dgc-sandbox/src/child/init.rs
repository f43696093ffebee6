//! The sandbox init: pid 1 of the new pid namespace. It builds the filesystem view, drops every
//! privilege, applies landlock and seccomp to itself, then forks the workload and reaps until
//! the workload ends. When it exits the kernel kills everything left in the namespace, so no
//! daemon (setsid, double fork) outlives the run.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{SETUP_FAILED, landlock_rules, mounts, send};
use crate::protocol::{CONTROL_FD, ChildMessage, ChildPlan, HOSTNAME, PROXY_PORT, SANDBOX_ID};
use crate::report::{Degradation, Protection, ProtectionKind as K, SetupFailure};
use crate::sys::{self, Exit};

pub(super) fn run(plan: &ChildPlan, sock: OwnedFd, go: OwnedFd) -> ! {
    // Die with the supervisor; and if it is already gone the pipe read below sees EOF.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    let mut b = [0u8; 1];
    if !matches!(sys::read(go.as_fd(), &mut b), Ok(1)) {
        sys::exit_now(1);
    }
    match prepare(plan, sock.as_fd(), go.as_fd()) {
        Ok((protections, degraded, null)) => {
            send(
                sock.as_fd(),
                &ChildMessage::Ready {
                    protections,
                    degraded,
                },
                None,
            );
            run_workload(plan, sock.as_fd(), null)
        }
        Err(f) => {
            send(sock.as_fd(), &ChildMessage::SetupFailed(f), None);
            sys::exit_now(SETUP_FAILED)
        }
    }
}

type Prepared = (Vec<Protection>, Vec<Degradation>, OwnedFd);

fn prepare(
    plan: &ChildPlan,
    sock: BorrowedFd<'_>,
    go: BorrowedFd<'_>,
) -> Result<Prepared, SetupFailure> {
    let mut applied = vec![
        Protection::new(
            K::UserNamespace,
            format!(
                "uid/gid {SANDBOX_ID} ↦ host {}:{}",
                plan.host_uid, plan.host_gid
            ),
        ),
        Protection::new(
            K::PidNamespace,
            "workload is a child of the sandbox init (pid 1)",
        ),
        Protection::new(K::IpcNamespace, "private SysV IPC and POSIX message queues"),
        Protection::new(K::UtsNamespace, format!("hostname {HOSTNAME}")),
    ];
    let mut degraded = Vec::new();

    // Credentials first, so that files created while building the view belong to the sandbox
    // user. The capabilities held in the new user namespace survive: its root uid is unmapped.
    sys::setresgid(SANDBOX_ID)
        .map_err(|e| SetupFailure::new(K::UnprivilegedUser, format!("setresgid: {e}")))?;
    if plan.privileged_map {
        sys::clear_groups()
            .map_err(|e| SetupFailure::new(K::UnprivilegedUser, format!("setgroups: {e}")))?;
    }
    sys::setresuid(SANDBOX_ID)
        .map_err(|e| SetupFailure::new(K::UnprivilegedUser, format!("setresuid: {e}")))?;
    sys::setsid().map_err(|e| SetupFailure::new(K::PidNamespace, format!("setsid: {e}")))?;

    applied.extend(mounts::build(plan)?);

    sys::sethostname(HOSTNAME)
        .map_err(|e| SetupFailure::new(K::UtsNamespace, format!("sethostname: {e}")))?;
    if plan.proxy {
        sys::loopback_up()
            .map_err(|e| SetupFailure::new(K::NetworkNamespace, format!("bringing up lo: {e}")))?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", PROXY_PORT)).map_err(|e| {
            SetupFailure::new(
                K::EgressProxy,
                format!("binding 127.0.0.1:{PROXY_PORT}: {e}"),
            )
        })?;
        send(sock, &ChildMessage::Listener, Some(listener.as_fd()));
        applied.push(Protection::new(
            K::NetworkNamespace,
            format!("loopback only; egress through DGC's proxy at 127.0.0.1:{PROXY_PORT}"),
        ));
    } else {
        applied.push(Protection::new(
            K::NetworkNamespace,
            "no interfaces up, no route out",
        ));
    }
    // The supervisor says when this process is in the sandbox's cgroup.
    let mut b = [0u8; 1];
    if !matches!(sys::read(go, &mut b), Ok(1)) {
        sys::exit_now(1);
    }
    sys::unshare(libc::CLONE_NEWCGROUP).map_err(|e| {
        SetupFailure::new(K::CgroupNamespace, format!("unshare(CLONE_NEWCGROUP): {e}"))
    })?;
    applied.push(Protection::new(
        K::CgroupNamespace,
        "the sandbox's cgroup is its root",
    ));

    let cwd = sys::path_cstring(&plan.cwd).map_err(|e| {
        SetupFailure::new(K::WorkingDirectory, format!("{}: {e}", plan.cwd.display()))
    })?;
    sys::chdir(&cwd).map_err(|e| {
        SetupFailure::new(K::WorkingDirectory, format!("{}: {e}", plan.cwd.display()))
    })?;

    let limits = [
        (libc::RLIMIT_FSIZE, plan.file_size, "RLIMIT_FSIZE"),
        (libc::RLIMIT_NOFILE, plan.open_files, "RLIMIT_NOFILE"),
        (libc::RLIMIT_CORE, 0, "RLIMIT_CORE"),
    ];
    for (res, value, name) in limits {
        sys::setrlimit(res, value)
            .map_err(|e| SetupFailure::new(K::Rlimits, format!("{name}={value}: {e}")))?;
    }
    applied.push(Protection::new(
        K::Rlimits,
        format!(
            "file size {} bytes, {} open files, no core dumps",
            plan.file_size, plan.open_files
        ),
    ));

    let null = sys::open(c"/dev/null", libc::O_RDWR, 0)
        .map_err(|e| SetupFailure::new(K::MinimalDev, format!("opening /dev/null: {e}")))?;
    sys::set_cloexec(CONTROL_FD, true)
        .map_err(|e| SetupFailure::new(K::Supervisor, format!("fcntl: {e}")))?;

    // The workload shares our uid: make /proc/1 unreadable and un-ptraceable to it.
    sys::prctl(libc::PR_SET_DUMPABLE, 0)
        .map_err(|e| SetupFailure::new(K::Capabilities, format!("PR_SET_DUMPABLE: {e}")))?;
    drop_capabilities()?;
    applied.push(Protection::new(
        K::Capabilities,
        "effective, permitted, inheritable, ambient and bounding sets empty; securebits locked",
    ));
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
        .map_err(|e| SetupFailure::new(K::NoNewPrivs, format!("{e}")))?;
    applied.push(Protection::new(
        K::NoNewPrivs,
        "setuid/setgid bits and file capabilities are inert",
    ));

    // Pathname Unix sockets ignore read-only mounts; only landlock ≥ 9 confines their connect.
    let unix = match landlock_rules::apply(plan)? {
        Ok((p, resolve_unix)) => {
            applied.push(p);
            resolve_unix
        }
        Err(d) => {
            degraded.push(d);
            false
        }
    };
    let families = crate::seccomp::Families {
        inet: plan.inet,
        unix,
    };
    let denied = crate::seccomp::install(families)?;
    let mut allowed = Vec::new();
    if unix {
        allowed.push("unix");
    } else {
        allowed.push("unix stream socketpairs");
    }
    if plan.inet {
        allowed.push("inet/inet6 (no raw or packet)");
    }
    applied.push(Protection::new(
        K::Seccomp,
        format!(
            "{denied} syscalls denied; no namespace-creating clone, no TIOCSTI; sockets: {} only",
            allowed.join(", ")
        ),
    ));
    Ok((applied, degraded, null))
}

fn drop_capabilities() -> Result<(), SetupFailure> {
    let secure = libc::SECBIT_NOROOT
        | libc::SECBIT_NOROOT_LOCKED
        | libc::SECBIT_NO_SETUID_FIXUP
        | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
        | libc::SECBIT_KEEP_CAPS_LOCKED
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    sys::prctl(libc::PR_SET_SECUREBITS, secure as libc::c_ulong)
        .map_err(|e| SetupFailure::new(K::Capabilities, format!("PR_SET_SECUREBITS: {e}")))?;
    sys::drop_bounding_set()
        .map_err(|e| SetupFailure::new(K::Capabilities, format!("PR_CAPBSET_DROP: {e}")))?;
    sys::clear_ambient().map_err(|e| {
        SetupFailure::new(K::Capabilities, format!("PR_CAP_AMBIENT_CLEAR_ALL: {e}"))
    })?;
    sys::clear_caps().map_err(|e| SetupFailure::new(K::Capabilities, format!("capset: {e}")))?;
    match sys::effective_caps() {
        Ok(0) => Ok(()),
        Ok(c) => Err(SetupFailure::new(
            K::Capabilities,
            format!("capabilities {c:#x} remain after capset"),
        )),
        Err(e) => Err(SetupFailure::new(K::Capabilities, format!("capget: {e}"))),
    }
}

fn run_workload(plan: &ChildPlan, sock: BorrowedFd<'_>, null: OwnedFd) -> ! {
    let argv: Result<Vec<CString>, _> = plan.argv.iter().map(|a| sys::cstring(a)).collect();
    let envp: Result<Vec<CString>, _> = plan
        .env
        .iter()
        .map(|(k, v)| sys::cstring(&format!("{k}={v}")))
        .collect();
    let (Ok(argv), Ok(envp)) = (argv, envp) else {
        send(
            sock,
            &ChildMessage::ExecFailed {
                errno: libc::EINVAL,
                message: "argument contains NUL".into(),
            },
            None,
        );
        sys::exit_now(SETUP_FAILED);
    };
    match fork_workload() {
        Ok(0) => {
            sys::reset_signals();
            let _ = sys::close_from(CONTROL_FD as u32 + 1);
            let err = sys::execvpe(&argv, &envp);
            let errno = err.raw_os_error().unwrap_or(libc::EINVAL);
            let message = format!(
                "{}: {err}",
                plan.argv.first().map(String::as_str).unwrap_or("")
            );
            send(sock, &ChildMessage::ExecFailed { errno, message }, None);
            sys::exit_now(if errno == libc::ENOENT { 127 } else { 126 });
        }
        Ok(workload) => {
            for fd in 0..3 {
                let _ = sys::dup2(null.as_raw_fd(), fd);
            }
            drop(null);
            loop {
                match sys::wait_any() {
                    Ok((pid, exit)) if pid == workload => {
                        let msg = match exit {
                            Exit::Code(code) => ChildMessage::Exited { code },
                            Exit::Signal(signal) => ChildMessage::Signaled { signal },
                        };
                        send(sock, &msg, None);
                        sys::exit_now(0);
                    }
                    Ok(_) => {}
                    Err(_) => sys::exit_now(SETUP_FAILED),
                }
            }
        }
        Err(e) => {
            send(
                sock,
                &ChildMessage::SetupFailed(SetupFailure::new(K::Supervisor, format!("fork: {e}"))),
                None,
            );
            sys::exit_now(SETUP_FAILED)
        }
    }
}

#[allow(unsafe_code)]
fn fork_workload() -> std::io::Result<libc::pid_t> {
    // SAFETY: the sandbox init is single-threaded (cloned from the single-threaded supervisor).
    unsafe { sys::fork() }
}
