//! DSSE (Dead Simple Signing Envelope) v1: pre-authentication encoding, the JSON envelope,
//! multi-signature signing and verification.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::canonical;
use crate::hash::{Hash, sha256};
use crate::keys::{Signer, VerifierKey};

/// Largest envelope accepted (JSON bytes).
pub const MAX_ENVELOPE_BYTES: usize = 1 << 20;

/// Most signatures accepted on one envelope.
pub const MAX_ENVELOPE_SIGNATURES: usize = 16;

/// An envelope is malformed or lacks a required signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsseError {
    #[error("envelope is larger than {MAX_ENVELOPE_BYTES} bytes")]
    TooLarge,
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("envelope has more than {MAX_ENVELOPE_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("no valid signature by required key {0}")]
    MissingSignature(String),
    #[error("payload type is {found:?}, expected {expected:?}")]
    WrongPayloadType { expected: String, found: String },
}

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, with lengths as
/// ASCII decimal without leading zeros.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let t = payload_type.as_bytes();
    let mut out = Vec::with_capacity(32 + t.len() + payload.len());
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(t.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(t);
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature of an envelope. `keyid` is an unauthenticated hint: DGC sets it to the
/// signer's 8-hex-digit signed-note key ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// A DSSE JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Serialize, Deserialize)]
struct WireSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

#[derive(Serialize, Deserialize)]
struct WireEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<WireSignature>,
}

