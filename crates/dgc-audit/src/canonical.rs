//! RFC 8785 JSON Canonicalization Scheme (JCS): the byte encoding of every log record.
//!
//! Why JCS and not deterministic CBOR: DGC's API, attestations and bundles are JSON already,
//! so records can be read in a database dump and re-derived by a third party with an
//! off-the-shelf JCS library (Python `rfc8785`, Go `gowebpki/jcs`, …) without a CBOR stack.
//! The verifier never has to re-canonicalise to check a signature — signatures cover the exact
//! stored bytes — but it does check that stored bytes *are* canonical, so a record has exactly
//! one valid encoding and a re-serialised (edited) record is caught even before its signature.

use serde::Serialize;
use serde_json::Value;

/// Largest integer magnitude JSON can carry exactly (I-JSON, RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A value has no canonical JSON form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("NaN and infinite numbers have no JSON form")]
    NonFinite,
    #[error("integer {0} is outside the exactly representable range ±(2^53−1)")]
    UnsafeInteger(String),
    #[error("value does not serialise to JSON: {0}")]
    Serialize(String),
    #[error("input is not JSON: {0}")]
    Parse(String),
    #[error("input is valid JSON but not in RFC 8785 canonical form")]
    NotCanonical,
}

/// Serialises `value` to canonical JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let v = serde_json::to_value(value).map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    let mut out = Vec::with_capacity(256);
    write_value(&v, &mut out)?;
    Ok(out)
}

/// Canonical JSON bytes of an already parsed value.
pub fn value_to_vec(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(v, &mut out)?;
    Ok(out)
}

/// Parses `bytes` as JSON and checks that they are exactly the canonical encoding of the
/// value they denote (which also rules out duplicate object keys). Returns the value.
pub fn parse_canonical(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| CanonicalError::Parse(e.to_string()))?;
    if value_to_vec(&v)? != bytes {
        return Err(CanonicalError::NotCanonical);
    }
    Ok(v)
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(val, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(CanonicalError::UnsafeInteger(u.to_string()));
        }
        out.extend_from_slice(u.to_string().as_bytes());
        return Ok(());
    }
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(CanonicalError::UnsafeInteger(i.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
        return Ok(());
    }
    let f = n.as_f64().ok_or(CanonicalError::NonFinite)?;
    out.extend_from_slice(format_es_number(f)?.as_bytes());
    Ok(())
}

/// ECMAScript `Number.prototype.toString` (ECMA-262 §7.1.12.1), which RFC 8785 §3.2.2.3 adopts
/// for every JSON number.
pub fn format_es_number(f: f64) -> Result<String, CanonicalError> {
    if !f.is_finite() {
        return Err(CanonicalError::NonFinite);
    }
    if f == 0.0 {
        return Ok("0".to_owned());
    }
    let mut out = String::new();
    let f = if f < 0.0 {
        out.push('-');
        -f
    } else {
        f
    };
    let (digits, exp) = shortest_digits(f)?;
    let k = digits.len() as i32;
    let n = exp + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let e = n - 1;
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.unsigned_abs().to_string());
    }
    Ok(out)
}

