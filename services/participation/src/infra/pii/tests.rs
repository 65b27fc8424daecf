//! What is participation's own: the AAD (entry and field), the errors naming them, phone hashes.
//! The cipher itself is tested in `kem_kit::sealing`.

use super::*;

const ENTRY: &str = "0190a8c2-5f1e-7000-8000-000000000001";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn values_round_trip_bound_to_their_entry_and_field() {
    let cipher = PiiCipher::new(&[1; KEY_LEN], &[]);
    let sealed = cipher.seal("entry-1", PiiField::Phone, "+821012345678").expect("seal");
    assert!(!sealed.windows(4).any(|w| w == b"1012"), "no plaintext in the ciphertext");
    assert_eq!(cipher.open("entry-1", PiiField::Phone, &sealed), Ok("+821012345678".to_owned()));
    assert!(matches!(cipher.open("entry-2", PiiField::Phone, &sealed), Err(PiiError::Tampered { .. })));
    assert!(matches!(cipher.open("entry-1", PiiField::Name, &sealed), Err(PiiError::Tampered { .. })));
    // "entry-1" ‖ 0 ‖ "phone" must not equal another split of the same bytes.
    assert!(cipher.open("entry-1\0phone", PiiField::Phone, &sealed).is_err());
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let error = cipher.open("entry-1", PiiField::Phone, &flipped).expect_err("tampered");
    assert_eq!(error, PiiError::Tampered { entry_id: "entry-1".to_owned(), field: PiiField::Phone });
    assert!(error.to_string().contains("entry-1"), "{error}");
    let error = cipher.open("entry-1", PiiField::Phone, b"short").expect_err("format");
    assert_eq!(error, PiiError::Format { entry_id: "entry-1".to_owned(), field: PiiField::Phone });
    let again = cipher.seal("entry-1", PiiField::Phone, "+821012345678").expect("seal");
    assert_ne!(sealed, again, "random nonces: equal values do not look equal");
}

#[test]
fn a_value_that_is_not_utf8_is_a_format_error() {
    let raw = Keyring::new(KEY_ID_LABEL, &[1; KEY_LEN], &[]);
    let sealed = raw.seal(&aad("e", PiiField::Name), &[0xff, 0xfe]).expect("seal");
    let cipher = PiiCipher::new(&[1; KEY_LEN], &[]);
    assert!(matches!(cipher.open("e", PiiField::Name, &sealed), Err(PiiError::Format { .. })));
}

#[test]
fn rotated_keys_keep_old_values_readable() {
    let old = PiiCipher::new(&[1; KEY_LEN], &[]);
    let sealed = old.seal("e", PiiField::Name, "김민수").expect("seal");
    let rotated = PiiCipher::new(&[2; KEY_LEN], &[[1; KEY_LEN]]);
    assert_eq!(rotated.open("e", PiiField::Name, &sealed), Ok("김민수".to_owned()));
    assert_ne!(rotated.key_id(), old.key_id());
    let forgot = PiiCipher::new(&[2; KEY_LEN], &[]);
    let error = forgot.open("e", PiiField::Name, &sealed).expect_err("unknown key");
    assert!(error.to_string().contains("KEM_PARTICIPATION_PII_PREVIOUS_KEYS"), "{error}");
    assert!(matches!(error, PiiError::UnknownKey { ref key_id, .. } if *key_id == old.key_id()));
}

/// Rows written by this service before the cipher moved to the kit (captured from that code:
/// key `[7; 32]`) still open, and new values carry the same key id.
#[test]
fn rows_sealed_before_the_kit_cipher_still_open() {
    let cipher = PiiCipher::new(&[7; KEY_LEN], &[]);
    assert_eq!(cipher.key_id(), "7ce33fed");
    let phone = unhex("017ce33fed8790aaa228d22a285248359a53db05c6aed79ae901ee042487d45395b2499df31c3c9e4b0c800b0ca9");
    assert_eq!(cipher.open(ENTRY, PiiField::Phone, &phone), Ok("+821012345678".to_owned()));
    let name = unhex("017ce33fed73fccce95d7f27201e624cea96af5c592a2a80bf3ce37b169cf65b72e79d71de25a040dd1a");
    assert_eq!(cipher.open(ENTRY, PiiField::Name, &name), Ok("김민수".to_owned()));
    assert!(matches!(cipher.open(ENTRY, PiiField::Phone, &name), Err(PiiError::Tampered { .. })));
    let fresh = cipher.seal(ENTRY, PiiField::Phone, "+821012345678").expect("seal");
    assert_eq!(fresh[..5], phone[..5], "same version byte and key id");
}

#[test]
fn phone_hashes_are_keyed_and_scoped_to_the_event() {
    let hasher = PhoneHasher::new(hmac::Key::new(hmac::HMAC_SHA256, &[3; 32]));
    let a = hasher.hash("event-1", "+821012345678");
    assert_eq!(a.len(), 64);
    assert_eq!(a, hasher.hash("event-1", "+821012345678"));
    assert_ne!(a, hasher.hash("event-2", "+821012345678"));
    let other = PhoneHasher::new(hmac::Key::new(hmac::HMAC_SHA256, &[4; 32]));
    assert_ne!(a, other.hash("event-1", "+821012345678"));
}
