//! Identifiers: random (version 4) UUIDs, lower-case hyphenated.

use rand::RngCore as _;

/// A fresh random UUID (RFC 9562 version 4), e.g. `3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f8a9b0c`.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Whether `id` has the shape of a lower-case hyphenated UUID (owner ids).
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_random_version_4_and_recognized() {
        let a = uuid_v4();
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, uuid_v4());
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(!is_uuid("3F2B8C1E-9D4A-4E7B-A1C2-5D6E7F8A9B0C"));
        assert!(!is_uuid("not-a-uuid"));
    }
}
