//! Thin, checked wrappers over the Linux system calls the sandbox needs. Every `unsafe` block of
//! the crate that touches libc lives here, so the rest of the code handles `io::Result`s and
//! owned file descriptors only.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Converts a `-1`-on-error return value into an `io::Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains NUL"))
}

pub fn path_cstring(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Takes ownership of a descriptor a system call just returned.
fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor that a successful system call has just returned and that
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// `clone(2)` with fork semantics (the child continues on a copy of the caller's stack).
/// Returns `(pid, pidfd)` in the parent and `None` in the child.
///
/// # Safety
/// The caller must be single-threaded: the child gets a copy of only the calling thread, so
/// locks held by other threads (allocator, stdio) would stay locked forever in it.
pub unsafe fn clone_fork(flags: libc::c_int) -> io::Result<Option<(libc::pid_t, OwnedFd)>> {
    let mut pidfd: libc::c_int = -1;
    let full = (flags | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a null stack gives fork semantics; CLONE_PIDFD writes the new pidfd into `pidfd`,
    // which outlives the call. The single-thread requirement is the caller's (see above).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            full,
            std::ptr::null_mut::<libc::c_void>(),
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_void>(),
            0usize,
        )
    };
    let pid = cvt_long(ret)?;
    if pid == 0 {
        Ok(None)
    } else {
        Ok(Some((pid as libc::pid_t, owned(pidfd))))
    }
}

/// Plain `fork(2)`.
///
/// # Safety
/// Same as [`clone_fork`]: only from a single-threaded process.
pub unsafe fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the caller guarantees the process is single-threaded.
    cvt(unsafe { libc::fork() })
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Ok(owned(cvt_long(ret)? as libc::c_int))
}

pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain integers; a null siginfo means "as kill(2) would send it".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null_mut::<libc::siginfo_t>(),
            0,
        )
    };
    cvt_long(ret).map(drop)
}

/// How a process ended, from `waitid`/`waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Reaps the process behind `pidfd` without blocking; `None` while it still runs.
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>) -> io::Result<Option<Exit>> {
    // SAFETY: siginfo_t is plain data for which all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
    let ret = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    cvt(ret)?;
    // SAFETY: waitid filled `info`; si_pid is 0 when WNOHANG found nothing to reap.
    let (pid, status, code) = unsafe { (info.si_pid(), info.si_status(), info.si_code) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if code == libc::CLD_EXITED {
        Exit::Code(status)
    } else {
        Exit::Signal(status)
    }))
}

/// Blocking `waitpid(-1)`: the next child to end, retrying on `EINTR`.
pub fn wait_any() -> io::Result<(libc::pid_t, Exit)> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == -1 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        let exit = if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else {
            Exit::Signal(libc::WTERMSIG(status))
        };
        return Ok((pid, exit));
    }
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and skips atexit handlers, which is what a forked child wants.
    unsafe { libc::_exit(code) }
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { libc::getegid() }
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    cvt(unsafe { libc::setsid() }).map(drop)
}

/// Sets every signal back to its default disposition and unblocks all of them, so that the
/// workload starts as if exec'd from a clean shell (SIGPIPE in particular).
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always valid; errors for invalid numbers are ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// `execvpe(3)`; returns only on failure.
pub fn execvpe(argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envpp: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envpp.push(std::ptr::null());
    let Some(first) = argv.first() else {
        return io::Error::new(io::ErrorKind::InvalidInput, "empty argv");
    };
    // SAFETY: both arrays are NULL-terminated and point at CStrings that outlive the call.
    unsafe { libc::execvpe(first.as_ptr(), argp.as_ptr(), envpp.as_ptr()) };
    io::Error::last_os_error()
}

// ---------------------------------------------------------------------------------------------
// Descriptors

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// Duplicates `fd` to the lowest free number ≥ `min`, close-on-exec.
pub fn dup_min(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC with an integer argument.
    Ok(owned(cvt(unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min)
    })?))
}

