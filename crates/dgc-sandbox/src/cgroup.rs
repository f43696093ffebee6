//! Per-sandbox cgroups with memory, pids and CPU limits on cgroup v1 (one hierarchy per
//! controller) and v2 (one unified hierarchy with delegated controllers): detection from
//! `/proc/self/mountinfo`, creation, OOM and pids-limit accounting, killing every member and
//! removal. The file-writing logic takes its directories as parameters so it is unit-tested on
//! plain directories; detection refuses anything that is not a real cgroup filesystem.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::report::{ProtectionKind, SetupFailure};
use crate::sys;

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// Directory (under the caller's own cgroup) that holds one cgroup per sandbox.
const PARENT_NAME: &str = "dgc-sandbox";
const CPU_PERIOD_US: u64 = 100_000;

/// Where sandbox cgroups are created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CgroupConfig {
    /// Detect from `/proc/self/mountinfo`: v1 if memory, pids and cpu are mounted as v1
    /// hierarchies, otherwise v2. Sandboxes go under `<own cgroup>/dgc-sandbox/`.
    #[default]
    Auto,
    /// A delegated cgroup v2 directory whose children may have memory, pids and cpu enabled.
    V2(PathBuf),
    /// Parent directories inside the v1 memory, pids and cpu hierarchies.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
    },
}

/// The cgroup hierarchy version in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Resolved parent directories for sandbox cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupParent {
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
    },
    V2(PathBuf),
}

impl CgroupParent {
    pub fn version(&self) -> CgroupVersion {
        match self {
            Self::V1 { .. } => CgroupVersion::V1,
            Self::V2(_) => CgroupVersion::V2,
        }
    }
}

/// Limits written into a sandbox cgroup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgroupLimits {
    pub memory: u64,
    pub pids: u32,
    pub cpu: f64,
}

fn failure(msg: impl Into<String>) -> SetupFailure {
    SetupFailure::new(ProtectionKind::Cgroups, msg)
}

/// One line of `/proc/self/mountinfo` that is a cgroup mount.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    root: String,
    mountpoint: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push((v & 0xff) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let fstype = r[0];
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            r[2].split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                .map(str::to_string)
                .collect()
        };
        out.push(CgroupMount {
            root: unescape(l[3]),
            mountpoint: PathBuf::from(unescape(l[4])),
            v2,
            controllers,
        });
    }
    out
}

/// `/proc/self/cgroup`: (controllers, path) per hierarchy; v2 has empty controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            let c = if ctrls.is_empty() {
                Vec::new()
            } else {
                ctrls.split(',').map(str::to_string).collect()
            };
            Some((c, path.to_string()))
        })
        .collect()
}

/// Joins a mount point, the mount's root and our own cgroup path into a directory.
fn own_dir(m: &CgroupMount, own: &str) -> PathBuf {
    let rel = own
        .strip_prefix(m.root.trim_end_matches('/'))
        .unwrap_or(own);
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        m.mountpoint.clone()
    } else {
        m.mountpoint.join(rel)
    }
}

/// Picks the hierarchy from mount and membership information (pure, for tests).
fn choose(
    mounts: &[CgroupMount],
    membership: &[(Vec<String>, String)],
    v2_controllers: Option<&str>,
) -> Result<CgroupParent, String> {
    let v1 = |ctrl: &str| -> Option<PathBuf> {
        let m = mounts
            .iter()
            .find(|m| !m.v2 && m.controllers.iter().any(|c| c == ctrl))?;
        let own = membership
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == ctrl))
            .map(|(_, p)| p.as_str())
            .unwrap_or("/");
        Some(own_dir(m, own).join(PARENT_NAME))
    };
    if let (Some(memory), Some(pids), Some(cpu)) = (v1("memory"), v1("pids"), v1("cpu")) {
        return Ok(CgroupParent::V1 { memory, pids, cpu });
    }
    let Some(m) = mounts.iter().find(|m| m.v2) else {
        return Err(
            "no cgroup v2 mount and the v1 memory, pids and cpu controllers are not all mounted"
                .into(),
        );
    };
    let available = v2_controllers.unwrap_or("");
    let missing: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| !available.split_whitespace().any(|a| a == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "cgroup v2 at {} does not offer the {} controller(s) to this process",
            m.mountpoint.display(),
            missing.join(", ")
        ));
    }
    let own = membership
        .iter()
        .find(|(c, _)| c.is_empty())
        .map(|(_, p)| p.as_str())
        .unwrap_or("/");
    Ok(CgroupParent::V2(own_dir(m, own).join(PARENT_NAME)))
}

