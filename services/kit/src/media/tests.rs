use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use ring::hmac;

use super::token::TOKEN_LEN;
use super::*;
use crate::config::Reader;

const IMAGE: &str = "3c5d2b1a-0000-4000-8000-000000000000";
/// A typical entry link: exactly 100 bytes.
const ENTRY: &str =
    "https://kem.example/e/3c5d2b1a-0000-4000-8000-000000000000?src=kt-signage&utm_campaign=spring-2027-k";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn signer(key: u8) -> MediaSigner {
    MediaSigner::new(&[key; 32], &[]).expect("signer")
}

#[test]
fn a_token_grants_what_was_signed_until_it_expires() {
    let s = signer(1);
    for variant in MediaVariant::ALL.into_iter().filter(|v| *v != MediaVariant::PartnerQr) {
        let token = s.sign(IMAGE, variant, at(2_000)).expect("sign");
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {token}");
        let grant = s.verify(&token, at(1_999)).expect("valid one second before expiry");
        assert_eq!(grant, MediaGrant { image_id: IMAGE.to_owned(), variant, expires_at: 2_000, qr_text: None });
        assert_eq!(s.verify(&token, at(2_000)), Err(TokenError::Expired), "expired at its expiry");
        assert_eq!(s.verify(&token, at(u64::MAX / 2)), Err(TokenError::Expired));
    }
    assert_eq!(MediaVariant::from_number(0), None);
    assert_eq!(MediaVariant::from_number(3), Some(MediaVariant::InstagramFeed));
    assert_eq!(MediaVariant::from_number(4), Some(MediaVariant::PartnerQr));
    assert_eq!(MediaVariant::from_number(5), None);
}

/// A version-1 token made byte by byte as every signer before version 2 made it (not by
/// `sign`): the links already handed out must keep working, and `sign` must still issue them.
fn legacy_token(key: &[u8], variant: u8, expires_at: u64) -> String {
    let mut payload = vec![1u8, variant];
    payload.extend_from_slice(&expires_at.to_be_bytes());
    payload.extend_from_slice(uuid::Uuid::parse_str(IMAGE).expect("uuid").as_bytes());
    signed(key, &payload)
}

#[test]
fn tokens_minted_before_the_qr_format_still_verify_and_are_still_minted() {
    let s = signer(1);
    for (number, variant) in [(1, MediaVariant::Original), (2, MediaVariant::Jpeg), (3, MediaVariant::InstagramFeed)] {
        let old = legacy_token(&[1; 32], number, 2_000);
        assert_eq!(old.len(), 56);
        let grant = s.verify(&old, at(1_000)).expect("an old link still works");
        assert_eq!(grant, MediaGrant { image_id: IMAGE.to_owned(), variant, expires_at: 2_000, qr_text: None });
        assert_eq!(s.sign(IMAGE, variant, at(2_000)).expect("sign"), old, "the same bytes as before");
        // Under a rotated key too.
        let rotated = MediaSigner::new(&[9; 32], &[vec![1; 32]]).expect("rotated");
        assert_eq!(rotated.verify(&old, at(1_000)).map(|g| g.variant), Ok(variant));
    }
    // A version-1 layout naming PartnerQr (authentic, so only our own bug could make one) grants
    // nothing: a QR code needs its text.
    assert_eq!(s.verify(&legacy_token(&[1; 32], 4, 2_000), at(1_000)), Err(TokenError::Malformed));
}

