//! The re-exec'd sandbox child. `dgc` (or the test harness) calls [`enter_child_if_requested`] as
//! the first statement of `main`; when started with the hidden [`CHILD_ARG`] it becomes the
//! single-threaded supervisor: it reads the plan from the control socket, clones the sandbox init
//! into fresh user/pid/mount/net/ipc/uts namespaces, maps its ids, puts it in the cgroup, and
//! then waits for it, killing it if DGC goes away or the backstop deadline passes.

mod init;
mod landlock_rules;
mod mounts;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::protocol::{
    CHILD_ARG, CONTROL_FD, ChildMessage, ChildPlan, MAX_MESSAGE, ParentMessage, SANDBOX_ID,
};
use crate::report::{ProtectionKind, SetupFailure};
use crate::sys;

/// Exit code of the child when setup failed (the details went over the control socket).
const SETUP_FAILED: i32 = 125;

/// If this process was started as the hidden sandbox child, builds the sandbox and never
/// returns; otherwise returns at once. Must run before any thread or async runtime exists.
pub fn enter_child_if_requested() {
    let mut args = std::env::args_os();
    let _ = args.next();
    match args.next() {
        Some(a) if a == CHILD_ARG => sys::exit_now(supervise()),
        Some(a) if a == crate::gvisor::EXEC_ARG => sys::exit_now(crate::gvisor::exec_helper()),
        _ => {}
    }
}

/// Sends one message on the control socket, ignoring a vanished peer (DGC gone: the caller's
/// own EOF handling deals with that).
pub(crate) fn send(sock: BorrowedFd<'_>, msg: &ChildMessage, fd: Option<BorrowedFd<'_>>) {
    if let Ok(buf) = serde_json::to_vec(msg) {
        let _ = sys::send_packet(sock, &buf, fd);
    }
}

fn fail(sock: BorrowedFd<'_>, failure: SetupFailure) -> i32 {
    send(sock, &ChildMessage::SetupFailed(failure), None);
    SETUP_FAILED
}

fn supervise() -> i32 {
    // SAFETY: descriptor 3 is the control socket DGC placed there with posix_spawn; nothing else
    // in this fresh process owns it. If it is not a socket we refuse below before using it.
    #[allow(unsafe_code)]
    let sock = unsafe { sys::own_raw(CONTROL_FD) };
    match sys::fstat(sock.as_fd()) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFSOCK => {}
        _ => {
            eprintln!(
                "{CHILD_ARG} is DGC's internal sandbox entry point; run `dgc sandbox run` instead"
            );
            return 2;
        }
    }
    // Whatever else leaked into this process must not reach the sandbox.
    if let Err(e) = sys::close_from(CONTROL_FD as u32 + 1) {
        return fail(
            sock.as_fd(),
            SetupFailure::new(ProtectionKind::Supervisor, format!("close_range: {e}")),
        );
    }
    let plan = match read_plan(sock.as_fd()) {
        Ok(Some(p)) => p,
        // A pre-spawned supervisor whose pool was dropped: nothing to do.
        Ok(None) => return 0,
        Err(e) => {
            return fail(
                sock.as_fd(),
                SetupFailure::new(ProtectionKind::Supervisor, format!("reading the plan: {e}")),
            );
        }
    };
    let started = Instant::now();
    let (go_read, go_write) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            return fail(
                sock.as_fd(),
                SetupFailure::new(ProtectionKind::Supervisor, format!("pipe: {e}")),
            );
        }
    };
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    let (pid, pidfd) = match clone_init(flags) {
        Ok(Some(x)) => x,
        Ok(None) => {
            drop(go_write);
            init::run(&plan, sock, go_read)
        }
        Err(e) => {
            return fail(
                sock.as_fd(),
                SetupFailure::new(
                    ProtectionKind::UserNamespace,
                    format!(
                        "clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS): {e}"
                    ),
                ),
            );
        }
    };
    drop(go_read);
    send(
        sock.as_fd(),
        &ChildMessage::Spawned { pid },
        Some(pidfd.as_fd()),
    );
    // Holding the init's mount namespace moves its teardown (an RCU grace period) from the
    // init's exit, which DGC waits for, to this process's exit, which it does not.
    let mount_ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"));

    let abort = |f: SetupFailure| {
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
        let code = fail(sock.as_fd(), f);
        reap(pidfd.as_fd());
        code
    };
    if let Err(f) = map_ids(pid, &plan) {
        return abort(f);
    }
    // The init builds its view while this process moves it into the cgroup (a v1 migration
    // waits for an RCU grace period); it waits for the second byte before the workload starts.
    if sys::write_all(go_write.as_fd(), b"g").is_err() {
        return abort(SetupFailure::new(
            ProtectionKind::Supervisor,
            "the sandbox init died",
        ));
    }
    if let Err(f) = join_cgroups(pid, &plan.cgroup_procs) {
        return abort(f);
    }
    if sys::write_all(go_write.as_fd(), b"c").is_err() {
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    }
    drop(go_write);
    // The supervisor keeps no copy of the workload's stdio, so DGC sees EOF as soon as the
    // sandbox's own holders are gone.
    if let Ok(null) = sys::open(c"/dev/null", libc::O_RDWR, 0) {
        for fd in 0..3 {
            let _ = sys::dup2(null.as_raw_fd(), fd);
        }
    }
    wait_init(
        &sock,
        &pidfd,
        started + Duration::from_millis(plan.deadline_ms),
    );
    drop(mount_ns);
    0
}