/// Resolves where sandbox cgroups go, refusing anything that is not a cgroup filesystem.
pub fn resolve(config: &CgroupConfig) -> Result<CgroupParent, SetupFailure> {
    let parent = match config {
        CgroupConfig::V2(p) => CgroupParent::V2(p.clone()),
        CgroupConfig::V1 { memory, pids, cpu } => CgroupParent::V1 {
            memory: memory.clone(),
            pids: pids.clone(),
            cpu: cpu.clone(),
        },
        CgroupConfig::Auto => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
                .map_err(|e| failure(format!("reading /proc/self/mountinfo: {e}")))?;
            let membership = std::fs::read_to_string("/proc/self/cgroup")
                .map_err(|e| failure(format!("reading /proc/self/cgroup: {e}")))?;
            let mounts = parse_mountinfo(&mountinfo);
            let membership = parse_proc_cgroup(&membership);
            let v2_controllers = mounts.iter().find(|m| m.v2).and_then(|m| {
                let own = membership
                    .iter()
                    .find(|(c, _)| c.is_empty())
                    .map(|(_, p)| p.as_str())
                    .unwrap_or("/");
                std::fs::read_to_string(own_dir(m, own).join("cgroup.controllers")).ok()
            });
            choose(&mounts, &membership, v2_controllers.as_deref()).map_err(failure)?
        }
    };
    let check = |dir: &Path, magic: i64| -> Result<(), SetupFailure> {
        // The parent may not exist yet; its nearest existing ancestor must be cgroupfs.
        let mut probe = dir;
        while !probe.exists() {
            probe = probe.parent().unwrap_or(Path::new("/"));
        }
        match sys::fs_magic(probe) {
            Ok(m) if m == magic => Ok(()),
            Ok(_) => Err(failure(format!(
                "{} is not on a cgroup{} filesystem",
                dir.display(),
                if magic == CGROUP2_SUPER_MAGIC {
                    "2"
                } else {
                    ""
                }
            ))),
            Err(e) => Err(failure(format!("statfs {}: {e}", probe.display()))),
        }
    };
    match &parent {
        CgroupParent::V1 { memory, pids, cpu } => {
            for d in [memory, pids, cpu] {
                check(d, CGROUP_SUPER_MAGIC)?;
            }
        }
        CgroupParent::V2(d) => check(d, CGROUP2_SUPER_MAGIC)?,
    }
    Ok(parent)
}

