use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use super::parse::{self, Parse};
use super::{ConfigError, Problem, Reader, Source};

/// `parser` applied to `text` through a reader, so the trimming and blank rules apply too.
fn one<P: Parse>(parser: P, text: &str) -> Result<P::Output, String> {
    let vars = [("KEM_T", text)];
    let mut env = Reader::new(&vars);
    let value = env.get("KEM_T", parser);
    match env.finish() {
        Ok(()) => value.ok_or_else(|| "unset".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

fn problems(error: &ConfigError) -> Vec<String> {
    error.problems().iter().map(ToString::to_string).collect()
}

#[test]
fn durations_take_a_unit_and_a_bare_number_is_seconds() {
    for (text, expected) in [
        ("250ms", Duration::from_millis(250)),
        ("5s", Duration::from_secs(5)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("7d", Duration::from_secs(7 * 86_400)),
        ("30", Duration::from_secs(30)),
        ("5 m", Duration::from_secs(300)),
        (" 90s ", Duration::from_secs(90)),
    ] {
        assert_eq!(one(parse::duration(), text), Ok(expected), "{text}");
    }
    for text in ["soon", "-5s", "1.5s", "5 days", "5w", "ms", "99999999999999999999d"] {
        let error = one(parse::duration(), text).expect_err(text);
        assert!(error.contains("expected a whole number with a unit"), "{error}");
    }
}

#[test]
fn fixed_unit_durations_take_whole_numbers_only() {
    assert_eq!(one(parse::millis(), "1500"), Ok(Duration::from_millis(1500)));
    assert_eq!(one(parse::seconds(), "900"), Ok(Duration::from_secs(900)));
    let error = one(parse::millis(), "15s").expect_err("unit");
    assert!(error.ends_with("expected a whole number of milliseconds"), "{error}");
    assert!(one(parse::seconds(), "-1").is_err());
}

#[test]
fn sizes_take_binary_and_decimal_units() {
    for (text, bytes) in [
        ("512", 512),
        ("512B", 512),
        ("64KiB", 64 << 10),
        ("16 MiB", 16 << 20),
        ("1GiB", 1 << 30),
        ("2TiB", 2 << 40),
        ("10kB", 10_000),
        ("5MB", 5_000_000),
        ("1GB", 1_000_000_000),
        ("1TB", 1_000_000_000_000),
    ] {
        assert_eq!(one(parse::size(), text), Ok(bytes), "{text}");
    }
    for text in ["64kib", "1.5GiB", "lots", "MiB", "99999999999TiB"] {
        assert!(one(parse::size(), text).expect_err(text).contains("a size in bytes"), "{text}");
    }
}

#[test]
fn flags_take_true_false_yes_no_and_digits_in_any_case() {
    for text in ["true", "TRUE", "1", "yes", "Yes"] {
        assert_eq!(one(parse::flag(), text), Ok(true), "{text}");
    }
    for text in ["false", "False", "0", "no", "NO"] {
        assert_eq!(one(parse::flag(), text), Ok(false), "{text}");
    }
    assert!(one(parse::flag(), "maybe").expect_err("maybe").ends_with("expected true or false"));
}

#[test]
fn numbers_say_the_range_of_their_type_when_they_overflow() {
    assert_eq!(one(parse::number::<u16>(), "8080"), Ok(8080));
    assert_eq!(one(parse::number::<i64>(), "-3"), Ok(-3));
    let error = one(parse::number::<u16>(), "70000").expect_err("overflow");
    assert!(error.ends_with("expected a whole number from 0 to 65535"), "{error}");
    let error = one(parse::number::<u32>(), "ten").expect_err("not a number");
    assert!(error.ends_with("expected a whole number"), "{error}");
    assert!(one(parse::number::<u32>(), "-1").is_err());
}

#[test]
fn bounds_become_part_of_what_is_expected() {
    let within = || parse::number::<u64>().within(100, 600_000);
    assert_eq!(one(within(), "100"), Ok(100));
    assert_eq!(one(within(), "600000"), Ok(600_000));
    for text in ["99", "600001", "ten"] {
        let error = one(within(), text).expect_err(text);
        assert!(error.ends_with("expected a whole number, from 100 to 600000"), "{error}");
    }
    let error = one(parse::duration().at_least(Duration::from_secs(1)), "10ms").expect_err("short");
    assert!(error.ends_with(", at least 1s"), "{error}");
    let error = one(parse::millis().at_most(Duration::from_secs(60)), "60001").expect_err("long");
    assert!(error.ends_with(", at most 1m"), "{error}");
    assert_eq!(parse::show_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(parse::show_duration(Duration::from_secs(7 * 86_400)), "7d");
}

#[test]
fn urls_need_an_http_scheme_and_a_host() {
    assert_eq!(one(parse::http_url(), "https://api.example.com/v1/"), Ok("https://api.example.com/v1/".to_owned()));
    assert_eq!(
        one(parse::http_url().without_trailing_slash(), "http://127.0.0.1:9//"),
        Ok("http://127.0.0.1:9".to_owned())
    );
    for text in ["ftp://x", "api.example.com", "http://", "https:///path", "HTTP://x"] {
        assert!(one(parse::http_url(), text).is_err(), "{text}");
    }
    let error = one(parse::http_url().example("https://api.anthropic.com"), "x").expect_err("x");
    assert!(error.ends_with("expected an http(s) URL such as https://api.anthropic.com"), "{error}");
}

#[test]
fn enums_match_names_exactly() {
    let level = || parse::one_of([("text", 1), ("json", 2)]);
    assert_eq!(one(level(), "json"), Ok(2));
    let error = one(level(), "JSON").expect_err("case");
    assert!(error.ends_with("expected one of text, json"), "{error}");
}

#[test]
fn lists_and_pairs_skip_blanks_and_name_bad_items_without_their_text() {
    assert_eq!(one(parse::list(parse::number::<u8>()), "1, 2,,3 ,"), Ok(vec![1, 2, 3]));
    let error = one(parse::list(parse::number::<u8>()), "1,secret-ish,3").expect_err("item 2");
    assert!(error.contains("item 2: expected a whole number"), "{error}");
    assert_eq!(
        one(parse::pairs(parse::text()), "user = a:1, event=b:2"),
        Ok(vec![("user".to_owned(), "a:1".to_owned()), ("event".to_owned(), "b:2".to_owned())])
    );
    assert!(one(parse::pairs(parse::text()), "user").expect_err("no =").contains("item 1 is not name=value"));
    assert!(one(parse::pairs(parse::text()), "=x").is_err(), "a pair needs a name");
    let error = one(parse::pairs(parse::number::<i64>()), "cafe=lots").expect_err("value");
    assert!(error.contains("cafe: expected a whole number"), "{error}");
}

#[test]
fn from_str_and_custom_parsers_carry_their_own_words() {
    let ip = || parse::from_str::<std::net::IpAddr>("an IP address, e.g. 0.0.0.0");
    assert_eq!(one(ip(), "::1"), Ok("::1".parse().expect("ip")));
    assert!(one(ip(), "localhost").expect_err("name").ends_with("expected an IP address, e.g. 0.0.0.0"));
    let version = || {
        parse::custom("a version such as v21.0", |v: &str| {
            if v.starts_with('v') { Ok(v.to_owned()) } else { Err("must look like v21.0".to_owned()) }
        })
    };
    assert_eq!(one(version(), "v21.0"), Ok("v21.0".to_owned()));
    assert!(one(version(), "21").expect_err("21").ends_with("is invalid: must look like v21.0"));
    assert_eq!(one(parse::path(), "/mnt/kv/key"), Ok(PathBuf::from("/mnt/kv/key")));
}

#[test]
fn blank_values_are_unset_and_values_are_trimmed() {
    let vars = [("KEM_A", "   "), ("KEM_B", "  x  ")];
    let mut env = Reader::new(&vars);
    assert_eq!(env.get("KEM_A", parse::text()), None);
    assert_eq!(env.get("KEM_B", parse::text()).as_deref(), Some("x"));
    assert_eq!(env.get("KEM_C", parse::text()), None);
    env.finish().expect("nothing wrong");
}

#[test]
fn every_bad_variable_is_reported_at_once_in_reading_order() {
    let vars = [("KEM_A", "x"), ("KEM_B", "2"), ("KEM_C", "soon"), ("KEM_D", "maybe")];
    let mut env = Reader::new(&vars);
    assert_eq!(env.get("KEM_A", parse::number::<u32>()), None);
    assert_eq!(env.get("KEM_B", parse::number::<u32>()), Some(2));
    assert_eq!(env.get("KEM_C", parse::duration()), None);
    assert_eq!(env.get("KEM_D", parse::flag()), None);
    // Read again: same answer, no second report.
    assert_eq!(env.get("KEM_A", parse::number::<u32>()), None);
    let error = env.finish().expect_err("three bad");
    assert_eq!(
        problems(&error),
        [
            "KEM_A=\"x\" is invalid: expected a whole number",
            "KEM_C=\"soon\" is invalid: expected a whole number with a unit: 500ms, 30s, 5m, 1h or 7d (a bare number \
             is seconds)",
            "KEM_D=\"maybe\" is invalid: expected true or false",
        ]
    );
    assert!(error.to_string().starts_with("KEM_A="), "{error}");
    assert_eq!(error.to_string().matches("; ").count(), 2, "{error}");
    assert!(!error.only_rules_broken());
}

#[test]
fn secrets_are_redacted_in_problems_and_listings() {
    let vars = [
        ("KEM_KEY", "sk-very-secret"),
        ("KEM_DB", "postgres://kem:hunter2@db:5432/kem?sslmode=require"),
        ("KEM_KEYS", "good,hunter3"),
    ];
    let mut env = Reader::new(&vars);
    let short = parse::custom("a key of 32 bytes", |_: &str| Err::<(), _>("must be 32 bytes".to_owned()));
    assert_eq!(env.get_secret("KEM_KEY", short), None);
    let scheme = parse::custom("a mysql URL", |_: &str| Err::<(), _>("must be a mysql URL".to_owned()));
    assert_eq!(env.get_secret("KEM_DB", scheme), None);
    let keys =
        parse::list(parse::custom("good", |k: &str| if k == "good" { Ok(()) } else { Err("not good".to_owned()) }));
    assert_eq!(env.get_secret("KEM_KEYS", keys), None);
    let listed: Vec<String> = env.set_variables().iter().map(ToString::to_string).collect();
    let error = env.finish().expect_err("bad secrets").to_string();
    for secret in ["sk-very-secret", "hunter2", "hunter3", "sslmode"] {
        assert!(!error.contains(secret), "{error}");
        assert!(!listed.iter().any(|l| l.contains(secret)), "{listed:?}");
    }
    assert!(error.contains("KEM_KEY=*** is invalid: must be 32 bytes"), "{error}");
    assert!(error.contains("KEM_DB=postgres://***@db:5432/kem is invalid"), "{error}");
    assert!(error.contains("KEM_KEYS=*** is invalid: item 2: not good"), "{error}");
}

#[test]
fn a_variable_can_come_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("key");
    std::fs::write(&file, "from-file\n").expect("write");
    let path = file.display().to_string();
    let vars = [("KEM_KEY_FILE", path.as_str()), ("KEM_PORT_FILE", path.as_str())];
    let mut env = Reader::new(&vars);
    assert_eq!(env.secret("KEM_KEY").map(|s| s.expose().to_owned()).as_deref(), Some("from-file"));
    assert_eq!(env.get("KEM_PORT", parse::number::<u16>()), None);
    let listed: Vec<String> = env.set_variables().iter().map(ToString::to_string).collect();
    assert_eq!(listed[0], format!("KEM_KEY_FILE={path:?} (holding ***)"));
    let error = env.finish().expect_err("not a port");
    assert_eq!(
        problems(&error),
        [format!("KEM_PORT_FILE={path:?} (holding \"from-file\") is invalid: expected a whole number")]
    );
}

#[test]
fn a_variable_and_its_file_are_mutually_exclusive() {
    let vars = [("KEM_KEY", "direct"), ("KEM_KEY_FILE", "/mnt/kv/key")];
    let mut env = Reader::new(&vars);
    assert_eq!(env.secret("KEM_KEY"), None, "neither is used");
    let error = env.finish().expect_err("conflict");
    assert!(matches!(error.problems(), [Problem::Conflict { var }] if var == "KEM_KEY"), "{error}");
    assert!(error.to_string().starts_with("KEM_KEY and KEM_KEY_FILE are both set"), "{error}");
}

#[test]
fn an_unreadable_file_is_a_problem_that_keeps_its_cause() {
    let vars = [("KEM_KEY_FILE", "/nonexistent/kem/key")];
    let mut env = Reader::new(&vars);
    assert_eq!(env.secret("KEM_KEY"), None);
    let error = env.finish().expect_err("unreadable");
    let [problem @ Problem::Unreadable { path, .. }] = error.problems() else { panic!("{error}") };
    assert_eq!(path, &PathBuf::from("/nonexistent/kem/key"));
    let source = std::error::Error::source(problem).expect("the I/O error is kept");
    let io = source.downcast_ref::<std::sync::Arc<std::io::Error>>().expect("an I/O error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().starts_with("KEM_KEY_FILE=\"/nonexistent/kem/key\" cannot be read"), "{error}");
}

#[test]
fn an_empty_file_reads_as_unset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("empty");
    std::fs::write(&file, "\n").expect("write");
    let path = file.display().to_string();
    let vars = [("KEM_KEY_FILE", path.as_str())];
    let mut env = Reader::new(&vars);
    assert_eq!(env.secret("KEM_KEY"), None);
    env.finish().expect("unset, not wrong");
}

#[test]
fn given_pairs_are_left_to_the_component_to_judge() {
    let vars = [("KEM_KEY", "direct"), ("KEM_KEY_FILE", "/nonexistent/kem/key")];
    let mut env = Reader::new(&vars);
    let given = env.given("KEM_KEY");
    assert_eq!(given.value.as_deref(), Some("direct"));
    let Some(super::GivenFile { path, contents: Err(_) }) = given.file else { panic!("an unreadable file") };
    assert_eq!(path, PathBuf::from("/nonexistent/kem/key"));
    let short = parse::custom("32 bytes", |_: &str| Err::<(), _>("must be 32 bytes".to_owned()));
    assert_eq!(env.check_secret("KEM_KEY", "direct", None, short), None);
    let error = env.finish().expect_err("the checked value is refused, the pair itself is not");
    assert_eq!(problems(&error), ["KEM_KEY=*** is invalid: must be 32 bytes"]);
}

#[test]
fn missing_and_broken_rules_name_their_variable_and_value() {
    let vars = [("KEM_TOKEN", "t"), ("KEM_MAX", "10")];
    let mut env = Reader::new(&vars);
    assert!(env.secret("KEM_TOKEN").is_some());
    assert_eq!(env.require("KEM_USER", parse::text(), "KEM_TOKEN is set, so it must be set too"), None);
    assert_eq!(env.get("KEM_MAX", parse::number::<u32>()), Some(10));
    env.broken("KEM_MAX", "max must be at least default (20)");
    env.broken("KEM_DEFAULT", "default (20) must be at most max (10)");
    let error = env.finish().expect_err("problems");
    assert_eq!(
        problems(&error),
        [
            "KEM_USER is not set: KEM_TOKEN is set, so it must be set too",
            "KEM_MAX=\"10\": max must be at least default (20)",
            "KEM_DEFAULT (unset): default (20) must be at most max (10)",
        ]
    );
    assert!(!error.only_rules_broken());
}

#[test]
fn a_rule_only_error_says_so() {
    let mut env = Reader::new(&[("KEM_MAX", "0")]);
    assert_eq!(env.get("KEM_MAX", parse::number::<u32>()), Some(0));
    env.broken("KEM_MAX", "must be positive");
    assert!(env.finish().expect_err("broken").only_rules_broken());
}

#[test]
fn maps_closures_and_arrays_are_sources() {
    let hash: HashMap<String, String> = [("KEM_A".to_owned(), "1".to_owned())].into();
    let tree: BTreeMap<&str, &str> = [("KEM_A", "1")].into();
    let pairs = vec![("KEM_A".to_owned(), "1".to_owned())];
    let closure = |name: &str| (name == "KEM_A").then(|| "1".to_owned());
    let sources: [&dyn Source; 5] = [&hash, &tree, &pairs, &closure, &[("KEM_A", "1")]];
    for source in sources {
        assert_eq!(source.var("KEM_A").as_deref(), Some("1"));
        assert_eq!(source.var("KEM_B"), None);
    }
}
