//! Merkle tree geometry and the verification of inclusion, consistency and subtree proofs
//! (RFC 6962 §2.1, RFC 9162 §2.1, C2SP merkle-tree, and the subtree proofs of
//! draft-davidben-tls-merkle-tree-certs).
//!
//! Verification takes hashes as byte strings, exactly as they arrive on the wire: a verifier
//! must reject a malformed proof with an error, not fail to parse it one layer up. Tree
//! geometry (which subtree hashes a proof is made of) is shared with proof *generation* in
//! [`crate::log`], so one piece of arithmetic serves both directions.

use serde::{Deserialize, Serialize};

use crate::hash::{HASH_LEN, Hash, empty_root, node_hash, node_hash_bytes};

/// Longest proof any tree of at most 2^64 leaves can need (inclusion: 64; consistency: 65).
pub const MAX_PROOF_HASHES: usize = 65;

/// A perfect (complete, power-of-two sized) subtree: the leaves
/// `[index << level, (index + 1) << level)`. Level 0 nodes are leaf hashes.
///
/// Perfect subtrees never change once all their leaves exist, which is why they are the unit
/// of persistence: a store keeps `(level, index) → hash` and every proof is assembled from
/// O(log n) of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// First leaf covered.
    pub fn start(self) -> u64 {
        self.index << self.level
    }

    /// One past the last leaf covered.
    pub fn end(self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("a hash in the proof or its inputs has {0} bytes, expected {HASH_LEN}")]
    BadHashLength(usize),
    #[error("proof has {got} hashes, expected {want}")]
    WrongProofLength { got: usize, want: usize },
    #[error("second tree size {size2} is smaller than first tree size {size1}")]
    SizeDecreased { size1: u64, size2: u64 },
    #[error("a consistency proof from the empty tree is meaningless")]
    EmptyTreeConsistency,
    #[error("tree sizes are equal but the proof is not empty")]
    ProofNotEmpty,
    #[error("tree sizes differ but the proof is empty")]
    EmptyProof,
    #[error("root hash does not match: proof yields {computed}")]
    RootMismatch { computed: String },
    #[error("[{start}, {end}) is not a valid subtree of a tree of size {size}")]
    InvalidSubtree { start: u64, end: u64, size: u64 },
    #[error("the subtree hash computed from the proof does not match the given one")]
    SubtreeMismatch,
}

/// Largest power of two strictly smaller than `n` (`n >= 2`): the split point `k` of RFC 6962.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Whether `[start, end)` is a subtree in the sense of RFC 9162 / the MTC draft: no ragged
/// left edge, so its hash is a node of every tree that contains it.
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    if start > end {
        return false;
    }
    start == 0 || end - start <= (start & start.wrapping_neg())
}

/// The perfect subtrees whose right fold is the hash of the valid subtree `[start, end)`,
/// largest (leftmost) first. `MTH(D[start:end]) = H(p0, H(p1, … H(pk-1, pk)))`.
pub(crate) fn perfect_cover(start: u64, end: u64) -> Vec<NodeId> {
    debug_assert!(is_valid_subtree(start, end));
    let mut out = Vec::with_capacity(8);
    let mut lo = start;
    while lo < end {
        let level = 63 - (end - lo).leading_zeros();
        out.push(NodeId::new(level as u8, lo >> level));
        lo += 1u64 << level;
    }
    out
}

/// The subtrees `[lo, hi)` whose hashes form the inclusion proof of leaf `index` in a tree of
/// `size` leaves, in proof order (bottom-up), per RFC 9162 §2.1.3.1 `PATH`.
pub(crate) fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    debug_assert!(index < size);
    let mut out = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The subtrees whose hashes form the consistency proof from `size1` to `size2`
