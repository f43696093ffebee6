//! C2SP signed notes (c2sp.org/signed-note): text signed by one or more Ed25519 keys, the
//! envelope of every checkpoint.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::keys::{KeyId, Signer, VerifierKey, is_valid_name};

/// Largest signed note accepted (bytes). Checkpoints are a few hundred bytes; the margin leaves
/// room for many cosignatures, including post-quantum ones.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// Most signature lines accepted in one note (the spec requires accepting at least 16).
pub const MAX_NOTE_SIGNATURES: usize = 100;

const SIG_PREFIX: &str = "\u{2014} ";

/// A note is malformed or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("signed note is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    #[error("signed note is not valid UTF-8")]
    NotUtf8,
    #[error("signed note contains a control character other than newline")]
    ControlCharacter,
    #[error("malformed signed note: {0}")]
    Malformed(&'static str),
    #[error("signed note has more than {MAX_NOTE_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("note text must end with a newline")]
    TextWithoutNewline,
    #[error("signature by known key {name}+{key_id} does not verify")]
    InvalidSignature { name: String, key_id: KeyId },
    #[error("note has no valid signature from a known key (signed by: {signers})")]
    NoKnownSignature { signers: String },
}

/// One signature line: `— <name> base64(key id || signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: KeyId,
    /// The signature proper, without the 4-byte key ID prefix.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    fn line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// A parsed (not yet verified) signed note. The text MUST be ignored until [`Note::verify`]
/// succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

