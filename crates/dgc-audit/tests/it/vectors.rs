//! Runs every transparency-dev/merkle test vector (the project's shared reference data
//! `../shared/testdata/merkle`, vendored in `tests/testdata/merkle` so a clone anywhere runs them):
//! each happy path must verify (and, where the leaves are the standard CT test leaves, be reproduced by
//! our own proof generation), each `wantErr` case must be rejected.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dgc_audit::proof::{
    verify_consistency, verify_inclusion, verify_subtree_consistency, verify_subtree_inclusion,
};
use dgc_audit::{Hash, KeyName, Log, MemoryStorage};
use serde::Deserialize;

fn vectors_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/merkle");
    assert!(
        dir.is_dir(),
        "Merkle vectors not found at {}",
        dir.display()
    );
    dir
}

/// Where the shared reference copy lives when the repo sits next to `shared/`.
fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/merkle")
}

#[test]
fn vendored_vectors_match_the_shared_reference_data() {
    let shared = shared_dir();
    if !shared.is_dir() {
        // A clone outside the project tree has only the vendored copy; nothing to compare with.
        return;
    }
    for sub in [
        "inclusion",
        "consistency",
        "subtreeinclusion",
        "subtreeconsistency",
    ] {
        let ours = files(sub);
        let mut theirs = Vec::new();
        for f in &ours {
            let rel = f.strip_prefix(vectors_dir()).unwrap();
            theirs.push(shared.join(rel));
            assert_eq!(
                std::fs::read(f).unwrap(),
                std::fs::read(shared.join(rel)).unwrap(),
                "{} differs from the shared reference copy",
                rel.display()
            );
        }
        let count = walk_count(&shared.join(sub));
        assert_eq!(
            count,
            ours.len(),
            "{sub}: the shared copy has {count} files, the vendored one {}",
            ours.len()
        );
    }
}

fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk_count(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "json"))
            }
        })
        .sum()
}

/// All `*.json` files under `sub`, recursively, sorted.
fn files(sub: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&vectors_dir().join(sub), &mut out);
    out.sort();
    assert!(!out.is_empty(), "no vectors under {sub}");
    out
}

fn b64(s: &str) -> Vec<u8> {
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

fn proof(p: &Option<Vec<String>>) -> Vec<Vec<u8>> {
    p.iter().flatten().map(|s| b64(s)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Inclusion {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Consistency {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubtreeInclusion {
    leaf_idx: u64,
    start: u64,
    end: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubtreeConsistency {
    start: u64,
    end: u64,
    size: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn load<T: for<'de> Deserialize<'de>>(p: &Path) -> T {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Collects every disagreement instead of stopping at the first, so one run shows them all.
fn check(
    failures: &mut Vec<String>,
    path: &Path,
    desc: &str,
    want_err: bool,
    got: Result<(), String>,
) {
    match (want_err, got) {
        (false, Err(e)) => failures.push(format!("{} ({desc}): rejected: {e}", path.display())),
        (true, Ok(())) => {
            failures.push(format!("{} ({desc}): accepted but wantErr", path.display()));
        }
        _ => {}
    }
}

#[test]
fn every_inclusion_vector() {
    let mut failures = Vec::new();
    let (mut ok, mut rejected) = (0, 0);
    for p in files("inclusion") {
        let v: Inclusion = load(&p);
        let got = verify_inclusion(
            v.leaf_idx,
            v.tree_size,
            &b64(&v.leaf_hash),
            &proof(&v.proof),
            &b64(&v.root),
        )
        .map_err(|e| e.to_string());
        if v.want_err {
            rejected += 1;
        } else {
            ok += 1;
        }
        check(&mut failures, &p, &v.desc, v.want_err, got);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        ok >= 5 && rejected >= 50,
        "ran {ok} happy paths and {rejected} negative cases"
    );
}

#[test]
fn every_consistency_vector() {
    let mut failures = Vec::new();
    let (mut ok, mut rejected) = (0, 0);
    for p in files("consistency") {
        let v: Consistency = load(&p);
        let got = verify_consistency(
            v.size1,
            v.size2,
            &proof(&v.proof),
            &b64(&v.root1),
            &b64(&v.root2),
        )
        .map_err(|e| e.to_string());
        if v.want_err {
            rejected += 1;
        } else {
            ok += 1;
        }
        check(&mut failures, &p, &v.desc, v.want_err, got);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        ok >= 5 && rejected >= 50,
        "ran {ok} happy paths and {rejected} negative cases"
    );
}

#[test]
fn every_subtree_inclusion_vector() {
    let mut failures = Vec::new();
    for p in files("subtreeinclusion") {
        let v: SubtreeInclusion = load(&p);
        let got = verify_subtree_inclusion(
            v.leaf_idx,
            v.start,
            v.end,
            &b64(&v.leaf_hash),
            &proof(&v.proof),
            &b64(&v.root),
        )
        .map_err(|e| e.to_string());
        check(&mut failures, &p, &v.desc, v.want_err, got);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_subtree_consistency_vector() {
    let mut failures = Vec::new();
    for p in files("subtreeconsistency") {
        let v: SubtreeConsistency = load(&p);
        let got = verify_subtree_consistency(
            v.size,
            v.start,
            v.end,
            &proof(&v.proof),
            &b64(&v.root1),
            &b64(&v.root2),
        )
        .map_err(|e| e.to_string());
        check(&mut failures, &p, &v.desc, v.want_err, got);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The standard CT test leaves behind the vectors (RFC 6962 reference implementation).
fn ct_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| hex::decode(h).unwrap())
    .collect()
}

/// Our proof generation, over persisted nodes, reproduces every happy-path proof exactly.
#[test]
fn generated_proofs_match_the_happy_paths() {
    let log = Log::new(KeyName::new("ct").unwrap());
    let mut store = MemoryStorage::new();
    let appended = log.append_leaves(&mut store, &ct_leaves()).unwrap();
    assert_eq!(
        appended.root.to_hex(),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
    let mut compared = 0;
    for p in files("inclusion") {
        let v: Inclusion = load(&p);
        if v.want_err || v.tree_size == 0 || v.tree_size > 8 || b64(&v.root).len() != 32 {
            continue;
        }
        let leaf = dgc_audit::hash::leaf_hash(&ct_leaves()[v.leaf_idx as usize]);
        if leaf.as_ref() != b64(&v.leaf_hash).as_slice() {
            continue;
        }
        let got: Vec<Vec<u8>> = log
            .inclusion_proof(&store, v.leaf_idx, v.tree_size)
            .unwrap()
            .iter()
            .map(|h: &Hash| h.as_ref().to_vec())
            .collect();
        assert_eq!(got, proof(&v.proof), "{}", p.display());
        assert_eq!(
            log.root_at(&store, v.tree_size).unwrap().as_ref(),
            b64(&v.root).as_slice()
        );
        compared += 1;
    }
    for p in files("consistency") {
        let v: Consistency = load(&p);
        if v.want_err || v.size1 == 0 || v.size2 > 8 || b64(&v.root1).len() != 32 {
            continue;
        }
        let got: Vec<Vec<u8>> = log
            .consistency_proof(&store, v.size1, v.size2)
            .unwrap()
            .iter()
            .map(|h| h.as_ref().to_vec())
            .collect();
        assert_eq!(got, proof(&v.proof), "{}", p.display());
        compared += 1;
    }
    assert!(compared >= 8, "compared only {compared} generated proofs");
}
