//! Witnessing: publishing every checkpoint somewhere the operator's database cannot rewrite,
//! and checking a log's current tree head against everything that was published.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CheckpointError, parse_unverified};
use crate::hash::{Hash, empty_root};
use crate::keys::VerifierKey;
use crate::note::{MAX_NOTE_BYTES, NoteError};
use crate::proof::{ProofError, verify_consistency};
use crate::storage::StorageError;

/// Publishing to, or reading from, a witness failed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("witness I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("not a checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint is for log {found:?}, this witness keeps {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error(
        "a different checkpoint for tree size {size} is already witnessed at {path}: \
         the log has forked (or the checkpoint was replaced)"
    )]
    Conflict { size: u64, path: PathBuf },
}

/// Somewhere outside the operator's database that keeps every published checkpoint.
/// Implementations must be write-once per tree size: re-publishing the identical note is a
/// no-op, publishing a different note for a size already witnessed is an error.
pub trait Witness {
    /// Human-readable location, for messages.
    fn describe(&self) -> String;

    /// Publishes a signed checkpoint.
    fn publish(&self, signed_checkpoint: &str) -> Result<(), WitnessError>;

    /// Every checkpoint published so far, smallest tree first.
    fn witnessed(&self) -> Result<Vec<String>, WitnessError>;
}

/// A witness that is a directory (a mounted share, a separate disk, a synced folder): one file
/// `<tree size, 20 digits>.checkpoint` per checkpoint, created atomically and never replaced.
#[derive(Debug, Clone)]
pub struct DirWitness {
    dir: PathBuf,
    origin: String,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WitnessError + '_ {
    move |source| WitnessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl DirWitness {
    /// A witness directory for the log `origin`, created if missing.
    pub fn new(dir: impl Into<PathBuf>, origin: impl Into<String>) -> Result<Self, WitnessError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self {
            dir,
            origin: origin.into(),
        })
    }

    fn path_for(&self, size: u64) -> PathBuf {
        self.dir.join(format!("{size:020}.checkpoint"))
    }

    fn read_limited(path: &Path) -> Result<String, WitnessError> {
        let meta = fs::metadata(path).map_err(io_err(path))?;
        if meta.len() > MAX_NOTE_BYTES as u64 {
            return Err(WitnessError::Checkpoint(CheckpointError::Note(
                NoteError::TooLarge,
            )));
        }
        fs::read_to_string(path).map_err(io_err(path))
    }
}

impl Witness for DirWitness {
    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }

    fn publish(&self, signed_checkpoint: &str) -> Result<(), WitnessError> {
        let (_, cp) = parse_unverified(signed_checkpoint.as_bytes())?;
        if cp.origin != self.origin {
            return Err(WitnessError::WrongOrigin {
                expected: self.origin.clone(),
                found: cp.origin,
            });
        }
        let target = self.path_for(cp.size);
        if target.exists() {
            return if Self::read_limited(&target)? == signed_checkpoint {
                Ok(())
            } else {
                Err(WitnessError::Conflict {
                    size: cp.size,
                    path: target,
                })
            };
        }
        // Write a private temporary file, flush it to disk, then hard-link it into place: a
        // link never replaces an existing file, so two publishers cannot overwrite each other
        // and a reader never sees a half-written checkpoint.
        let tmp = self.dir.join(format!(
            ".{}.{}.{:016x}.tmp",
            cp.size,
            std::process::id(),
            rand::random::<u64>()
        ));
        let write = || -> io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(signed_checkpoint.as_bytes())?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        let linked = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return if Self::read_limited(&target)? == signed_checkpoint {
                    Ok(())
                } else {
                    Err(WitnessError::Conflict {
                        size: cp.size,
                        path: target,
                    })
                };
            }
            Err(e) => return Err(io_err(&target)(e)),
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))
    }

    fn witnessed(&self) -> Result<Vec<String>, WitnessError> {
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(digits) = name.strip_suffix(".checkpoint") else {
                continue;
            };
            if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(size) = digits.parse::<u64>() {
                found.push((size, entry.path()));
            }
        }
        found.sort();
        found.iter().map(|(_, p)| Self::read_limited(p)).collect()
    }
}

/// A witnessed checkpoint contradicts the log.
#[derive(Debug, thiserror::Error)]
pub enum WitnessCheckError {
    #[error("witnessed checkpoint #{position}: {error}")]
    Unreadable {
        position: usize,
        error: CheckpointError,
    },
    #[error(
        "witnessed checkpoint at tree size {size} is not signed by an instance key of this log: {error}"
    )]
    Signature { size: u64, error: NoteError },
    #[error("witnessed checkpoint at tree size {size} is for log {found:?}")]
    WrongOrigin { size: u64, found: String },
    #[error(
        "the log has {current} records but a checkpoint for {size} was witnessed: \
         the log was truncated or rolled back"
    )]
    RolledBack { size: u64, current: u64 },
    #[error(
        "the log is not an extension of the checkpoint witnessed at tree size {size} \
         (history rewritten or forked): {error}"
    )]
    Inconsistent { size: u64, error: ProofError },
    #[error("could not get a consistency proof from {size}: {error}")]
    Proof { size: u64, error: StorageError },
}

/// One witnessed checkpoint that the current tree extends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedHead {
    pub size: u64,
    pub root: Hash,
}

/// Checks that the tree head `current` (already verified, e.g. by [`crate::verify::verify_log`]
/// or a trusted checkpoint) consistently extends every witnessed checkpoint: each must be
/// signed by one of the log's `instance_keys`, be no larger than `current`, and be proven a
/// prefix by `consistency_proof(from, to)`.
pub fn check_against_witnessed<B, F>(
    witnessed: &[B],
    current: &Checkpoint,
    instance_keys: &[VerifierKey],
    mut consistency_proof: F,
) -> Result<Vec<WitnessedHead>, WitnessCheckError>
where
    B: AsRef<[u8]>,
    F: FnMut(u64, u64) -> Result<Vec<Hash>, StorageError>,
{
    let mut heads = Vec::with_capacity(witnessed.len());
    for (position, msg) in witnessed.iter().enumerate() {
        let (note, cp) = parse_unverified(msg.as_ref())
            .map_err(|error| WitnessCheckError::Unreadable { position, error })?;
        note.verify(instance_keys)
            .map_err(|error| WitnessCheckError::Signature {
                size: cp.size,
                error,
            })?;
        if cp.origin != current.origin {
            return Err(WitnessCheckError::WrongOrigin {
                size: cp.size,
                found: cp.origin,
            });
        }
        if cp.size > current.size {
            return Err(WitnessCheckError::RolledBack {
                size: cp.size,
                current: current.size,
            });
        }
        let inconsistent = |error| WitnessCheckError::Inconsistent {
            size: cp.size,
            error,
        };
        if cp.size == 0 {
            if cp.root != empty_root() {
                return Err(inconsistent(ProofError::RootMismatch {
                    computed: empty_root().to_hex(),
                }));
            }
        } else {
            let proof = if cp.size == current.size {
                Vec::new()
            } else {
                consistency_proof(cp.size, current.size).map_err(|error| {
                    WitnessCheckError::Proof {
                        size: cp.size,
                        error,
                    }
                })?
            };
            verify_consistency(
                cp.size,
                current.size,
                &proof,
                cp.root.as_ref(),
                current.root.as_ref(),
            )
            .map_err(inconsistent)?;
        }
        heads.push(WitnessedHead {
            size: cp.size,
            root: cp.root,
        });
    }
    Ok(heads)
}
