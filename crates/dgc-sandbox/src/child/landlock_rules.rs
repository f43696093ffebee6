//! Landlock rules for the sandbox, applied after the pivot: read and execute everywhere, full
//! access in the writable directories and `/tmp`, read/write on the minimal `/dev` nodes, and
//! (ABI 6+) scoping of abstract Unix sockets and signals to the sandbox. Every access right the
//! kernel knows is handled, so anything not granted here is denied.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use super::mounts::DEVICES;
use crate::protocol::ChildPlan;
use crate::report::{Degradation, Protection, ProtectionKind as K, SetupFailure};
use crate::sys;
use dgc_types::sandbox::DegradedMode;

/// Decides what to do given the kernel's landlock ABI: apply, degrade (named mode), or refuse.
pub(crate) fn decide(abi: i32, allow_missing: bool) -> Result<Option<Degradation>, SetupFailure> {
    if abi >= 1 {
        return Ok(None);
    }
    if allow_missing {
        return Ok(Some(Degradation {
            mode: DegradedMode::NoLandlock,
            missing: K::Landlock,
            reason: "the kernel offers no landlock ABI (landlock_create_ruleset failed)".into(),
        }));
    }
    Err(SetupFailure::new(
        K::Landlock,
        "the kernel offers no landlock ABI",
    ))
}

fn err(e: impl std::fmt::Display) -> SetupFailure {
    SetupFailure::new(K::Landlock, e.to_string())
}

fn path_fd(p: &Path) -> Result<std::os::fd::OwnedFd, SetupFailure> {
    let c = sys::path_cstring(p).map_err(err)?;
    sys::openat2(
        libc::AT_FDCWD,
        &c,
        libc::O_PATH,
        sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| err(format!("{}: {e}", p.display())))
}

/// Applies the ruleset to the calling thread (and so to the workload it forks). Also says
/// whether pathname Unix-socket connects are confined (ABI ≥ 9).
pub(super) fn apply(
    plan: &ChildPlan,
) -> Result<Result<(Protection, bool), Degradation>, SetupFailure> {
    let raw = sys::landlock_abi();
    if let Some(d) = decide(raw, plan.allow_no_landlock)? {
        return Ok(Err(d));
    }
    let abi = ABI::from(raw);
    let all = AccessFs::from_all(abi);
    let read = AccessFs::from_read(abi);
    let dev_rights: BitFlags<AccessFs> = AccessFs::from_file(abi) & !AccessFs::Execute;
    // Device nodes cannot be created anyway (no CAP_MKNOD, nodev mounts); refuse them outright.
    let rw = all & !(AccessFs::MakeChar | AccessFs::MakeBlock);

    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .map_err(err)?;
    let scopes = Scope::from_all(abi);
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes).map_err(err)?;
    }
    let mut created = ruleset
        .create()
        .map_err(err)?
        .add_rule(PathBeneath::new(path_fd(Path::new("/"))?, read))
        .map_err(err)?
        .add_rule(PathBeneath::new(path_fd(Path::new("/tmp"))?, rw))
        .map_err(err)?;
    for w in &plan.writable {
        created = created
            .add_rule(PathBeneath::new(path_fd(w)?, rw))
            .map_err(err)?;
    }
    for d in DEVICES {
        let p = format!("/dev/{d}");
        created = created
            .add_rule(PathBeneath::new(path_fd(Path::new(&p))?, dev_rights))
            .map_err(err)?;
    }
    let status = created.restrict_self().map_err(err)?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(err(format!(
            "ruleset only {:?} on landlock ABI {raw}",
            status.ruleset
        )));
    }
    let resolve_unix = all.contains(AccessFs::ResolveUnix);
    Ok(Ok((
        Protection::new(
            K::Landlock,
            format!(
                "ABI {raw}: read/execute on /, full access to /tmp and writable directories, /dev nodes read/write{}{}",
                if scopes.is_empty() {
                    ""
                } else {
                    "; abstract unix sockets and signals scoped to the sandbox"
                },
                if resolve_unix {
                    "; pathname unix sockets only in writable directories"
                } else {
                    ""
                }
            ),
        ),
        resolve_unix,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_closed_unless_degraded() {
        assert!(decide(7, false).unwrap().is_none());
        assert!(decide(1, false).unwrap().is_none());
        let e = decide(0, false).unwrap_err();
        assert_eq!(e.protection, K::Landlock);
        assert!(e.remediation.contains("no-landlock"));
        let d = decide(0, true).unwrap().unwrap();
        assert_eq!(d.mode, DegradedMode::NoLandlock);
        assert_eq!(d.missing, K::Landlock);
    }
}
