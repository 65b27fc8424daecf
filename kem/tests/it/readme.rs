//! The README's curl walk-through, run verbatim against the real `kem up`: a newcomer's first
//! experience must work exactly as written.
//!
//! The walk-through is the shell block between `<!-- walkthrough:begin -->` and
//! `<!-- walkthrough:end -->`. It addresses the edge as `$KEM` (defaulting to the README's
//! `http://127.0.0.1:8080`); the test points it at the port this `kem up` got, which is the only
//! difference from what a reader types.

use std::process::Command;

use super::binary::KemProcess;

/// The shell commands of the walk-through (the fenced `sh` blocks between the markers).
fn walkthrough(readme: &str) -> String {
    let begin = readme.find("<!-- walkthrough:begin -->").expect("README has a walkthrough:begin marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("README has a walkthrough:end marker");
    assert!(begin < end, "walkthrough markers out of order");
    let mut script = String::new();
    let mut in_block = false;
    for line in readme[begin..end].lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_block = fence == "```sh" && !in_block;
            continue;
        }
        if in_block {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(script.contains("curl"), "the walkthrough has no curl commands:\n{script}");
    script
}

#[test]
fn the_walkthrough_is_found_in_the_readme() {
    let script = walkthrough(include_str!("../../../README.md"));
    assert!(script.contains("$KEM/api/v1/users:register"), "{script}");
}

#[tokio::test]
async fn the_readme_walkthrough_works_verbatim_against_kem_up() {
    for tool in ["curl", "jq", "bash"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().expect("run sh");
        assert!(found.status.success(), "the README walkthrough needs `{tool}`; install it (scripts/test does)");
    }
    let script = walkthrough(include_str!("../../../README.md"));
    let kem = KemProcess::start(&["up"]);
    let http = kem.roles().into_iter().find_map(|r| r.http).expect("kem up announces the REST edge");
    let script = format!("set -euo pipefail\n{script}");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash").arg("-c").arg(script).env("KEM", format!("http://{http}")).output()
    })
    .await
    .expect("join")
    .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    // Each step checks itself (`--fail-with-body`, `jq -e`); these are the outcomes the README
    // promises a reader.
    for promised in [
        "BUSINESS_STATUS_ACTIVE",
        "local:nts",
        "+821012345678",
        "평일 점심 런치 이벤트",
        "local:claude",
        "EVENT_STATUS_RECOMMENDED",
        "replayed refresh token: HTTP 401",
        "without a token: HTTP 401",
        "deleted ",
    ] {
        assert!(
            stdout.contains(promised),
            "the walkthrough output lacks {promised:?}:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    kem.terminate().await;
}
