//! The process tier's seccomp filter, generated as classic BPF: foreign architectures (i386
//! `int 0x80`, x32) are killed, a deny-list of kernel attack surface returns `EPERM`, and
//! arguments are checked for `clone` (no namespace flags), `socket` (families and raw types) and
//! `ioctl` (no terminal injection). Only the low 32 bits of `int` arguments are compared, the
//! way the kernel reads them, so high-bit tricks cannot slip past.

use crate::report::{ProtectionKind, SetupFailure};

const BPF_LD: u16 = 0x00;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_ALU: u16 = 0x04;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_AND: u16 = 0x50;
const BPF_K: u16 = 0x00;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_low(i: u32) -> u32 {
    16 + 8 * i
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("dgc-sandbox's seccomp filter supports x86_64 and aarch64 only");

/// Namespace-creating clone flags.
const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP
    | 0x80) as u32; // CLONE_NEWTIME

const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541c;
const SOCK_TYPE_MASK: u32 = 0xf;
const SOCK_PACKET: u32 = 10;

/// System calls that are refused with `EPERM`, by name (for reports) and number.
pub fn denied_syscalls() -> Vec<(&'static str, libc::c_long)> {
    let mut v = vec![
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("pidfd_getfd", libc::SYS_pidfd_getfd),
        ("process_madvise", libc::SYS_process_madvise),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("chroot", libc::SYS_chroot),
        ("open_tree", libc::SYS_open_tree),
        ("move_mount", libc::SYS_move_mount),
        ("fsopen", libc::SYS_fsopen),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fspick", libc::SYS_fspick),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
        ("bpf", libc::SYS_bpf),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("acct", libc::SYS_acct),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("reboot", libc::SYS_reboot),
        ("syslog", libc::SYS_syslog),
        ("settimeofday", libc::SYS_settimeofday),
        ("clock_settime", libc::SYS_clock_settime),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("adjtimex", libc::SYS_adjtimex),
        ("quotactl", libc::SYS_quotactl),
        ("vhangup", libc::SYS_vhangup),
        ("fanotify_init", libc::SYS_fanotify_init),
        ("personality", libc::SYS_personality),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        ("iopl", libc::SYS_iopl),
        ("ioperm", libc::SYS_ioperm),
        ("uselib", libc::SYS_uselib),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ]);
    v
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn ret_errno(errno: i32) -> libc::sock_filter {
    stmt(BPF_RET | BPF_K, RET_ERRNO | (errno as u32 & 0xffff))
}

fn load(off: u32) -> libc::sock_filter {
    stmt(BPF_LD | BPF_W | BPF_ABS, off)
}

/// Appends `if nr == syscall { body } ` where `body` must end by reloading the syscall number
/// (or returning).
fn guarded(out: &mut Vec<libc::sock_filter>, nr: libc::c_long, body: Vec<libc::sock_filter>) {
    out.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        nr as u32,
        0,
        body.len() as u8,
    ));
    out.extend(body);
}

/// Which socket families the workload may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// AF_INET/AF_INET6 (the sandbox's loopback and the proxy).
    pub inet: bool,
    /// `socket(AF_UNIX)`. Only when landlock can confine pathname-socket connects (ABI ≥ 9);
    /// otherwise a workload could reach a world-writable host socket through the read-only
    /// view. `socketpair(AF_UNIX, SOCK_STREAM)` is always allowed.
    pub unix: bool,
}

