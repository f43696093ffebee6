//! dgc-audit benchmarks on the in-memory storage: signed appends (single and batched), proof
//! generation at 1M entries, offline log verification, DSSE attestation sign/verify, and
//! checkpoint sign/open. Run with `cargo bench -p dgc-audit --bench audit`.

// A benchmark has no caller to hand errors to: a failing setup must abort the run loudly.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dgc_audit::entry::{AttestationSubject, MemoryOp, MemoryWrite};
use dgc_audit::hash::sha256;
use dgc_audit::{
    ActionPredicate, ActionRef, AgentRef, Entry, KeyName, Log, LogLeaf, MemoryStorage,
    PendingRecord, ResourceDescriptor, Signer, Statement, Timings, VerifyOptions, open_checkpoint,
    sign_attestation, verify_attestation, verify_log,
};
use time::OffsetDateTime;

const ORIGIN: &str = "dgc.local/bench";

fn origin() -> KeyName {
    KeyName::new(ORIGIN).unwrap()
}

fn memory_entry(n: u64) -> Entry {
    Entry::MemoryWrite(MemoryWrite {
        memory_id: format!("mem_{n:012}"),
        agent_id: "ag_bench".into(),
        op: MemoryOp::Create,
        kind: Some("episodic".into()),
        content_sha256: Some(sha256(&n.to_be_bytes())),
        request_id: Some(format!("req-{n}")),
    })
}

fn fresh_log(signer: &Signer) -> (Log, MemoryStorage) {
    let log = Log::new(origin());
    let mut store = MemoryStorage::new();
    log.init(&mut store, "bench", signer, OffsetDateTime::UNIX_EPOCH)
        .unwrap();
    (log, store)
}

fn batch(start: u64, n: u64) -> Vec<PendingRecord<'static>> {
    (start..start + n)
        .map(|i| PendingRecord::new(memory_entry(i), OffsetDateTime::UNIX_EPOCH))
        .collect()
}