#[allow(unsafe_code)]
fn clone_init(flags: libc::c_int) -> io::Result<Option<(libc::pid_t, OwnedFd)>> {
    // SAFETY: the supervisor is single-threaded: it is a freshly exec'd process and
    // `enter_child_if_requested` runs before `main` could start any thread or runtime.
    unsafe { sys::clone_fork(flags) }
}

/// Reads the plan; a warm supervisor first joins its cgroup. `None`: DGC hung up first.
fn read_plan(sock: BorrowedFd<'_>) -> io::Result<Option<ChildPlan>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let Some((n, _)) = sys::recv_packet(sock, &mut buf, 0)? else {
            return Ok(None);
        };
        let msg: ParentMessage = serde_json::from_slice(&buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        match msg {
            ParentMessage::Plan(p) => return Ok(Some(*p)),
            ParentMessage::Prepare { cgroup_procs } => {
                join_cgroups(std::process::id() as libc::pid_t, &cgroup_procs)
                    .map_err(|f| io::Error::other(f.to_string()))?;
                send(sock, &ChildMessage::Joined, None);
            }
        }
    }
}

/// Maps the sandbox user (uid/gid 1000 inside) to the host ids DGC chose.
fn map_ids(pid: libc::pid_t, plan: &ChildPlan) -> Result<(), SetupFailure> {
    let write = |file: &str, content: String| -> Result<(), SetupFailure> {
        std::fs::write(format!("/proc/{pid}/{file}"), content).map_err(|e| {
            SetupFailure::new(
                ProtectionKind::UserNamespace,
                format!("writing /proc/{pid}/{file}: {e}"),
            )
        })
    };
    write("uid_map", format!("{SANDBOX_ID} {} 1\n", plan.host_uid))?;
    if !plan.privileged_map {
        // Unprivileged callers may only map their own gid, after giving up setgroups(2).
        write("setgroups", "deny\n".into())?;
    }
    write("gid_map", format!("{SANDBOX_ID} {} 1\n", plan.host_gid))
}

fn join_cgroups(pid: libc::pid_t, cgroup_procs: &[std::path::PathBuf]) -> Result<(), SetupFailure> {
    for procs in cgroup_procs {
        std::fs::write(procs, pid.to_string()).map_err(|e| {
            SetupFailure::new(
                ProtectionKind::Cgroups,
                format!("joining {}: {e}", procs.display()),
            )
        })?;
    }
    Ok(())
}

fn reap(pidfd: BorrowedFd<'_>) {
    while let Ok(None) = sys::waitid_pidfd(pidfd) {
        let _ = sys::poll(&[(pidfd.as_raw_fd(), libc::POLLIN)], 1000);
    }
}

/// Waits for the sandbox init; kills it when DGC hangs up or the backstop deadline passes.
fn wait_init(sock: &OwnedFd, pidfd: &OwnedFd, deadline: Instant) {
    // The parent enforces the real timeout; this fires only if it is wedged.
    let backstop = deadline + Duration::from_secs(2);
    let mut killed = false;
    let kill = |killed: &mut bool| {
        if !*killed {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            *killed = true;
        }
    };
    let mut buf = [0u8; 256];
    let mut sock_open = true;
    loop {
        if let Ok(Some(_)) = sys::waitid_pidfd(pidfd.as_fd()) {
            return;
        }
        let now = Instant::now();
        let timeout = if killed {
            1000
        } else if now >= backstop {
            send(sock.as_fd(), &ChildMessage::TimedOut, None);
            kill(&mut killed);
            continue;
        } else {
            (backstop - now).as_millis().min(i32::MAX as u128) as i32
        };
        let mut fds = vec![(pidfd.as_raw_fd(), libc::POLLIN)];
        if sock_open {
            fds.push((sock.as_raw_fd(), libc::POLLIN));
        }
        let Ok(ready) = sys::poll(&fds, timeout) else {
            kill(&mut killed);
            continue;
        };
        if sock_open && ready.get(1).is_some_and(|r| *r != 0) {
            match sys::recv_packet(sock.as_fd(), &mut buf, libc::MSG_DONTWAIT) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(None) | Err(_) => {
                    // DGC went away (or broke the protocol): nobody may be left running.
                    sock_open = false;
                    kill(&mut killed);
                }
                Ok(Some(_)) => {}
            }
        }
    }
}
