//! Offline verification of a whole log: replays every record, recomputes the tree, checks
//! every signature against the key history the log itself establishes, checks every stored
//! checkpoint, and names the first index where anything is wrong.

use std::collections::BTreeMap;
use std::fmt;

use crate::attestation::{AttestationError, verify_against_entry};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::dsse::Envelope;
use crate::entry::{AttestationEntry, Entry, KeySubject, Record, RecordError};
use crate::hash::{Hash, empty_root, leaf_hash, node_hash};
use crate::history::{KeyHistory, KeyHistoryError};
use crate::keys::{KeyName, VerifierKey, agent_key_name};
use crate::note::{Note, NoteError};
use crate::par::par_map;
use crate::proof::fold_cover;
use crate::storage::StorageError;

/// Records verified per parallel batch by [`verify_log`].
pub const VERIFY_BATCH: usize = 1024;

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error("missing: the next stored record is {found} (records deleted?)")]
    Missing { found: u64 },
    #[error("appears out of order, after record {previous}")]
    OutOfOrder { previous: u64 },
    #[error("holds the record signed for index {claims} (records swapped, moved or renumbered)")]
    Misplaced { claims: u64 },
    #[error("belongs to log {found:?}, not this one")]
    WrongOrigin { found: String },
    #[error("bytes are not a valid record (changed bytes?): {0}")]
    Malformed(RecordError),
    #[error("no valid signature by {key} (record bytes changed, or signed by another key)")]
    BadSignature { key: String },
    #[error("carries a signature by key id {keyid}, which has no business signing it")]
    UnexpectedSignature { keyid: String },
    #[error("no instance key is valid here (a log must start with a log_init record)")]
    NoInstanceKey,
    #[error("key history: {0}")]
    KeyHistory(KeyHistoryError),
    #[error("key {found} must be named {expected:?}")]
    KeyName { found: String, expected: String },
    #[error("attestation names {what} key {found}, but the key valid here is {valid}")]
    AttestationKey {
        what: &'static str,
        found: String,
        valid: String,
    },
    #[error("attestation envelope does not match: {0}")]
    Attestation(AttestationError),
    #[error("attestation envelope is missing")]
    MissingEnvelope,
}

/// What is wrong with one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointProblem {
    #[error("malformed: {0}")]
    Malformed(CheckpointError),
    #[error("is for log {found:?}, not this one")]
    WrongOrigin { found: String },
    #[error("is not signed by any instance key of this log (signed by: {signers})")]
    UnknownKey { signers: String },
    #[error("signature by instance key {key} does not verify (checkpoint text changed)")]
    BadSignature { key: String },
    #[error("is signed by {key}, which may sign only records {from}..{until} (a retired key?)")]
    KeyNotValid {
        key: String,
        from: u64,
        until: String,
    },
    #[error(
        "root {claimed} does not match root {computed} recomputed from the records \
         (records changed, removed or swapped, or the tree was rewritten)"
    )]
    RootMismatch { claimed: Hash, computed: Hash },
    #[error(
        "covers {size} records but the log has only {log_size}: the log was truncated or rolled back"
    )]
    BeyondLog { size: u64, log_size: u64 },
}

/// The log failed verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("record {index}: {problem}")]
    Record { index: u64, problem: RecordProblem },
    #[error("checkpoint at tree size {size}: {problem}")]
    Checkpoint {
        size: u64,
        problem: CheckpointProblem,
    },
    #[error("checkpoint #{position} cannot be read: {error}")]
    UnreadableCheckpoint {
        position: usize,
        error: CheckpointError,
    },
    #[error("reading the log failed: {0}")]
    Source(#[from] StorageError),
    #[error("the log is empty")]
    Empty,
    #[error("the verifier already reported an error; start a new one")]
    Spent,
    #[error("none of the log's instance keys ({chain}) is a trusted key")]
    Untrusted { chain: String },
    #[error(
        "records before index {until} are signed by keys older than the first trusted key, \
         and no checkpoint signed by a trusted key covers them"
    )]
    UntrustedPrefix { until: u64 },
}

