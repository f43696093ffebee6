//! The append-only Merkle log over a [`LogStorage`]: batched appends of signed records, tree
//! roots at any size, inclusion and consistency proofs in O(log n) node reads, checkpoints.

use time::OffsetDateTime;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::entry::{Entry, LogInit, RECORD_VERSION, RecordBody, RecordError, encode_record};
use crate::hash::{Hash, empty_root, leaf_hash, node_hash};
use crate::keys::{KeyName, Signer};
use crate::par::par_map;
use crate::proof::{NodeId, consistency_ranges, fold_cover, inclusion_ranges, perfect_cover};
use crate::storage::{AppendBatch, LogStorage, StorageError};

/// Most records one append may carry; bigger batches are split by the caller.
pub const MAX_BATCH: usize = 65_536;

/// A log operation failed. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored log is corrupt: node ({level}, {index}) is missing")]
    MissingNode { level: u8, index: u64 },
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "signing key {found} is not an instance key of log {origin} (its name must be the origin)"
    )]
    WrongSigner { origin: String, found: String },
    #[error("the log is empty: it must be initialised with a log_init record first")]
    NotInitialised,
    #[error("log_init may only be the first record of an empty log")]
    MisplacedInit,
    #[error("a batch of {0} records exceeds the limit of {MAX_BATCH}")]
    BatchTooLarge(usize),
}

/// A record waiting to be appended.
#[derive(Debug, Clone)]
pub struct PendingRecord<'a> {
    pub entry: Entry,
    pub time: OffsetDateTime,
    /// Keys that sign in addition to the instance key: the new key of a `key_rotated` or
    /// `agent_key_added` record (proof of possession).
    pub cosigners: Vec<&'a Signer>,
}

impl<'a> PendingRecord<'a> {
    pub fn new(entry: Entry, time: OffsetDateTime) -> Self {
        Self {
            entry,
            time,
            cosigners: Vec::new(),
        }
    }

    pub fn with_cosigner(mut self, signer: &'a Signer) -> Self {
        self.cosigners.push(signer);
        self
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Index of the first appended record.
    pub first_index: u64,
    /// Log size after the append.
    pub size: u64,
    /// Root hash at `size`.
    pub root: Hash,
    /// Leaf hash of every appended record, in order.
    pub leaf_hashes: Vec<Hash>,
}

/// A checkpoint and its signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

/// A handle on the log named `origin`. Holds no state: every operation reads what it needs
/// from the storage it is given, so the same handle serves any number of transactions.
#[derive(Debug, Clone)]
pub struct Log {
    origin: KeyName,
}

/// The right edge of the tree: perfect subtrees covering `[0, size)`, largest first.
struct Frontier {
    nodes: Vec<(NodeId, Hash)>,
}

impl Frontier {
    fn push_leaf(&mut self, index: u64, hash: Hash, created: &mut Vec<(NodeId, Hash)>) {
        let mut cur = (NodeId::new(0, index), hash);
        created.push(cur);
        while let Some(&(left_id, left)) = self.nodes.last() {
            if left_id.level != cur.0.level {
                break;
            }
            self.nodes.pop();
            let parent = (
                NodeId::new(left_id.level + 1, left_id.index >> 1),
                node_hash(&left, &cur.1),
            );
            created.push(parent);
            cur = parent;
        }
        self.nodes.push(cur);
    }

    fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.nodes.iter().map(|(_, h)| *h).collect();
        fold_cover(&hashes)
    }
}

impl Log {
    pub fn new(origin: KeyName) -> Self {
        Self { origin }
    }

    pub fn origin(&self) -> &KeyName {
        &self.origin
    }

    pub fn size<S: LogStorage + ?Sized>(&self, s: &S) -> Result<u64, LogError> {
        Ok(s.size()?)
    }

    fn read_nodes<S: LogStorage + ?Sized>(
        &self,
        s: &S,
        ids: &[NodeId],
    ) -> Result<Vec<Hash>, LogError> {
        let got = s.nodes(ids)?;
        if got.len() != ids.len() {
            return Err(StorageError::msg("storage returned the wrong number of nodes").into());
        }
        ids.iter()
            .zip(got)
            .map(|(id, h)| {
                h.ok_or(LogError::MissingNode {
                    level: id.level,
                    index: id.index,
                })
            })
            .collect()
    }

