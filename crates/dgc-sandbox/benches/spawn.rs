//! Spawn latency of `/bin/true`: the full process-tier profile (library spawn + wait, as the
//! runtime does it) against `unshare --user --map-root-user --net --pid --fork true` and a full
//! `bwrap` profile, interleaved in the same run so that machine noise hits all of them alike.
//! Also the gVisor tier against `runsc --network=none do true` when runsc is installed.
//!
//! `cargo bench -p dgc-sandbox --bench spawn` (env: `DGC_BENCH_RUNS`, default 200;
//! `DGC_BENCH_GVISOR_RUNS`, default 20). Run as root.
// A benchmark binary aborts on setup errors, like a test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dgc_sandbox::cgroup::CgroupConfig;
use dgc_sandbox::{
    DegradedMode, Sandbox, SandboxCommand, SandboxConfig, SandboxProfile, SandboxTier,
};

fn stats(name: &str, mut v: Vec<Duration>) -> f64 {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| ms(v[((v.len() as f64 - 1.0) * q).round() as usize]);
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    println!(
        "{name:<48} n={:<4} p50 {:>7.2} ms  p95 {:>7.2} ms  mean {:>7.2} ms",
        v.len(),
        p(0.5),
        p(0.95),
        mean
    );
    p(0.5)
}

fn time_cmd(argv: &[&str]) -> Duration {
    let t = Instant::now();
    let st = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn baseline");
    assert!(st.success(), "{argv:?} failed: {st}");
    t.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("spawn: benchmark");
        return;
    }
    let runs: usize = std::env::var("DGC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let gruns: usize = std::env::var("DGC_BENCH_GVISOR_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_dgc-sandbox-harness"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sandbox = Sandbox::new(SandboxConfig::new(&exe));
    let mut nocg_cfg = SandboxConfig::new(&exe);
    nocg_cfg.cgroups = CgroupConfig::V2("/nonexistent-cgroup".into());
    let nocg = Sandbox::new(nocg_cfg);
    let profile = SandboxProfile::default();
    let nocg_profile = SandboxProfile {
        degraded: vec![DegradedMode::NoCgroups],
        ..SandboxProfile::default()
    };
    let spawn = |s: &Sandbox, p: &SandboxProfile| {
        rt.block_on(async {
            let t = Instant::now();
            let cmd = SandboxCommand::new(vec!["/bin/true".into()])
                .expect("cmd")
                .cwd("/");
            let r = s
                .spawn(cmd, p)
                .await
                .expect("spawn")
                .wait()
                .await
                .expect("wait");
            assert!(r.success(), "{r:?}");
            t.elapsed()
        })
    };
    let unshare = [
        "unshare",
        "--user",
        "--map-root-user",
        "--net",
        "--pid",
        "--fork",
        "true",
    ];
    let bwrap = [
        "bwrap",
        "--unshare-all",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--die-with-parent",
        "true",
    ];
    for _ in 0..10 {
        spawn(&sandbox, &profile);
        time_cmd(&unshare);
        time_cmd(&bwrap);
    }
    let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(spawn(&sandbox, &profile));
        b.push(time_cmd(&unshare));
        c.push(time_cmd(&bwrap));
        d.push(spawn(&nocg, &nocg_profile));
    }
    println!("spawn + wait of /bin/true, {runs} interleaved runs:");
    let pa = stats("dgc process tier, full profile", a);
    let pb = stats("unshare --user --map-root-user --net --pid --fork", b);
    stats("bwrap --unshare-all (full profile)", c);
    stats("dgc process tier, no cgroups (diagnostic)", d);
    println!("ratio p50 dgc / unshare = {:.2} (target ≤ 1.30)", pa / pb);

    if gruns > 0
        && Command::new("runsc")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        let g = SandboxProfile {
            tier: SandboxTier::Gvisor,
            ..SandboxProfile::default()
        };
        let runsc_do = ["runsc", "--network=none", "do", "true"];
        spawn(&sandbox, &g);
        time_cmd(&runsc_do);
        let (mut ga, mut gb) = (Vec::new(), Vec::new());
        for _ in 0..gruns {
            ga.push(spawn(&sandbox, &g));
            gb.push(time_cmd(&runsc_do));
        }
        println!("gVisor, {gruns} interleaved runs:");
        let x = stats("dgc gvisor tier", ga);
        let y = stats("runsc --network=none do true", gb);
        println!("ratio p50 dgc gvisor / runsc do = {:.2}", x / y);
    }
}