impl VerifyError {
    /// The record index (or tree size, for checkpoints) the error is about.
    pub fn index(&self) -> Option<u64> {
        match self {
            VerifyError::Record { index, .. } => Some(*index),
            VerifyError::Checkpoint { size, .. } => Some(*size),
            _ => None,
        }
    }
}

/// What the verifier trusts and requires.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The log's origin (`dgc.local/<instance-id>`).
    pub origin: KeyName,
    /// Instance keys trusted out of band (the operator's `--vkey`). At least one must be in
    /// the log's chain of instance keys.
    pub trusted: Vec<VerifierKey>,
    /// Fail if an attestation record comes without its envelope. When envelopes are given,
    /// they are always checked.
    pub require_envelopes: bool,
}

impl VerifyOptions {
    pub fn new(origin: KeyName, trusted: Vec<VerifierKey>) -> Self {
        Self {
            origin,
            trusted,
            require_envelopes: false,
        }
    }
}

/// One stored record, as read from the database or an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf {
    pub index: u64,
    pub record: Vec<u8>,
    /// The attestation envelope JSON, for attestation records.
    pub envelope: Option<Vec<u8>>,
}

impl LogLeaf {
    pub fn new(index: u64, record: Vec<u8>) -> Self {
        Self {
            index,
            record,
            envelope: None,
        }
    }

    pub fn with_envelope(mut self, envelope: Vec<u8>) -> Self {
        self.envelope = Some(envelope);
        self
    }
}

/// A checkpoint that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub signers: Vec<VerifierKey>,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub size: u64,
    pub root: Hash,
    /// Keys derived from the log's key records.
    pub history: KeyHistory,
    pub checkpoints: Vec<CheckedCheckpoint>,
    /// Records per entry type.
    pub entries: BTreeMap<String, u64>,
    /// Attestation records whose envelope was supplied and checked.
    pub attestations_checked: u64,
    /// Records of entry types this version does not know (verified, not interpreted).
    pub unknown_entries: u64,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records, root {}, {} checkpoints, {} keys, {} attestations checked",
            self.size,
            self.root.to_base64(),
            self.checkpoints.len(),
            self.history.epochs().len(),
            self.attestations_checked
        )
    }
}

/// A check that needs no order and runs on all cores.
enum Job<'a> {
    Signature {
        index: u64,
        record: &'a Record,
        key: Box<VerifierKey>,
    },
    Attestation {
        index: u64,
        envelope: &'a [u8],
        entry: &'a AttestationEntry,
    },
}

impl Job<'_> {
    fn index(&self) -> u64 {
        match self {
            Job::Signature { index, .. } | Job::Attestation { index, .. } => *index,
        }
    }

    fn run(&self) -> Option<RecordProblem> {
        match self {
            Job::Signature { record, key, .. } => {
                (!record.is_signed_by(key)).then(|| RecordProblem::BadSignature {
                    key: format!("{}+{}", key.name(), key.key_id()),
                })
            }
            Job::Attestation {
                envelope, entry, ..
            } => {
                let checked = Envelope::from_json(envelope)
                    .map_err(AttestationError::Dsse)
                    .and_then(|env| verify_against_entry(&env, entry));
                checked.err().map(RecordProblem::Attestation)
            }
        }
    }
}

struct PendingCheckpoint {
    note: Note,
    checkpoint: Checkpoint,
}

/// Streaming verifier: feed records in index order with [`LogVerifier::push`], then call
/// [`LogVerifier::finish`]. Memory stays O(log n) plus the key history.
pub struct LogVerifier {
    opts: VerifyOptions,
    history: KeyHistory,
    /// Perfect subtrees covering `[0, next)`, largest first, with their levels.
    frontier: Vec<(u32, Hash)>,
    next: u64,
    /// Waiting checkpoints, sorted by size descending (next to check at the end).
    pending: Vec<PendingCheckpoint>,
    checked: Vec<CheckedCheckpoint>,
    entries: BTreeMap<String, u64>,
    attestations_checked: u64,
    unknown_entries: u64,
    /// Instance keys trusted so far: configured ones and those a trusted key rotated to.
    trusted_chain: Vec<VerifierKey>,
    /// Index at which the first trusted key took over (records before it need a trusted
    /// checkpoint).
    trusted_from: Option<u64>,
    /// Largest tree size covered by a checkpoint signed by a trusted key.
    trusted_checkpoint: u64,
    /// An error was returned; the state is no longer meaningful.
    failed: bool,
}

