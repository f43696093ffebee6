//! Builds the sandbox's filesystem view in its private mount namespace and pivots into it: a
//! recursive read-only, nosuid, nodev copy of the host root; a fresh `/proc`; a minimal `/dev`;
//! a size-limited private `/tmp`; empty directories over hidden paths; the writable directories
//! bound from descriptors opened without following symlinks; protected paths sealed read-only
//! with their ancestors pinned as mount points so they cannot be renamed away.
//!
//! Every target is resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)` and every
//! mount is attached by descriptor, so a symlink swapped into a path during setup makes the
//! spawn fail instead of redirecting a mount.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::protocol::ChildPlan;
use crate::report::{Protection, ProtectionKind as K, SetupFailure};
use crate::sys::{self, AT_EMPTY_PATH, AT_RECURSIVE, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE};

const STRICT: u64 = sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS;
const BENEATH: u64 = sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS;
/// Device nodes bound into the minimal `/dev`.
pub(crate) const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn fail(kind: K, what: impl std::fmt::Display, e: impl std::fmt::Display) -> SetupFailure {
    SetupFailure::new(kind, format!("{what}: {e}"))
}

fn c(p: &Path) -> Result<CString, SetupFailure> {
    sys::path_cstring(p).map_err(|e| fail(K::MountNamespace, p.display(), e))
}

/// `path` relative to `/`, for lookups inside the new root.
fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

fn open_in(
    root: BorrowedFd<'_>,
    path: &Path,
    resolve: u64,
    kind: K,
) -> Result<OwnedFd, SetupFailure> {
    let p = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    sys::openat2(root.as_raw_fd(), &c(p)?, libc::O_PATH, resolve)
        .map_err(|e| fail(kind, format!("/{}", path.display()), describe(e)))
}

fn describe(e: std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) {
        format!("{e} (a symlink is in the path; symlinks are refused)")
    } else {
        e.to_string()
    }
}

/// Opens `path` below `root`, creating missing directories (which only succeeds on the
/// sandbox's own tmpfs mounts, or inside a writable directory).
fn ensure_dir(
    root: BorrowedFd<'_>,
    path: &Path,
    resolve: u64,
    kind: K,
) -> Result<OwnedFd, SetupFailure> {
    let mut cur = open_in(root, Path::new(""), resolve, kind)?;
    let mut so_far = PathBuf::new();
    for comp in path.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        so_far.push(name);
        cur = match sys::openat2(root.as_raw_fd(), &c(&so_far)?, libc::O_PATH, resolve) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let cname = sys::path_cstring(Path::new(name))
                    .map_err(|e| fail(kind, so_far.display(), e))?;
                sys::mkdirat(cur.as_fd(), &cname, 0o755).map_err(|e| {
                    fail(
                        kind,
                        format!("creating mount point /{}", so_far.display()),
                        e,
                    )
                })?;
                open_in(root, &so_far, resolve, kind)?
            }
            Err(e) => return Err(fail(kind, format!("/{}", so_far.display()), describe(e))),
        };
    }
    Ok(cur)
}

/// Clones the mount tree at `src` (recursively) with `attrs` set and attaches it on `dst`.
fn bind(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    attrs: u64,
    kind: K,
    what: &Path,
) -> Result<(), SetupFailure> {
    let tree = sys::open_tree(
        src.as_raw_fd(),
        c"",
        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE,
    )
    .map_err(|e| fail(kind, format!("open_tree({})", what.display()), e))?;
    if attrs != 0 {
        sys::mount_setattr(tree.as_fd(), true, attrs, 0)
            .map_err(|e| fail(kind, format!("mount_setattr({})", what.display()), e))?;
    }
    sys::move_mount_fd(tree.as_fd(), dst)
        .map_err(|e| fail(kind, format!("move_mount({})", what.display()), e))
}