/// (`0 < size1 < size2`), in proof order, per RFC 9162 §2.1.4.1 `SUBPROOF`.
pub(crate) fn consistency_ranges(size1: u64, size2: u64) -> Vec<(u64, u64)> {
    debug_assert!(0 < size1 && size1 < size2);
    let mut suffix = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0u64, size2);
    let mut m = size1;
    let mut include_root = true;
    loop {
        let n = hi - lo;
        if m == n {
            if !include_root {
                suffix.push((lo, hi));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            suffix.push((lo + k, hi));
            hi = lo + k;
        } else {
            suffix.push((lo, lo + k));
            lo += k;
            m -= k;
            include_root = false;
        }
    }
    // The recursion appends on the way out, so the deepest element comes first.
    suffix.reverse();
    suffix
}

fn check_len(b: &[u8]) -> Result<Hash, ProofError> {
    Hash::from_slice(b).map_err(|_| ProofError::BadHashLength(b.len()))
}

fn to_hashes<P: AsRef<[u8]>>(proof: &[P]) -> Result<Vec<Hash>, ProofError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: MAX_PROOF_HASHES,
        });
    }
    proof.iter().map(|p| check_len(p.as_ref())).collect()
}

fn mismatch(computed: &Hash, expected: &[u8]) -> Result<(), ProofError> {
    if computed.as_ref() == expected {
        Ok(())
    } else {
        Err(ProofError::RootMismatch {
            computed: computed.to_hex(),
        })
    }
}

/// Sizes of the two parts of an inclusion proof: below and above the point where the paths to
/// `index` and to `size - 1` diverge.
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 0 {
            node_hash(&acc, h)
        } else {
            node_hash(h, &acc)
        }
    })
}

fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 1 {
            node_hash(h, &acc)
        } else {
            acc
        }
    })
}

fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

/// Computes the root implied by an inclusion proof of `leaf_hash` at `index` in a tree of
/// `size` leaves.
pub fn root_from_inclusion_proof<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let leaf = check_len(leaf_hash)?;
    let proof = to_hashes(proof)?;
    let (inner, border) = decompose_inclusion(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    let res = chain_inner(leaf, &proof[..inner], index);
    Ok(chain_border_right(res, &proof[inner..]))
}

/// Verifies that `leaf_hash` is the leaf at `index` of the tree of `size` leaves with `root`.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(index, size, leaf_hash, proof)?;
    mismatch(&computed, root)
}

/// Verifies that the tree of `size1` leaves with `root1` is a prefix of the tree of `size2`
/// leaves with `root2`.
///
/// A proof from the empty tree is rejected as meaningless (it proves nothing about the later
/// tree); callers that hold a size-0 checkpoint compare its root with [`empty_root`] instead.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizeDecreased { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyTreeConsistency);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::ProofNotEmpty);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch {
                computed: hex::encode(root1),
            })
        };
    }
    if proof.is_empty() {
        return Err(ProofError::EmptyProof);
    }
    let root1_h = check_len(root1)?;
    check_len(root2)?;
    let proof = to_hashes(proof)?;

    let (inner, border) = decompose_inclusion(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    // shift < inner whenever size1 < size2, so this cannot underflow.
    let inner = inner - shift;
    let (seed, start) = if size1 == 1u64 << shift {
        (root1_h, 0)
    } else {
        (proof[0], 1)
    };
    if proof.len() != start + inner + border {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: start + inner + border,
        });
    }
    let proof = &proof[start..];
    let mask = (size1 - 1) >> shift;

    let hash1 = chain_inner_right(seed, &proof[..inner], mask);
    let hash1 = chain_border_right(hash1, &proof[inner..]);
    mismatch(&hash1, root1)?;

    let hash2 = chain_inner(seed, &proof[..inner], mask);
    let hash2 = chain_border_right(hash2, &proof[inner..]);
    mismatch(&hash2, root2)
}

