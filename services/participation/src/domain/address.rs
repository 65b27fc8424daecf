//! The client address an entry came from, as the per-address entry limit counts it
//! (`entry_rules.max_entries_per_address`).

use std::net::{IpAddr, Ipv6Addr};

/// The part of a client address that identifies one subscriber: an IPv4 address whole (carrier
/// NAT and shop Wi-Fi put many customers behind one; that is why the limit is opt-in), an IPv6
/// address by its /64 (one subscriber's prefix: a device picks new addresses inside it at will,
/// so counting whole IPv6 addresses would not limit anything). An IPv4-mapped IPv6 address counts
/// as its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressKey(String);

impl AddressKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(v4.to_string()),
                None => {
                    let s = v6.segments();
                    let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                    AddressKey(format!("{prefix}/64"))
                }
            },
        }
    }

    /// The text that is hashed (never stored).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> String {
        AddressKey::of(text.parse().expect("ip")).0
    }

    #[test]
    fn ipv4_counts_whole_and_ipv6_by_its_64() {
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"), "one subscriber's prefix");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }
}
