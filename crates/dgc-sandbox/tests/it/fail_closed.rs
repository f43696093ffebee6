//! Fail closed: a missing protection refuses the spawn with the protection's name and the fix,
//! unless the profile opted into the named degraded mode, which the result then records.

use std::os::unix::fs::PermissionsExt;

use dgc_sandbox::cgroup::CgroupConfig;
use dgc_sandbox::{
    DegradedMode, ProtectionKind, Sandbox, SandboxCommand, SandboxConfig, SandboxError,
    SandboxProfile, SandboxTier,
};

use crate::common::*;

fn cmd() -> SandboxCommand {
    SandboxCommand::new(vec!["/bin/true".into()])
        .unwrap()
        .cwd("/")
}

fn setup_failure(e: SandboxError) -> dgc_sandbox::SetupFailure {
    match e {
        SandboxError::Setup(f) => f,
        other => panic!("expected a setup failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_cgroups_refuse_unless_degraded_mode_is_named() {
    require_root();
    let not_cgroup = tempfile::tempdir().unwrap();
    let mut c = SandboxConfig::new(HARNESS);
    c.warm_pool = 0;
    c.cgroups = CgroupConfig::V2(not_cgroup.path().join("dgc"));
    let s = Sandbox::new(c);
    let f = setup_failure(
        s.spawn(cmd(), &SandboxProfile::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(f.protection, ProtectionKind::Cgroups);
    assert!(f.message.contains("not on a cgroup2 filesystem"), "{f}");
    assert!(f.remediation.contains("no-cgroups"), "{}", f.remediation);

    let p = SandboxProfile {
        degraded: vec![DegradedMode::NoCgroups],
        ..SandboxProfile::default()
    };
    let r = s.spawn(cmd(), &p).await.unwrap().wait().await.unwrap();
    assert!(r.success());
    assert_eq!(r.degraded.len(), 1);
    assert_eq!(
        (r.degraded[0].mode, r.degraded[0].missing),
        (DegradedMode::NoCgroups, ProtectionKind::Cgroups)
    );
    assert!(
        !r.protections
            .iter()
            .any(|p| p.kind == ProtectionKind::Cgroups)
    );
    // Everything else is still there.
    assert!(
        r.protections
            .iter()
            .any(|p| p.kind == ProtectionKind::Landlock)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_writable_dirs_are_refused_with_the_fix() {
    let s = sandbox();
    let root_owned = tempfile::Builder::new()
        .prefix("dgc-it-rootdir-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(root_owned.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = setup_failure(
        s.spawn(cmd(), &profile_with(&[root_owned.path()]))
            .await
            .unwrap_err(),
    );
    assert_eq!(f.protection, ProtectionKind::WritablePaths);
    assert!(
        f.message
            .contains("not writable by the sandbox's host uid 65534"),
        "{f}"
    );
    assert!(
        f.remediation.contains("chown -R 65534:65534"),
        "{}",
        f.remediation
    );

    let f = setup_failure(
        s.spawn(
            cmd(),
            &profile_with(&[std::path::Path::new("/var/tmp/dgc-it-does-not-exist")]),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(f.protection, ProtectionKind::WritablePaths);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reexec_target_without_the_child_entry_point_is_refused() {
    require_root();
    let mut c = SandboxConfig::new("/bin/true");
    c.warm_pool = 0;
    let f = setup_failure(
        Sandbox::new(c)
            .spawn(cmd(), &SandboxProfile::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(f.protection, ProtectionKind::Supervisor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_runsc_refuses_the_gvisor_tier_with_the_install_command() {
    require_root();
    let mut c = SandboxConfig::new(HARNESS);
    c.runsc = "/nonexistent/runsc".into();
    let p = SandboxProfile {
        tier: SandboxTier::Gvisor,
        ..SandboxProfile::default()
    };
    let f = setup_failure(Sandbox::new(c).spawn(cmd(), &p).await.unwrap_err());
    assert_eq!(f.protection, ProtectionKind::Gvisor);
    assert!(
        f.remediation.contains("apt-get install -y runsc"),
        "{}",
        f.remediation
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_profiles_and_commands_are_rejected_before_anything_runs() {
    let s = sandbox();
    let mut p = SandboxProfile::default();
    p.limits.pids = 0;
    assert!(matches!(
        s.spawn(cmd(), &p).await,
        Err(SandboxError::Profile(_))
    ));
    assert!(SandboxCommand::new(vec![]).is_err());
    assert!(SandboxCommand::new(vec!["a\0b".into()]).is_err());
    let p = SandboxProfile {
        tier: SandboxTier::Wasm,
        ..SandboxProfile::default()
    };
    assert!(matches!(
        s.spawn(cmd(), &p).await,
        Err(SandboxError::Profile(_))
    ));
}
