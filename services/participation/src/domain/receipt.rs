//! Receipt codes: what a participant keeps to show that their entry was received (e.g. when a
//! winner is asked to identify themselves). Ten characters from a 32-character alphabet without
//! the look-alikes 0/O, 1/I (50 bits), shown in two groups of five, `7K3QZ-M8W2P`; unique per
//! event (the store's unique index decides, and a collision draws a new code). Only the
//! participant ever sees theirs: owner listings never carry it.

/// The characters of a code: digits and upper-case letters without 0, 1, I and O.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Characters of a code (without the separator).
pub const RECEIPT_CHARS: usize = 10;

/// A receipt code, held in its stored form (ten characters, no separator).
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiptCode(String);

impl ReceiptCode {
    /// The code whose characters `random` picks: each byte's low five bits index the alphabet
    /// (32 divides 256, so uniform bytes give uniform characters). `random` must come from a
    /// CSPRNG: the code is unguessable only if its bytes are.
    pub fn from_random(random: [u8; RECEIPT_CHARS]) -> ReceiptCode {
        ReceiptCode(random.iter().map(|b| char::from(ALPHABET[usize::from(b & 0x1f)])).collect())
    }

    /// A code in its stored form, or `None` when `stored` is not ten alphabet characters.
    pub fn parse(stored: &str) -> Option<ReceiptCode> {
        let valid = stored.len() == RECEIPT_CHARS && stored.bytes().all(|b| ALPHABET.contains(&b));
        valid.then(|| ReceiptCode(stored.to_owned()))
    }

    /// The stored form, e.g. `7K3QZM8W2P`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As shown to the participant: `XXXXX-XXXXX`.
    pub fn display(&self) -> String {
        let (first, second) = self.0.split_at(RECEIPT_CHARS / 2);
        format!("{first}-{second}")
    }
}

impl std::fmt::Debug for ReceiptCode {
    /// The participant's alone: kept out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptCode(..)")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn codes_are_ten_alphabet_characters_shown_in_two_groups() {
        let code = ReceiptCode::from_random([0, 1, 7, 8, 31, 32, 63, 200, 255, 18]);
        assert_eq!(code.as_str(), "239AZ2ZAZL");
        assert_eq!(code.display(), "239AZ-2ZAZL");
        assert_eq!(ReceiptCode::parse(code.as_str()), Some(code.clone()));
        assert_eq!(format!("{code:?}"), "ReceiptCode(..)");
        for bad in ["", "2389ZZ2Z8", "2389ZZ2Z8LL", "2389Z-Z2Z8", "0389ZZ2Z8L", "2389zz2z8l", "IO89ZZ2Z8L"] {
            assert_eq!(ReceiptCode::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_random_input_gives_a_valid_code(random in proptest::array::uniform10(any::<u8>())) {
            let code = ReceiptCode::from_random(random);
            prop_assert_eq!(ReceiptCode::parse(code.as_str()), Some(code.clone()));
            let shown = code.display();
            prop_assert_eq!((shown.len(), &shown[5..6]), (11, "-"));
        }
    }
}
