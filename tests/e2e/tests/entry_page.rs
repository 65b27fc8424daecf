//! The participant's journey in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver from Debian's `chromium-driver`, started by the test on a free port), on the
//! whole platform (PostgreSQL, Redis, every role over the mesh). An owner publishes an event
//! through the REST edge; a participant opens the hosted entry page from an Instagram link,
//! fills the form, ticks the consents and gets a receipt code; the same phone again is a
//! duplicate; once the owner ends the event the page says it is closed, with its dates.
//!
//! Screenshots of every step are kept in `target/e2e-artifacts/`. The chromedriver binary comes
//! from `KEM_TEST_CHROMEDRIVER` (set by `scripts/test`, which installs it) or `/usr/bin/chromedriver`;
//! without one the test fails, it never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use kem::Role;
use kem::platform::ServiceConfigs;
use kem_testkit::roles::TestPlatform;
use serde_json::{Value, json};

use crate::support::Rest;

/// Where the screenshots go: `<workspace>/target/e2e-artifacts/`.
pub(crate) fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A chromedriver process on a free loopback port, ended when dropped (also when the test
/// fails half-way) together with the browsers it started.
pub(crate) struct Chromedriver {
    child: std::process::Child,
    port: u16,
    url: String,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        // chromedriver's `/shutdown` quits every session's browser, then chromedriver itself;
        // killing chromedriver alone would leave Chromium running.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        if let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let _ = stream.read(&mut [0_u8; 512]);
        }
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            // std has no way to await a child's exit with a bound: poll it for up to 5 s.
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chromedriver {
    pub(crate) async fn start() -> Chromedriver {
        let binary = std::env::var("KEM_TEST_CHROMEDRIVER").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| {
            let default = "/usr/bin/chromedriver";
            assert!(
                Path::new(default).exists(),
                "no chromedriver: set KEM_TEST_CHROMEDRIVER or install Debian's chromium and chromium-driver \
                 (scripts/test does both)"
            );
            default.to_owned()
        });
        let port = kem_testkit::net::free_port();
        let child = std::process::Command::new(&binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().expect("HTTP client");
        let status = format!("{url}/status");
        kem_testkit::eventually("chromedriver answers /status as ready", Duration::from_secs(20), || {
            let (http, status) = (http.clone(), status.clone());
            async move {
                let Ok(response) = http.get(&status).send().await else { return false };
                let body: Value = response.json().await.unwrap_or_default();
                body.pointer("/value/ready").and_then(Value::as_bool) == Some(true)
            }
        })
        .await;
        Chromedriver { child, port, url }
    }

    /// A headless Chromium session preferring Korean, with a phone-sized window.
    pub(crate) async fn browser(&self) -> Client {
        let mut options = serde_json::Map::new();
        let mut chrome = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=412,915", "--lang=ko-KR", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-sync", "--disable-component-update"],
            "prefs": {"intl.accept_languages": "ko-KR,ko"},
        });
        if let Ok(binary) = std::env::var("KEM_TEST_CHROMIUM") {
            chrome["binary"] = json!(binary);
        }
        options.insert("goog:chromeOptions".to_owned(), chrome);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(options)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"))
    }

    /// Ends chromedriver (and the browsers it started).
    pub(crate) fn stop(self) {
        drop(self);
    }
}

pub(crate) async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The visible text of the page.
pub(crate) async fn text(browser: &Client) -> String {
    browser.find(Locator::Css("body")).await.expect("body").text().await.expect("body text")
}

/// Every resource the current page loaded came from `origin`, and the HTML names no other
/// origin (no font, script, stylesheet or image from elsewhere).
pub(crate) async fn assert_same_origin_only(browser: &Client, origin: &str) {
    let loaded = browser
        .execute("return performance.getEntriesByType('resource').map(function (e) { return e.name; });", vec![])
        .await
        .expect("resource timings");
    let loaded: Vec<String> = serde_json::from_value(loaded).expect("a list of URLs");
    // Reported, never asserted: time to first byte and the document's size as the browser saw
    // them (a debug build sharing two cores with the whole platform; the figure for the issue note).
    let timing = browser
        .execute(
            "var n = performance.getEntriesByType('navigation')[0]; \
             return [n.responseStart - n.requestStart, n.decodedBodySize];",
            vec![],
        )
        .await
        .expect("navigation timing");
    eprintln!("entry page: time to first byte (ms), document bytes = {timing}");
    assert!(!loaded.is_empty(), "the page loads at least its stylesheet");
    for url in &loaded {
        assert!(url.starts_with(&format!("{origin}/")), "a request to another origin: {url} (all: {loaded:?})");
    }
    let html = browser.source().await.expect("page source");
    for (at, _) in html.match_indices("://") {
        let start = html[..at].rfind(['"', '\'', ' ', '(']).map_or(0, |i| i + 1);
        let url = &html[start..(at + 3 + origin.len()).min(html.len())];
        assert!(url.starts_with(origin), "the page names another origin: {url}");
    }
}