/// A unique cgroup name for one sandbox.
pub fn unique_name() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sb-{}-{}-{nanos:08x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn write(path: &Path, value: &str) -> Result<(), SetupFailure> {
    std::fs::write(path, value)
        .map_err(|e| failure(format!("writing {value:?} to {}: {e}", path.display())))
}

fn mkdir_all(path: &Path) -> Result<(), SetupFailure> {
    std::fs::create_dir_all(path).map_err(|e| failure(format!("creating {}: {e}", path.display())))
}

/// One sandbox's cgroup (a directory per v1 hierarchy, or one v2 directory).
#[derive(Debug)]
pub struct SandboxCgroup {
    version: CgroupVersion,
    /// memory, pids, cpu (v1) or the single v2 directory.
    dirs: Vec<PathBuf>,
    removed: bool,
}

impl SandboxCgroup {
    /// Creates the cgroup and writes its limits. On failure nothing is left behind.
    pub fn create(
        parent: &CgroupParent,
        name: &str,
        limits: CgroupLimits,
    ) -> Result<Self, SetupFailure> {
        let mut cg = match parent {
            CgroupParent::V1 { memory, pids, cpu } => {
                let dirs = vec![memory.join(name), pids.join(name), cpu.join(name)];
                for d in &dirs {
                    mkdir_all(d.parent().unwrap_or(Path::new("/")))?;
                }
                let mut cg = Self {
                    version: CgroupVersion::V1,
                    dirs: Vec::new(),
                    removed: false,
                };
                for d in &dirs {
                    std::fs::create_dir(d)
                        .map_err(|e| failure(format!("creating {}: {e}", d.display())))?;
                    cg.dirs.push(d.clone());
                }
                cg
            }
            CgroupParent::V2(p) => {
                if !p.exists() {
                    // Controllers must be enabled on every level down to our leaves.
                    if let Some(up) = p.parent() {
                        enable_v2_controllers(up)?;
                    }
                    mkdir_all(p)?;
                }
                enable_v2_controllers(p)?;
                let d = p.join(name);
                std::fs::create_dir(&d)
                    .map_err(|e| failure(format!("creating {}: {e}", d.display())))?;
                Self {
                    version: CgroupVersion::V2,
                    dirs: vec![d],
                    removed: false,
                }
            }
        };
        if let Err(e) = cg.set_limits(limits) {
            cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    /// Writes (or rewrites) the memory, pids and CPU limits.
    pub fn set_limits(&self, limits: CgroupLimits) -> Result<(), SetupFailure> {
        let quota = ((limits.cpu * CPU_PERIOD_US as f64).round() as u64).max(1000);
        let mem = limits.memory.to_string();
        match self.version {
            CgroupVersion::V1 => {
                // memsw must stay ≥ the memory limit at every step, so order depends on direction.
                let memsw = self.dirs[0].join("memory.memsw.limit_in_bytes");
                let limit = self.dirs[0].join("memory.limit_in_bytes");
                if memsw.exists() {
                    let current: u64 = std::fs::read_to_string(&limit)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(u64::MAX);
                    if limits.memory > current {
                        write(&memsw, &mem)?;
                        write(&limit, &mem)?;
                    } else {
                        write(&limit, &mem)?;
                        write(&memsw, &mem)?;
                    }
                } else {
                    write(&limit, &mem)?;
                }
                write(&self.dirs[1].join("pids.max"), &limits.pids.to_string())?;
                write(
                    &self.dirs[2].join("cpu.cfs_period_us"),
                    &CPU_PERIOD_US.to_string(),
                )?;
                write(&self.dirs[2].join("cpu.cfs_quota_us"), &quota.to_string())
            }
            CgroupVersion::V2 => {
                let d = &self.dirs[0];
                write(&d.join("memory.max"), &mem)?;
                let swap = d.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, "0")?;
                }
                write(&d.join("pids.max"), &limits.pids.to_string())?;
                write(&d.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))
            }
        }
    }
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The `cgroup.procs` files a process must be written into to join (one per hierarchy).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    fn memory_dir(&self) -> &Path {
        &self.dirs[0]
    }

    fn pids_dir(&self) -> &Path {
        if self.version == CgroupVersion::V1 {
            &self.dirs[1]
        } else {
            &self.dirs[0]
        }
    }

    /// Number of processes the OOM killer killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = match self.version {
            CgroupVersion::V1 => ("memory.oom_control", "oom_kill"),
            CgroupVersion::V2 => ("memory.events", "oom_kill"),
        };
        read_key(&self.memory_dir().join(file), key)
    }

    /// Number of forks refused because `pids.max` was reached.
    pub fn pids_max_events(&self) -> u64 {
        read_key(&self.pids_dir().join("pids.events"), "max")
    }

    /// SIGKILLs every process in the cgroup (v2: `cgroup.kill`).
    pub fn kill_all(&self) {
        if self.version == CgroupVersion::V2
            && std::fs::write(self.dirs[0].join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for d in &self.dirs {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs
                    .lines()
                    .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
                {
                    if let Ok(fd) = sys::pidfd_open(pid) {
                        let _ =
                            sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&fd), libc::SIGKILL);
                    }
                }
            }
        }
    }

    /// Whether any process is still a member.
    pub fn is_empty(&self) -> bool {
        self.dirs.iter().all(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .map(|s| s.trim().is_empty())
                .unwrap_or(true)
        })
    }

    /// Kills what is left and removes the directories, retrying while members exit.
    pub fn remove(&mut self) {
        if self.removed {
            return;
        }
        for attempt in 0..200 {
            let mut busy = false;
            for d in &self.dirs {
                match std::fs::remove_dir(d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => busy = true,
                }
            }
            if !busy {
                break;
            }
            if attempt % 10 == 0 {
                self.kill_all();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.removed = true;
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

fn read_key(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key))
                    .then(|| it.next().and_then(|v| v.parse().ok()))
                    .flatten()
            })
        })
        .unwrap_or(0)
}