fn tmpfs(size: u64, mode: &str, attrs: u64, kind: K) -> Result<OwnedFd, SetupFailure> {
    let size = CString::new(size.to_string()).map_err(|e| fail(kind, "tmpfs size", e))?;
    let mode = CString::new(mode).map_err(|e| fail(kind, "tmpfs mode", e))?;
    sys::new_fs_mount(
        c"tmpfs",
        &[(c"size", size.as_c_str()), (c"mode", mode.as_c_str())],
        attrs,
    )
    .map_err(|e| fail(kind, "creating tmpfs", e))
}

/// Builds the view and pivots into it. Returns the protections it applied.
pub(super) fn build(plan: &ChildPlan) -> Result<Vec<Protection>, SetupFailure> {
    sys::mount_private_recursive().map_err(|e| fail(K::MountNamespace, "making / private", e))?;

    // Pin the writable directories before anything can move: no symlink anywhere in the path.
    let mut writable = Vec::new();
    for w in &plan.writable {
        let fd = sys::openat2(
            libc::AT_FDCWD,
            &c(w)?,
            libc::O_PATH | libc::O_DIRECTORY,
            sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| fail(K::WritablePaths, w.display(), describe(e)))?;
        writable.push((w.clone(), fd));
    }

    let ro = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    let root = sys::open_tree(
        libc::AT_FDCWD,
        c"/",
        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
    )
    .map_err(|e| fail(K::ReadOnlyRoot, "open_tree(/)", e))?;
    sys::mount_setattr(root.as_fd(), true, ro, 0)
        .map_err(|e| fail(K::ReadOnlyRoot, "mount_setattr(/)", e))?;
    // Stacked on the old root: path lookups from our (old) root still see the host, while the
    // new tree is reached through `root`.
    sys::move_mount_path(root.as_fd(), c"/")
        .map_err(|e| fail(K::ReadOnlyRoot, "attaching the new root", e))?;
    let mut applied = vec![
        Protection::new(
            K::MountNamespace,
            "private propagation; nothing reaches the host",
        ),
        Protection::new(
            K::ReadOnlyRoot,
            "host / recursively read-only, nosuid, nodev",
        ),
    ];

    let proc_target = open_in(root.as_fd(), Path::new("proc"), STRICT, K::PrivateProc)?;
    let procfs = sys::new_fs_mount(
        c"proc",
        &[],
        sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC,
    )
    .map_err(|e| fail(K::PrivateProc, "mounting proc", e))?;
    sys::move_mount_fd(procfs.as_fd(), proc_target.as_fd())
        .map_err(|e| fail(K::PrivateProc, "attaching proc", e))?;
    applied.push(Protection::new(
        K::PrivateProc,
        "shows only the sandbox's processes",
    ));

    build_dev(root.as_fd())?;
    applied.push(Protection::new(
        K::MinimalDev,
        format!("/dev: {}, fd, stdin, stdout, stderr", DEVICES.join(", ")),
    ));

    let tmp_target = open_in(root.as_fd(), Path::new("tmp"), STRICT, K::PrivateTmp)?;
    let tmp = tmpfs(
        plan.tmp_bytes,
        "1777",
        sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        K::PrivateTmp,
    )?;
    sys::move_mount_fd(tmp.as_fd(), tmp_target.as_fd())
        .map_err(|e| fail(K::PrivateTmp, "attaching /tmp", e))?;
    applied.push(Protection::new(
        K::PrivateTmp,
        format!("tmpfs of {} bytes", plan.tmp_bytes),
    ));

    // Shallow paths first, so a writable directory inside a hidden one is bound on top of the
    // hidden tmpfs, and a hidden directory inside a writable one covers part of it.
    enum Entry<'a> {
        Hidden(&'a Path),
        Writable(&'a Path, &'a OwnedFd),
    }
    let mut entries: Vec<Entry<'_>> = plan
        .hidden
        .iter()
        .map(|h| Entry::Hidden(h.as_path()))
        .collect();
    entries.extend(
        writable
            .iter()
            .map(|(p, fd)| Entry::Writable(p.as_path(), fd)),
    );
    entries.sort_by_key(|e| match e {
        Entry::Hidden(p) | Entry::Writable(p, _) => p.components().count(),
    });
    let mut hidden_mounts = Vec::new();
    let (mut hidden_done, mut hidden_skipped) = (Vec::new(), Vec::new());
    for e in entries {
        match e {
            Entry::Hidden(h) => {
                let target = match sys::openat2(
                    root.as_raw_fd(),
                    &c(rel(h))?,
                    libc::O_PATH | libc::O_DIRECTORY,
                    STRICT,
                ) {
                    Ok(fd) => fd,
                    Err(err) => {
                        hidden_skipped.push(format!("{} ({err})", h.display()));
                        continue;
                    }
                };
                let m = tmpfs(
                    64 << 10,
                    "0755",
                    sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC,
                    K::HiddenPaths,
                )?;
                sys::move_mount_fd(m.as_fd(), target.as_fd())
                    .map_err(|e| fail(K::HiddenPaths, h.display(), e))?;
                hidden_mounts.push(m);
                hidden_done.push(h.display().to_string());
            }
            Entry::Writable(w, src) => {
                let target = ensure_dir(root.as_fd(), rel(w), STRICT, K::WritablePaths)?;
                bind(
                    src.as_fd(),
                    target.as_fd(),
                    sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                    K::WritablePaths,
                    w,
                )?;
            }
        }
    }
    drop(writable);
    for m in &hidden_mounts {
        sys::mount_setattr(m.as_fd(), false, sys::MOUNT_ATTR_RDONLY, 0)
            .map_err(|e| fail(K::HiddenPaths, "sealing a hidden path read-only", e))?;
    }
    let mut detail = format!(
        "empty read-only directories over: {}",
        if hidden_done.is_empty() {
            "none".into()
        } else {
            hidden_done.join(", ")
        }
    );
    if !hidden_skipped.is_empty() {
        detail.push_str(&format!(
            "; not directories on this host, nothing to hide: {}",
            hidden_skipped.join(", ")
        ));
    }
    applied.push(Protection::new(K::HiddenPaths, detail));
    if !plan.writable.is_empty() {
        applied.push(Protection::new(
            K::WritablePaths,
            format!(
                "read-write, nosuid, nodev: {}",
                plan.writable
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    let sealed = seal_protected(root.as_fd(), plan)?;
    if !sealed.is_empty() {
        applied.push(Protection::new(
            K::ProtectedPaths,
            format!(
                "read-only inside writable directories: {}",
                sealed.join(", ")
            ),
        ));
    }

    sys::fchdir(root.as_fd()).map_err(|e| fail(K::ReadOnlyRoot, "fchdir(new root)", e))?;
    drop(root);
    sys::pivot_root_here().map_err(|e| fail(K::ReadOnlyRoot, "pivot_root", e))?;
    sys::umount_detach(c".").map_err(|e| fail(K::ReadOnlyRoot, "detaching the old root", e))?;
    sys::chdir(c"/").map_err(|e| fail(K::ReadOnlyRoot, "chdir(/)", e))?;
    Ok(applied)
}

fn build_dev(root: BorrowedFd<'_>) -> Result<(), SetupFailure> {
    let target = open_in(root, Path::new("dev"), STRICT, K::MinimalDev)?;
    let dev = tmpfs(
        64 << 10,
        "0755",
        sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
        K::MinimalDev,
    )?;
    sys::move_mount_fd(dev.as_fd(), target.as_fd())
        .map_err(|e| fail(K::MinimalDev, "attaching /dev", e))?;
    let dir = sys::openat2(
        root.as_raw_fd(),
        c"dev",
        libc::O_DIRECTORY | libc::O_RDONLY,
        STRICT,
    )
    .map_err(|e| fail(K::MinimalDev, "/dev", e))?;
    for name in DEVICES {
        let cname = sys::cstring(name).map_err(|e| fail(K::MinimalDev, name, e))?;
        let node = sys::create_file_at(dir.as_fd(), &cname)
            .map_err(|e| fail(K::MinimalDev, format!("/dev/{name}"), e))?;
        // The host's node, from the old root (devtmpfs, not nodev).
        let host =
            sys::cstring(&format!("/dev/{name}")).map_err(|e| fail(K::MinimalDev, name, e))?;
        let src = sys::open_tree(libc::AT_FDCWD, &host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
            .map_err(|e| fail(K::MinimalDev, format!("host /dev/{name}"), e))?;
        sys::mount_setattr(
            src.as_fd(),
            false,
            sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
            0,
        )
        .map_err(|e| fail(K::MinimalDev, format!("/dev/{name}"), e))?;
        sys::move_mount_fd(src.as_fd(), node.as_fd())
            .map_err(|e| fail(K::MinimalDev, format!("binding /dev/{name}"), e))?;
    }
    for (name, target) in [
        (c"fd", c"/proc/self/fd"),
        (c"stdin", c"/proc/self/fd/0"),
        (c"stdout", c"/proc/self/fd/1"),
        (c"stderr", c"/proc/self/fd/2"),
    ] {
        sys::symlinkat(target, dir.as_fd(), name)
            .map_err(|e| fail(K::MinimalDev, format!("/dev/{name:?}"), e))?;
    }
    sys::mount_setattr(dev.as_fd(), false, sys::MOUNT_ATTR_RDONLY, 0)
        .map_err(|e| fail(K::MinimalDev, "sealing /dev", e))
}

/// Seals each protected path inside each writable directory. A missing protected path is
/// created as an empty directory first, so that the workload cannot create it either.
fn seal_protected(root: BorrowedFd<'_>, plan: &ChildPlan) -> Result<Vec<String>, SetupFailure> {
    let mut sealed = Vec::new();
    for w in &plan.writable {
        let base = open_in(root, rel(w), STRICT, K::ProtectedPaths)?;
        for p in &plan.protected {
            let comps: Vec<_> = p.components().collect();
            let mut so_far = PathBuf::new();
            for (i, comp) in comps.iter().enumerate() {
                let Component::Normal(name) = comp else {
                    continue;
                };
                so_far.push(name);
                let fd = match sys::openat2(base.as_raw_fd(), &c(&so_far)?, libc::O_PATH, BENEATH) {
                    Ok(fd) => fd,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        let parent = open_in(
                            base.as_fd(),
                            so_far.parent().unwrap_or(Path::new("")),
                            BENEATH,
                            K::ProtectedPaths,
                        )?;
                        let cname = CString::new(name.as_bytes())
                            .map_err(|e| fail(K::ProtectedPaths, p.display(), e))?;
                        sys::mkdirat(parent.as_fd(), &cname, 0o755).map_err(|e| {
                            fail(
                                K::ProtectedPaths,
                                format!("creating {}", w.join(&so_far).display()),
                                e,
                            )
                        })?;
                        open_in(base.as_fd(), &so_far, BENEATH, K::ProtectedPaths)?
                    }
                    Err(e) => {
                        return Err(fail(
                            K::ProtectedPaths,
                            w.join(&so_far).display(),
                            describe(e),
                        ));
                    }
                };
                let last = i + 1 == comps.len();
                // Ancestors become mount points (rename/rmdir then fail with EBUSY); the path
                // itself becomes a read-only mount.
                let attrs = if last {
                    sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV
                } else {
                    0
                };
                bind(
                    fd.as_fd(),
                    fd.as_fd(),
                    attrs,
                    K::ProtectedPaths,
                    &w.join(&so_far),
                )?;
            }
            sealed.push(w.join(p).display().to_string());
        }
    }
    Ok(sealed)
}
