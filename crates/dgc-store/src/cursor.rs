//! Opaque pagination cursors: a list's position encoded as URL-safe base64 of a small tagged
//! string, so clients cannot confuse one list's cursor with another's and bad input is rejected
//! cleanly.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::StoreError;

/// Encodes integer positions under a tag (`"mem"`, `"agt"`, `"srch"`).
pub fn encode(tag: &str, parts: &[i64]) -> String {
    let mut s = String::from(tag);
    for p in parts {
        s.push(':');
        s.push_str(&p.to_string());
    }
    URL_SAFE_NO_PAD.encode(s)
}

/// Decodes a cursor made by [`encode`] with the same tag and number of parts.
pub fn decode(tag: &str, n: usize, cursor: &str) -> Result<Vec<i64>, StoreError> {
    if cursor.len() > 200 {
        return Err(StoreError::InvalidCursor);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let s = String::from_utf8(raw).map_err(|_| StoreError::InvalidCursor)?;
    let mut it = s.split(':');
    if it.next() != Some(tag) {
        return Err(StoreError::InvalidCursor);
    }
    let parts: Vec<i64> = it
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| StoreError::InvalidCursor)?;
    if parts.len() != n {
        return Err(StoreError::InvalidCursor);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject() {
        let c = encode("mem", &[1_700_000_000_000, 42]);
        assert_eq!(decode("mem", 2, &c).unwrap(), vec![1_700_000_000_000, 42]);
        assert!(decode("agt", 2, &c).is_err());
        assert!(decode("mem", 1, &c).is_err());
        for bad in ["", "!!!", "bWVtOng6eQ", &"A".repeat(300)] {
            assert!(decode("mem", 2, bad).is_err(), "{bad}");
        }
    }
}
