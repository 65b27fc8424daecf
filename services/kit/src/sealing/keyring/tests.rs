use super::*;

const LABEL: &[u8] = b"kem.test.key-id\0";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn sealing_values_round_trip_bound_to_their_aad() {
    let ring = Keyring::new(LABEL, &[1; KEY_LEN], &[]);
    let sealed = ring.seal(b"entry-1/phone", b"+821012345678").expect("seal");
    assert!(!sealed.windows(4).any(|w| w == b"1012"), "no plaintext in the ciphertext");
    assert_eq!(sealed.len(), HEADER_LEN + 13 + TAG_LEN);
    assert_eq!(ring.open(b"entry-1/phone", &sealed), Ok(b"+821012345678".to_vec()));
    assert_eq!(ring.open(b"entry-2/phone", &sealed), Err(SealError::Tampered), "moved to another row");
    assert_eq!(ring.open(b"entry-1/name", &sealed), Err(SealError::Tampered), "moved to another column");
    assert_eq!(ring.open(b"", &sealed), Err(SealError::Tampered));
    let again = ring.seal(b"entry-1/phone", b"+821012345678").expect("seal");
    assert_ne!(sealed, again, "random nonces: equal values do not look equal");
    let empty = ring.seal(b"a", b"").expect("an empty value seals");
    assert_eq!(ring.open(b"a", &empty), Ok(Vec::new()));
}

#[test]
fn sealing_detects_every_flipped_bit_and_garbage() {
    let ring = Keyring::new(LABEL, &[1; KEY_LEN], &[]);
    let sealed = ring.seal(b"aad", b"secret value").expect("seal");
    for index in 0..sealed.len() {
        for bit in 0..8 {
            let mut flipped = sealed.clone();
            flipped[index] ^= 1 << bit;
            let error = ring.open(b"aad", &flipped).expect_err("a flipped bit never opens");
            let expected = match index {
                0 => SealError::Format,
                1..=KEY_ID_LEN => SealError::UnknownKey { key_id: hex::encode(&flipped[1..=KEY_ID_LEN]) },
                _ => SealError::Tampered,
            };
            assert_eq!(error, expected, "byte {index} bit {bit}");
        }
    }
    for garbage in [&b""[..], b"\x01", &sealed[..HEADER_LEN + TAG_LEN - 1], &[0u8; 64], &[0xff; 4096]] {
        assert_eq!(ring.open(b"aad", garbage), Err(SealError::Format), "{} bytes", garbage.len());
    }
    let truncated = &sealed[..sealed.len() - 1];
    assert_eq!(ring.open(b"aad", truncated), Err(SealError::Tampered));
}

#[test]
fn sealing_with_rotated_keys_keeps_old_values_readable() {
    let old = Keyring::new(LABEL, &[1; KEY_LEN], &[]);
    let sealed = old.seal(b"e", "김민수".as_bytes()).expect("seal");
    let rotated = Keyring::new(LABEL, &[2; KEY_LEN], &[[1; KEY_LEN]]);
    assert_eq!(rotated.open(b"e", &sealed), Ok("김민수".as_bytes().to_vec()));
    assert_ne!(rotated.current_key_id(), old.current_key_id());
    assert_eq!(Keyring::key_id_of(&sealed), Some(old.current_key_id()), "the row names its key: re-seal it");
    let resealed = rotated.seal(b"e", &rotated.open(b"e", &sealed).expect("open")).expect("seal");
    assert_eq!(Keyring::key_id_of(&resealed), Some(rotated.current_key_id()));
    let forgot = Keyring::new(LABEL, &[2; KEY_LEN], &[]);
    let error = forgot.open(b"e", &sealed).expect_err("unknown key");
    assert_eq!(error, SealError::UnknownKey { key_id: old.current_key_id() });
    assert!(error.to_string().contains(&old.current_key_id()), "{error}");
    assert_eq!(Keyring::key_id_of(b"short"), None);
    assert_eq!(Keyring::key_id_of(&[2; 64]), None, "another format version");
}

#[test]
fn sealing_key_ids_are_scoped_by_label() {
    let a = Keyring::new(b"kem.a.key-id\0", &[9; KEY_LEN], &[]);
    let b = Keyring::new(b"kem.b.key-id\0", &[9; KEY_LEN], &[]);
    assert_ne!(a.current_key_id(), b.current_key_id());
    let sealed = a.seal(b"x", b"token").expect("seal");
    assert!(matches!(b.open(b"x", &sealed), Err(SealError::UnknownKey { .. })), "another service's value");
    assert_eq!(a.current_key_id().len(), 8);
}

/// A value the participation service sealed before this module existed (its `PiiCipher`, key
/// `[7; 32]`, entry `0190a8c2-…0001`, field phone and name), captured from that code: rows written
/// then must still open.
#[test]
fn sealing_opens_values_written_by_the_earlier_participation_cipher() {
    let label = b"kem.participation.pii.key-id\0";
    let ring = Keyring::new(label, &[7; KEY_LEN], &[]);
    assert_eq!(ring.current_key_id(), "7ce33fed");
    let aad = |field: &str| {
        [&b"kem.participation.pii.v1\0"[..], b"0190a8c2-5f1e-7000-8000-000000000001\0", field.as_bytes()].concat()
    };
    let phone = unhex("017ce33fed8790aaa228d22a285248359a53db05c6aed79ae901ee042487d45395b2499df31c3c9e4b0c800b0ca9");
    assert_eq!(Keyring::key_id_of(&phone).as_deref(), Some("7ce33fed"));
    assert_eq!(ring.open(&aad("phone"), &phone), Ok(b"+821012345678".to_vec()));
    let name = unhex("017ce33fed73fccce95d7f27201e624cea96af5c592a2a80bf3ce37b169cf65b72e79d71de25a040dd1a");
    assert_eq!(ring.open(&aad("name"), &name), Ok("김민수".as_bytes().to_vec()));
    assert_eq!(ring.open(&aad("phone"), &name), Err(SealError::Tampered));
}

#[test]
fn sealing_from_many_threads_never_reuses_a_nonce() {
    let ring = std::sync::Arc::new(Keyring::new(LABEL, &[3; KEY_LEN], &[]));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| {
                        let aad = format!("{t}/{i}");
                        let sealed = ring.seal(aad.as_bytes(), b"v").expect("seal");
                        assert_eq!(ring.open(aad.as_bytes(), &sealed), Ok(b"v".to_vec()));
                        sealed[1 + KEY_ID_LEN..HEADER_LEN].to_vec()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut nonces = std::collections::HashSet::new();
    for thread in threads {
        for nonce in thread.join().expect("thread") {
            assert!(nonces.insert(nonce), "a nonce was reused");
        }
    }
    assert_eq!(nonces.len(), 2000);
}

#[test]
fn sealing_keyring_debug_never_shows_a_key() {
    let key = [0xab; KEY_LEN];
    let ring = Keyring::new(LABEL, &key, &[[0xcd; KEY_LEN]]);
    let debug = format!("{ring:?}");
    assert!(debug.contains(&ring.current_key_id()) && debug.contains("keys: 2"), "{debug}");
    assert!(!debug.contains("abab") && !debug.contains("cdcd") && !debug.contains("171, 171"), "{debug}");
}