#[test]
fn a_partner_qr_token_carries_its_signed_text() {
    let s = signer(1);
    let token = s.sign_partner_qr(IMAGE, ENTRY, at(2_000)).expect("sign");
    assert_eq!(ENTRY.len(), 100);
    // Measured, and stated in the docs: 190 characters for a 100-byte URL.
    assert_eq!(token.len(), 190);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {token}");
    let grant = s.verify(&token, at(1_999)).expect("valid");
    let expected = MediaGrant {
        image_id: IMAGE.to_owned(),
        variant: MediaVariant::PartnerQr,
        expires_at: 2_000,
        qr_text: Some(ENTRY.into()),
    };
    assert_eq!(grant, expected);
    assert_eq!(s.verify(&token, at(2_000)), Err(TokenError::Expired), "expired at its expiry");

    // The longest accepted text gives the longest token the edge looks at: a link under 1 KB.
    let longest = format!("https://kem.example/e/{}", "a".repeat(MAX_QR_TEXT_LEN - 22));
    assert_eq!(longest.len(), MAX_QR_TEXT_LEN);
    let token = s.sign_partner_qr(IMAGE, &longest, at(2_000)).expect("sign the longest");
    assert_eq!((token.len(), MAX_TOKEN_LEN), (739, 739));
    assert_eq!(s.verify(&token, at(1_000)).map(|g| g.qr_text), Ok(Some(longest.clone())));
    let links = MediaLinks::new("https://kem.example", std::sync::Arc::new(signer(1)));
    let url = links.url_with_qr(IMAGE, &longest, Duration::from_secs(60), at(1_000)).expect("url");
    assert!(url.len() < 1024, "{}", url.len());
    let url = links.url_with_qr(IMAGE, ENTRY, Duration::from_secs(60), at(1_000)).expect("url");
    assert_eq!(url.len(), "https://kem.example".len() + 197);
    let token = url.strip_prefix("https://kem.example/media/").expect("on the base");
    assert_eq!(s.verify(token, at(1_059)).map(|g| (g.expires_at, g.qr_text)), Ok((1_060, Some(ENTRY.to_owned()))));

    // Every text is its own token; another text's token does not name this one.
    let other = s.sign_partner_qr(IMAGE, "https://evil.example/", at(2_000)).expect("sign");
    assert_eq!(s.verify(&other, at(1_000)).map(|g| g.qr_text), Ok(Some("https://evil.example/".into())));
    assert_ne!(other, s.sign_partner_qr(IMAGE, ENTRY, at(2_000)).expect("sign"));
}

#[test]
fn a_partner_qr_token_needs_a_valid_text_and_no_other_variant_takes_one() {
    let s = signer(1);
    assert_eq!(s.sign(IMAGE, MediaVariant::PartnerQr, at(2_000)), Err(SignError::QrTextRequired));
    assert_eq!(s.sign_partner_qr(IMAGE, "", at(2_000)), Err(SignError::QrTextRequired));
    let long = format!("https://kem.example/{}", "a".repeat(MAX_QR_TEXT_LEN));
    let huge = "h".repeat(1_000_000);
    let cases: [(&str, QrTextError); 18] = [
        (long.as_str(), QrTextError::TooLong(long.len())),
        (huge.as_str(), QrTextError::TooLong(1_000_000)),
        ("https://kem.example/e/\u{0}", QrTextError::ControlCharacter),
        ("https://kem.example/e/a\r\nLocation: x", QrTextError::ControlCharacter),
        ("https://kem.example/e/\u{7f}", QrTextError::ControlCharacter),
        ("https://kem.example/e/\u{85}", QrTextError::ControlCharacter),
        ("https://kem.example/e/a b", QrTextError::ControlCharacter),
        ("https://kem.example/e/\u{202e}gpj.exe", QrTextError::ControlCharacter),
        ("https://kem.example/\u{200b}e", QrTextError::ControlCharacter),
        ("\thttps://kem.example/", QrTextError::ControlCharacter),
        ("javascript:alert(1)", QrTextError::NotHttp),
        ("data:text/html,<b>x</b>", QrTextError::NotHttp),
        ("ftp://kem.example/", QrTextError::NotHttp),
        ("kem.example/e/abc", QrTextError::NotAnAbsoluteUrl),
        ("/e/abc", QrTextError::NotAnAbsoluteUrl),
        ("https:kem.example", QrTextError::NotAnAbsoluteUrl),
        ("https:\\\\evil.example", QrTextError::NotAnAbsoluteUrl),
        ("https://kem.example@evil.example/", QrTextError::Credentials),
    ];
    for (text, why) in cases {
        assert_eq!(check_qr_text(text), Err(why), "{text:.40}");
        assert_eq!(s.sign_partner_qr(IMAGE, text, at(2_000)), Err(SignError::QrText(why)), "{text:.40}");
        let message = SignError::QrText(why).to_string();
        assert!(message.len() < 120 && !message.contains("evil"), "the text is not quoted: {message}");
    }
    for fine in [
        "https://kem.example/e/abc",
        "HTTPS://KEM.EXAMPLE/E/ABC",
        "http://127.0.0.1:8080/e/x?a=1#f",
        "https://키엠.example/이벤트",
    ] {
        assert_eq!(check_qr_text(fine), Ok(()), "{fine}");
        let token = s.sign_partner_qr(IMAGE, fine, at(2_000)).expect("sign");
        assert_eq!(s.verify(&token, at(1_000)).map(|g| g.qr_text), Ok(Some(fine.to_owned())), "exactly as given");
    }
    assert!(matches!(s.sign_partner_qr("not-a-uuid", ENTRY, at(1)), Err(SignError::NotAnImageId(_))));
    let links = MediaLinks::new("https://kem.example", std::sync::Arc::new(signer(1)));
    assert_eq!(links.url_with_qr(IMAGE, "javascript:alert(1)", Duration::from_secs(60), at(1_000)), None);
    assert_eq!(links.url_with_qr("x", ENTRY, Duration::from_secs(60), at(1_000)), None);
    assert_eq!(links.url(IMAGE, MediaVariant::PartnerQr, Duration::from_secs(60), at(1_000)), None, "no text");
    let nowhere = MediaLinks::new(" ", std::sync::Arc::new(signer(1)));
    assert_eq!(nowhere.url_with_qr(IMAGE, ENTRY, Duration::from_secs(60), at(1_000)), None);
}

