use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::token::TOKEN_LEN;
use super::*;
use crate::config::Reader;

const IMAGE: &str = "3c5d2b1a-0000-4000-8000-000000000000";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn signer(key: u8) -> MediaSigner {
    MediaSigner::new(&[key; 32], &[]).expect("signer")
}

#[test]
fn a_token_grants_what_was_signed_until_it_expires() {
    let s = signer(1);
    for variant in MediaVariant::ALL {
        let token = s.sign(IMAGE, variant, at(2_000)).expect("sign");
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {token}");
        let grant = s.verify(&token, at(1_999)).expect("valid one second before expiry");
        assert_eq!(grant, MediaGrant { image_id: IMAGE.to_owned(), variant, expires_at: 2_000 });
        assert_eq!(s.verify(&token, at(2_000)), Err(TokenError::Expired), "expired at its expiry");
        assert_eq!(s.verify(&token, at(u64::MAX / 2)), Err(TokenError::Expired));
    }
    assert_eq!(MediaVariant::from_number(0), None);
    assert_eq!(MediaVariant::from_number(3), Some(MediaVariant::InstagramFeed));
}

#[test]
fn every_flipped_bit_and_every_other_key_is_refused() {
    let s = signer(1);
    let token = s.sign(IMAGE, MediaVariant::Jpeg, at(2_000)).expect("sign");
    let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1 << bit;
            let forged = URL_SAFE_NO_PAD.encode(&tampered);
            assert_eq!(s.verify(&forged, at(1_000)), Err(TokenError::BadSignature), "byte {i} bit {bit}");
        }
    }
    assert_eq!(signer(2).verify(&token, at(1_000)), Err(TokenError::BadSignature), "another key");
    // A longer expiry with the old tag: the tag covers the expiry.
    let mut extended = bytes.clone();
    extended[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(s.verify(&URL_SAFE_NO_PAD.encode(&extended), at(1_000)), Err(TokenError::BadSignature));
}

#[test]
fn garbage_is_malformed_before_any_signature_work() {
    let s = signer(1);
    let good = s.sign(IMAGE, MediaVariant::Original, at(2_000)).expect("sign");
    let long = "A".repeat(100_000);
    let control = format!("{}\u{0}", &good[..TOKEN_LEN - 1]);
    let padded = format!("{}=", &good[..TOKEN_LEN - 1]);
    let plus = good.replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1);
    for garbage in ["", "x", "..", "%00", long.as_str(), control.as_str(), padded.as_str(), plus.as_str()] {
        assert_eq!(s.verify(garbage, at(1_000)), Err(TokenError::Malformed), "{garbage:.40}");
    }
    let not_ascii = format!("{}é", &good[..TOKEN_LEN - 2]);
    assert_eq!(s.verify(&not_ascii, at(1_000)), Err(TokenError::Malformed));
    assert!(matches!(s.sign("not-a-uuid", MediaVariant::Jpeg, at(1)), Err(SignError::NotAnImageId(_))));
    assert!(MediaSigner::new(&[1; 31], &[]).is_err(), "short key");
    assert!(MediaSigner::new(&[1; 32], &[vec![2; 8]]).is_err(), "short previous key");
}

#[test]
fn a_rotated_key_keeps_old_links_working() {
    let old = signer(1);
    let token = old.sign(IMAGE, MediaVariant::Jpeg, at(2_000)).expect("sign");
    let rotated = MediaSigner::new(&[2; 48], &[vec![1; 32]]).expect("rotated");
    assert_eq!(rotated.verify(&token, at(1_000)).map(|g| g.variant), Ok(MediaVariant::Jpeg));
    let fresh = rotated.sign(IMAGE, MediaVariant::Jpeg, at(2_000)).expect("sign");
    assert_eq!(old.verify(&fresh, at(1_000)), Err(TokenError::BadSignature), "new links need the new key");
    assert!(!format!("{rotated:?}").contains("2, 2"), "no key in Debug");
}

#[test]
fn links_are_made_on_the_public_base() {
    let links = MediaLinks::new("https://kem.example/ ", std::sync::Arc::new(signer(1)));
    let url = links.url(IMAGE, MediaVariant::InstagramFeed, Duration::from_secs(60), at(1_000)).expect("url");
    let token = url.strip_prefix("https://kem.example/media/").expect("on the base");
    assert_eq!(signer(1).verify(token, at(1_059)).map(|g| g.expires_at), Ok(1_060));
    assert_eq!(links.url("x", MediaVariant::Jpeg, Duration::from_secs(60), at(1_000)), None);
    let nowhere = MediaLinks::new(" ", std::sync::Arc::new(signer(1)));
    assert_eq!(nowhere.url(IMAGE, MediaVariant::Jpeg, Duration::from_secs(60), at(1_000)), None);
}

#[test]
fn keys_come_from_the_environment_a_file_or_the_data_dir() {
    let dir = tempfile::tempdir().expect("dir");
    let key = STANDARD.encode([9u8; 40]);
    let previous = STANDARD.encode([8u8; 32]);
    let vars = HashMap::from([(names::KEY, key.as_str()), (names::PREVIOUS_KEYS, previous.as_str())]);
    let mut reader = Reader::new(&vars);
    let settings = MediaKeySettings::read(&mut reader);
    reader.finish().expect("valid");
    let configured = load(&settings, dir.path()).expect("configured");
    let by_old = MediaSigner::new(&[8; 32], &[]).expect("old").sign(IMAGE, MediaVariant::Jpeg, at(9)).expect("sign");
    assert!(configured.verify(&by_old, at(1)).is_ok(), "previous key accepted");
    assert!(!dir.path().join(names::DEV_FILE).exists(), "no development key when one is configured");

    // Development: created once, then the same key for every loader of the data dir.
    let first = load(&MediaKeySettings::default(), dir.path()).expect("dev");
    let second = load(&MediaKeySettings::default(), dir.path()).expect("dev again");
    let token = first.sign(IMAGE, MediaVariant::Original, at(9)).expect("sign");
    assert!(second.verify(&token, at(1)).is_ok(), "gateway and distribution share the development key");

    // A file.
    let file = dir.path().join("kv-key");
    std::fs::write(&file, format!("{key}\n")).expect("write");
    let from_file = load(&MediaKeySettings { key_file: Some(file), ..Default::default() }, dir.path()).expect("file");
    assert!(from_file.verify(&configured.sign(IMAGE, MediaVariant::Jpeg, at(9)).expect("s"), at(1)).is_ok());

    // Refusals name the variable, never the value.
    let short = STANDARD.encode([1u8; 16]);
    let vars = HashMap::from([(names::KEY, short.as_str()), (names::REQUIRE_KEY, "1")]);
    let mut reader = Reader::new(&vars);
    let _ = MediaKeySettings::read(&mut reader);
    let error = reader.finish().expect_err("short key").to_string();
    assert!(error.contains(names::KEY) && !error.contains(&short), "{error}");
    let required = MediaKeySettings { require_configured_key: true, ..Default::default() };
    let error = load(&required, dir.path()).expect_err("required").to_string();
    assert!(error.contains(names::KEY) && error.contains(names::KEY_FILE), "{error}");
    let missing = MediaKeySettings { key_file: Some(dir.path().join("absent")), ..Default::default() };
    assert!(load(&missing, dir.path()).expect_err("unreadable").to_string().contains("absent"));
}