    /// Hashes of the valid subtrees `ranges`, with one storage read for all of them.
    fn range_hashes<S: LogStorage + ?Sized>(
        &self,
        s: &S,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<Hash>, LogError> {
        let covers: Vec<Vec<NodeId>> = ranges.iter().map(|&(a, b)| perfect_cover(a, b)).collect();
        let ids: Vec<NodeId> = covers.iter().flatten().copied().collect();
        let hashes = self.read_nodes(s, &ids)?;
        let mut at = 0;
        Ok(covers
            .iter()
            .map(|c| {
                let h = fold_cover(&hashes[at..at + c.len()]);
                at += c.len();
                h
            })
            .collect())
    }

    fn check_size<S: LogStorage + ?Sized>(&self, s: &S, size: u64) -> Result<(), LogError> {
        let have = s.size()?;
        if size > have {
            return Err(LogError::InvalidArgument(format!(
                "tree size {size} is beyond the log size {have}"
            )));
        }
        Ok(())
    }

    /// Root hash of the tree made of the first `size` records.
    pub fn root_at<S: LogStorage + ?Sized>(&self, s: &S, size: u64) -> Result<Hash, LogError> {
        self.check_size(s, size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.range_hashes(s, &[(0, size)])?[0])
    }

    /// Inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof<S: LogStorage + ?Sized>(
        &self,
        s: &S,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, LogError> {
        if index >= size {
            return Err(LogError::InvalidArgument(format!(
                "record index {index} is not below tree size {size}"
            )));
        }
        self.check_size(s, size)?;
        self.range_hashes(s, &inclusion_ranges(index, size))
    }

    /// Consistency proof from the tree of `size1` records to the tree of `size2` records
    /// (`0 < size1 <= size2`).
    pub fn consistency_proof<S: LogStorage + ?Sized>(
        &self,
        s: &S,
        size1: u64,
        size2: u64,
    ) -> Result<Vec<Hash>, LogError> {
        if size1 == 0 || size1 > size2 {
            return Err(LogError::InvalidArgument(format!(
                "consistency proof needs 0 < from <= to, got from={size1} to={size2}"
            )));
        }
        self.check_size(s, size2)?;
        if size1 == size2 {
            return Ok(Vec::new());
        }
        self.range_hashes(s, &consistency_ranges(size1, size2))
    }

    /// The stored bytes of record `index`.
    pub fn record<S: LogStorage + ?Sized>(&self, s: &S, index: u64) -> Result<Vec<u8>, LogError> {
        s.record(index)?
            .ok_or_else(|| LogError::InvalidArgument(format!("no record at index {index}")))
    }

    fn check_signer(&self, signer: &Signer) -> Result<(), LogError> {
        if signer.name() != &self.origin {
            return Err(LogError::WrongSigner {
                origin: self.origin.to_string(),
                found: signer.verifier().to_vkey(),
            });
        }
        Ok(())
    }

    /// Starts an empty log: appends the `log_init` record naming `signer` as the instance key.
    pub fn init<S: LogStorage + ?Sized>(
        &self,
        s: &mut S,
        instance_id: &str,
        signer: &Signer,
        time: OffsetDateTime,
    ) -> Result<Appended, LogError> {
        if s.size()? != 0 {
            return Err(LogError::MisplacedInit);
        }
        let entry = Entry::LogInit(LogInit {
            instance_id: instance_id.to_owned(),
            key: signer.verifier().clone(),
        });
        self.append_inner(s, signer, vec![PendingRecord::new(entry, time)], true)
    }

    /// Appends `records`, each signed by `signer` (the current instance key) and its
    /// cosigners, in one storage write with one root computation. Returns the new tree head.
    pub fn append<S: LogStorage + ?Sized>(
        &self,
        s: &mut S,
        signer: &Signer,
        records: Vec<PendingRecord<'_>>,
    ) -> Result<Appended, LogError> {
        self.append_inner(s, signer, records, false)
    }

    fn append_inner<S: LogStorage + ?Sized>(
        &self,
        s: &mut S,
        signer: &Signer,
        records: Vec<PendingRecord<'_>>,
        init: bool,
    ) -> Result<Appended, LogError> {
        self.check_signer(signer)?;
        if records.len() > MAX_BATCH {
            return Err(LogError::BatchTooLarge(records.len()));
        }
        let start = s.size()?;
        if start == 0 && !init {
            return Err(LogError::NotInitialised);
        }
        let mut jobs = Vec::with_capacity(records.len());
        for (i, rec) in records.into_iter().enumerate() {
            if matches!(rec.entry, Entry::LogInit(_)) != (init && i == 0) {
                return Err(LogError::MisplacedInit);
            }
            let body = RecordBody {
                v: RECORD_VERSION,
                origin: self.origin.to_string(),
                index: start + i as u64,
                time: rec.time.to_offset(time::UtcOffset::UTC),
                entry: rec.entry,
            };
            let mut signers = Vec::with_capacity(1 + rec.cosigners.len());
            signers.push(signer);
            signers.extend(rec.cosigners);
            jobs.push((body, signers));
        }
        // Signing dominates the cost of an append; a batch signs on all cores.
        let leaves = par_map(&jobs, |(body, signers)| encode_record(body, signers))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        self.append_leaves(s, &leaves)
    }

    /// Appends already encoded leaves without looking at them: the raw RFC 6962 tree, for
    /// tools and tests that build trees over arbitrary data. The server never calls this.
    pub fn append_leaves<S: LogStorage + ?Sized>(
        &self,
        s: &mut S,
        leaves: &[Vec<u8>],
    ) -> Result<Appended, LogError> {
        if leaves.len() > MAX_BATCH {
            return Err(LogError::BatchTooLarge(leaves.len()));
        }
        let start = s.size()?;
        let cover = perfect_cover(0, start);
        let hashes = self.read_nodes(s, &cover)?;
        let mut frontier = Frontier {
            nodes: cover.into_iter().zip(hashes).collect(),
        };
        let mut created = Vec::with_capacity(leaves.len() * 2 + 1);
        let mut leaf_hashes = Vec::with_capacity(leaves.len());
        for (i, leaf) in leaves.iter().enumerate() {
            let h = leaf_hash(leaf);
            leaf_hashes.push(h);
            frontier.push_leaf(start + i as u64, h, &mut created);
        }
        s.append(&AppendBatch {
            start,
            records: leaves,
            nodes: &created,
        })?;
        let size = start + leaves.len() as u64;
        Ok(Appended {
            first_index: start,
            size,
            root: if size == 0 {
                empty_root()
            } else {
                frontier.root()
            },
            leaf_hashes,
        })
    }

    /// Signs a checkpoint of the current tree head with the instance key.
    pub fn checkpoint<S: LogStorage + ?Sized>(
        &self,
        s: &S,
        signer: &Signer,
    ) -> Result<SignedCheckpoint, LogError> {
        self.check_signer(signer)?;
        let size = s.size()?;
        let root = self.root_at(s, size)?;
        let checkpoint = Checkpoint::new(self.origin.as_str(), size, root);
        let note = checkpoint.sign(signer)?;
        Ok(SignedCheckpoint { checkpoint, note })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::{verify_consistency, verify_inclusion};
    use crate::storage::MemoryStorage;

    fn log() -> Log {
        Log::new(KeyName::new("t").unwrap())
    }

    #[test]
    fn batched_and_single_appends_build_the_same_tree() {
        let l = log();
        let mut one = MemoryStorage::new();
        let mut batched = MemoryStorage::new();
        let data: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
        for d in &data {
            l.append_leaves(&mut one, std::slice::from_ref(d)).unwrap();
        }
        let mut at = 0;
        for chunk in [1usize, 2, 3, 5, 8, 13, 21, 47] {
            let end = (at + chunk).min(data.len());
            l.append_leaves(&mut batched, &data[at..end]).unwrap();
            at = end;
        }
        for size in 0..=100 {
            assert_eq!(
                l.root_at(&one, size).unwrap(),
                l.root_at(&batched, size).unwrap()
            );
        }
        for size in 1..=100u64 {
            let root = l.root_at(&one, size).unwrap();
            for i in 0..size {
                let proof = l.inclusion_proof(&batched, i, size).unwrap();
                verify_inclusion(i, size, &leaf_hash(&data[i as usize]).0, &proof, &root.0)
                    .unwrap();
            }
            for m in 1..=size {
                let proof = l.consistency_proof(&one, m, size).unwrap();
                let r1 = l.root_at(&one, m).unwrap();
                verify_consistency(m, size, &proof, &r1.0, &root.0).unwrap();
            }
        }
    }

    #[test]
    fn rejects_out_of_range_requests() {
        let l = log();
        let mut s = MemoryStorage::new();
        l.append_leaves(&mut s, &[b"a".to_vec(), b"b".to_vec()])
            .unwrap();
        assert!(matches!(
            l.inclusion_proof(&s, 2, 2),
            Err(LogError::InvalidArgument(_))
        ));
        assert!(matches!(
            l.inclusion_proof(&s, 0, 3),
            Err(LogError::InvalidArgument(_))
        ));
        assert!(matches!(
            l.consistency_proof(&s, 0, 2),
            Err(LogError::InvalidArgument(_))
        ));
        assert!(matches!(
            l.consistency_proof(&s, 2, 1),
            Err(LogError::InvalidArgument(_))
        ));
        assert!(matches!(
            l.root_at(&s, 3),
            Err(LogError::InvalidArgument(_))
        ));
        assert_eq!(l.consistency_proof(&s, 2, 2).unwrap(), Vec::<Hash>::new());
    }

    #[test]
    fn signed_append_requires_init_and_the_origin_key() {
        let l = log();
        let mut s = MemoryStorage::new();
        let k = Signer::generate(KeyName::new("t").unwrap());
        let stranger = Signer::generate(KeyName::new("u").unwrap());
        let now = OffsetDateTime::UNIX_EPOCH;
        let entry = Entry::ApiKeyRevoked(crate::entry::ApiKeyRevoked {
            key_id: "key_1".into(),
            reason: None,
            request_id: None,
        });
        assert!(matches!(
            l.append(&mut s, &k, vec![PendingRecord::new(entry.clone(), now)]),
            Err(LogError::NotInitialised)
        ));
        assert!(matches!(
            l.init(&mut s, "i", &stranger, now),
            Err(LogError::WrongSigner { .. })
        ));
        l.init(&mut s, "i", &k, now).unwrap();
        assert!(matches!(
            l.init(&mut s, "i", &k, now),
            Err(LogError::MisplacedInit)
        ));
        let a = l
            .append(&mut s, &k, vec![PendingRecord::new(entry, now)])
            .unwrap();
        assert_eq!((a.first_index, a.size), (1, 2));
        assert_eq!(a.root, l.root_at(&s, 2).unwrap());
        let cp = l.checkpoint(&s, &k).unwrap();
        assert_eq!(cp.checkpoint.size, 2);
        assert!(cp.note.starts_with("t\n2\n"));
    }

    #[test]
    fn missing_nodes_are_reported_not_papered_over() {
        #[derive(Debug)]
        struct Holey(MemoryStorage);
        impl LogStorage for Holey {
            fn size(&self) -> Result<u64, StorageError> {
                self.0.size()
            }
            fn node(&self, id: NodeId) -> Result<Option<Hash>, StorageError> {
                if id == NodeId::new(1, 0) {
                    return Ok(None);
                }
                self.0.node(id)
            }
            fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
                self.0.record(index)
            }
            fn append(&mut self, batch: &AppendBatch<'_>) -> Result<(), StorageError> {
                self.0.append(batch)
            }
        }
        let l = log();
        let mut s = Holey(MemoryStorage::new());
        l.append_leaves(&mut s, &[vec![1], vec![2], vec![3]])
            .unwrap();
        assert!(matches!(
            l.inclusion_proof(&s, 2, 3),
            Err(LogError::MissingNode { level: 1, index: 0 })
        ));
    }
}