/// Computes the root of a tree of `size` leaves from a subtree consistency proof for the
/// subtree `[start, end)` whose hash is `subtree_hash` (draft-davidben-tls-merkle-tree-certs
/// §4.4.3). An empty subtree is consistent with every tree; its hash must be [`empty_root`]
/// and its proof empty, and it yields no root (`None`).
pub fn root_from_subtree_consistency_proof<P: AsRef<[u8]>>(
    size: u64,
    start: u64,
    end: u64,
    proof: &[P],
    subtree_hash: &[u8],
) -> Result<Option<Vec<u8>>, ProofError> {
    if !is_valid_subtree(start, end) || size < end {
        return Err(ProofError::InvalidSubtree { start, end, size });
    }
    if start == end {
        if !proof.is_empty() {
            return Err(ProofError::ProofNotEmpty);
        }
        return if subtree_hash == empty_root().as_ref() {
            Ok(None)
        } else {
            Err(ProofError::SubtreeMismatch)
        };
    }
    let proof = to_hashes(proof)?;
    let (mut fn_, mut sn, mut tn) = (start, end - 1, size - 1);
    if sn == tn {
        while fn_ != sn {
            fn_ >>= 1;
            sn >>= 1;
            tn >>= 1;
        }
    } else {
        while fn_ != sn && sn & 1 == 1 {
            fn_ >>= 1;
            sn >>= 1;
            tn >>= 1;
        }
    }
    let mut rest: &[Hash] = &proof;
    if fn_ == sn && rest.is_empty() {
        // Nothing to hash: the subtree is the whole tree (only if the paths end together).
        if tn != 0 {
            return Err(ProofError::WrongProofLength { got: 0, want: 1 });
        }
        return Ok(Some(subtree_hash.to_vec()));
    }
    let (mut node, mut root) = if fn_ == sn {
        let h = check_len(subtree_hash)?;
        (h, h)
    } else {
        let Some((first, tail)) = rest.split_first() else {
            return Err(ProofError::EmptyProof);
        };
        rest = tail;
        (*first, *first)
    };
    for p in rest {
        if tn == 0 {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: proof.len() - 1,
            });
        }
        if sn & 1 == 1 || sn == tn {
            if fn_ < sn {
                node = node_hash(p, &node);
            }
            root = node_hash(p, &root);
            while sn & 1 == 0 {
                fn_ >>= 1;
                sn >>= 1;
                tn >>= 1;
            }
        } else {
            root = node_hash(&root, p);
        }
        fn_ >>= 1;
        sn >>= 1;
        tn >>= 1;
    }
    if tn != 0 {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: proof.len() + 1,
        });
    }
    if node.as_ref() != subtree_hash {
        return Err(ProofError::SubtreeMismatch);
    }
    Ok(Some(root.0.to_vec()))
}

/// Verifies a subtree consistency proof: the subtree `[start, end)` with `subtree_hash` is
/// contained in the tree of `size` leaves with `root`.
pub fn verify_subtree_consistency<P: AsRef<[u8]>>(
    size: u64,
    start: u64,
    end: u64,
    proof: &[P],
    subtree_hash: &[u8],
    root: &[u8],
) -> Result<(), ProofError> {
    match root_from_subtree_consistency_proof(size, start, end, proof, subtree_hash)? {
        None => Ok(()),
        Some(computed) if computed == root => Ok(()),
        Some(computed) => Err(ProofError::RootMismatch {
            computed: hex::encode(computed),
        }),
    }
}

/// Verifies that `leaf_hash` is leaf `index` of the subtree `[start, end)` whose hash is
/// `subtree_root`: an inclusion proof relative to a subtree rather than to a whole tree.
pub fn verify_subtree_inclusion<P: AsRef<[u8]>>(
    index: u64,
    start: u64,
    end: u64,
    leaf_hash: &[u8],
    proof: &[P],
    subtree_root: &[u8],
) -> Result<(), ProofError> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree {
            start,
            end,
            size: end,
        });
    }
    if !(start <= index && index < end) {
        return Err(ProofError::IndexBeyondSize { index, size: end });
    }
    check_len(leaf_hash)?;
    let rel = index - start;
    verify_subtree_consistency(end - start, rel, rel + 1, proof, leaf_hash, subtree_root)
}

/// Hash of a sequence of perfect subtree hashes laid side by side (largest first): the right
/// fold that turns a [`perfect_cover`] into a subtree hash.
pub(crate) fn fold_cover(hashes: &[Hash]) -> Hash {
    let mut it = hashes.iter().rev();
    let Some(last) = it.next() else {
        return empty_root();
    };
    it.fold(*last, |acc, h| node_hash(h, &acc))
}