/// Fills and submits the entry form on the current page.
pub(crate) async fn enter(browser: &Client, name: &str, phone: &str) {
    browser.find(Locator::Id("name")).await.expect("name field").send_keys(name).await.expect("type the name");
    browser.find(Locator::Id("phone")).await.expect("phone field").send_keys(phone).await.expect("type the phone");
    for id in ["privacy", "marketing", "age"] {
        browser.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}")).click().await.expect("tick");
    }
    browser.find(Locator::Css("button[type=submit]")).await.expect("submit button").click().await.expect("submit");
}

#[tokio::test]
async fn a_participant_enters_through_the_hosted_page_in_a_browser() {
    // The public base URL names the edge's own port, so the page's image and links are on its
    // origin, as behind the production host name.
    let port = kem_testkit::net::free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let event = kem_event::EventConfig { public_base_url: origin.clone(), ..kem_event::EventConfig::default() };
    let configs = ServiceConfigs {
        user: Some(kem_user::UserConfig::for_tests()),
        event: Some(event),
        ..ServiceConfigs::default()
    };
    let platform =
        TestPlatform::start_backed_adjusted(&Role::all(), configs, |settings| settings.http_port = port).await;
    assert_eq!(platform.http_addr().port(), port);
    let edge = Rest::new(platform.http_addr());

    // An owner publishes an event whose period is open (the local NTS, AI and image providers).
    let owner = crate::hostile::sign_up(&edge, "page@example.com").await;
    let id = crate::hostile::published_event(&owner).await;
    // Selecting a recommendation gave the event the recommendation's title.
    let title = owner.get(&format!("/api/v1/events/{id}")).await.expect(200).str("/event/title");

    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;
    let journey = tokio::spawn(participant(browser.clone(), origin, id, title, owner)).await;
    // Whatever happened in the browser, its session ends here: a failed step must not leave
    // Chromium running.
    let closed = browser.close().await;
    driver.stop();
    if let Err(failure) = journey {
        std::panic::resume_unwind(failure.into_panic());
    }
    closed.expect("close the browser session");
    platform.stop().await;
}

/// The participant's steps in `browser`, on the event `id` of `owner` served at `origin`.
async fn participant(browser: Client, origin: String, id: String, title: String, owner: Rest) {
    // The Instagram link: the form, the notice, the consents; nothing from another origin.
    let page = format!("{origin}/e/{id}?ch=instagram");
    browser.goto(&page).await.expect("open the entry page");
    let shown = text(&browser).await;
    assert!(shown.contains(&title) && shown.contains("응모하기"), "{shown}");
    assert!(shown.contains("개인정보 수집·이용 안내"), "the notice is shown: {shown}");
    let channel = browser.find(Locator::Css("input[name=ch]")).await.expect("the channel is kept");
    assert_eq!(channel.attr("value").await.expect("value").as_deref(), Some("instagram"));
    screenshot(&browser, "entry-page-1-form.png").await;
    // The form itself is below the fold on a phone: its own screenshot.
    let form = browser.find(Locator::Css("form")).await.expect("the entry form");
    let png = form.screenshot().await.expect("form screenshot");
    std::fs::write(artifacts().join("entry-page-1-form-fields.png"), png).expect("write the form screenshot");
    assert_same_origin_only(&browser, &origin).await;

    enter(&browser, "홍길동", "010-2345-6789").await;
    let receipt = browser.wait().for_element(Locator::Id("receipt")).await.expect("the receipt page");
    let code = receipt.text().await.expect("receipt code");
    assert!(
        code.len() == 11 && code.as_bytes()[5] == b'-' && code.chars().all(|c| c == '-' || c.is_ascii_alphanumeric()),
        "a receipt code XXXXX-XXXXX: {code:?}"
    );
    assert!(text(&browser).await.contains("응모가 완료되었습니다"));
    screenshot(&browser, "entry-page-2-receipt.png").await;
    assert_same_origin_only(&browser, &origin).await;

    // The same phone from a fresh page: a duplicate, with the event's dates.
    browser.goto(&page).await.expect("open the entry page again");
    enter(&browser, "홍길동", "01023456789").await;
    browser.wait().for_element(Locator::Css("div.message.alert")).await.expect("the refusal page");
    let duplicate = text(&browser).await;
    assert!(duplicate.contains("이미 참여하셨습니다") && duplicate.contains("응모 기간"), "{duplicate}");
    screenshot(&browser, "entry-page-3-duplicate.png").await;

    // The owner ends the event: the page says it is closed, with its dates, and has no form.
    owner.post(&format!("/api/v1/events/{id}:end"), json!({})).await.expect(200);
    browser.goto(&page).await.expect("open the entry page after the end");
    let closed = text(&browser).await;
    assert!(closed.contains("응모가 마감되었습니다") && closed.contains("응모 기간"), "{closed}");
    assert!(closed.contains("년") && closed.contains("월"), "dates in Seoul time: {closed}");
    assert!(browser.find(Locator::Css("form")).await.is_err(), "no form on a closed event");
    screenshot(&browser, "entry-page-4-closed.png").await;
}
