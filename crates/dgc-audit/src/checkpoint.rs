//! C2SP tlog-checkpoint bodies (origin, tree size, root hash, extension lines) and their
//! signing and verification as signed notes.

use std::fmt;

use crate::hash::Hash;
use crate::keys::{Signer, VerifierKey};
use crate::note::{Note, NoteError};

/// Most extension lines accepted in a checkpoint.
pub const MAX_EXTENSION_LINES: usize = 32;

/// A checkpoint body is malformed, or its note does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("checkpoint origin {found:?} is not the expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

/// The signed content of a checkpoint: the tree head of the log named `origin`.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Opaque, non-empty extension lines (DGC writes none; the spec discourages them).
    pub extensions: Vec<String>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Checkpoint({} @ {} = {})",
            self.origin, self.size, self.root
        )
    }
}

impl Checkpoint {
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: `origin\nsize\nbase64(root)\n[extension\n]…`.
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        if self.origin.is_empty() || self.origin.contains('\n') {
            return Err(CheckpointError::Malformed(
                "origin must be a non-empty single line".into(),
            ));
        }
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for ext in &self.extensions {
            if ext.is_empty() || ext.contains('\n') {
                return Err(CheckpointError::Malformed(
                    "extension lines must be non-empty single lines".into(),
                ));
            }
            out.push_str(ext);
            out.push('\n');
        }
        Ok(out)
    }

    /// Parses a note text as a checkpoint body. Strict: decimal size without leading zeros,
    /// canonical base64 of exactly 32 bytes, no empty lines.
    pub fn parse_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| CheckpointError::Malformed("text must end with a newline".into()))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed(
                "need origin, tree size and root hash lines".into(),
            ));
        };
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin".into()));
        }
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        if !size_ok {
            return Err(CheckpointError::Malformed(format!(
                "tree size {size:?} is not a decimal number without leading zeros"
            )));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| CheckpointError::Malformed("tree size out of range".into()))?;
        let root_line = root;
        let root = Hash::from_base64(root_line)
            .map_err(|e| CheckpointError::Malformed(format!("root hash: {e}")))?;
        if root.to_base64() != root_line {
            return Err(CheckpointError::Malformed(
                "root hash is not in canonical base64".into(),
            ));
        }
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::Malformed("empty extension line".into()));
        }
        if extensions.len() > MAX_EXTENSION_LINES {
            return Err(CheckpointError::Malformed(
                "too many extension lines".into(),
            ));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint with `signer` (whose key name should be the origin) and returns
    /// the signed note.
    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        let mut note = Note::new(self.to_text()?)?;
        note.sign(signer);
        Ok(note.encode())
    }
}

/// A checkpoint whose note verified against a known key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The known keys that signed it.
    pub signers: Vec<VerifierKey>,
    /// The signed note as received.
    pub note: Note,
}

/// Parses a signed checkpoint note without checking signatures (for listing and sorting;
/// never trust the result).
pub fn parse_unverified(msg: &[u8]) -> Result<(Note, Checkpoint), CheckpointError> {
    let note = Note::parse(msg)?;
    let cp = Checkpoint::parse_text(note.text())?;
    Ok((note, cp))
}

/// Verifies a signed checkpoint: the note must verify against `known` (signed-note rules) and
/// its origin must be `origin`.
pub fn open_checkpoint(
    msg: &[u8],
    origin: &str,
    known: &[VerifierKey],
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note = Note::parse(msg)?;
    let signers: Vec<VerifierKey> = note.verify(known)?.into_iter().cloned().collect();
    let checkpoint = Checkpoint::parse_text(note.text())?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin {
            expected: origin.to_owned(),
            found: checkpoint.origin,
        });
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        signers,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;
    use crate::keys::KeyName;

    #[test]
    fn spec_example_body_parses() {
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let cp = Checkpoint::parse_text(text).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert_eq!(cp.to_text().unwrap(), text);
    }

    #[test]
    fn sign_and_open_round_trip() {
        let name = KeyName::new("dgc.local/inst-1").unwrap();
        let signer = Signer::generate(name);
        let mut cp = Checkpoint::new("dgc.local/inst-1", 42, sha256(b"root"));
        cp.extensions.push("ext line".into());
        let note = cp.sign(&signer).unwrap();
        let known = [signer.verifier().clone()];
        let v = open_checkpoint(note.as_bytes(), "dgc.local/inst-1", &known).unwrap();
        assert_eq!(v.checkpoint, cp);
        assert!(matches!(
            open_checkpoint(note.as_bytes(), "dgc.local/other", &known),
            Err(CheckpointError::WrongOrigin { .. })
        ));
    }

    #[test]
    fn strict_body_parsing() {
        let root = sha256(b"r").to_base64();
        for bad in [
            format!("o\n01\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            format!("o\n1\n{}\n", &root[..root.len() - 1]),
            "o\n1\nZG9uJ3QgY2FyZSAy\n".to_string(),
            format!("o\n1\n{root}\n\n"),
            "o\n1\n".to_string(),
            format!("o\n18446744073709551616\n{root}\n"),
        ] {
            assert!(Checkpoint::parse_text(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Checkpoint::parse_text(&format!("o\n0\n{root}\n"))
                .unwrap()
                .size,
            0
        );
    }
}
