//! Random and derived identifiers in UUID form (RFC 9562 version 4, lower-case hyphenated), the
//! shape of every server-assigned id and provider idempotency key in kem.
//!
//! ```
//! let id = kem_kit::ids::random_uuid();
//! assert_eq!((id.len(), &id[14..15]), (36, "4"));
//! // Derived: the same 16 bytes (e.g. of a hash) always give the same id.
//! assert_eq!(kem_kit::ids::uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
//! ```

/// A fresh random UUID, e.g. `3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f8a9b0c`.
pub fn random_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `bytes` laid out as a version-4 UUID (the version and variant bits overwritten), for ids that
/// must be stable: the same bytes give the same id.
pub fn uuid_v4(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_v4(id: &str) -> bool {
        let groups: Vec<&str> = id.split('-').collect();
        groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && groups[2].starts_with('4')
            && matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
            && id.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
    }

    #[test]
    fn random_ids_are_canonical_v4_and_distinct() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_ne!(a, b);
        assert!(is_v4(&a) && is_v4(&b), "{a} {b}");
    }

    #[test]
    fn derived_ids_keep_the_bytes_but_the_version_and_variant_bits() {
        let bytes = [0xff; 16];
        assert_eq!(uuid_v4(bytes), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4(bytes), uuid_v4(bytes));
        let counting: [u8; 16] = std::array::from_fn(|i| u8::try_from(i).unwrap_or(0));
        // The layout the services formatted by hand before: hex digits in groups of 8-4-4-4-12.
        let mut expected = counting;
        expected[6] = (expected[6] & 0x0f) | 0x40;
        expected[8] = (expected[8] & 0x3f) | 0x80;
        let hex = crate::hex::encode(expected);
        let hand = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
        assert_eq!(uuid_v4(counting), hand);
        assert!(is_v4(&uuid_v4(counting)));
    }
}
