//! SHA-256 digests and the RFC 6962 / RFC 9162 domain-separated leaf and node hashes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Length in bytes of every hash in the log.
pub const HASH_LEN: usize = 32;

/// A SHA-256 digest: a leaf hash, an interior node hash, a tree root or a content digest.
///
/// Serialised in JSON as standard base64 (the encoding of C2SP checkpoints and of the
/// transparency-dev test vectors); [`Hash::to_hex`] gives the lowercase hex used by in-toto
/// digest sets and by the digests inside log entries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; HASH_LEN]);

/// A byte string could not be read as a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    #[error("a hash must be {HASH_LEN} bytes, got {0}")]
    Length(usize),
    #[error("invalid base64 in hash: {0}")]
    Base64(String),
    #[error("invalid hex in hash: {0}")]
    Hex(String),
}

impl Hash {
    /// Reads a hash from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashParseError> {
        let arr: [u8; HASH_LEN] = bytes
            .try_into()
            .map_err(|_| HashParseError::Length(bytes.len()))?;
        Ok(Self(arr))
    }

    /// Reads a hash from standard base64 (with padding).
    pub fn from_base64(s: &str) -> Result<Self, HashParseError> {
        let bytes = STANDARD
            .decode(s)
            .map_err(|e| HashParseError::Base64(e.to_string()))?;
        Self::from_slice(&bytes)
    }

    /// Reads a hash from 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, HashParseError> {
        let bytes = hex::decode(s).map_err(|e| HashParseError::Hex(e.to_string()))?;
        Self::from_slice(&bytes)
    }

    /// Standard base64 with padding.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_base64(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for hashes written as lowercase hex (in-toto digest sets, entry digests).
pub mod hex_serde {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        // Lowercase only, so that one digest has exactly one spelling inside signed records.
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom("hex digests must be lowercase"));
        }
        Hash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// Plain SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// RFC 6962 leaf hash: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    node_hash_bytes(&left.0, &right.0)
}

/// [`node_hash`] over raw byte strings, for the verifiers that must accept proofs as they
/// arrive on the wire (length checks are the caller's job).
pub(crate) fn node_hash_bytes(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    Hash(h.finalize().into())
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    sha256(b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        // RFC 6962 test leaf "" hashes to 6e340b9c… (the first root of the CT test tree).
        assert_eq!(
            leaf_hash(b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_ne!(leaf_hash(b"ab"), sha256(b"ab"));
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let mut joined = vec![0x00];
        joined.extend_from_slice(&a.0);
        joined.extend_from_slice(&b.0);
        assert_ne!(node_hash(&a, &b), sha256(&joined));
    }

    #[test]
    fn parse_rejects_wrong_lengths_and_uppercase_hex_in_records() {
        assert_eq!(Hash::from_slice(&[0; 31]), Err(HashParseError::Length(31)));
        assert!(Hash::from_base64("ZG9uJ3QgY2FyZSAy").is_err());
        let h = sha256(b"x");
        assert_eq!(Hash::from_base64(&h.to_base64()), Ok(h));
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        #[derive(serde::Deserialize)]
        struct W {
            #[serde(with = "hex_serde")]
            #[allow(dead_code)]
            h: Hash,
        }
        let upper = format!("{{\"h\":\"{}\"}}", h.to_hex().to_uppercase());
        assert!(serde_json::from_str::<W>(&upper).is_err());
    }
}
