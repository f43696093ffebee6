//! API key secrets: `dgc_sk_` + 43 uniformly random base62 characters (≈ 256 bits), stored only as
//! their SHA-256 (a slow hash adds nothing for secrets of this entropy).

use dgc_types::key::{SECRET_PREFIX, SECRET_RANDOM_LEN};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new key secret: `dgc_sk_` + 43 uniformly random base62 characters (≈ 256 bits).
pub fn generate_secret() -> String {
    let mut s = String::with_capacity(SECRET_PREFIX.len() + SECRET_RANDOM_LEN);
    s.push_str(SECRET_PREFIX);
    let mut buf = [0u8; 64];
    while s.len() < SECRET_PREFIX.len() + SECRET_RANDOM_LEN {
        OsRng.fill_bytes(&mut buf);
        for b in buf {
            // Rejection sampling keeps every character equally likely (248 = 4 × 62).
            if b < 248 && s.len() < SECRET_PREFIX.len() + SECRET_RANDOM_LEN {
                s.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    s
}

/// SHA-256 of a key secret: what the store keeps.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Does `s` have the shape of a DGC key secret?
pub fn well_formed_secret(s: &str) -> bool {
    s.strip_prefix(SECRET_PREFIX).is_some_and(|r| {
        r.len() >= 32 && r.len() <= 128 && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