/// Builds the filter.
pub fn build_filter(families: Families) -> Vec<libc::sock_filter> {
    let mut f = vec![
        load(OFF_ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, RET_KILL_PROCESS),
        load(OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // x32 system calls share the arch value and set bit 30 of the number.
        f.push(jump(BPF_JMP | BPF_JGE | BPF_K, 0x4000_0000, 0, 1));
        f.push(stmt(BPF_RET | BPF_K, RET_KILL_PROCESS));
    }
    for (_, nr) in denied_syscalls() {
        f.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 1));
        f.push(ret_errno(libc::EPERM));
    }
    // glibc falls back to clone(2) on ENOSYS, whose flags we can inspect.
    f.push(jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::SYS_clone3 as u32,
        0,
        1,
    ));
    f.push(ret_errno(libc::ENOSYS));

    guarded(
        &mut f,
        libc::SYS_clone,
        vec![
            load(off_arg_low(0)),
            jump(BPF_JMP | BPF_JSET | BPF_K, CLONE_NS_FLAGS, 0, 1),
            ret_errno(libc::EPERM),
            load(OFF_NR),
        ],
    );

    let mut allowed = Vec::new();
    if families.unix {
        allowed.push(libc::AF_UNIX as u32);
    }
    if families.inet {
        allowed.extend([libc::AF_INET as u32, libc::AF_INET6 as u32]);
    }
    let mut sock = vec![load(off_arg_low(0))];
    let n = allowed.len();
    for (i, fam) in allowed.iter().enumerate() {
        // On a match, jump over the remaining comparisons and the refusal.
        sock.push(jump(BPF_JMP | BPF_JEQ | BPF_K, *fam, (n - i) as u8, 0));
    }
    sock.extend([
        ret_errno(libc::EAFNOSUPPORT),
        load(off_arg_low(1)),
        stmt(BPF_ALU | BPF_AND | BPF_K, SOCK_TYPE_MASK),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SOCK_RAW as u32, 1, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, SOCK_PACKET, 0, 1),
        ret_errno(libc::EPERM),
        load(OFF_NR),
    ]);
    guarded(&mut f, libc::SYS_socket, sock);
    // A connected datagram pair can still sendto() any pathname socket.
    guarded(
        &mut f,
        libc::SYS_socketpair,
        if families.unix {
            vec![load(OFF_NR)]
        } else {
            vec![
                load(off_arg_low(0)),
                jump(BPF_JMP | BPF_JEQ | BPF_K, libc::AF_UNIX as u32, 1, 0),
                ret_errno(libc::EAFNOSUPPORT),
                load(off_arg_low(1)),
                stmt(BPF_ALU | BPF_AND | BPF_K, SOCK_TYPE_MASK),
                jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SOCK_DGRAM as u32, 0, 1),
                ret_errno(libc::EPERM),
                load(OFF_NR),
            ]
        },
    );

    guarded(
        &mut f,
        libc::SYS_ioctl,
        vec![
            load(off_arg_low(1)),
            jump(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 1, 0),
            jump(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 0, 1),
            ret_errno(libc::EPERM),
            load(OFF_NR),
        ],
    );
    f.push(stmt(BPF_RET | BPF_K, RET_ALLOW));
    f
}

