//! Points in time as every analytics table stores them: milliseconds since the Unix epoch.

/// The instant `seconds` and `nanos` after the Unix epoch (a protobuf `Timestamp`'s fields) in
/// milliseconds, saturating; out-of-range nanos are clamped.
pub fn epoch_ms(seconds: i64, nanos: i32) -> i64 {
    seconds.saturating_mul(1_000).saturating_add(i64::from(nanos.clamp(0, 999_999_999) / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_saturate_and_nanos_are_clamped() {
        assert_eq!(epoch_ms(1_700_000_000, 123_456_789), 1_700_000_000_123);
        assert_eq!(epoch_ms(-2, 999_000_000), -1_001);
        assert_eq!(epoch_ms(0, -5), 0);
        assert_eq!(epoch_ms(0, 2_000_000_000), 999);
        assert_eq!(epoch_ms(i64::MAX, 0), i64::MAX);
    }
}
