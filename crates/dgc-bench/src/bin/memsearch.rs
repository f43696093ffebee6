//! Memory benchmark: bulk insert rate, then agent-scoped BM25 search latency by term class, through
//! the `Store` and through the HTTP API (in-process), next to the baseline of plain FTS5 `bm25()`
//! top-10 over all rows, measured in the same run on the same database.
//!
//! Synthetic corpus: words drawn from a Zipf distribution (s = 1) over a vocabulary of `w1 … wV`
//! (rank = frequency rank), memories spread evenly over the agents, queries scoped to a random agent.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use clap::Parser;
use dgc_bench::pct_ms;
use dgc_store::{
    AgentRecord, MemoryFilter, NewMemory, SearchTerms, SqliteOptions, SqliteStore, Store,
};
use dgc_types::agent::{Agent, AgentConfig, AgentStatus};
use dgc_types::memory::MemoryKind;
use dgc_types::{AgentId, MemoryId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tower::ServiceExt;

#[derive(Parser)]
struct Args {
    /// Memories to generate.
    #[arg(long, default_value_t = 100_000)]
    memories: usize,
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    #[arg(long, default_value_t = 50_000)]
    vocab: usize,
    #[arg(long, default_value_t = 24)]
    words: usize,
    /// Queries per term class.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Memories inserted through the audited path (signed record each), for its rate.
    #[arg(long, default_value_t = 20_000)]
    audited: usize,
    /// Keep the database here (reused when it already holds the corpus).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Draws a query string for one term class.
type QueryGen = Box<dyn Fn(&mut StdRng) -> String>;

struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 1..=n {
            acc += 1.0 / r as f64;
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }
    fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.r#gen();
        self.cdf.partition_point(|&c| c < u) + 1
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("dgc.db");
    let store = Arc::new(SqliteStore::open(&SqliteOptions::new(&db))?);
    let have = store.count_memories().await?;
    let mut rng = StdRng::seed_from_u64(42);
    let zipf = Zipf::new(args.vocab);

    let agent_ids: Vec<AgentId> = if have as usize >= args.memories {
        println!("reusing {have} memories in {}", db.display());
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let p = store
                .list_agents(&Default::default(), after.as_deref(), 500)
                .await?;
            ids.extend(p.items.into_iter().map(|a| a.id));
            match p.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        ids
    } else {
        let mut ids = Vec::with_capacity(args.agents);
        for i in 0..args.agents {
            let now = dgc_types::now();
            let id = AgentId::generate();
            store
                .insert_agent(
                    AgentRecord {
                        agent: Agent {
                            id: id.clone(),
                            name: format!("agent-{i}"),
                            description: None,
                            config: AgentConfig::default(),
                            status: AgentStatus::Active,
                            public_key: String::new(),
                            created_at: now,
                            updated_at: now,
                        },
                        secret_key_enc: vec![],
                    },
                    vec![],
                )
                .await?;
            ids.push(id);
        }
        let start = Instant::now();
        let batch = 2000;
        let mut done = 0;
        while done < args.memories {
            let n = batch.min(args.memories - done);
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let words: Vec<String> = (0..args.words)
                    .map(|_| format!("w{}", zipf.sample(&mut rng)))
                    .collect();
                v.push(NewMemory {
                    id: MemoryId::generate(),
                    agent_id: ids[(done + i) % ids.len()].clone(),
                    kind: MemoryKind::Episodic,
                    content: words.join(" "),
                    tags: vec![],
                    metadata: Default::default(),
                    links: vec![],
                    created_at: dgc_types::now(),
                });
            }
            store.insert_memories(v, vec![]).await?;
            done += n;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "bulk insert: {} memories in {:.1}s = {:.0} memories/s (batches of {batch}, one transaction each, synchronous=FULL)",
            args.memories,
            secs,
            args.memories as f64 / secs
        );
        ids
    };

    // Audited inserts: what the API does per memory (insert + one signed audit record appended in
    // the same transaction), in batches as the writer's group commit would see them.
    {
        let name = dgc_audit::KeyName::new("dgc.bench/inst")?;
        store.set_auditor(dgc_store::Auditor {
            log: dgc_audit::Log::new(name.clone()),
            signer: dgc_audit::Signer::generate(name),
        });
        store.audit_init("bench").await?;
        let n = args.audited;
        let start = Instant::now();
        let mut done = 0;
        while done < n {
            let k = 500.min(n - done);
            let mut v = Vec::with_capacity(k);
            let mut recs = Vec::with_capacity(k);
            for i in 0..k {
                let words: Vec<String> = (0..args.words)
                    .map(|_| format!("w{}", zipf.sample(&mut rng)))
                    .collect();
                let m = NewMemory {
                    id: MemoryId::generate(),
                    agent_id: agent_ids[(done + i) % agent_ids.len()].clone(),
                    kind: MemoryKind::Episodic,
                    content: words.join(" "),
                    tags: vec![],
                    metadata: Default::default(),
                    links: vec![],
                    created_at: dgc_types::now(),
                };
                recs.push(dgc_store::AuditRecord::new(dgc_audit::Entry::MemoryWrite(
                    dgc_audit::entry::MemoryWrite {
                        memory_id: m.id.to_string(),
                        agent_id: m.agent_id.to_string(),
                        op: dgc_audit::entry::MemoryOp::Create,
                        kind: Some("episodic".into()),
                        content_sha256: Some(dgc_audit::hash::sha256(m.content.as_bytes())),
                        request_id: None,
                    },
                )));
                v.push(m);
            }
            store.insert_memories(v, recs).await?;
            done += k;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "audited insert: {n} memories, each with a signed audit record, in {secs:.1}s = {:.0} memories/s (batches of 500)",
            n as f64 / secs
        );
    }

    // Term classes by frequency rank.
    let classes: Vec<(&str, QueryGen)> = vec![
        (
            "very common (rank 1–5)",
            Box::new(|r: &mut StdRng| format!("w{}", r.gen_range(1..=5))),
        ),
        (
            "mid (rank 200–1000)",
            Box::new(|r: &mut StdRng| format!("w{}", r.gen_range(200..=1000))),
        ),
        (
            "rare (rank 20000+)",
            Box::new(move |r: &mut StdRng| format!("w{}", r.gen_range(20_000..=50_000))),
        ),
        (
            "two terms (common + mid)",
            Box::new(|r: &mut StdRng| {
                format!("w{} w{}", r.gen_range(1..=5), r.gen_range(200..=1000))
            }),
        ),
    ];

    println!(
        "\nstore.search_memories, top 10, scoped to one agent ({} queries per class):",
        args.queries
    );
    println!("| class | p50 ms | p95 ms | p99 ms | mean hits |");
    println!("|---|---|---|---|---|");
    for (name, gen_q) in &classes {
        let mut lat = Vec::with_capacity(args.queries);
        let mut hits = 0usize;
        for _ in 0..args.queries {
            let agent = &agent_ids[rng.gen_range(0..agent_ids.len())];
            let terms = SearchTerms::parse(&gen_q(&mut rng))?;
            let t = Instant::now();
            let r = store
                .search_memories(agent, &terms, &MemoryFilter::default(), None, 10)
                .await?;
            lat.push(t.elapsed());
            hits += r.items.len();
        }
        lat.sort();
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.1} |",
            pct_ms(&lat, 50.0),
            pct_ms(&lat, 95.0),
            pct_ms(&lat, 99.0),
            hits as f64 / args.queries as f64
        );
    }

    // Through the HTTP API, in process (auth, routing, JSON), same store.
    // The benchmark database's identity is sealed with a master key kept next to it.
    let store_dyn: Arc<dyn Store> = store.clone();
    let instance = dgc_server::bootstrap(&dir, store_dyn.as_ref()).await?;
    let admin = std::fs::read_to_string(dir.join("admin.key"))?
        .trim()
        .to_string();
    let state = dgc_server::AppState::new(
        store_dyn,
        instance,
        dgc_server::StateOptions {
            access_log: false,
            ..Default::default()
        },
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let app = dgc_server::app(state);
    println!(
        "\nGET /v1/agents/{{id}}/memory?q=…&limit=10 through the API in process ({} queries per class):",
        args.queries
    );
    println!("| class | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (name, gen_q) in &classes {
        let mut lat = Vec::with_capacity(args.queries);
        for _ in 0..args.queries {
            let agent = &agent_ids[rng.gen_range(0..agent_ids.len())];
            let q = gen_q(&mut rng).replace(' ', "+");
            let req = Request::builder()
                .uri(format!("/v1/agents/{agent}/memory?q={q}&limit=10"))
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::empty())?;
            let t = Instant::now();
            let resp = app.clone().oneshot(req).await?;
            let status = resp.status();
            let _ = http_body_util::BodyExt::collect(resp.into_body()).await?;
            lat.push(t.elapsed());
            anyhow::ensure!(status.is_success(), "search failed: {status}");
        }
        lat.sort();
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            pct_ms(&lat, 50.0),
            pct_ms(&lat, 95.0),
            pct_ms(&lat, 99.0)
        );
    }

    // Baselines, built from the same corpus in a separate database: (1) plain FTS5 `bm25()` top-10
    // over all rows (what the issue names), (2) FTS5 with the agent as an indexed token in the
    // MATCH and bm25 ranking (DESIGN.md's reference layout, the one DGC's index replaced).
    let base_path = dir.join("baseline.db");
    let fresh = !base_path.exists();
    let base = rusqlite::Connection::open(&base_path)?;
    if fresh {
        let t = Instant::now();
        base.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;
             CREATE VIRTUAL TABLE global_fts USING fts5(content, content = '', tokenize = 'unicode61 remove_diacritics 2');
             CREATE VIRTUAL TABLE agenttok_fts USING fts5(agent, content, content = '', tokenize = 'unicode61 remove_diacritics 2');",
        )?;
        let src =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut rows = src.prepare("SELECT seq, agent_seq, content FROM memories ORDER BY seq")?;
        let mut it = rows.query([])?;
        base.execute_batch("BEGIN")?;
        {
            let mut g = base.prepare("INSERT INTO global_fts (rowid, content) VALUES (?1, ?2)")?;
            let mut a = base
                .prepare("INSERT INTO agenttok_fts (rowid, agent, content) VALUES (?1, ?2, ?3)")?;
            while let Some(r) = it.next()? {
                let (seq, agent, content): (i64, i64, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                g.execute(rusqlite::params![seq, content])?;
                a.execute(rusqlite::params![seq, format!("ag{agent}"), content])?;
            }
        }
        base.execute_batch("COMMIT")?;
        println!(
            "\n(built baseline tables in {:.1}s)",
            t.elapsed().as_secs_f64()
        );
    }
    let agent_seqs: Vec<i64> = {
        let src =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut st = src.prepare("SELECT seq FROM agents")?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let baseline_n = 30.min(args.queries);
    println!("\nbaselines in the same run ({baseline_n} queries per class), p50 / p95 ms:");
    println!(
        "| class | plain FTS5 bm25 top-10, all rows | FTS5 agent token AND term, bm25 top-10 |"
    );
    println!("|---|---|---|");
    for (name, gen_q) in &classes {
        let (mut g_lat, mut a_lat) = (Vec::new(), Vec::new());
        for _ in 0..baseline_n {
            let q = gen_q(&mut rng);
            let terms: Vec<String> = q.split(' ').map(|w| format!("\"{w}\"")).collect();
            let expr = terms.join(" OR ");
            let t = Instant::now();
            let mut st = base.prepare_cached(
                "SELECT rowid FROM global_fts WHERE global_fts MATCH ?1 ORDER BY bm25(global_fts) LIMIT 10",
            )?;
            let n = st.query_map([&expr], |r| r.get::<_, i64>(0))?.count();
            g_lat.push(t.elapsed());
            anyhow::ensure!(n <= 10);
            let agent = agent_seqs[rng.gen_range(0..agent_seqs.len())];
            let scoped = format!("agent:\"ag{agent}\" AND ({expr})");
            let t = Instant::now();
            let mut st = base.prepare_cached(
                "SELECT rowid FROM agenttok_fts WHERE agenttok_fts MATCH ?1 ORDER BY bm25(agenttok_fts, 0.0, 1.0) LIMIT 10",
            )?;
            let n = st.query_map([&scoped], |r| r.get::<_, i64>(0))?.count();
            a_lat.push(t.elapsed());
            anyhow::ensure!(n <= 10);
        }
        g_lat.sort();
        a_lat.sort();
        println!(
            "| {name} | {:.2} / {:.2} | {:.2} / {:.2} |",
            pct_ms(&g_lat, 50.0),
            pct_ms(&g_lat, 95.0),
            pct_ms(&a_lat, 50.0),
            pct_ms(&a_lat, 95.0)
        );
    }
    store.close().await;
    Ok(())
}
