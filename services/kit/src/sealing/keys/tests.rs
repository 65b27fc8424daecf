use super::*;

const NAMES: KeyNames = KeyNames {
    key_var: "KEM_DISTRIBUTION_TOKEN_KEY",
    file_var: "KEM_DISTRIBUTION_TOKEN_KEY_FILE",
    previous_var: "KEM_DISTRIBUTION_TOKEN_PREVIOUS_KEYS",
    dev_file: "distribution-token.key",
    what: "token-encryption key",
};

fn b64(bytes: &[u8]) -> Secret {
    Secret::new(STANDARD.encode(bytes))
}

fn nowhere() -> &'static Path {
    Path::new("/nonexistent/kem-data")
}

#[test]
fn a_configured_key_is_used_and_wins_over_its_file() {
    let settings = KeySettings {
        key: Some(b64(&[5; 32])),
        key_file: Some(PathBuf::from("/nonexistent/key")),
        previous_keys: vec![b64(&[4; 32]), Secret::new(URL_SAFE_NO_PAD.encode([3; 32]))],
        require_configured_key: true,
    };
    let keys = load(&settings, &NAMES, nowhere()).expect("keys");
    assert_eq!((keys.current, keys.source.clone()), ([5; 32], KeySource::Environment));
    assert_eq!(keys.previous, vec![[4; 32], [3; 32]]);
    let debug = format!("{keys:?}");
    assert!(!debug.contains("5, 5") && !debug.contains("BQUF"), "{debug}");
    let ring = keys.keyring(b"kem.test\0");
    let sealed = load(&KeySettings { key: Some(b64(&[3; 32])), ..KeySettings::default() }, &NAMES, nowhere())
        .expect("old key")
        .keyring(b"kem.test\0")
        .seal(b"aad", b"token")
        .expect("seal");
    assert_eq!(ring.open(b"aad", &sealed), Ok(b"token".to_vec()), "a previous key still opens");
}

#[test]
fn bad_keys_name_their_variable_but_never_the_value() {
    for (settings, var) in [
        (KeySettings { key: Some(Secret::new("c2VjcmV0LXZhbHVl")), ..KeySettings::default() }, NAMES.key_var),
        (KeySettings { key: Some(Secret::new("not base64!")), ..KeySettings::default() }, NAMES.key_var),
        (KeySettings { key: Some(b64(&[1; 33])), ..KeySettings::default() }, NAMES.key_var),
        (KeySettings { key: Some(Secret::new("")), ..KeySettings::default() }, NAMES.key_var),
        (
            KeySettings {
                key: Some(b64(&[1; 32])),
                previous_keys: vec![Secret::new("c2VjcmV0LXZhbHVl")],
                ..KeySettings::default()
            },
            NAMES.previous_var,
        ),
        (
            KeySettings {
                key: Some(b64(&[1; 32])),
                previous_keys: vec![Secret::new("\u{0}\u{1b}[31m")],
                ..KeySettings::default()
            },
            NAMES.previous_var,
        ),
    ] {
        let error = load(&settings, &NAMES, nowhere()).expect_err("invalid key").to_string();
        assert!(error.starts_with(var) && error.contains("base64"), "{error}");
        assert!(!error.contains("c2VjcmV0") && !error.contains("not base64!") && !error.contains('\u{1b}'), "{error}");
    }
}

#[test]
fn a_required_key_that_is_missing_says_what_to_set() {
    let required = KeySettings { require_configured_key: true, ..KeySettings::default() };
    let dir = tempfile::tempdir().expect("tempdir");
    let error = load(&required, &NAMES, dir.path()).expect_err("no silent development key");
    assert!(matches!(error, KeyError::Missing { .. }));
    assert!(
        error.to_string().starts_with(
            "no token-encryption key is configured: set KEM_DISTRIBUTION_TOKEN_KEY (base64 of 32 random bytes) or \
             KEM_DISTRIBUTION_TOKEN_KEY_FILE"
        ),
        "{error}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0, "nothing generated");
}

#[test]
fn keys_come_from_a_mounted_file_and_an_unreadable_file_is_not_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token-key");
    std::fs::write(&path, format!("{}\n", STANDARD.encode([8; 32]))).expect("write key");
    let settings = KeySettings { key_file: Some(path.clone()), ..KeySettings::default() };
    let keys = load(&settings, &NAMES, dir.path()).expect("file key");
    assert_eq!((keys.current, keys.source), ([8; 32], KeySource::File(path.clone())));
    let absent = dir.path().join("absent");
    let settings = KeySettings { key_file: Some(absent), ..KeySettings::default() };
    let error = load(&settings, &NAMES, dir.path()).expect_err("no fallback").to_string();
    assert!(error.contains("token-encryption key file") && error.contains("absent"), "{error}");
    std::fs::write(&path, "short").expect("write bad key");
    let settings = KeySettings { key_file: Some(path.clone()), ..KeySettings::default() };
    let error = load(&settings, &NAMES, dir.path()).expect_err("bad file key").to_string();
    assert!(error.contains("token-key") && !error.contains("short"), "{error}");
    assert!(!dir.path().join(NAMES.dev_file).exists(), "no development key behind a configured file");
}

#[test]
fn a_development_key_is_generated_once_with_owner_only_permissions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let first = load(&KeySettings::default(), &NAMES, &data).expect("generated");
    let path = data.join(NAMES.dev_file);
    assert_eq!(first.source, KeySource::Development { path: path.clone(), created: true });
    assert_ne!(first.current, [0; 32]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("key file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let second = load(&KeySettings::default(), &NAMES, &data).expect("reloaded");
    assert_eq!(second.source, KeySource::Development { path: path.clone(), created: false });
    assert_eq!(first.current, second.current, "restarts reuse the key");
    assert_eq!(std::fs::read_dir(&data).expect("dir").count(), 1, "no staging files left behind");
}

#[test]
fn a_corrupt_development_key_is_an_error_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(NAMES.dev_file);
    std::fs::write(&path, "garbage").expect("write");
    let error = load(&KeySettings::default(), &NAMES, dir.path()).expect_err("corrupt").to_string();
    assert!(error.contains(NAMES.dev_file), "{error}");
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), "garbage", "never overwritten");
}

#[test]
fn replicas_starting_together_agree_on_one_development_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = std::sync::Arc::new(dir.path().to_path_buf());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (data, barrier) = (data.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                load(&KeySettings::default(), &NAMES, &data).expect("key")
            })
        })
        .collect();
    let keys: Vec<LoadedKeys> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    assert!(keys.iter().all(|k| k.current == keys[0].current), "one key for all");
    let created = keys.iter().filter(|k| matches!(k.source, KeySource::Development { created: true, .. })).count();
    assert_eq!(created, 1);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1, "no staging files left behind");
}

#[test]
fn long_keys_take_at_least_32_bytes() {
    assert_eq!(decode_long_key(&STANDARD.encode([1; 48]), "V").expect("48 bytes").len(), 48);
    let error = decode_long_key(&STANDARD.encode([1; 31]), "V").expect_err("31 bytes").to_string();
    assert_eq!(error, "V is invalid: must be base64 of at least 32 bytes");
}