/// `dup2` onto a fixed number (the result is *not* close-on-exec).
pub fn dup2(fd: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on integers; the target is replaced atomically.
    cvt(unsafe { libc::dup2(fd, to) }).map(drop)
}

pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD with an integer argument.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flag) }).map(drop)
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL with integer arguments.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// Closes every descriptor from `first` up.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; the caller owns none of them past `first`
    // (any OwnedFd above it must not be used afterwards).
    cvt(unsafe { libc::close_range(first, u32::MAX, 0) }).map(drop)
}

pub fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated.
    Ok(owned(cvt(unsafe {
        libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode)
    })?))
}

pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of its length.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(n as usize);
    }
}

/// `poll(2)` over `(fd, events)` pairs; returns the `revents` of each. `timeout_ms < 0` waits
/// forever. `EINTR` is reported as "nothing ready".
pub fn poll(fds: &[(RawFd, libc::c_short)], timeout_ms: i32) -> io::Result<Vec<libc::c_short>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid array of the given length.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if ret == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(vec![0; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds.iter().map(|p| p.revents).collect())
}

/// Sends one datagram on a SOCK_SEQPACKET socket, optionally passing one descriptor.
pub fn send_packet(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // Room for one SCM_RIGHTS header + one int, aligned as cmsghdr requires.
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain data; all-zero is valid and fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `cbuf`, which is large enough for one cmsghdr with an
        // int payload (space ≤ 32 bytes on every Linux ABI), so FIRSTHDR/DATA stay in bounds.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
        }
    }
    loop {
        // SAFETY: `msg` and everything it points to are valid for the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(());
    }
}

/// Receives one datagram (and at most one passed descriptor). `Ok(None)` is end of stream.
pub fn recv_packet(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is valid and fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    let n = loop {
        // SAFETY: `msg` points at `buf` and `cbuf`, both valid for writes of the given sizes.
        let n =
            unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        break n as usize;
    };
    let mut passed = None;
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* walk stays within them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    let fd = owned(std::ptr::read_unaligned(data.add(i)));
                    if passed.is_none() {
                        passed = Some(fd);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if n == 0 && passed.is_none() && msg.msg_flags & libc::MSG_TRUNC == 0 {
        return Ok(None);
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "control message too large",
        ));
    }
    Ok(Some((n, passed)))
}

// ---------------------------------------------------------------------------------------------
// Spawning the supervisor from a (possibly multi-threaded) parent

/// `posix_spawn(3)` of `argv` with an empty environment, every signal reset to its default and
/// unblocked, and each `(from, to)` descriptor pair `dup2`ed into place. Only the `to`
/// descriptors (and none of the parent's others, which are all close-on-exec) reach the child.
pub fn spawn_with_fds(
    exe: &CStr,
    argv: &[CString],
    fds: &[(RawFd, RawFd)],
) -> io::Result<libc::pid_t> {
    struct Actions(libc::posix_spawn_file_actions_t);
    impl Drop for Actions {
        fn drop(&mut self) {
            // SAFETY: initialised in `spawn_with_fds` before this guard exists.
            unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
        }
    }
    struct Attr(libc::posix_spawnattr_t);
    impl Drop for Attr {
        fn drop(&mut self) {
            // SAFETY: initialised in `spawn_with_fds` before this guard exists.
            unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
        }
    }
    let err = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    };

    // SAFETY: the structures are initialised by their init functions before any other use and
    // destroyed exactly once by the guards.
    unsafe {
        let mut actions = Actions(std::mem::zeroed());
        err(libc::posix_spawn_file_actions_init(&mut actions.0))?;
        for &(from, to) in fds {
            err(libc::posix_spawn_file_actions_adddup2(
                &mut actions.0,
                from,
                to,
            ))?;
        }
        let mut attr = Attr(std::mem::zeroed());
        err(libc::posix_spawnattr_init(&mut attr.0))?;
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        err(libc::posix_spawnattr_setsigdefault(&mut attr.0, &all))?;
        err(libc::posix_spawnattr_setsigmask(&mut attr.0, &none))?;
        err(libc::posix_spawnattr_setflags(
            &mut attr.0,
            (libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short,
        ))?;

        let mut argp: Vec<*mut libc::c_char> = argv.iter().map(|a| a.as_ptr() as *mut _).collect();
        argp.push(std::ptr::null_mut());
        let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
        let mut pid: libc::pid_t = 0;
        err(libc::posix_spawn(
            &mut pid,
            exe.as_ptr(),
            &actions.0,
            &attr.0,
            argp.as_ptr(),
            envp.as_ptr(),
        ))?;
        Ok(pid)
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials, capabilities, prctl

pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: integer arguments.
    cvt(unsafe { libc::setresuid(uid, uid, uid) }).map(drop)
}

pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments.
    cvt(unsafe { libc::setresgid(gid, gid, gid) }).map(drop)
}

