//! One timed `verify_log` over a million signed records (too long for criterion's ten
//! samples): builds the log in memory, then verifies it once and prints records/s, per
//! wall-clock second and per CPU second (the latter is what to compare on a shared machine).
//! Run with `cargo bench -p dgc-audit --bench verify_1m`; `DGC_BENCH_RECORDS` overrides the size.

// A benchmark has no caller to hand errors to: a failing setup must abort the run loudly.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use dgc_audit::entry::{MemoryOp, MemoryWrite};
use dgc_audit::hash::sha256;
use dgc_audit::{
    Entry, KeyName, Log, LogLeaf, MemoryStorage, PendingRecord, Signer, VerifyOptions, verify_log,
};
use time::OffsetDateTime;

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

fn main() {
    let n: u64 = std::env::var("DGC_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let origin = KeyName::new("dgc.local/bench").unwrap();
    let inst = Signer::from_seed(origin.clone(), &[1; 32]);
    let log = Log::new(origin.clone());
    let mut store = MemoryStorage::new();
    log.init(&mut store, "bench", &inst, OffsetDateTime::UNIX_EPOCH)
        .unwrap();
    let built = Instant::now();
    let cpu0 = cpu_seconds();
    let mut i = 1;
    let mut batches = 0u64;
    let mut checkpoints = Vec::new();
    while i < n {
        let k = (n - i).min(10_000);
        let batch: Vec<PendingRecord<'_>> = (i..i + k)
            .map(|j| {
                PendingRecord::new(
                    Entry::MemoryWrite(MemoryWrite {
                        memory_id: format!("mem_{j:012}"),
                        agent_id: "ag_bench".into(),
                        op: MemoryOp::Create,
                        kind: Some("episodic".into()),
                        content_sha256: Some(sha256(&j.to_be_bytes())),
                        request_id: Some(format!("req-{j}")),
                    }),
                    OffsetDateTime::UNIX_EPOCH,
                )
            })
            .collect();
        log.append(&mut store, &inst, batch).unwrap();
        i += k;
        batches += 1;
        if batches.is_multiple_of(10) || i == n {
            checkpoints.push(log.checkpoint(&store, &inst).unwrap().note);
        }
    }
    let build_secs = built.elapsed().as_secs_f64();
    let build_cpu = cpu_seconds() - cpu0;
    let leaves: Vec<LogLeaf> = store
        .records()
        .iter()
        .enumerate()
        .map(|(i, r)| LogLeaf::new(i as u64, r.clone()))
        .collect();
    let opts = VerifyOptions::new(origin, vec![inst.verifier().clone()]);
    let start = Instant::now();
    let cpu1 = cpu_seconds();
    let report = verify_log(leaves.into_iter().map(Ok), &checkpoints, opts).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let verify_cpu = cpu_seconds() - cpu1;
    assert_eq!(report.size, n);
    println!(
        "append (signed, batches of 10000, checkpoint every 100000): {n} records in \
         {build_secs:.1} s = {:.0} records/s; {build_cpu:.1} CPU s = {:.0} records per CPU s",
        n as f64 / build_secs,
        n as f64 / build_cpu
    );
    println!(
        "verify_log: {n} records, {} checkpoints in {secs:.1} s = {:.0} records/s; \
         {verify_cpu:.1} CPU s = {:.0} records per CPU s",
        report.checkpoints.len(),
        n as f64 / secs,
        n as f64 / verify_cpu
    );
}