/// DSSE lets signers use standard or URL-safe base64; verifiers must accept both.
fn decode_any_base64(s: &str) -> Option<Vec<u8>> {
    [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

impl Envelope {
    /// An unsigned envelope.
    pub fn new(payload_type: impl Into<String>, payload: Vec<u8>) -> Self {
        Self {
            payload_type: payload_type.into(),
            payload,
            signatures: Vec::new(),
        }
    }

    /// The bytes every signature covers.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Adds `signer`'s signature, replacing an earlier one by the same key.
    pub fn sign(&mut self, signer: &Signer) {
        let keyid = signer.key_id().to_string();
        let sig = signer.sign(&self.pae()).to_vec();
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(EnvelopeSignature { keyid, sig });
    }

    /// Whether `key` produced a valid signature on this envelope. Signatures whose `keyid`
    /// names another key are skipped; an empty `keyid` is tried against every key.
    pub fn is_signed_by(&self, key: &VerifierKey) -> bool {
        let pae = self.pae();
        let id = key.key_id().to_string();
        self.signatures
            .iter()
            .filter(|s| s.keyid.is_empty() || s.keyid == id)
            .any(|s| key.verify(&pae, &s.sig))
    }

    /// Verifies that every key in `required` signed the envelope (a (t, n) policy with
    /// t = n = `required.len()`). Signatures by other keys are ignored, as the spec allows.
    pub fn verify(&self, required: &[&VerifierKey]) -> Result<(), DsseError> {
        if required.is_empty() {
            return Err(DsseError::MissingSignature(
                "(no key required: refusing)".into(),
            ));
        }
        for key in required {
            if !self.is_signed_by(key) {
                return Err(DsseError::MissingSignature(format!(
                    "{}+{}",
                    key.name(),
                    key.key_id()
                )));
            }
        }
        Ok(())
    }

    /// Canonical (RFC 8785) JSON of the envelope, standard base64 with padding.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = WireEnvelope {
            payload: STANDARD.encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSignature {
                    keyid: s.keyid.clone(),
                    sig: STANDARD.encode(&s.sig),
                })
                .collect(),
        };
        // Only strings and arrays: canonicalisation cannot fail.
        canonical::to_vec(&wire).unwrap_or_default()
    }

    /// SHA-256 of [`Envelope::to_json`]: the digest a log entry commits to. Re-encoding first
    /// makes it independent of how the envelope JSON was formatted in transit.
    pub fn digest(&self) -> Hash {
        sha256(&self.to_json())
    }

    /// Parses envelope JSON (any formatting, either base64 alphabet, unknown fields ignored).
    pub fn from_json(bytes: &[u8]) -> Result<Self, DsseError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(DsseError::TooLarge);
        }
        let wire: WireEnvelope =
            serde_json::from_slice(bytes).map_err(|e| DsseError::Malformed(e.to_string()))?;
        Self::from_wire(wire)
    }

    /// Parses an envelope already decoded as a JSON value (e.g. embedded in a bundle).
    pub fn from_value(value: serde_json::Value) -> Result<Self, DsseError> {
        let wire: WireEnvelope =
            serde_json::from_value(value).map_err(|e| DsseError::Malformed(e.to_string()))?;
        Self::from_wire(wire)
    }

    /// The envelope as a JSON value, for embedding in larger documents.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.to_json()).unwrap_or(serde_json::Value::Null)
    }

    fn from_wire(wire: WireEnvelope) -> Result<Self, DsseError> {
        if wire.signatures.len() > MAX_ENVELOPE_SIGNATURES {
            return Err(DsseError::TooManySignatures);
        }
        let payload = decode_any_base64(&wire.payload)
            .ok_or_else(|| DsseError::Malformed("payload is not base64".into()))?;
        let signatures = wire
            .signatures
            .into_iter()
            .map(|s| {
                Ok(EnvelopeSignature {
                    sig: decode_any_base64(&s.sig)
                        .ok_or_else(|| DsseError::Malformed("signature is not base64".into()))?,
                    keyid: s.keyid,
                })
            })
            .collect::<Result<Vec<_>, DsseError>>()?;
        Ok(Self {
            payload_type: wire.payload_type,
            payload,
            signatures,
        })
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = WireEnvelope::deserialize(d)?;
        Envelope::from_wire(wire).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyName;

    #[test]
    fn pae_matches_the_spec_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn spec_example_envelope_parses() {
        let json = br#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
        let env = Envelope::from_json(json).unwrap();
        assert_eq!(env.payload, b"hello world");
        assert_eq!(env.signatures[0].keyid, "");
        assert_eq!(env.signatures[0].sig.len(), 64);
    }

    #[test]
    fn multi_signature_policy_requires_every_key() {
        let a = Signer::generate(KeyName::new("a").unwrap());
        let b = Signer::generate(KeyName::new("b").unwrap());
        let mut env = Envelope::new("application/vnd.in-toto+json", b"{}".to_vec());
        env.sign(&a);
        assert!(env.verify(&[a.verifier()]).is_ok());
        assert!(matches!(
            env.verify(&[a.verifier(), b.verifier()]),
            Err(DsseError::MissingSignature(_))
        ));
        env.sign(&b);
        env.verify(&[a.verifier(), b.verifier()]).unwrap();
        let round = Envelope::from_json(&env.to_json()).unwrap();
        assert_eq!(round, env);
        // Payload type is authenticated.
        let mut retyped = env.clone();
        retyped.payload_type = "application/json".into();
        assert!(retyped.verify(&[a.verifier()]).is_err());
        assert!(env.verify(&[]).is_err());
    }

    #[test]
    fn accepts_url_safe_base64_and_ignores_unknown_fields() {
        let a = Signer::generate(KeyName::new("a").unwrap());
        let mut env = Envelope::new("t", vec![0xfb, 0xff, 0xfe]);
        env.sign(&a);
        let json = format!(
            r#"{{"payload":"{}","payloadType":"t","extra":1,"signatures":[{{"keyid":"{}","sig":"{}","x":2}}]}}"#,
            URL_SAFE_NO_PAD.encode(&env.payload),
            env.signatures[0].keyid,
            URL_SAFE.encode(&env.signatures[0].sig)
        );
        let parsed = Envelope::from_json(json.as_bytes()).unwrap();
        parsed.verify(&[a.verifier()]).unwrap();
        assert_eq!(parsed.digest(), env.digest());
    }
}
