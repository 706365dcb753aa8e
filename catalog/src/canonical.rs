//! OLPC canonical JSON, the byte form TUF signs (TUF 1.0 spec §4.2 "File formats: general
//! principles": signatures are over the canonical JSON of the `signed` object).
//!
//! The encoding follows securesystemslib's `encode_canonical`, which every TUF implementation that
//! interoperates with python-tuf uses: object keys sorted by code point, no insignificant
//! whitespace, strings escaped only for `"` and `\` (all other characters written as their raw
//! UTF-8 bytes), integers only (floats are not canonical and are refused), `true`, `false`, `null`.

use serde_json::Value;

/// A value that has no OLPC canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CanonicalError {
    /// OLPC canonical JSON has no floating-point numbers.
    #[error("canonical JSON has no floating-point numbers (found {0})")]
    Float(String),
}

/// Encodes `value` as OLPC canonical JSON bytes.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Serializes any `Serialize` type to canonical JSON bytes.
pub fn to_canonical_serialize<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value).map_err(|e| CanonicalError::Float(format!("unserializable value: {e}")))?;
    to_canonical(&value)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(u, out);
            } else if let Some(i) = n.as_i64() {
                out.push(b'-');
                write_u64(i.unsigned_abs(), out);
            } else {
                return Err(CanonicalError::Float(n.to_string()));
            }
        }
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
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.extend_from_slice(&bytes[start..i]);
            out.push(b'\\');
            start = i;
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
    fn sorts_keys_and_drops_whitespace() {
        let v = json!({"b": [1, true, null, 0, u64::MAX, i64::MIN], "a": {"z": "x", "y": -3}});
        assert_eq!(
            to_canonical(&v).expect("canonical"),
            br#"{"a":{"y":-3,"z":"x"},"b":[1,true,null,0,18446744073709551615,-9223372036854775808]}"#
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        let v = json!("a\"b\\c\nd\u{e9}");
        assert_eq!(to_canonical(&v).expect("canonical"), "\"a\\\"b\\\\c\nd\u{e9}\"".as_bytes());
    }

    #[test]
    fn refuses_floats() {
        assert!(matches!(to_canonical(&json!({"x": 1.5})), Err(CanonicalError::Float(_))));
    }
}
