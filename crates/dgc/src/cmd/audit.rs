//! `dgc audit verify|checkpoint`: replay and verify the audit log offline (from a data directory,
//! with no server) or remotely (from what a server serves), naming the first bad record.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use dgc_audit::{
    Checkpoint, Hash, KeyName, LogLeaf, LogVerifier, VerifierKey, VerifyOptions, VerifyReport,
    Witness,
};
use reqwest::Method;

use crate::cli::AuditCmd;
use crate::client::Client;

/// Records fetched per page while replaying.
const PAGE: u32 = 5000;

pub async fn run(c: Client, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Checkpoint => {
            let v = c.call_text(Method::GET, "/v1/audit/checkpoint").await?;
            print!("{v}");
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::VerifyBundle { bundle, vkey } => verify_bundle(&bundle, &vkey),
        AuditCmd::Verify {
            data_dir,
            vkey,
            witness,
        } => {
            let pinned = vkey
                .map(|v| VerifierKey::parse(&v).map_err(|e| anyhow!("--vkey: {e}")))
                .transpose()?;
            let outcome = match data_dir {
                Some(dir) => verify_data_dir(&dir, pinned, witness.as_deref()),
                None => verify_remote(&c, pinned, witness.as_deref()).await,
            };
            match outcome {
                Ok((origin, report, witnessed)) => {
                    println!("audit log {origin} verified: {report}");
                    if let Some(n) = witnessed {
                        println!("consistent with {n} witnessed checkpoint(s)");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(Failure::Invalid(e)) => {
                    // The error names the record itself ("record 8: …").
                    eprintln!("audit log verification FAILED: {e}");
                    Ok(ExitCode::FAILURE)
                }
                Err(Failure::Witness(e)) => {
                    eprintln!(
                        "audit log verification FAILED against the witnessed checkpoints: {e}"
                    );
                    Ok(ExitCode::FAILURE)
                }
                Err(Failure::Other(e)) => Err(e),
            }
        }
    }
}

/// `dgc audit verify-bundle`: needs nothing but the bundle and the instance's verifier key.
pub fn verify_bundle(path: &Path, vkeys: &[String]) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let trusted = vkeys
        .iter()
        .map(|v| VerifierKey::parse(v).map_err(|e| anyhow!("--vkey {v}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().take(16 << 20).read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(16 << 20)
            .read_to_end(&mut bytes)?;
    }
    let verified =
        dgc_audit::Bundle::from_json(&bytes).and_then(|b| dgc_audit::verify_bundle(&b, &trusted));
    match verified {
        Ok(v) => {
            println!(
                "attestation {} verified: agent key {}, instance key {}, record {} of the tree of {} records ({})",
                v.attestation_id,
                v.agent_key.to_vkey(),
                v.instance_key.to_vkey(),
                v.log_index,
                v.checkpoint.size,
                v.checkpoint.origin
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("bundle verification FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

enum Failure {
    /// The log is not what it claims to be.
    Invalid(dgc_audit::VerifyError),
    Witness(dgc_audit::witness::WitnessCheckError),
    /// We could not read it.
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Other(e.into())
    }
}

type Outcome = Result<(String, VerifyReport, Option<usize>), Failure>;

/// Streams records into the verifier; `fetch(from)` returns the next page (empty at the end).
fn replay(
    origin: &KeyName,
    trusted: VerifierKey,
    notes: &[String],
    mut fetch: impl FnMut(u64) -> anyhow::Result<Vec<(u64, Vec<u8>)>>,
) -> Result<VerifyReport, Failure> {
    let mut v = LogVerifier::new(VerifyOptions::new(origin.clone(), vec![trusted]));
    v.add_checkpoints(notes.iter().map(String::as_bytes))
        .map_err(Failure::Invalid)?;
    let mut from = 0;
    loop {
        let page = fetch(from)?;
        if page.is_empty() {
            break;
        }
        from += page.len() as u64;
        let leaves: Vec<LogLeaf> = page.into_iter().map(|(i, b)| LogLeaf::new(i, b)).collect();
        v.push_batch(&leaves).map_err(Failure::Invalid)?;
    }
    v.finish().map_err(Failure::Invalid)
}

fn check_witness(
    dir: &Path,
    origin: &KeyName,
    report: &VerifyReport,
    proof: impl FnMut(u64, u64) -> Result<Vec<Hash>, dgc_audit::StorageError>,
) -> Result<usize, Failure> {
    let w = dgc_audit::DirWitness::new(dir, origin.as_str())?;
    let notes = w.witnessed()?;
    let current = Checkpoint::new(origin.as_str(), report.size, report.root);
    let heads = dgc_audit::check_against_witnessed(
        &notes,
        &current,
        &report.history.instance_keys(),
        proof,
    )
    .map_err(Failure::Witness)?;
    Ok(heads.len())
}

fn verify_data_dir(dir: &Path, pinned: Option<VerifierKey>, witness: Option<&Path>) -> Outcome {
    let db = dir.join("dgc.db");
    if !db.exists() {
        return Err(Failure::Other(anyhow!("{} has no dgc.db", dir.display())));
    }
    let reader = dgc_store::AuditReader::open(&db)?;
    let trusted = match pinned {
        Some(k) => k,
        None => {
            dgc_server::bootstrap::read_instance_verifier(dir, |k| reader.meta(k))
                .context("reading the instance key from the data directory (or pass --vkey)")?
                .1
        }
    };
    let origin = trusted.name().clone();
    let notes: Vec<String> = reader.checkpoints()?.into_iter().map(|c| c.note).collect();
    let report = replay(&origin, trusted, &notes, |from| {
        Ok(reader.records(from, PAGE)?)
    })?;
    let witnessed = match witness {
        Some(w) => {
            let log = dgc_audit::Log::new(origin.clone());
            Some(check_witness(w, &origin, &report, |a, b| {
                reader.consistency_proof(&log, a, b)
            })?)
        }
        None => None,
    };
    Ok((origin.to_string(), report, witnessed))
}

async fn verify_remote(c: &Client, pinned: Option<VerifierKey>, witness: Option<&Path>) -> Outcome {
    let trusted = match pinned {
        Some(k) => k,
        None => {
            let keys = c.call(Method::GET, "/v1/audit/keys", &[], None).await?;
            let vkey = keys["keys"][0]["vkey"]
                .as_str()
                .ok_or_else(|| anyhow!("the server returned no instance key"))?;
            VerifierKey::parse(vkey).map_err(|e| anyhow!("the server's instance key: {e}"))?
        }
    };
    let origin = trusted.name().clone();
    let mut notes = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let mut q = vec![("limit", PAGE.to_string())];
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        let v = c
            .call(Method::GET, "/v1/audit/checkpoints", &q, None)
            .await?;
        let page = v["checkpoints"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        for cp in &page {
            notes.push(cp["note"].as_str().unwrap_or_default().to_string());
            after = cp["size"].as_u64();
        }
    }
    // Fetch every record first (the verifier is synchronous), then replay.
    let mut pages: Vec<Vec<(u64, Vec<u8>)>> = Vec::new();
    let mut from = 0u64;
    loop {
        let v = c
            .call(
                Method::GET,
                "/v1/audit/records",
                &[("from", from.to_string()), ("limit", PAGE.to_string())],
                None,
            )
            .await?;
        let mut page = Vec::new();
        for r in v["records"].as_array().cloned().unwrap_or_default() {
            let idx = r["index"]
                .as_u64()
                .ok_or_else(|| anyhow!("record without index"))?;
            let bytes = B64
                .decode(r["record"].as_str().unwrap_or_default())
                .context("record is not base64")?;
            page.push((idx, bytes));
        }
        if page.is_empty() {
            break;
        }
        from += page.len() as u64;
        pages.push(page);
    }
    let mut it = pages.into_iter();
    let report = replay(&origin, trusted, &notes, |_| {
        Ok(it.next().unwrap_or_default())
    })?;
    let witnessed = match witness {
        Some(w) => {
            // Proofs from the server are checked against the verified roots, so they need no trust.
            let mut proofs = std::collections::HashMap::new();
            let dir = dgc_audit::DirWitness::new(w, origin.as_str())?;
            for note in dir.witnessed()? {
                let (_, cp) = dgc_audit::checkpoint::parse_unverified(note.as_bytes())
                    .map_err(|e| anyhow!("witnessed checkpoint: {e}"))?;
                if cp.size > 0 && cp.size < report.size {
                    let v = c
                        .call(
                            Method::GET,
                            "/v1/audit/proof/consistency",
                            &[
                                ("from", cp.size.to_string()),
                                ("to", report.size.to_string()),
                            ],
                            None,
                        )
                        .await?;
                    let proof: Vec<Hash> = v["proof"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|h| B64.decode(h.as_str()?).ok())
                        .filter_map(|b| <[u8; 32]>::try_from(b.as_slice()).ok().map(Hash))
                        .collect();
                    proofs.insert(cp.size, proof);
                }
            }
            Some(check_witness(w, &origin, &report, |a, _| {
                proofs
                    .get(&a)
                    .cloned()
                    .ok_or_else(|| dgc_audit::StorageError::msg(format!("no proof from {a}")))
            })?)
        }
        None => None,
    };
    Ok((origin.to_string(), report, witnessed))
}