/// The shortest decimal digit string `d` and exponent `e` with `0.d × 10^(e+1) == f` that
/// ECMA-262 §7.1.12.1 step 5 selects: fewest digits, then closest to `f`, ties to even.
///
/// Rust's `{:e}` already yields the fewest digits, but breaks exact ties differently (it
/// prints 1424953923781206.3 where ECMAScript requires …206.2), so the last digit is decided
/// here against the exact binary value.
fn shortest_digits(f: f64) -> Result<(String, i32), CanonicalError> {
    let split = |s: &str| -> Result<(String, i32), CanonicalError> {
        let (m, e) = s.split_once('e').ok_or(CanonicalError::NonFinite)?;
        let e: i32 = e.parse().map_err(|_| CanonicalError::NonFinite)?;
        Ok((m.chars().filter(|c| *c != '.').collect(), e))
    };
    let (short, exp) = split(&format!("{f:e}"))?;
    let k = short.len();
    // A double's exact decimal expansion has at most 767 significant digits.
    let (exact, exact_exp) = split(&format!("{f:.800e}"))?;
    if exact_exp != exp {
        return Ok((short, exp));
    }
    let floor = &exact[..k];
    let rest = &exact[k..];
    if rest.bytes().all(|b| b == b'0') {
        return Ok((floor.trim_end_matches('0').to_owned(), exp));
    }
    let half = rest.as_bytes()[0].cmp(&b'5').then_with(|| {
        if rest[1..].bytes().all(|b| b == b'0') {
            std::cmp::Ordering::Equal
        } else {
            std::cmp::Ordering::Greater
        }
    });
    let mut ceil: Vec<u8> = floor.as_bytes().to_vec();
    let mut carry = true;
    for d in ceil.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            carry = false;
            break;
        }
    }
    let (ceil, ceil_exp) = if carry {
        let mut v = vec![b'1'];
        v.extend_from_slice(&ceil[..k - 1]);
        (v, exp + 1)
    } else {
        (ceil, exp)
    };
    let ceil = String::from_utf8(ceil).map_err(|_| CanonicalError::NonFinite)?;
    let round_trips = |d: &str, e: i32| -> bool {
        format!("{d}e{}", i64::from(e) - (d.len() as i64 - 1)).parse::<f64>() == Ok(f)
    };
    let floor_ok = round_trips(floor, exp);
    let ceil_ok = round_trips(&ceil, ceil_exp);
    let pick_floor = match (floor_ok, ceil_ok) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => match half {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => (floor.as_bytes()[k - 1] - b'0').is_multiple_of(2),
        },
        (false, false) => return Ok((short, exp)),
    };
    let (d, e) = if pick_floor {
        (floor.to_owned(), exp)
    } else {
        (ceil, ceil_exp)
    };
    let trimmed = d.trim_end_matches('0');
    Ok((
        if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        },
        e,
    ))
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            _ => None,
        };
        if let Some(e) = esc {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(e);
            start = i + 1;
        } else if b < 0x20 {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc8785_number_table() {
        // RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, want) in cases {
            assert_eq!(
                format_es_number(f64::from_bits(*bits)).as_deref(),
                Ok(*want),
                "{bits:#x}"
            );
        }
        assert_eq!(format_es_number(f64::NAN), Err(CanonicalError::NonFinite));
        assert_eq!(
            format_es_number(f64::INFINITY),
            Err(CanonicalError::NonFinite)
        );
    }

    #[test]
    fn rfc8785_section_3_2_4_example() {
        // The "Sorting of Object Properties" example: keys sorted by UTF-16 code units.
        let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let got = String::from_utf8(value_to_vec(&v).unwrap()).unwrap();
        let keys_in_order = [
            "\\r",
            "1",
            "\u{80}",
            "\u{f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}",
        ];
        let mut pos = 0;
        for k in keys_in_order {
            let at = got[pos..]
                .find(&format!("\"{k}\""))
                .unwrap_or_else(|| panic!("{k} in {got}"));
            pos += at + 1;
        }
    }

    #[test]
    fn strings_escape_only_what_jcs_requires() {
        let v = json!({"s": "a\"b\\c\u{1}\u{1f}\n\t\u{8}\u{c}\r/\u{7f}é\u{2028}"});
        let got = String::from_utf8(value_to_vec(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            "{\"s\":\"a\\\"b\\\\c\\u0001\\u001f\\n\\t\\b\\f\\r/\u{7f}é\u{2028}\"}"
        );
    }

    #[test]
    fn rejects_unsafe_integers_and_non_canonical_input() {
        assert!(matches!(
            to_vec(&json!({"n": 1u64 << 53})),
            Err(CanonicalError::UnsafeInteger(_))
        ));
        assert_eq!(
            to_vec(&json!({"n": -9007199254740991i64})).unwrap(),
            br#"{"n":-9007199254740991}"#
        );
        assert!(parse_canonical(br#"{"a":1,"b":2}"#).is_ok());
        for bad in [
            &br#"{"b":2,"a":1}"#[..],
            br#"{"a": 1}"#,
            br#"{"a":1,"a":1}"#,
            br#"{"a":1.0}"#,
            br#"{"a":"\u0041"}"#,
            b" {}",
        ] {
            assert_eq!(
                parse_canonical(bad),
                Err(CanonicalError::NotCanonical),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            parse_canonical(b"{"),
            Err(CanonicalError::Parse(_))
        ));
    }
}