/// The token of `payload` as `key` would sign it (a forger holding the key, or our own bug):
/// what verify does with authentic but ill-formed payloads.
fn signed(key: &[u8], payload: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(b"kem.media.v1\0");
    context.update(payload);
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(&context.sign().as_ref()[..16]);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn a_qr_token_with_a_flipped_bit_a_swapped_text_or_an_ill_formed_payload_is_refused() {
    let s = signer(1);
    let token = s.sign_partner_qr(IMAGE, ENTRY, at(2_000)).expect("sign");
    let bytes = every_flipped_bit_is_refused(&s, &token);
    // Another link in place of the signed one, the tag kept: refused.
    let mut swapped = bytes[..26].to_vec();
    swapped.extend_from_slice(ENTRY.replace("kem.example", "evl.example").as_bytes());
    swapped.extend_from_slice(&bytes[bytes.len() - 16..]);
    assert_eq!(swapped.len(), bytes.len());
    assert_eq!(s.verify(&URL_SAFE_NO_PAD.encode(&swapped), at(1_000)), Err(TokenError::BadSignature));
    // Text cut short or lengthened, the tag kept.
    for cut in [1, 10, 99] {
        let mut shorter = bytes[..bytes.len() - 16 - cut].to_vec();
        shorter.extend_from_slice(&bytes[bytes.len() - 16..]);
        assert_eq!(s.verify(&URL_SAFE_NO_PAD.encode(&shorter), at(1_000)), Err(TokenError::BadSignature), "cut {cut}");
    }
    // A tag alone, or a version-1 tag on a version-2 token: refused.
    let v1 = URL_SAFE_NO_PAD.decode(s.sign(IMAGE, MediaVariant::Jpeg, at(2_000)).expect("sign")).expect("b64");
    let mut grafted = bytes[..bytes.len() - 16].to_vec();
    grafted.extend_from_slice(&v1[v1.len() - 16..]);
    assert_eq!(s.verify(&URL_SAFE_NO_PAD.encode(&grafted), at(1_000)), Err(TokenError::BadSignature));
    assert_eq!(signer(2).verify(&token, at(1_000)), Err(TokenError::BadSignature), "another key");

    // Authentic but ill-formed payloads (only the key holder could make them) grant nothing.
    let mut header = vec![2u8, 4];
    header.extend_from_slice(&2_000u64.to_be_bytes());
    header.extend_from_slice(uuid::Uuid::parse_str(IMAGE).expect("uuid").as_bytes());
    let with = |variant: u8, text: &[u8]| {
        let mut payload = header.clone();
        payload[1] = variant;
        payload.extend_from_slice(text);
        signed(&[1; 32], &payload)
    };
    assert!(s.verify(&with(4, ENTRY.as_bytes()), at(1_000)).is_ok(), "the well-formed one passes");
    for (variant, text) in [
        (2u8, ENTRY.as_bytes()),
        (1, ENTRY.as_bytes()),
        (4, b"javascript:alert(1)".as_slice()),
        (4, b"https://kem.example/\xff\xfe".as_slice()),
        (4, b"https://kem.example/\n".as_slice()),
        (0, ENTRY.as_bytes()),
        (9, ENTRY.as_bytes()),
    ] {
        assert_eq!(s.verify(&with(variant, text), at(1_000)), Err(TokenError::Malformed), "{variant} {text:?}");
    }
    let mut v1_with_text = header.clone();
    v1_with_text[0] = 1;
    v1_with_text[1] = 2;
    v1_with_text.extend_from_slice(ENTRY.as_bytes());
    assert_eq!(s.verify(&signed(&[1; 32], &v1_with_text), at(1_000)), Err(TokenError::Malformed), "v1 takes no text");
    let mut v3 = header.clone();
    v3[0] = 3;
    v3.extend_from_slice(ENTRY.as_bytes());
    assert_eq!(s.verify(&signed(&[1; 32], &v3), at(1_000)), Err(TokenError::Malformed), "unknown version");
}

#[test]
fn over_long_and_garbage_qr_tokens_are_malformed() {
    let s = signer(1);
    let good = s.sign_partner_qr(IMAGE, ENTRY, at(2_000)).expect("sign");
    let long = "A".repeat(MAX_TOKEN_LEN + 1);
    let longest_plausible = "A".repeat(MAX_TOKEN_LEN);
    let between = "A".repeat(TOKEN_LEN + 1);
    let with_nul = format!("{}\u{0}", &good[..good.len() - 1]);
    let with_slash = format!("{}/", &good[..good.len() - 1]);
    let padded = format!("{good}=");
    // 4n+1 characters never decode.
    let one_over = format!("{}A", &good[..good.len() - 2]);
    let doubled = format!("{good}{good}");
    for garbage in [long.as_str(), between.as_str(), with_nul.as_str(), with_slash.as_str(), padded.as_str()] {
        assert_eq!(s.verify(garbage, at(1_000)), Err(TokenError::Malformed), "{garbage:.40}");
    }
    // Plausible lengths: decoded, then refused by the tag.
    assert_eq!(s.verify(&doubled, at(1_000)), Err(TokenError::BadSignature));
    assert!(matches!(s.verify(&one_over, at(1_000)), Err(TokenError::Malformed | TokenError::BadSignature)));
    assert!(matches!(s.verify(&longest_plausible, at(1_000)), Err(TokenError::Malformed | TokenError::BadSignature)));
    // Non-canonical trailing bits: the same bytes under another spelling are refused.
    let last = good.as_bytes()[good.len() - 1];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let position = alphabet.iter().position(|&c| c == last).expect("base64url");
    let respelled = alphabet[position ^ 1] as char;
    let noncanonical = format!("{}{respelled}", &good[..good.len() - 1]);
    assert_eq!(good.len() % 4, 2, "the last character carries 4 unused bits");
    assert_eq!(s.verify(&noncanonical, at(1_000)), Err(TokenError::Malformed));
}

#[test]
fn a_rotated_key_keeps_old_qr_links_working() {
    let old = signer(1);
    let token = old.sign_partner_qr(IMAGE, ENTRY, at(2_000)).expect("sign");
    let rotated = MediaSigner::new(&[2; 48], &[vec![1; 32]]).expect("rotated");
    assert_eq!(rotated.verify(&token, at(1_000)).map(|g| g.qr_text), Ok(Some(ENTRY.to_owned())));
    let fresh = rotated.sign_partner_qr(IMAGE, ENTRY, at(2_000)).expect("sign");
    assert_eq!(old.verify(&fresh, at(1_000)), Err(TokenError::BadSignature), "new links need the new key");
    let retired = MediaSigner::new(&[2; 48], &[]).expect("retired");
    assert_eq!(retired.verify(&token, at(1_000)), Err(TokenError::BadSignature), "a dropped key's links end");
}

/// Asserts that `token` with any one bit flipped is refused as forged; its bytes.
fn every_flipped_bit_is_refused(s: &MediaSigner, token: &str) -> Vec<u8> {
    let bytes = URL_SAFE_NO_PAD.decode(token).expect("base64");
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1 << bit;
            let forged = URL_SAFE_NO_PAD.encode(&tampered);
            assert_eq!(s.verify(&forged, at(1_000)), Err(TokenError::BadSignature), "byte {i} bit {bit}");
        }
    }
    bytes
}

#[test]
fn every_flipped_bit_and_every_other_key_is_refused() {
    let s = signer(1);
    let token = s.sign(IMAGE, MediaVariant::Jpeg, at(2_000)).expect("sign");
    let bytes = every_flipped_bit_is_refused(&s, &token);
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