pub fn clear_groups() -> io::Result<()> {
    // SAFETY: a zero-length list with a null pointer is valid.
    cvt(unsafe { libc::setgroups(0, std::ptr::null()) }).map(drop)
}

pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the prctl options used by this crate take integer arguments only.
    cvt(unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

/// Drops every capability from the bounding set (up to the kernel's last one).
pub fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..64 {
        match prctl(libc::PR_CAPBSET_DROP, cap) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn clear_ambient() -> io::Result<()> {
    // SAFETY: integer arguments.
    cvt(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
    .map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Empties the effective, permitted and inheritable sets.
pub fn clear_caps() -> io::Result<()> {
    let hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and a two-element data array as capset(2) requires for version 3.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    cvt_long(ret).map(drop)
}

/// Reads the effective capability set of the calling thread (64 bits).
pub fn effective_caps() -> io::Result<u64> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and a writable two-element data array as capget(2) requires.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    cvt_long(ret)?;
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

pub fn setrlimit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `lim` is a valid rlimit.
    cvt(unsafe { libc::setrlimit(resource, &lim) }).map(drop)
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`.
    cvt(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: integer argument.
    cvt(unsafe { libc::unshare(flags) }).map(drop)
}

// ---------------------------------------------------------------------------------------------
// Mounts (classic and fd-based API)

pub const OPEN_TREE_CLONE: u32 = 1;
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
pub const AT_RECURSIVE: u32 = 0x8000;
pub const AT_EMPTY_PATH: u32 = libc::AT_EMPTY_PATH as u32;
pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const FSOPEN_CLOEXEC: u32 = 0x1;
const FSMOUNT_CLOEXEC: u32 = 0x1;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub fn mount_private_recursive() -> io::Result<()> {
    // SAFETY: string literals are NUL-terminated; null source/fstype/data are valid for a
    // propagation change.
    cvt(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })
    .map(drop)
}

/// `open_tree(dirfd, path, flags)`; an empty `path` with `AT_EMPTY_PATH` clones `dirfd` itself.
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; integer arguments otherwise.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    Ok(owned(cvt_long(ret)? as libc::c_int))
}

/// `mount_setattr` on the mount referenced by `fd` (and below it when `recursive`).
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is an empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    cvt_long(ret).map(drop)
}

/// Attaches the detached mount `from` on top of the directory or file `to` (both descriptors).
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: empty C strings with the *_EMPTY_PATH flags make both ends the descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    cvt_long(ret).map(drop)
}

/// Attaches the detached mount `from` at an absolute `path`.
pub fn move_mount_path(from: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated; MOVE_MOUNT_F_EMPTY_PATH makes the source the descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    cvt_long(ret).map(drop)
}

/// Creates a new, detached filesystem instance (`tmpfs`, `proc`) with string options and
/// returns a mount descriptor carrying `attrs`.
pub fn new_fs_mount(fstype: &CStr, options: &[(&CStr, &CStr)], attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: `fstype` is NUL-terminated.
    let fsfd =
        owned(
            cvt_long(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?
                as libc::c_int,
        );
    for (key, value) in options {
        // SAFETY: key and value are NUL-terminated strings.
        cvt_long(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })?;
    }
    // SAFETY: null key/value for CMD_CREATE.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: integer arguments.
    let m = cvt_long(unsafe {
        libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs)
    })?;
    Ok(owned(m as libc::c_int))
}

pub fn pivot_root_here() -> io::Result<()> {
    // SAFETY: "." is a valid NUL-terminated path for both arguments (pivot_root(2) documents
    // stacking the old root on the new one this way).
    cvt_long(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) }).map(drop)
}

pub fn umount_detach(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated.
    cvt(unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

pub fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: integer argument.
    cvt(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

pub fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated.
    cvt(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`: opens `path` relative to `dirfd` under the `resolve` restrictions.
pub fn openat2(dirfd: RawFd, path: &CStr, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `how` is a valid open_how of the size passed; `path` is NUL-terminated.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    Ok(owned(cvt_long(ret)? as libc::c_int))
}

pub fn mkdirat(dirfd: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    cvt(unsafe { libc::mkdirat(dirfd.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

/// Creates an empty regular file `name` in `dirfd` (a bind-mount target for a device node).
pub fn create_file_at(dirfd: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated.
    let fd = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    Ok(owned(cvt(fd)?))
}

pub fn symlinkat(target: &CStr, dirfd: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dirfd.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// `fstat` of a descriptor.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: stat is plain data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// `statfs` filesystem magic of a path.
pub fn fs_magic(path: &Path) -> io::Result<i64> {
    let c = path_cstring(path)?;
    // SAFETY: statfs is plain data.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` a valid out-pointer.
    cvt(unsafe { libc::statfs(c.as_ptr(), &mut st) })?;
    Ok(st.f_type as i64)
}

// ---------------------------------------------------------------------------------------------
// Network, landlock, seccomp

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: creating a datagram socket has no memory-safety preconditions.
    let sock = owned(cvt(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?);
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags =
        (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) }).map(drop)
}

/// The landlock ABI version the kernel offers (0 when landlock is unavailable).
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: a null attribute pointer with size 0 and the VERSION flag is the documented probe.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 { 0 } else { ret as i32 }
}

/// Installs a classic-BPF seccomp filter on the calling thread (no_new_privs must be set).
pub fn seccomp_install(filter: &[libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel copies it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    cvt_long(ret).map(drop)
}

/// Takes ownership of an inherited descriptor number.
///
/// # Safety
/// `fd` must be open and owned by nothing else in this process.
pub unsafe fn own_raw(fd: RawFd) -> OwnedFd {
    // SAFETY: forwarded to the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Registers an owned descriptor with the tokio reactor.
pub fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and keeps returning the same descriptor until it is dropped,
    // and the AsyncFd owns it for its whole lifetime.
    Ok(unsafe { tokio::io::unix::AsyncFd::register(fd) }?)
}

/// Forks a child that runs `f` (system calls only) and exits with its errno; returns that
/// outcome. Used by `dgc doctor` to try a namespace or filter without affecting this process.
fn probe_in_child(f: impl Fn() -> io::Result<()>) -> io::Result<()> {
    // SAFETY: the child only makes raw system calls (no allocation, no locks) before _exit,
    // which is async-signal-safe even if this process has other threads.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        let code = match f() {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(libc::EINVAL).clamp(1, 255),
        };
        exit_now(code);
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(io::Error::from_raw_os_error(libc::WEXITSTATUS(status)))
    } else {
        Err(io::Error::other(format!(
            "probe child killed by signal {}",
            libc::WTERMSIG(status)
        )))
    }
}

/// Can this process create the namespaces in `flags`?
pub fn probe_unshare(flags: libc::c_int) -> io::Result<()> {
    probe_in_child(|| unshare(flags))
}

/// Can this process install `filter` (after setting no_new_privs)?
pub fn probe_seccomp(filter: &[libc::sock_filter]) -> io::Result<()> {
    probe_in_child(|| {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1)?;
        seccomp_install(filter)
    })
}