fn check_chars(s: &str) -> Result<(), NoteError> {
    if s.chars().any(|c| c < '\u{20}' && c != '\n') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

impl Note {
    /// A note with `text` and no signatures yet.
    pub fn new(text: impl Into<String>) -> Result<Self, NoteError> {
        let text = text.into();
        check_chars(&text)?;
        if !text.ends_with('\n') {
            return Err(NoteError::TextWithoutNewline);
        }
        Ok(Self {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note's syntax. Signatures are not checked.
    pub fn parse(msg: &[u8]) -> Result<Self, NoteError> {
        if msg.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        let msg = std::str::from_utf8(msg).map_err(|_| NoteError::NotUtf8)?;
        check_chars(msg)?;
        let split = msg
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&msg[..=split], &msg[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature block must end with a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_NOTE_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "signature line must start with an em dash and a space",
            ))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(NoteError::Malformed("signature line has no signature"))?;
            if !is_valid_name(name) {
                return Err(NoteError::Malformed("invalid key name in signature line"));
            }
            let raw = STANDARD
                .decode(b64)
                .map_err(|_| NoteError::Malformed("signature is not valid base64"))?;
            if raw.len() < 5 {
                return Err(NoteError::Malformed("signature is too short"));
            }
            let key_id = KeyId(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]));
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id,
                signature: raw[4..].to_vec(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, including its final newline. Trust it only after [`Note::verify`].
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds (or replaces) the signature of `signer`.
    pub fn sign(&mut self, signer: &Signer) {
        let sig = NoteSignature {
            name: signer.name().as_str().to_owned(),
            key_id: signer.key_id(),
            signature: signer.sign(self.text.as_bytes()).to_vec(),
        };
        self.signatures
            .retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        self.signatures.push(sig);
    }

    /// The encoded signed note: text, blank line, signature lines.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 1 + 128 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// Verifies the note against `known` keys as the spec requires: signatures from unknown
    /// keys (no key with the same name *and* ID) are ignored; a signature from a known key
    /// that fails rejects the whole note; at least one known key must have signed. Returns the
    /// keys whose signatures verified, in signature order, without duplicates.
    pub fn verify<'k>(&self, known: &'k [VerifierKey]) -> Result<Vec<&'k VerifierKey>, NoteError> {
        let mut verified: Vec<&VerifierKey> = Vec::new();
        let mut seen = HashSet::new();
        for s in &self.signatures {
            let Some(key) = known
                .iter()
                .find(|k| k.name().as_str() == s.name && k.key_id() == s.key_id)
            else {
                continue;
            };
            if !seen.insert((s.name.as_str(), s.key_id)) {
                continue;
            }
            if !key.verify(self.text.as_bytes(), &s.signature) {
                return Err(NoteError::InvalidSignature {
                    name: s.name.clone(),
                    key_id: s.key_id,
                });
            }
            verified.push(key);
        }
        if verified.is_empty() {
            return Err(NoteError::NoKnownSignature {
                signers: self.signer_list(),
            });
        }
        Ok(verified)
    }

    /// `name+keyid` of every signature line, for error messages.
    pub fn signer_list(&self) -> String {
        if self.signatures.is_empty() {
            return "nobody".to_owned();
        }
        self.signatures
            .iter()
            .map(|s| format!("{}+{}", s.name, s.key_id))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Signs `text` with every signer and returns the encoded note.
pub fn sign_note(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    let mut note = Note::new(text)?;
    for s in signers {
        note.sign(s);
    }
    Ok(note.encode())
}

/// Parses and verifies a signed note; returns the note and the keys that verified it.
pub fn open_note<'k>(
    msg: &[u8],
    known: &'k [VerifierKey],
) -> Result<(Note, Vec<&'k VerifierKey>), NoteError> {
    let note = Note::parse(msg)?;
    let keys = note.verify(known)?;
    Ok((note, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyName;

    // golang.org/x/mod/sumdb/note package documentation example.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const GO_ENOCH: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    #[test]
    fn reproduces_the_go_reference_signature_byte_for_byte() {
        let signer = Signer::parse_note_signer_key(GO_SKEY).unwrap();
        let signed = sign_note(GO_TEXT, &[&signer]).unwrap();
        assert_eq!(signed, format!("{GO_TEXT}\n{GO_SIG}"));
    }

    #[test]
    fn verifies_the_go_reference_note_and_ignores_unknown_cosigners() {
        let vk = VerifierKey::parse(GO_VKEY).unwrap();
        let msg = format!("{GO_TEXT}\n{GO_SIG}{GO_ENOCH}");
        let known = [vk.clone()];
        let (note, keys) = open_note(msg.as_bytes(), &known).unwrap();
        assert_eq!(note.text(), GO_TEXT);
        assert_eq!(keys, vec![&vk]);
        assert_eq!(note.signatures().len(), 2);
        assert_eq!(note.encode(), msg);
    }

    #[test]
    fn rejects_tampering_and_unknown_only_signers() {
        let vk = VerifierKey::parse(GO_VKEY).unwrap();
        let known = [vk];
        let tampered = format!("{}\n{GO_SIG}", GO_TEXT.replace("answer", "Answer"));
        assert!(matches!(
            open_note(tampered.as_bytes(), &known),
            Err(NoteError::InvalidSignature { .. })
        ));
        let only_enoch = format!("{GO_TEXT}\n{GO_ENOCH}");
        assert!(matches!(
            open_note(only_enoch.as_bytes(), &known),
            Err(NoteError::NoKnownSignature { .. })
        ));
        // Same name, different key: an unknown key, ignored, so nothing verifies.
        let other = Signer::generate(KeyName::new("PeterNeumann").unwrap());
        let impostor = sign_note(GO_TEXT, &[&other]).unwrap();
        assert!(matches!(
            open_note(impostor.as_bytes(), &known),
            Err(NoteError::NoKnownSignature { .. })
        ));
    }

    #[test]
    fn rejects_malformed_notes() {
        let sig = GO_SIG;
        for bad in [
            format!("{GO_TEXT}{sig}"),
            format!("{GO_TEXT}\n"),
            format!("{GO_TEXT}\n{}", sig.trim_end()),
            format!("{GO_TEXT}\n- PeterNeumann abc=\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann\n"),
            format!("{GO_TEXT}\n\u{2014} Peter+Neumann AAAAAAA=\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann AAAA\n"),
            format!("{GO_TEXT}\n\u{2014} PeterNeumann !!!!\n"),
            format!("{}\r\n\n{sig}", GO_TEXT.trim_end()),
        ] {
            assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(Note::parse(&[0xff, b'\n', b'\n']), Err(NoteError::NotUtf8));
        let many = format!("{GO_TEXT}\n{}", GO_ENOCH.repeat(MAX_NOTE_SIGNATURES + 1));
        assert_eq!(
            Note::parse(many.as_bytes()),
            Err(NoteError::TooManySignatures)
        );
        assert_eq!(Note::new("no newline"), Err(NoteError::TextWithoutNewline));
    }
}
