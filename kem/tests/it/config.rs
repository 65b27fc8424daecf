//! Configuration precedence through the real binary: flag > KEM_* environment > TOML file > default.

use std::process::Command;

fn kem_config(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kem"));
    cmd.args(args).arg("config");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEM_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kem config");
    assert!(out.status.success(), "kem config failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn flags_beat_environment_beat_file_beat_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kem.toml");
    std::fs::write(
        &file,
        "base_port = 9100\nhttp_port = 9180\nlog_level = \"debug\"\ntrust_domain = \"file.example\"\n",
    )
    .expect("write");
    let file = file.to_string_lossy().into_owned();

    let out = kem_config(
        &["--config", &file, "--base-port", "9300"],
        &[("KEM_BASE_PORT", "9200"), ("KEM_HTTP_PORT", "9280")],
    );
    assert!(out.contains("base_port = 9300"), "flag wins:\n{out}");
    assert!(out.contains("http_port = 9280"), "env beats file:\n{out}");
    assert!(out.contains("log_level = \"debug\""), "file beats default:\n{out}");
    assert!(out.contains("trust_domain = \"file.example\""), "file value:\n{out}");
    assert!(out.contains("namespace = \"kem\""), "default:\n{out}");
}

#[test]
fn a_bad_config_file_names_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kem.toml");
    std::fs::write(&file, "base_prot = 1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kem"))
        .args(["--config", &file.to_string_lossy(), "config"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("base_prot") && err.contains("kem.toml"), "{err}");
}