fn append(c: &mut Criterion) {
    let signer = Signer::from_seed(origin(), &[1; 32]);
    let mut g = c.benchmark_group("append");
    g.measurement_time(Duration::from_secs(8));

    g.throughput(Throughput::Elements(1));
    g.bench_function("signed_single", |b| {
        b.iter_custom(|iters| {
            let (log, mut store) = fresh_log(&signer);
            let start = Instant::now();
            for i in 0..iters {
                log.append(&mut store, &signer, batch(i, 1)).unwrap();
            }
            start.elapsed()
        });
    });

    for n in [100u64, 1000] {
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("signed_batch_{n}"), |b| {
            b.iter_custom(|iters| {
                let (log, mut store) = fresh_log(&signer);
                let start = Instant::now();
                for i in 0..iters {
                    log.append(&mut store, &signer, batch(i * n, n)).unwrap();
                }
                start.elapsed()
            });
        });
        g.bench_function(format!("signed_batch_{n}_plus_checkpoint"), |b| {
            b.iter_custom(|iters| {
                let (log, mut store) = fresh_log(&signer);
                let start = Instant::now();
                for i in 0..iters {
                    log.append(&mut store, &signer, batch(i * n, n)).unwrap();
                    black_box(log.checkpoint(&store, &signer).unwrap());
                }
                start.elapsed()
            });
        });
    }

    // Baseline: the Merkle tree alone (no encoding, no signature).
    g.throughput(Throughput::Elements(1000));
    g.bench_function("unsigned_leaves_batch_1000", |b| {
        let leaves: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        b.iter_custom(|iters| {
            let log = Log::new(origin());
            let mut store = MemoryStorage::new();
            let start = Instant::now();
            for _ in 0..iters {
                log.append_leaves(&mut store, &leaves).unwrap();
            }
            start.elapsed()
        });
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    const N: u64 = 1 << 20;
    let log = Log::new(origin());
    let mut store = MemoryStorage::new();
    let mut i = 0u64;
    while i < N {
        let leaves: Vec<Vec<u8>> = (i..i + 65_536).map(|x| x.to_be_bytes().to_vec()).collect();
        log.append_leaves(&mut store, &leaves).unwrap();
        i += 65_536;
    }
    let mut g = c.benchmark_group("proof_1m");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    g.bench_function("inclusion", |b| {
        b.iter_batched(
            || next() % N,
            |idx| log.inclusion_proof(&store, idx, N).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("inclusion_in_older_tree", |b| {
        b.iter_batched(
            || {
                let size = 1 + next() % N;
                (next() % size, size)
            },
            |(idx, size)| log.inclusion_proof(&store, idx, size).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("consistency", |b| {
        b.iter_batched(
            || 1 + next() % (N - 1),
            |m| log.consistency_proof(&store, m, N).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("root_at_random_size", |b| {
        b.iter_batched(
            || 1 + next() % N,
            |m| log.root_at(&store, m).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn statement(agent: &Signer) -> Statement {
    Statement::new(
        vec![
            ResourceDescriptor::sha256_of("input", b"{\"path\":\"/workspace/a.txt\"}"),
            ResourceDescriptor::sha256_of("output", &[7u8; 4096]),
        ],
        ActionPredicate {
            instance_id: "bench".into(),
            agent: AgentRef {
                id: "ag_bench".into(),
                key_id: agent.key_id().to_string(),
            },
            action: ActionRef {
                kind: AttestationSubject::ToolCall,
                task_id: Some("tk_bench".into()),
                step: Some(3),
                tool: Some("fs.read".into()),
                outcome: Some("succeeded".into()),
            },
            request_id: Some("req-bench".into()),
            gate_decisions: serde_json::json!([
                {"gate": "satya", "decision": "allow"},
                {"gate": "ahimsa", "decision": "allow", "risk": 0.125},
                {"gate": "egress", "decision": "allow", "hosts": []}
            ]),
            sandbox_profile: serde_json::json!({"tier": "process", "memory_mb": 256, "cpu": 0.5}),
            timings: Timings {
                started_at: "2026-01-01T00:00:00Z".into(),
                finished_at: "2026-01-01T00:00:00.042Z".into(),
                duration_ms: 42,
            },
            model_calls: vec![],
        },
    )
}

fn attestations(c: &mut Criterion) {
    let inst = Signer::from_seed(origin(), &[1; 32]);
    let agent = Signer::from_seed(
        dgc_audit::agent_key_name(&origin(), "ag_bench").unwrap(),
        &[2; 32],
    );
    let st = statement(&agent);
    let env = sign_attestation(&st, &agent, &inst).unwrap();
    let mut g = c.benchmark_group("dsse");
    // Baseline: one raw Ed25519 signature and verification over 64 bytes.
    let msg = [42u8; 64];
    let sig = inst.sign(&msg);
    g.bench_function("baseline_ed25519_sign_64B", |b| {
        b.iter(|| inst.sign(black_box(&msg)));
    });
    g.bench_function("baseline_ed25519_verify_64B", |b| {
        b.iter(|| assert!(inst.verifier().verify(black_box(&msg), &sig)));
    });
    g.bench_function("sign_attestation_2_keys", |b| {
        b.iter(|| sign_attestation(black_box(&st), &agent, &inst).unwrap());
    });
    g.bench_function("verify_attestation_2_keys", |b| {
        b.iter(|| verify_attestation(black_box(&env), agent.verifier(), inst.verifier()).unwrap());
    });
    let (log, store) = {
        let (log, mut store) = fresh_log(&inst);
        log.append(&mut store, &inst, batch(0, 999)).unwrap();
        (log, store)
    };
    let note = log.checkpoint(&store, &inst).unwrap().note;
    let known = [inst.verifier().clone()];
    g.bench_function("checkpoint_sign", |b| {
        b.iter(|| log.checkpoint(&store, &inst).unwrap());
    });
    g.bench_function("checkpoint_open", |b| {
        b.iter(|| open_checkpoint(black_box(note.as_bytes()), ORIGIN, &known).unwrap());
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    const N: u64 = 20_000;
    let inst = Signer::from_seed(origin(), &[1; 32]);
    let (log, mut store) = fresh_log(&inst);
    let mut i = 0;
    while i < N - 1 {
        let n = (N - 1 - i).min(5000);
        log.append(&mut store, &inst, batch(i, n)).unwrap();
        i += n;
    }
    let notes = vec![log.checkpoint(&store, &inst).unwrap().note];
    let leaves: Vec<LogLeaf> = store
        .records()
        .iter()
        .enumerate()
        .map(|(i, r)| LogLeaf::new(i as u64, r.clone()))
        .collect();
    let opts = VerifyOptions::new(origin(), vec![inst.verifier().clone()]);
    let mut g = c.benchmark_group("verify_log");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    g.bench_function("signed_records_20k", |b| {
        b.iter(|| {
            let report = verify_log(leaves.iter().cloned().map(Ok), &notes, opts.clone()).unwrap();
            assert_eq!(report.size, N);
        });
    });
    g.finish();
}

criterion_group!(benches, append, proofs, attestations, verify);
criterion_main!(benches);
