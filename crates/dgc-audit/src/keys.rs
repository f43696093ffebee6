//! Ed25519 signing and verifier keys named and identified as C2SP signed-note keys.
//!
//! One identity scheme serves every signature DGC makes: a key has a name (the log origin for
//! the instance key, `<origin>/agents/<agent-id>` for an agent key) and a 4-byte key ID
//! `SHA-256(name || 0x0A || 0x01 || pubkey)[:4]`. The same ID is the signed-note key hash, the
//! DSSE `keyid` (as 8 lowercase hex digits) and the `key_id` of `GET /v1/audit/keys`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Signed-note signature type byte for Ed25519.
pub const ALG_ED25519: u8 = 0x01;

/// Longest key name accepted; names are origins, which are short.
pub const MAX_KEY_NAME_LEN: usize = 256;

/// A key could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key name {0:?}: must be 1–256 bytes with no whitespace and no '+'")]
    InvalidName(String),
    #[error("malformed verifier key: expected <name>+<8 hex digits>+<base64(0x01 || 32-byte key)>")]
    MalformedVerifierKey,
    #[error(
        "malformed signer key: expected PRIVATE+KEY+<name>+<8 hex digits>+<base64(0x01 || seed)>"
    )]
    MalformedSignerKey,
    #[error("unsupported key algorithm byte {0:#04x} (only Ed25519, 0x01, is supported)")]
    UnsupportedAlgorithm(u8),
    #[error("key hash {got} does not match the key (expected {want})")]
    KeyIdMismatch { got: String, want: String },
    #[error("invalid Ed25519 public key")]
    InvalidPublicKey,
    #[error("malformed key id {0:?}: expected 8 hex digits")]
    MalformedKeyId(String),
}

/// A signed-note key name: non-empty, no Unicode whitespace, no `+`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    pub fn new(name: impl Into<String>) -> Result<Self, KeyError> {
        let name = name.into();
        if is_valid_name(&name) {
            Ok(Self(name))
        } else {
            Err(KeyError::InvalidName(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEY_NAME_LEN
        && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for KeyName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        KeyName::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The 32-bit signed-note key ID, written as 8 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// `SHA-256(name || 0x0A || 0x01 || pubkey)[:4]`, big-endian (C2SP signed-note).
    pub fn compute(name: &KeyName, public_key: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(name.as_str().as_bytes());
        h.update([0x0a, ALG_ED25519]);
        h.update(public_key);
        let d = h.finalize();
        Self(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:08x})", self.0)
    }
}

impl FromStr for KeyId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 8
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(KeyError::MalformedKeyId(s.to_owned()));
        }
        u32::from_str_radix(s, 16)
            .map(KeyId)
            .map_err(|_| KeyError::MalformedKeyId(s.to_owned()))
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A named Ed25519 public key: what a verifier needs, serialised as the signed-note verifier
/// key string `<name>+<hex key id>+<base64(0x01 || pubkey)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: KeyName,
    id: KeyId,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    pub fn new(name: KeyName, key: ed25519_dalek::VerifyingKey) -> Self {
        let id = KeyId::compute(&name, key.as_bytes());
        Self { name, id, key }
    }

    /// Builds a verifier key from the 32 raw public key bytes.
    pub fn from_public_bytes(name: KeyName, bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(Self::new(name, key))
    }

    /// Parses a verifier key string, checking that the key ID matches name and key.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::MalformedVerifierKey);
        };
        let name = KeyName::new(name)?;
        let id: KeyId = id_hex.parse().map_err(|_| KeyError::MalformedVerifierKey)?;
        let raw = STANDARD
            .decode(key_b64)
            .map_err(|_| KeyError::MalformedVerifierKey)?;
        let (&alg, key) = raw.split_first().ok_or(KeyError::MalformedVerifierKey)?;
        if alg != ALG_ED25519 {
            return Err(KeyError::UnsupportedAlgorithm(alg));
        }
        let key: &[u8; 32] = key.try_into().map_err(|_| KeyError::MalformedVerifierKey)?;
        let vk = Self::from_public_bytes(name, key)?;
        if vk.id != id {
            return Err(KeyError::KeyIdMismatch {
                got: id.to_string(),
                want: vk.id.to_string(),
            });
        }
        Ok(vk)
    }

    pub fn name(&self) -> &KeyName {
        &self.name
    }

    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// The 32 raw public key bytes.
    pub fn public_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// Standard base64 of the 32 raw public key bytes (the `public_key` of `/v1/audit/keys`).
    pub fn public_base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }

    pub fn verifying_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }

    /// The verifier key string `<name>+<hex key id>+<base64(0x01 || pubkey)>`.
    pub fn to_vkey(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, self.id, STANDARD.encode(raw))
    }

    /// Verifies an Ed25519 signature (RFC 8032, strict: rejects non-canonical encodings and
    /// small-order keys so that one message has one valid signature per key).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }

    /// The JSON object `GET /v1/audit/keys` lists for this key.
    pub fn describe(&self) -> KeyInfo {
        KeyInfo {
            name: self.name.clone(),
            key_id: self.id,
            algorithm: "ed25519".to_owned(),
            public_key: self.public_base64(),
            vkey: self.to_vkey(),
        }
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for VerifierKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_vkey())
    }
}