/// Installs the filter on the calling thread. `no_new_privs` must already be set.
pub fn install(families: Families) -> Result<usize, SetupFailure> {
    let filter = build_filter(families);
    crate::sys::seccomp_install(&filter).map_err(|e| {
        SetupFailure::new(
            ProtectionKind::Seccomp,
            format!("seccomp(SET_MODE_FILTER): {e}"),
        )
    })?;
    Ok(denied_syscalls().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter, enough to check the generated program's decisions.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            match ins.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    let o = ins.k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => acc &= ins.k,
                c if c == BPF_RET | BPF_K => return ins.k,
                c => {
                    let taken = match c {
                        x if x == BPF_JMP | BPF_JEQ | BPF_K => acc == ins.k,
                        x if x == BPF_JMP | BPF_JGE | BPF_K => acc >= ins.k,
                        x if x == BPF_JMP | BPF_JSET | BPF_K => acc & ins.k != 0,
                        other => panic!("unknown opcode {other:#x}"),
                    };
                    pc += if taken {
                        ins.jt as usize
                    } else {
                        ins.jf as usize
                    };
                }
            }
            pc += 1;
        }
    }

    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn decisions() {
        let p = build_filter(Families {
            inet: true,
            unix: true,
        });
        let none = build_filter(Families {
            inet: false,
            unix: true,
        });
        let old = build_filter(Families {
            inet: true,
            unix: false,
        });
        let a = AUDIT_ARCH;
        type Case<'a> = (&'a str, &'a [libc::sock_filter], u32, i64, [u64; 6], u32);
        let cases: Vec<Case<'_>> = vec![
            ("read allowed", &p, a, libc::SYS_read, [0; 6], RET_ALLOW),
            (
                "foreign arch killed",
                &p,
                0x4000_0003,
                libc::SYS_read,
                [0; 6],
                RET_KILL_PROCESS,
            ),
            ("ptrace denied", &p, a, libc::SYS_ptrace, [0; 6], EPERM),
            ("bpf denied", &p, a, libc::SYS_bpf, [0; 6], EPERM),
            (
                "io_uring denied",
                &p,
                a,
                libc::SYS_io_uring_setup,
                [0; 6],
                EPERM,
            ),
            (
                "clone3 ENOSYS",
                &p,
                a,
                libc::SYS_clone3,
                [0; 6],
                RET_ERRNO | libc::ENOSYS as u32,
            ),
            (
                "plain fork",
                &p,
                a,
                libc::SYS_clone,
                [libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
                RET_ALLOW,
            ),
            (
                "clone newuser",
                &p,
                a,
                libc::SYS_clone,
                [(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64, 0, 0, 0, 0, 0],
                EPERM,
            ),
            (
                "unix socket",
                &none,
                a,
                libc::SYS_socket,
                [libc::AF_UNIX as u64, 1, 0, 0, 0, 0],
                RET_ALLOW,
            ),
            (
                "inet in none mode",
                &none,
                a,
                libc::SYS_socket,
                [libc::AF_INET as u64, 1, 0, 0, 0, 0],
                RET_ERRNO | libc::EAFNOSUPPORT as u32,
            ),
            (
                "inet stream",
                &p,
                a,
                libc::SYS_socket,
                [libc::AF_INET as u64, 1, 0, 0, 0, 0],
                RET_ALLOW,
            ),
            (
                "inet6 dgram",
                &p,
                a,
                libc::SYS_socket,
                [libc::AF_INET6 as u64, 2 | 0x80000, 0, 0, 0, 0],
                RET_ALLOW,
            ),
            (
                "raw socket",
                &p,
                a,
                libc::SYS_socket,
                [libc::AF_INET as u64, 3, 1, 0, 0, 0],
                EPERM,
            ),
            (
                "raw socket with flags",
                &p,
                a,
                libc::SYS_socket,
                [libc::AF_INET as u64, 3 | 0x800, 1, 0, 0, 0],
                EPERM,
            ),
            (
                "packet socket",
                &p,
                a,
                libc::SYS_socket,
                [libc::AF_PACKET as u64, 3, 0, 0, 0, 0],
                RET_ERRNO | libc::EAFNOSUPPORT as u32,
            ),
            (
                "netlink socket",
                &p,
                a,
                libc::SYS_socket,
                [libc::AF_NETLINK as u64, 2, 0, 0, 0, 0],
                RET_ERRNO | libc::EAFNOSUPPORT as u32,
            ),
            (
                "vsock",
                &p,
                a,
                libc::SYS_socket,
                [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0],
                RET_ERRNO | libc::EAFNOSUPPORT as u32,
            ),
            (
                "family with high bits",
                &p,
                a,
                libc::SYS_socket,
                [(1u64 << 32) | libc::AF_NETLINK as u64, 2, 0, 0, 0, 0],
                RET_ERRNO | libc::EAFNOSUPPORT as u32,
            ),
            (
                "TIOCSTI",
                &p,
                a,
                libc::SYS_ioctl,
                [0, TIOCSTI as u64, 0, 0, 0, 0],
                EPERM,
            ),
            (
                "TIOCSTI high bits",
                &p,
                a,
                libc::SYS_ioctl,
                [0, (1u64 << 32) | TIOCSTI as u64, 0, 0, 0, 0],
                EPERM,
            ),
            (
                "TIOCLINUX",
                &p,
                a,
                libc::SYS_ioctl,
                [0, TIOCLINUX as u64, 0, 0, 0, 0],
                EPERM,
            ),
            (
                "TCGETS",
                &p,
                a,
                libc::SYS_ioctl,
                [0, 0x5401, 0, 0, 0, 0],
                RET_ALLOW,
            ),
            (
                "unix socket without ResolveUnix",
                &old,
                a,
                libc::SYS_socket,
                [libc::AF_UNIX as u64, 1, 0, 0, 0, 0],
                RET_ERRNO | libc::EAFNOSUPPORT as u32,
            ),
            (
                "inet with unix refused",
                &old,
                a,
                libc::SYS_socket,
                [libc::AF_INET as u64, 1, 0, 0, 0, 0],
                RET_ALLOW,
            ),
            (
                "stream socketpair",
                &old,
                a,
                libc::SYS_socketpair,
                [libc::AF_UNIX as u64, 1, 0, 0, 0, 0],
                RET_ALLOW,
            ),
            (
                "dgram socketpair",
                &old,
                a,
                libc::SYS_socketpair,
                [libc::AF_UNIX as u64, 2, 0, 0, 0, 0],
                EPERM,
            ),
            (
                "dgram socketpair with ResolveUnix",
                &p,
                a,
                libc::SYS_socketpair,
                [libc::AF_UNIX as u64, 2, 0, 0, 0, 0],
                RET_ALLOW,
            ),
        ];
        for (name, prog, arch, nr, args, want) in cases {
            assert_eq!(run(prog, arch, nr, args), want, "{name}");
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            run(&p, a, 0x4000_0000 | libc::SYS_ptrace, [0; 6]),
            RET_KILL_PROCESS,
            "x32"
        );
    }

    #[test]
    fn fits_classic_bpf_limits() {
        let p = build_filter(Families {
            inet: true,
            unix: false,
        });
        assert!(p.len() < 4096);
        // Every jump lands inside the program.
        for (i, ins) in p.iter().enumerate() {
            if ins.code & 0x07 == BPF_JMP {
                assert!(i + 1 + (ins.jt as usize) < p.len());
                assert!(i + 1 + (ins.jf as usize) < p.len());
            }
        }
    }
}