impl fmt::Debug for LogVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogVerifier")
            .field("origin", &self.opts.origin)
            .field("next", &self.next)
            .field("pending_checkpoints", &self.pending.len())
            .finish_non_exhaustive()
    }
}

fn rec_err(index: u64, problem: RecordProblem) -> VerifyError {
    VerifyError::Record { index, problem }
}

fn cp_err(size: u64, problem: CheckpointProblem) -> VerifyError {
    VerifyError::Checkpoint { size, problem }
}

impl LogVerifier {
    pub fn new(opts: VerifyOptions) -> Self {
        Self {
            opts,
            history: KeyHistory::new(),
            frontier: Vec::with_capacity(64),
            next: 0,
            pending: Vec::new(),
            checked: Vec::new(),
            entries: BTreeMap::new(),
            attestations_checked: 0,
            unknown_entries: 0,
            trusted_chain: Vec::new(),
            trusted_from: None,
            trusted_checkpoint: 0,
            failed: false,
        }
    }

    /// Adds stored or witnessed signed checkpoints, checked when the replay reaches their
    /// size. Must be called before the first [`LogVerifier::push`] beyond their size.
    pub fn add_checkpoints<I, B>(&mut self, notes: I) -> Result<(), VerifyError>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        for (position, msg) in notes.into_iter().enumerate() {
            let unreadable = |error| VerifyError::UnreadableCheckpoint { position, error };
            let note =
                Note::parse(msg.as_ref()).map_err(|e| unreadable(CheckpointError::Note(e)))?;
            let checkpoint = Checkpoint::parse_text(note.text()).map_err(unreadable)?;
            if checkpoint.origin != self.opts.origin.as_str() {
                return Err(cp_err(
                    checkpoint.size,
                    CheckpointProblem::WrongOrigin {
                        found: checkpoint.origin,
                    },
                ));
            }
            if checkpoint.size < self.next || (checkpoint.size == 0 && self.next > 0) {
                return Err(unreadable(CheckpointError::Malformed(
                    "added after the replay passed its size".into(),
                )));
            }
            self.pending.push(PendingCheckpoint { note, checkpoint });
        }
        self.pending
            .sort_by_key(|p| std::cmp::Reverse(p.checkpoint.size));
        Ok(())
    }

    fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.frontier.iter().map(|(_, h)| *h).collect();
        fold_cover(&hashes)
    }

    fn push_leaf_hash(&mut self, h: Hash) {
        let mut cur = (0u32, h);
        while let Some(&(level, left)) = self.frontier.last() {
            if level != cur.0 {
                break;
            }
            self.frontier.pop();
            cur = (level + 1, node_hash(&left, &cur.1));
        }
        self.frontier.push(cur);
    }

    /// Checks the record at `leaf.index`, which must be the next index.
    pub fn push(&mut self, leaf: &LogLeaf) -> Result<(), VerifyError> {
        self.push_batch(std::slice::from_ref(leaf))
    }

    /// Checks consecutive records starting at the next index. Decoding and signature checks
    /// run on all cores; everything that depends on order (positions, key history, tree,
    /// checkpoints) runs in order, and the error reported is the one at the lowest index.
    /// After an error the verifier is spent.
    pub fn push_batch(&mut self, leaves: &[LogLeaf]) -> Result<(), VerifyError> {
        if self.failed {
            return Err(VerifyError::Spent);
        }
        let result = self.push_batch_inner(leaves);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn push_batch_inner(&mut self, leaves: &[LogLeaf]) -> Result<(), VerifyError> {
        let decoded = par_map(leaves, |leaf| {
            (Record::decode(&leaf.record), leaf_hash(&leaf.record))
        });
        let mut jobs: Vec<Job<'_>> = Vec::with_capacity(leaves.len() * 2);
        // The first order-dependent failure, as (position, error): a record error at index i
        // sits at 2i, a checkpoint error at size s at 2s - 1 (right after record s-1).
        let mut structural: Option<(u64, VerifyError)> = None;
        for (leaf, (record, hash)) in leaves.iter().zip(&decoded) {
            let index = self.next;
            match self.admit(index, leaf, record, &mut jobs) {
                Ok(()) => {}
                Err(e) => {
                    structural = Some((2 * index, e));
                    break;
                }
            }
            self.push_leaf_hash(*hash);
            self.next += 1;
            if let Err(e) = self.check_due_checkpoints() {
                structural = Some((2 * self.next - 1, e));
                break;
            }
        }
        let failures = par_map(&jobs, Job::run);
        let first_bad = jobs
            .iter()
            .zip(failures)
            .filter_map(|(job, f)| f.map(|p| (job.index(), p)))
            .min_by_key(|(i, _)| *i);
        match (first_bad, structural) {
            (Some((i, p)), Some((pos, _))) if 2 * i <= pos => Err(rec_err(i, p)),
            (Some((i, p)), None) => Err(rec_err(i, p)),
            (_, Some((_, e))) => Err(e),
            (None, None) => Ok(()),
        }
    }

    /// The order-dependent checks of one record; signature checks are queued in `jobs`.
    fn admit<'a>(
        &mut self,
        index: u64,
        leaf: &'a LogLeaf,
        record: &'a Result<Record, RecordError>,
        jobs: &mut Vec<Job<'a>>,
    ) -> Result<(), VerifyError> {
        if leaf.index != index {
            return Err(if leaf.index > index {
                rec_err(index, RecordProblem::Missing { found: leaf.index })
            } else {
                rec_err(
                    leaf.index,
                    RecordProblem::OutOfOrder {
                        previous: index.saturating_sub(1),
                    },
                )
            });
        }
        let record = record
            .as_ref()
            .map_err(|e| rec_err(index, RecordProblem::Malformed(e.clone())))?;
        if record.origin != self.opts.origin.as_str() {
            return Err(rec_err(
                index,
                RecordProblem::WrongOrigin {
                    found: record.origin.clone(),
                },
            ));
        }
        if record.index != index {
            return Err(rec_err(
                index,
                RecordProblem::Misplaced {
                    claims: record.index,
                },
            ));
        }
        let required = self.required_signers(index, record)?;
        // DGC writes exactly the required signatures; anything else was added afterwards.
        for sig in record.signatures() {
            if !required.iter().any(|k| k.key_id().to_string() == sig.keyid) {
                return Err(rec_err(
                    index,
                    RecordProblem::UnexpectedSignature {
                        keyid: sig.keyid.clone(),
                    },
                ));
            }
        }
        for key in required {
            jobs.push(Job::Signature {
                index,
                record,
                key: Box::new(key),
            });
        }
        if let Entry::Attestation(att) = &record.entry {
            match &leaf.envelope {
                Some(envelope) => {
                    jobs.push(Job::Attestation {
                        index,
                        envelope,
                        entry: att,
                    });
                    self.attestations_checked += 1;
                }
                None if self.opts.require_envelopes => {
                    return Err(rec_err(index, RecordProblem::MissingEnvelope));
                }
                None => {}
            }
        }
        self.track_trust(index, &record.entry);
        self.history
            .apply(index, &record.entry)
            .map_err(|e| rec_err(index, RecordProblem::KeyHistory(e)))?;
        if let Entry::Unknown { .. } = record.entry {
            self.unknown_entries += 1;
        }
        *self
            .entries
            .entry(record.entry.type_name().to_owned())
            .or_default() += 1;
        Ok(())
    }

    /// Which keys must have signed `record`, per its entry type and the history so far.
    fn required_signers(
        &self,
        index: u64,
        record: &Record,
    ) -> Result<Vec<VerifierKey>, VerifyError> {
        let origin = self.opts.origin.as_str();
        let name_check = |key: &VerifierKey, expected: &str| {
            if key.name().as_str() == expected {
                Ok(())
            } else {
                Err(rec_err(
                    index,
                    RecordProblem::KeyName {
                        found: key.to_vkey(),
                        expected: expected.to_owned(),
                    },
                ))
            }
        };
        if let Entry::LogInit(init) = &record.entry {
            if index != 0 {
                return Err(rec_err(
                    index,
                    RecordProblem::KeyHistory(KeyHistoryError::InitNotFirst),
                ));
            }
            name_check(&init.key, origin)?;
            return Ok(vec![init.key.clone()]);
        }
        let instance = self
            .history
            .instance_key_at(index)
            .cloned()
            .ok_or_else(|| rec_err(index, RecordProblem::NoInstanceKey))?;
        let mut required = vec![instance.clone()];
        match &record.entry {
            Entry::KeyRotated(rot) => {
                let expected = match &rot.subject {
                    KeySubject::Instance => origin.to_owned(),
                    KeySubject::Agent { agent_id } => agent_name(&self.opts.origin, agent_id),
                };
                name_check(&rot.new_key, &expected)?;
                required.push(rot.new_key.clone());
            }
            Entry::AgentKeyAdded(added) => {
                name_check(&added.key, &agent_name(&self.opts.origin, &added.agent_id))?;
                required.push(added.key.clone());
            }
            Entry::Attestation(att) => {
                let valid_instance = self.history.instance_keys_at(index);
                if !valid_instance.contains(&&att.instance_key) {
                    return Err(rec_err(
                        index,
                        RecordProblem::AttestationKey {
                            what: "instance",
                            found: att.instance_key.to_vkey(),
                            valid: instance.to_vkey(),
                        },
                    ));
                }
                let agent = self.history.agent_key_at(&att.agent_id, index);
                if agent != Some(&att.agent_key) {
                    return Err(rec_err(
                        index,
                        RecordProblem::AttestationKey {
                            what: "agent",
                            found: att.agent_key.to_vkey(),
                            valid: agent.map_or_else(|| "none".to_owned(), VerifierKey::to_vkey),
                        },
                    ));
                }
            }
            _ => {}
        }
        Ok(required)
    }

    fn track_trust(&mut self, index: u64, entry: &Entry) {
        let new_instance_key = match entry {
            Entry::LogInit(init) => Some(&init.key),
            Entry::KeyRotated(rot) if rot.subject == KeySubject::Instance => Some(&rot.new_key),
            _ => None,
        };
        let Some(key) = new_instance_key else {
            return;
        };
        // A key is trusted if configured, or if a trusted key handed over to it.
        let handed_over = matches!(entry, Entry::KeyRotated(_))
            && self
                .history
                .current_instance_key()
                .is_some_and(|cur| self.trusted_chain.contains(cur));
        if self.opts.trusted.contains(key) || handed_over {
            if self.trusted_from.is_none() {
                self.trusted_from = Some(index);
            }
            self.trusted_chain.push(key.clone());
        }
    }

    fn check_due_checkpoints(&mut self) -> Result<(), VerifyError> {
        while let Some(last) = self.pending.last() {
            let size = last.checkpoint.size;
            if size > self.next {
                break;
            }
            let root = if size == 0 { empty_root() } else { self.root() };
            if let Some(p) = self.pending.pop() {
                self.check_checkpoint(&p, root)?;
            }
        }
        Ok(())
    }

    fn check_checkpoint(&mut self, p: &PendingCheckpoint, root: Hash) -> Result<(), VerifyError> {
        let size = p.checkpoint.size;
        let known = self.history.instance_keys();
        let signers: Vec<VerifierKey> = match p.note.verify(&known) {
            Ok(keys) => keys.into_iter().cloned().collect(),
            Err(NoteError::InvalidSignature { name, key_id }) => {
                return Err(cp_err(
                    size,
                    CheckpointProblem::BadSignature {
                        key: format!("{name}+{key_id}"),
                    },
                ));
            }
            Err(_) => {
                return Err(cp_err(
                    size,
                    CheckpointProblem::UnknownKey {
                        signers: p.note.signer_list(),
                    },
                ));
            }
        };
        // A checkpoint of size n vouches for records 0..n, so it must come from a key that was
        // allowed to sign record n-1: a retired key cannot extend or fork the log.
        let last_index = size.saturating_sub(1);
        let valid: Vec<&VerifierKey> = signers
            .iter()
            .filter(|k| {
                self.history
                    .epoch_of(k)
                    .is_some_and(|e| e.covers(last_index))
            })
            .collect();
        if valid.is_empty() {
            let key = &signers[0];
            let (from, until) = self
                .history
                .epoch_of(key)
                .map(|e| {
                    (
                        e.from,
                        e.until.map_or_else(|| "now".to_owned(), |u| u.to_string()),
                    )
                })
                .unwrap_or((0, "?".to_owned()));
            return Err(cp_err(
                size,
                CheckpointProblem::KeyNotValid {
                    key: format!("{}+{}", key.name(), key.key_id()),
                    from,
                    until,
                },
            ));
        }
        if p.checkpoint.root != root {
            return Err(cp_err(
                size,
                CheckpointProblem::RootMismatch {
                    claimed: p.checkpoint.root,
                    computed: root,
                },
            ));
        }
        if valid.iter().any(|k| self.trusted_chain.contains(k)) {
            self.trusted_checkpoint = self.trusted_checkpoint.max(size);
        }
        self.checked.push(CheckedCheckpoint {
            size,
            root,
            signers: valid.into_iter().cloned().collect(),
        });
        Ok(())
    }

    /// Ends the replay: checks checkpoints beyond the log's end and the trust anchor.
    pub fn finish(self) -> Result<VerifyReport, VerifyError> {
        if self.failed {
            return Err(VerifyError::Spent);
        }
        // `pending` is sorted largest first: report the smallest size the log fails to reach.
        if let Some(p) = self.pending.last() {
            return Err(cp_err(
                p.checkpoint.size,
                CheckpointProblem::BeyondLog {
                    size: p.checkpoint.size,
                    log_size: self.next,
                },
            ));
        }
        if self.next == 0 {
            return Err(VerifyError::Empty);
        }
        match self.trusted_from {
            None => {
                return Err(VerifyError::Untrusted {
                    chain: self
                        .history
                        .instance_keys()
                        .iter()
                        .map(VerifierKey::to_vkey)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            Some(from) if from > 0 && self.trusted_checkpoint <= from => {
                return Err(VerifyError::UntrustedPrefix { until: from });
            }
            Some(_) => {}
        }
        let root = self.root();
        Ok(VerifyReport {
            size: self.next,
            root,
            history: self.history,
            checkpoints: self.checked,
            entries: self.entries,
            attestations_checked: self.attestations_checked,
            unknown_entries: self.unknown_entries,
        })
    }
}

fn agent_name(origin: &KeyName, agent_id: &str) -> String {
    agent_key_name(origin, agent_id)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| format!("{origin}/agents/{agent_id}"))
}

/// Verifies a whole log offline: `records` in index order (as stored; a read error aborts),
/// `checkpoints` as stored and/or witnessed signed notes.
pub fn verify_log<I, C, B>(
    records: I,
    checkpoints: C,
    opts: VerifyOptions,
) -> Result<VerifyReport, VerifyError>
where
    I: IntoIterator<Item = Result<LogLeaf, StorageError>>,
    C: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut v = LogVerifier::new(opts);
    v.add_checkpoints(checkpoints)?;
    let mut batch = Vec::with_capacity(VERIFY_BATCH);
    for leaf in records {
        batch.push(leaf?);
        if batch.len() == VERIFY_BATCH {
            v.push_batch(&batch)?;
            batch.clear();
        }
    }
    v.push_batch(&batch)?;
    v.finish()
}
