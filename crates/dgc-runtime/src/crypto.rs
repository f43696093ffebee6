//! Secrets at rest: the instance master key (a 0600 file) seals private keys with
//! XChaCha20-Poly1305, binding each ciphertext to its purpose through the associated data, and
//! Ed25519 identities for the instance and every agent.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::{Zeroize, Zeroizing};

/// Format version of a sealed blob: `0x01 ‖ nonce(24) ‖ ciphertext+tag`.
const SEALED_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("reading the master key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing the master key {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the master key file {0} is malformed: it must hold 64 hex characters")]
    Malformed(String),
    #[error(
        "the master key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: String, mode: u32 },
    #[error(
        "decryption failed: the master key does not match the data it protects (wrong master key file?), or the data was altered"
    )]
    Decrypt,
    #[error("sealed data is malformed")]
    Format,
}

/// The instance master key. Zeroed on drop.
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl MasterKey {
    /// A fresh random key (tests; `load_or_create` for real use).
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// Loads the key at `path`, or creates it (mode 0600) when absent. Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        let p = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mode = std::fs::metadata(path)
                    .map_err(|e| CryptoError::Read {
                        path: p.clone(),
                        source: e,
                    })?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(CryptoError::Permissions {
                        path: p,
                        mode: mode & 0o777,
                    });
                }
                let text = Zeroizing::new(text);
                let bytes = Zeroizing::new(
                    hex_decode(text.trim()).ok_or_else(|| CryptoError::Malformed(p.clone()))?,
                );
                let arr: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::Malformed(p))?;
                Ok((Self(arr), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| CryptoError::Write {
                        path: p.clone(),
                        source: e,
                    })?;
                let text = Zeroizing::new(format!("{}\n", hex_encode(&key.0)));
                f.write_all(text.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| CryptoError::Write { path: p, source: e })?;
                Ok((key, true))
            }
            Err(e) => Err(CryptoError::Read { path: p, source: e }),
        }
    }

    /// Encrypts `plaintext`; `purpose` is bound as associated data and must match on open.
    pub fn seal(&self, plaintext: &[u8], purpose: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 24 + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], purpose: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < 1 + 24 + 16 || sealed[0] != SEALED_V1 {
            return Err(CryptoError::Format);
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(
                XNonce::from_slice(&sealed[1..25]),
                Payload {
                    msg: &sealed[25..],
                    aad: purpose.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// A new Ed25519 identity: (signing key, base64 public key).
pub fn new_identity() -> (SigningKey, String) {
    let sk = SigningKey::generate(&mut OsRng);
    let pk = B64.encode(sk.verifying_key().as_bytes());
    (sk, pk)
}

/// Seals an Ed25519 signing key for storage.
pub fn seal_signing_key(master: &MasterKey, sk: &SigningKey, purpose: &str) -> Vec<u8> {
    master.seal(sk.as_bytes(), purpose)
}

/// Opens a sealed Ed25519 signing key.
pub fn open_signing_key(
    master: &MasterKey,
    sealed: &[u8],
    purpose: &str,
) -> Result<SigningKey, CryptoError> {
    let raw = master.open(sealed, purpose)?;
    let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| CryptoError::Format)?;
    Ok(SigningKey::from_bytes(&arr))
}

/// Associated data for an agent's private key.
pub fn agent_key_purpose(agent_id: &str) -> String {
    format!("dgc/agent-signing-key/{agent_id}")
}

/// Associated data for the instance's private key.
pub const INSTANCE_KEY_PURPOSE: &str = "dgc/instance-signing-key";

/// Random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// Sets mode 0600 on a path (for files written with other means).
pub fn restrict(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

pub fn hex_encode(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_binds_purpose_and_key() {
        let k = MasterKey::generate();
        let sealed = k.seal(b"secret", "a");
        assert_eq!(k.open(&sealed, "a").unwrap().as_slice(), b"secret");
        assert!(matches!(k.open(&sealed, "b"), Err(CryptoError::Decrypt)));
        assert!(matches!(
            MasterKey::generate().open(&sealed, "a"),
            Err(CryptoError::Decrypt)
        ));
        let mut tampered = sealed;
        let n = tampered.len() - 1;
        tampered[n] ^= 1;
        assert!(k.open(&tampered, "a").is_err());
        assert!(matches!(k.open(&[1, 2], "a"), Err(CryptoError::Format)));
    }

    #[test]
    fn master_key_file_created_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let (k1, created) = MasterKey::load_or_create(&p).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (k2, created) = MasterKey::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(k2.open(&k1.seal(b"x", "p"), "p").unwrap().as_slice(), b"x");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&p),
            Err(CryptoError::Permissions { .. })
        ));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "nothex").unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&p),
            Err(CryptoError::Malformed(_))
        ));
    }
}