impl<'de> Deserialize<'de> for VerifierKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        VerifierKey::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// One entry of `GET /v1/audit/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub name: KeyName,
    pub key_id: KeyId,
    pub algorithm: String,
    /// Standard base64 of the 32 raw public key bytes.
    pub public_key: String,
    pub vkey: String,
}

/// A named Ed25519 signing key. Its `Debug` output never shows secret material.
#[derive(Clone)]
pub struct Signer {
    verifier: VerifierKey,
    key: ed25519_dalek::SigningKey,
}

impl Signer {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(name: KeyName) -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_signing_key(name, key)
    }

    /// A key from its 32-byte RFC 8032 seed (how the server persists it, encrypted at rest).
    pub fn from_seed(name: KeyName, seed: &[u8; 32]) -> Self {
        Self::from_signing_key(name, ed25519_dalek::SigningKey::from_bytes(seed))
    }

    pub fn from_signing_key(name: KeyName, key: ed25519_dalek::SigningKey) -> Self {
        let verifier = VerifierKey::new(name, key.verifying_key());
        Self { verifier, key }
    }

    /// Parses a Go `golang.org/x/mod/sumdb/note` signer key
    /// `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`, checking the key ID.
    pub fn parse_note_signer_key(skey: &str) -> Result<Self, KeyError> {
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(KeyError::MalformedSignerKey)?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::MalformedSignerKey);
        };
        let name = KeyName::new(name)?;
        let id: KeyId = id_hex.parse().map_err(|_| KeyError::MalformedSignerKey)?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| KeyError::MalformedSignerKey)?;
        let (&alg, seed) = raw.split_first().ok_or(KeyError::MalformedSignerKey)?;
        if alg != ALG_ED25519 {
            return Err(KeyError::UnsupportedAlgorithm(alg));
        }
        let seed: &[u8; 32] = seed.try_into().map_err(|_| KeyError::MalformedSignerKey)?;
        let signer = Self::from_seed(name, seed);
        if signer.key_id() != id {
            return Err(KeyError::KeyIdMismatch {
                got: id.to_string(),
                want: signer.key_id().to_string(),
            });
        }
        Ok(signer)
    }

    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    pub fn name(&self) -> &KeyName {
        self.verifier.name()
    }

    pub fn key_id(&self) -> KeyId {
        self.verifier.key_id()
    }

    /// The 32-byte seed, for the server to encrypt and persist. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// An Ed25519 signature over `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("verifier", &self.verifier.to_vkey())
            .finish_non_exhaustive()
    }
}

/// The key name of an agent's signing key inside a log: `<origin>/agents/<agent-id>`.
pub fn agent_key_name(origin: &KeyName, agent_id: &str) -> Result<KeyName, KeyError> {
    KeyName::new(format!("{origin}/agents/{agent_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of golang.org/x/mod/sumdb/note (package documentation).
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    #[test]
    fn go_note_keys_round_trip_with_matching_ids() {
        let signer = Signer::parse_note_signer_key(GO_SKEY).unwrap();
        assert_eq!(signer.verifier().to_vkey(), GO_VKEY);
        let vk = VerifierKey::parse(GO_VKEY).unwrap();
        assert_eq!(vk.key_id().to_string(), "c74f20a3");
        assert_eq!(vk.name().as_str(), "PeterNeumann");
        assert_eq!(&vk, signer.verifier());
    }

    #[test]
    fn malformed_verifier_keys_are_rejected() {
        let wrong_id = GO_VKEY.replace("c74f20a3", "c74f20a4");
        assert!(matches!(
            VerifierKey::parse(&wrong_id),
            Err(KeyError::KeyIdMismatch { .. })
        ));
        let wrong_name = GO_VKEY.replace("PeterNeumann", "PeterNeuman");
        assert!(matches!(
            VerifierKey::parse(&wrong_name),
            Err(KeyError::KeyIdMismatch { .. })
        ));
        for bad in [
            "",
            "name",
            "name+c74f20a3",
            "na me+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+AhpcAQ==",
            "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_follow_the_signed_note_rules() {
        assert!(KeyName::new("dgc.local/inst-1").is_ok());
        for bad in ["", "a b", "a+b", "a\tb", "a\u{2003}b"] {
            assert!(KeyName::new(bad).is_err(), "{bad:?}");
        }
        assert!(KeyName::new("x".repeat(257)).is_err());
    }

    #[test]
    fn debug_does_not_leak_the_seed() {
        let s = Signer::from_seed(KeyName::new("k").unwrap(), &[7; 32]);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&hex::encode([7u8; 32])));
        assert!(!dbg.contains(&STANDARD.encode([7u8; 32])));
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let s = Signer::generate(KeyName::new("k").unwrap());
        let sig = s.sign(b"hello");
        assert!(s.verifier().verify(b"hello", &sig));
        assert!(!s.verifier().verify(b"hellp", &sig));
        assert!(!s.verifier().verify(b"hello", &sig[..63]));
    }
}
