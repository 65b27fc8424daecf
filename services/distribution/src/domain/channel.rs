//! The six channels, in the platform's one vocabulary ([`kem_kit::channel`]): the stable names
//! distribution stores and logs, the lower-case slugs of its message ids, and the
//! `kem.common.v1.Channel` numbers it reads and writes. What distribution does *per channel*
//! (its providers, policies and text shaping) stays in this crate.

pub use kem_kit::channel::Channel;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip_in_contract_order() {
        for (i, channel) in Channel::ALL.into_iter().enumerate() {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
            assert_eq!(Channel::from_number(channel.number()), Some(channel));
            assert_eq!(channel.number(), i as i32 + 1);
            assert_eq!(channel.slug(), channel.as_str().to_ascii_lowercase());
        }
        assert_eq!(Channel::from_number(0), None);
        assert_eq!(Channel::from_number(7), None);
        assert_eq!(Channel::parse("instagram"), None);
    }

    #[test]
    fn the_names_are_the_published_enum_values() {
        let pool = kem_proto::descriptor_pool();
        let channels = pool.get_enum_by_name("kem.common.v1.Channel").expect("Channel enum");
        for channel in Channel::ALL {
            let value = channels.get_value(channel.number()).expect("value");
            assert_eq!(value.name(), format!("CHANNEL_{}", channel.as_str()));
        }
    }
}