/// Raw-byte node hash, re-exported for the in-memory reference tree used by tests.
#[doc(hidden)]
pub fn hash_children(left: &[u8], right: &[u8]) -> Hash {
    node_hash_bytes(left, right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    /// Reference MTH straight from the RFC's recursive definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn range_hash(l: &[Hash], r: (u64, u64)) -> Hash {
        mth(&l[r.0 as usize..r.1 as usize])
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "n={n}");
        }
    }

    #[test]
    fn perfect_cover_folds_to_mth() {
        let l = leaves(37);
        for (s, e) in [
            (0, 37),
            (0, 1),
            (32, 37),
            (16, 32),
            (36, 37),
            (24, 31),
            (0, 0),
        ] {
            assert!(is_valid_subtree(s, e));
            let cover: Vec<Hash> = perfect_cover(s, e)
                .iter()
                .map(|id| mth(&l[id.start() as usize..id.end() as usize]))
                .collect();
            assert_eq!(fold_cover(&cover), range_hash(&l, (s, e)), "[{s},{e})");
        }
        assert!(!is_valid_subtree(1, 3));
        assert!(!is_valid_subtree(2, 5));
        assert!(!is_valid_subtree(3, 2));
    }

    #[test]
    fn generated_proofs_verify_for_every_small_tree() {
        let l = leaves(40);
        for n in 1..=40u64 {
            let root = mth(&l[..n as usize]);
            for m in 0..n {
                let proof: Vec<Hash> = inclusion_ranges(m, n)
                    .into_iter()
                    .map(|r| range_hash(&l, r))
                    .collect();
                verify_inclusion(m, n, &l[m as usize].0, &proof, &root.0)
                    .unwrap_or_else(|e| panic!("inclusion {m}/{n}: {e}"));
                // Every single-bit flip of the proof is rejected.
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i].0[0] ^= 1;
                    assert!(verify_inclusion(m, n, &l[m as usize].0, &bad, &root.0).is_err());
                }
                assert!(
                    verify_subtree_inclusion(m, 0, n, &l[m as usize].0, &proof, &root.0).is_ok()
                );
            }
            for m in 1..n {
                let old = mth(&l[..m as usize]);
                let proof: Vec<Hash> = consistency_ranges(m, n)
                    .into_iter()
                    .map(|r| range_hash(&l, r))
                    .collect();
                verify_consistency(m, n, &proof, &old.0, &root.0)
                    .unwrap_or_else(|e| panic!("consistency {m}->{n}: {e}"));
                verify_subtree_consistency(n, 0, m, &proof, &old.0, &root.0)
                    .unwrap_or_else(|e| panic!("subtree consistency {m}->{n}: {e}"));
                assert!(verify_consistency(m, n, &proof, &root.0, &old.0).is_err());
                if !proof.is_empty() {
                    let mut bad = proof.clone();
                    let last = bad.len() - 1;
                    bad[last].0[31] ^= 0x80;
                    assert!(verify_consistency(m, n, &bad, &old.0, &root.0).is_err());
                }
            }
        }
    }

    #[test]
    fn c2sp_example_proofs_have_the_documented_shape() {
        // C2SP merkle-tree.md example, 7 entries: inclusion of d[0] is [b, i, l], of d[6] is
        // [j, k]; consistency 3→7 is [c, d, h, l], 4→7 is [l], 6→7 is [j, g, k].
        assert_eq!(inclusion_ranges(0, 7), vec![(1, 2), (2, 4), (4, 7)]);
        assert_eq!(inclusion_ranges(6, 7), vec![(4, 6), (0, 4)]);
        assert_eq!(
            consistency_ranges(3, 7),
            vec![(2, 3), (3, 4), (0, 2), (4, 7)]
        );
        assert_eq!(consistency_ranges(4, 7), vec![(4, 7)]);
        assert_eq!(consistency_ranges(6, 7), vec![(4, 6), (6, 7), (0, 4)]);
    }
}