/// Enables memory, pids and cpu for the children of a v2 directory.
fn enable_v2_controllers(dir: &Path) -> Result<(), SetupFailure> {
    let current = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let wanted: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| !current.split_whitespace().any(|x| x == *c))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let line = wanted
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(dir.join("cgroup.subtree_control"), &line).map_err(|e| {
        let hint = if e.raw_os_error() == Some(libc::EBUSY) {
            " (the cgroup has processes of its own: run dgc in a leaf of a delegated subtree, e.g. systemd Delegate=yes, and point the sandbox at a sibling)"
        } else {
            ""
        };
        failure(format!("enabling {line} in {}/cgroup.subtree_control: {e}{hint}", dir.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const MOUNTINFO_V2: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn chooses_v1_on_hybrid_hosts() {
        let mounts = parse_mountinfo(MOUNTINFO_V1);
        let membership = parse_proc_cgroup("5:memory:/svc\n4:pids:/\n2:cpu:/\n0::/\n");
        let p = choose(&mounts, &membership, Some("")).unwrap();
        assert_eq!(
            p,
            CgroupParent::V1 {
                memory: "/sys/fs/cgroup/memory/svc/dgc-sandbox".into(),
                pids: "/sys/fs/cgroup/pids/dgc-sandbox".into(),
                cpu: "/sys/fs/cgroup/cpu/dgc-sandbox".into(),
            }
        );
    }

    #[test]
    fn chooses_v2_and_names_missing_controllers() {
        let mounts = parse_mountinfo(MOUNTINFO_V2);
        let membership = parse_proc_cgroup("0::/system.slice/dgc.service/main\n");
        let p = choose(&mounts, &membership, Some("cpuset cpu io memory pids")).unwrap();
        assert_eq!(
            p,
            CgroupParent::V2("/sys/fs/cgroup/system.slice/dgc.service/main/dgc-sandbox".into())
        );
        let err = choose(&mounts, &membership, Some("cpu io")).unwrap_err();
        assert!(err.contains("memory, pids"), "{err}");
        assert!(choose(&[], &membership, None).is_err());
    }

    #[test]
    fn own_dir_strips_the_mount_root() {
        let m = CgroupMount {
            root: "/docker/abc".into(),
            mountpoint: "/sys/fs/cgroup".into(),
            v2: true,
            controllers: vec![],
        };
        assert_eq!(
            own_dir(&m, "/docker/abc/inner"),
            PathBuf::from("/sys/fs/cgroup/inner")
        );
        assert_eq!(own_dir(&m, "/docker/abc"), PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn v1_files_are_written() {
        let t = tempfile::tempdir().unwrap();
        let parent = CgroupParent::V1 {
            memory: t.path().join("memory/dgc-sandbox"),
            pids: t.path().join("pids/dgc-sandbox"),
            cpu: t.path().join("cpu/dgc-sandbox"),
        };
        let limits = CgroupLimits {
            memory: 256 << 20,
            pids: 64,
            cpu: 1.5,
        };
        let mut cg = SandboxCgroup::create(&parent, "sb1", limits).unwrap();
        let read = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(
            read("memory/dgc-sandbox/sb1/memory.limit_in_bytes"),
            (256u64 << 20).to_string()
        );
        assert_eq!(read("pids/dgc-sandbox/sb1/pids.max"), "64");
        assert_eq!(read("cpu/dgc-sandbox/sb1/cpu.cfs_quota_us"), "150000");
        assert_eq!(read("cpu/dgc-sandbox/sb1/cpu.cfs_period_us"), "100000");
        assert_eq!(cg.procs_files().len(), 3);
        std::fs::write(
            t.path().join("memory/dgc-sandbox/sb1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        std::fs::write(t.path().join("pids/dgc-sandbox/sb1/pids.events"), "max 7\n").unwrap();
        assert_eq!(cg.oom_kills(), 2);
        assert_eq!(cg.pids_max_events(), 7);
        // Plain directories with files in them cannot be rmdir'ed; cgroupfs ones can.
        for d in ["memory", "pids", "cpu"] {
            let dir = t.path().join(d).join("dgc-sandbox/sb1");
            for f in std::fs::read_dir(&dir).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
            }
        }
        cg.remove();
        assert!(!t.path().join("memory/dgc-sandbox/sb1").exists());
    }

    #[test]
    fn v2_files_are_written_and_controllers_enabled() {
        let t = tempfile::tempdir().unwrap();
        let parent_dir = t.path().join("svc/dgc-sandbox");
        std::fs::create_dir_all(t.path().join("svc")).unwrap();
        std::fs::write(t.path().join("svc/cgroup.subtree_control"), "io").unwrap();
        let parent = CgroupParent::V2(parent_dir.clone());
        let limits = CgroupLimits {
            memory: 128 << 20,
            pids: 32,
            cpu: 0.25,
        };
        let cg = SandboxCgroup::create(&parent, "sb2", limits).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            read(&t.path().join("svc/cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert_eq!(
            read(&parent_dir.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert_eq!(
            read(&parent_dir.join("sb2/memory.max")),
            (128u64 << 20).to_string()
        );
        assert_eq!(read(&parent_dir.join("sb2/pids.max")), "32");
        assert_eq!(read(&parent_dir.join("sb2/cpu.max")), "25000 100000");
        std::fs::write(
            parent_dir.join("sb2/memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 1);
        assert_eq!(cg.procs_files(), vec![parent_dir.join("sb2/cgroup.procs")]);
        std::mem::forget(cg);
    }

    #[test]
    fn resolve_refuses_non_cgroup_directories() {
        let t = tempfile::tempdir().unwrap();
        let err = resolve(&CgroupConfig::V2(t.path().join("x"))).unwrap_err();
        assert_eq!(err.protection, ProtectionKind::Cgroups);
        assert!(
            err.message.contains("not on a cgroup2 filesystem"),
            "{}",
            err.message
        );
    }

    #[test]
    fn mountinfo_unescapes_paths() {
        let m = parse_mountinfo(
            "31 30 0:27 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,memory\n",
        );
        assert_eq!(m[0].mountpoint, PathBuf::from("/sys/fs/cgroup/my dir"));
        assert_eq!(m[0].controllers, vec!["memory".to_string()]);
    }
}
