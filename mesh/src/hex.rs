//! Lower-case hexadecimal, the one encoding kem uses for digests, random ids, certificate serials
//! and W3C trace ids. It lives here, the lowest crate that needs it (join-token ids, certificate
//! serials in tests), and `kem_kit::hex` re-exports it for the services.
//!
//! ```
//! assert_eq!(kem_mesh::hex::encode([0x00, 0x9f, 0xff]), "009fff");
//! assert_eq!(kem_mesh::hex::decode_lower::<2>("0aff"), Some([0x0a, 0xff]));
//! assert_eq!(kem_mesh::hex::decode_lower::<2>("0AFF"), None);
//! ```

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex, two digits per byte.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Exactly `N` bytes written as `2 * N` lower-case hex digits; `None` for any other length or
/// for an upper-case or non-hex digit. Strict on purpose: the formats that use it (W3C
/// `traceparent`) define lower case only, so a value in any other spelling is invalid.
pub fn decode_lower<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_byte_as_two_lower_case_digits() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert_eq!(text.len(), 512);
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            assert_eq!(std::str::from_utf8(pair).expect("ascii"), format!("{i:02x}"));
        }
        assert_eq!(encode([]), "");
    }

    #[test]
    fn decoding_is_the_inverse_and_strict() {
        let bytes = [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6];
        assert_eq!(decode_lower::<8>(&encode(bytes)), Some(bytes));
        assert_eq!(decode_lower::<8>("4bf92f3577b34da"), None, "too short");
        assert_eq!(decode_lower::<8>("4bf92f3577b34da6a"), None, "too long");
        assert_eq!(decode_lower::<8>("4BF92F3577B34DA6"), None, "upper case");
        assert_eq!(decode_lower::<8>("4bf92f3577b34dzz"), None, "not hex");
        assert_eq!(decode_lower::<0>(""), Some([]));
    }
}
