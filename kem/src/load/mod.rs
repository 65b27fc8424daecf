//! `kem load`: the whole platform under load through the REST edge, then consistency checks.
//!
//! Owners sign up, create events and drive them to PUBLISHED (recommendations, images, publish),
//! and each event's terms version is read from its public view; then participants (14 or older,
//! consenting to those terms) enter at a fixed arrival rate (open loop: latency counts from each
//! entry's intended send time, so a stall shows as latency, not as a lower rate), a share of them
//! entering twice; owners poll their analytics meanwhile. At the end the run checks what the
//! platform promises: every accepted entry is stored (none lost), no phone is stored twice, every
//! duplicate was answered 409, analytics totals equal the stored entries, and every published
//! channel reached a final state.
//!
//! Everything is bounded: a fixed number of entries and a hard time limit. Traffic goes only to
//! the given edge (loopback in tests and `--spawn` runs).

pub mod backing;
pub mod client;
pub mod edge_metrics;
pub mod faults;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use client::{EdgeClient, Reply};
use stats::Stats;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Base URL of the REST edge.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Owners that sign up, each with one event.
    #[arg(long, default_value_t = 3)]
    pub owners: usize,
    /// Participant entries to send in all (duplicates included).
    #[arg(long, default_value_t = 600)]
    pub entries: usize,
    /// Entries per second (open-loop arrival rate).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Share of entries that repeat an earlier participant's phone (answered 409).
    #[arg(long, default_value_t = 0.1)]
    pub duplicates: f64,
    /// Hard limit of the whole run in seconds.
    #[arg(long, default_value_t = 300)]
    pub max_secs: u64,
    /// Send `X-Forwarded-For` with simulated client addresses (the edge must trust this machine
    /// as a proxy: `--trusted-proxies 127.0.0.1/32`), so per-IP limits see many users.
    #[arg(long)]
    pub forwarded_for: bool,
    /// Start a platform of OS processes (`kem up --processes`, private Redis, fresh PostgreSQL
    /// databases) for this run and inject this fault mid-load; `--target` is then ignored.
    #[arg(long, value_enum)]
    pub fault: Option<faults::Fault>,
    /// How long an outage fault lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    pub outage_secs: u64,
    /// PostgreSQL admin URL the `--fault` run creates its databases on.
    #[arg(long, env = "KEM_LOAD_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_admin_url: String,
    /// After the `--entries`, the load drops to this rate (0: no second phase), to measure how
    /// soon the platform is back to normal after an overload.
    #[arg(long, default_value_t = 0)]
    pub after_rate: u32,
    /// Entries sent at `--after-rate`.
    #[arg(long, default_value_t = 0)]
    pub after_entries: usize,
    /// The gateway's Prometheus endpoint (`http://<admin>/metrics`): when given, the report adds
    /// the edge's own latency of accepted entries per phase (free of the driver's queueing).
    #[arg(long)]
    pub edge_metrics: Option<String>,
}

impl Default for LoadArgs {
    fn default() -> Self {
        LoadArgs {
            target: "http://127.0.0.1:8080".into(),
            owners: 3,
            entries: 600,
            rate: 50,
            duplicates: 0.1,
            max_secs: 300,
            forwarded_for: true,
            fault: None,
            outage_secs: 10,
            postgres_admin_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            after_rate: 0,
            after_entries: 0,
            edge_metrics: None,
        }
    }
}

/// What the edge itself measured of accepted entries in one phase of a run.
#[derive(Debug, Clone)]
pub struct EdgePhase {
    /// `load` (the `--rate` phase) or `after` (the `--after-rate` phase).
    pub phase: &'static str,
    /// Entries answered 2xx.
    pub accepted: u64,
    /// The phase's length, from its first scheduled entry to the next scrape.
    pub length: Duration,
    /// Median latency of the accepted entries.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// One owner's published event.
#[derive(Clone)]
pub struct PublishedEvent {
    /// Its id.
    pub event_id: String,
    /// The owner's signed-in client.
    pub owner: EdgeClient,
    /// The version of the event's terms (GetPublicEvent `event.terms.version`): what every entry's
    /// privacy consent names.
    pub terms_version: String,
}

/// The consistency checks of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consistency {
    /// Entries answered 2xx (or found stored after an unanswered attempt and a 409 retry).
    pub accepted: u64,
    /// Entries stored (participation ListParticipants totals).
    pub stored: u64,
    /// Accepted entries not stored.
    pub lost: u64,
    /// Phones stored more than once (duplicate effects).
    pub duplicate_effects: u64,
    /// Deliberate duplicates sent.
    pub duplicates_sent: u64,
    /// Deliberate duplicates answered 409.
    pub duplicates_409: u64,
    /// Deliberate duplicates that got no verdict (no answer, 429, 5xx — spent error budget).
    pub duplicates_unanswered: u64,
    /// Events whose analytics total equals the stored entries.
    pub analytics_matching: u64,
    /// Events checked.
    pub events: u64,
    /// Channels delivered (final state) over channels published.
    pub channels_final: u64,
    /// Of the final ones, those that FAILED (with a reason).
    pub channels_failed: u64,
    /// Channels published.
    pub channels: u64,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Per-route numbers.
    pub routes: BTreeMap<&'static str, stats::RouteStats>,
    /// Wall time of the entry phase.
    pub entry_phase: Duration,
    /// The checks.
    pub consistency: Consistency,
    /// Requests that spent the error budget (no answer, 429, 5xx) over all requests.
    pub budget: (u64, u64),
    /// With `--after-rate`: from the moment the load dropped to the end of the last entry of the
    /// second phase that was refused, unanswered or slower than 100 ms (zero: none was).
    pub recovery: Option<Duration>,
    /// With `--edge-metrics`: per phase, the edge's count of accepted (2xx) entries, the phase's
    /// length, and their p50 and p99 latency.
    pub edge_latency: Vec<EdgePhase>,
}

impl LoadReport {
    /// The summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let c = &self.consistency;
        let mut recovery = match self.recovery {
            Some(after) => format!(" | back to normal {:.2} s after the load dropped", after.as_secs_f64()),
            None => String::new(),
        };
        for phase in &self.edge_latency {
            recovery.push_str(&format!(
                " | edge-side, {}: {} accepted ({:.0}/s) p50 {:.1} ms p99 {:.1} ms",
                phase.phase,
                phase.accepted,
                phase.accepted as f64 / phase.length.as_secs_f64().max(0.001),
                phase.p50.as_secs_f64() * 1000.0,
                phase.p99.as_secs_f64() * 1000.0
            ));
        }
        format!(
            "{}\nentries: accepted {} stored {} lost {} duplicate-effects {} | duplicates sent {} answered 409 {} unanswered {} | analytics matching {}/{} events | channels final {}/{} ({} failed) | error budget used {}/{} requests{}\n",
            stats::table(&self.routes, self.entry_phase),
            c.accepted,
            c.stored,
            c.lost,
            c.duplicate_effects,
            c.duplicates_sent,
            c.duplicates_409,
            c.duplicates_unanswered,
            c.analytics_matching,
            c.events,
            c.channels_final,
            c.channels,
            c.channels_failed,
            self.budget.1,
            self.budget.0,
            recovery
        )
    }
}

// Channels whose local providers publish at any hour (Kakao advertising messages wait out the
// 20:00–08:00 KST quiet hours, which would make a run's outcome depend on the clock).
const PUBLISH_CHANNELS: [&str; 2] = ["CHANNEL_INSTAGRAM", "CHANNEL_URIDONGNE_TV"];
const PASSWORD: &str = "Load-Test-Passw0rd!";

fn simulated_ip(n: u64) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, (n & 0xff).max(1))
}

/// Retries `step` while the platform answers without a verdict (no answer, 429, 5xx), so setup
/// survives the faults a run injects. Gives up after `deadline`.
async fn persist<F, Fut>(deadline: Instant, mut step: F) -> anyhow::Result<Reply>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        let reply = step().await;
        let transient = reply.status == 0 || reply.status == 429 || reply.status >= 500;
        if !transient {
            return Ok(reply);
        }
        anyhow::ensure!(
            Instant::now() + delay < deadline,
            "gave up after transient failures; last {}: {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn expect(reply: Reply, what: &str) -> anyhow::Result<Reply> {
    anyhow::ensure!(reply.ok(), "{what} answered {}: {}", reply.status, reply.body);
    Ok(reply)
}

/// Polls a job until it is terminal; its final body.
async fn finished_job(owner: &EdgeClient, job_id: &str, deadline: Instant) -> anyhow::Result<Reply> {
    loop {
        let reply = persist(deadline, || owner.get("GET /api/v1/jobs/{id}", format!("/api/v1/jobs/{job_id}"))).await?;
        let reply = expect(reply, "GetJob")?;
        match reply.str("/job/state").as_str() {
            "JOB_STATE_SUCCEEDED" => return Ok(reply),
            "JOB_STATE_FAILED" => anyhow::bail!("job {job_id} failed: {}", reply.body),
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "job {job_id} did not finish in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The version of the terms of the published event `id`, from the public view anyone reads
/// (`GET /api/v1/public/events/{id}`).
async fn terms_version(client: &EdgeClient, id: &str, deadline: Instant) -> anyhow::Result<String> {
    let path = format!("/api/v1/public/events/{id}");
    let event = expect(
        persist(deadline, || client.get("GET /api/v1/public/events/{id}", path.clone())).await?,
        "GetPublicEvent",
    )?;
    let version = event.str("/event/terms/version");
    anyhow::ensure!(!version.is_empty(), "the public event {id} has no terms: {}", event.body);
    Ok(version)
}

/// Signs an owner up and drives one event to PUBLISHED, and reads the version of its terms.
pub async fn publish_one(edge: &EdgeClient, n: usize, run: &str, deadline: Instant) -> anyhow::Result<PublishedEvent> {
    let email = format!("load-{run}-{n}@example.com");
    let anonymous = edge.from_ip(simulated_ip(1_000_000 + n as u64));
    let register = json!({
        "email": email, "password": PASSWORD, "name": "부하 테스트", "phone": format!("010-7{:03}-{:04}", n % 1000, n % 10_000),
        "storeName": format!("가게 {n}"), "businessCategory": "BUSINESS_CATEGORY_CAFE", "region": "서울 마포구",
        "businessNumber": "124-81-00998",
    });
    let registered =
        persist(deadline, || anonymous.post("POST /api/v1/users:register", "/api/v1/users:register", register.clone()))
            .await?;
    anyhow::ensure!(
        registered.ok() || registered.status == 409,
        "register answered {}: {}",
        registered.status,
        registered.body
    );
    let login = json!({"email": email, "password": PASSWORD});
    let login = expect(
        persist(deadline, || anonymous.post("POST /api/v1/auth:login", "/api/v1/auth:login", login.clone())).await?,
        "login",
    )?;
    let owner = anonymous.signed_in(&login.str("/tokenPair/accessToken"));

    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let event = json!({
        "title": format!("부하 이벤트 {n}"), "objective": "EVENT_OBJECTIVE_NEW_CUSTOMERS", "targetAudience": "동네 주민",
        "budget": {"amountKrw": "500000"},
        "period": {"startTime": fmt(now - time::Duration::hours(1)), "endTime": fmt(now + time::Duration::days(7))},
        "prize": {"name": "커피 쿠폰", "winnerCount": 10, "unitValue": {"amountKrw": "5000"}},
        "participationMethod": "PARTICIPATION_METHOD_DRAW",
    });
    let path = format!("/api/v1/events?requestId=load-{run}-{n}");
    let created =
        expect(persist(deadline, || owner.post("POST /api/v1/events", &path, event.clone())).await?, "CreateEvent")?;
    let id = created.str("/event/eventId");

    let job = expect(
        persist(deadline, || {
            owner.post("POST /api/v1/events/{id}:recommend", format!("/api/v1/events/{id}:recommend"), json!({}))
        })
        .await?,
        "RequestRecommendations",
    )?;
    let done = finished_job(&owner, &job.str("/job/jobId"), deadline).await?;
    let recommendation = done.str("/job/recommendations/recommendations/0/recommendationId");
    let select = json!({"recommendationId": recommendation});
    expect(
        persist(deadline, || {
            owner.post(
                "POST /api/v1/events/{id}:selectRecommendation",
                format!("/api/v1/events/{id}:selectRecommendation"),
                select.clone(),
            )
        })
        .await?,
        "SelectRecommendation",
    )?;
    let images = json!({"channels": PUBLISH_CHANNELS});
    let job = expect(
        persist(deadline, || {
            owner.post(
                "POST /api/v1/events/{id}:generateImages",
                format!("/api/v1/events/{id}:generateImages"),
                images.clone(),
            )
        })
        .await?,
        "RequestImages",
    )?;
    let done = finished_job(&owner, &job.str("/job/jobId"), deadline).await?;
    let image = json!({"imageId": done.str("/job/images/imageIds/0")});
    expect(
        persist(deadline, || {
            owner.post(
                "POST /api/v1/events/{id}:selectImage",
                format!("/api/v1/events/{id}:selectImage"),
                image.clone(),
            )
        })
        .await?,
        "SelectImage",
    )?;
    let publish = json!({"channels": PUBLISH_CHANNELS});
    expect(
        persist(deadline, || {
            owner.post("POST /api/v1/events/{id}:publish", format!("/api/v1/events/{id}:publish"), publish.clone())
        })
        .await?,
        "PublishEvent",
    )?;
    // Participants consent to the terms fixed at publication: read their version once, as the
    // entry page does before it shows the form.
    let terms_version = terms_version(&anonymous, &id, deadline).await?;
    Ok(PublishedEvent { event_id: id, owner, terms_version })
}

/// What the entry phase learned per event.
#[derive(Debug, Default)]
struct EventLedger {
    /// Phone → accepted (stored for sure).
    accepted: BTreeSet<String>,
    /// Phones whose every attempt went unanswered: stored or not, unknown.
    unknown: BTreeSet<String>,
    duplicates_sent: u64,
    duplicates_409: u64,
    duplicates_unanswered: u64,
}

/// The participant-entry route, as recorded.
pub const ENTER_ROUTE: &str = "POST /api/v1/events/{id}/participants";

/// The RPC behind [`ENTER_ROUTE`], as the edge's metrics name it.
pub const ENTER_RPC: &str = "/kem.participation.v1.ParticipationService/Enter";

/// The same route in the second phase (`--after-rate`), recorded apart.
pub const ENTER_AFTER_ROUTE: &str = "POST /api/v1/events/{id}/participants (after)";

/// A second-phase entry slower than this is not "back to normal".
const NORMAL_LATENCY: Duration = Duration::from_millis(100);

/// Runs the whole scenario against `args.target`.
pub async fn run(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    run_with(args, Arc::new(Stats::default())).await
}

/// [`run`], recording into `stats` (which a fault injector watches).
pub async fn run_with(args: &LoadArgs, stats: Arc<Stats>) -> anyhow::Result<LoadReport> {
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let edge = EdgeClient::new(&args.target, stats.clone())?;
    let run_id = format!("{:x}", rand::random::<u32>());

    // Setup: owners and published events (concurrently; each survives transient failures).
    let mut setups = Vec::new();
    for n in 0..args.owners.max(1) {
        let edge = edge.clone();
        let run_id = run_id.clone();
        setups.push(tokio::spawn(async move { publish_one(&edge, n, &run_id, deadline).await }));
    }
    let mut events = Vec::new();
    for setup in setups {
        events.push(setup.await??);
    }
    eprintln!("load: {} events published; entering at {}/s", events.len(), args.rate);

    // Owners poll their analytics while participants enter.
    let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut pollers = Vec::new();
    for event in &events {
        let (owner, id, polling) = (event.owner.clone(), event.event_id.clone(), polling.clone());
        pollers.push(tokio::spawn(async move {
            while polling.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                owner.get("GET /api/v1/events/{id}/analytics", format!("/api/v1/events/{id}/analytics")).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }

    // Entries, open loop.
    let ledgers: Arc<std::sync::Mutex<Vec<EventLedger>>> =
        Arc::new(std::sync::Mutex::new(events.iter().map(|_| EventLedger::default()).collect()));
    let scrape = |url: Option<String>| async move {
        match url {
            Some(url) => match crate::telemetry::scrape::metrics_text(&url).await {
                Ok(text) => Some((edge_metrics::Buckets::parse(&text, ENTER_RPC), Instant::now())),
                Err(error) => {
                    eprintln!("load: cannot read the edge's metrics at {url}: {error:#}");
                    None
                }
            },
            None => None,
        }
    };
    let before = scrape(args.edge_metrics.clone()).await;
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let start = Instant::now();
    // The load drops (second phase) right after the last first-phase entry is due.
    let dropped_at = start + period.mul_f64(args.entries as f64);
    let after_period = Duration::from_secs_f64(1.0 / f64::from(args.after_rate.max(1)));
    let after_entries = if args.after_rate > 0 { args.after_entries } else { 0 };
    // Second phase: (start offset, end offset, normal?) of every entry.
    let after: Arc<std::sync::Mutex<Vec<(Duration, bool)>>> = Arc::default();
    let mut tasks = Vec::with_capacity(args.entries + after_entries);
    let mut issued_per_event = vec![0u64; events.len()];
    let progress = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut last = (0, 0);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let totals = stats.totals();
                if totals != last {
                    eprintln!(
                        "load: t={:>4.0}s requests={} budget-errors={}",
                        start.elapsed().as_secs_f64(),
                        totals.0,
                        totals.1
                    );
                    last = totals;
                }
            }
        })
    };
    let mut at_drop = None;
    for i in 0..args.entries + after_entries {
        let second = i >= args.entries;
        if second && at_drop.is_none() && args.edge_metrics.is_some() {
            // The first-phase entries still in flight finish within a few hundred milliseconds
            // and are counted in the second phase's figures: a small, conservative overlap.
            tokio::time::sleep_until(dropped_at).await;
            at_drop = Some(scrape(args.edge_metrics.clone()).await);
        }
        let intended = if second {
            dropped_at + after_period.mul_f64((i - args.entries) as f64)
        } else {
            start + period.mul_f64(i as f64)
        };
        if intended > deadline {
            break;
        }
        let after = after.clone();
        tokio::time::sleep_until(intended).await;
        let index = i % events.len();
        let seq = issued_per_event[index];
        issued_per_event[index] += 1;
        // A duplicate repeats a phone of this event sent earlier; phones differ in their last four
        // digits within an event, so the masked list maps back to them.
        // Duplicates repeat phones sent a while ago (not in flight), so the original is answered
        // first and the duplicate must be the one refused.
        const SETTLED: u64 = 20;
        let duplicate = seq > SETTLED && rand::random::<f64>() < args.duplicates;
        let number = if duplicate { rand::random_range(0..seq - SETTLED) } else { seq };
        let phone = format!("010-{:04}-{:04}", 1000 + index % 9000, number % 10_000);
        let client = if args.forwarded_for { edge.from_ip(simulated_ip(i as u64 + 1)) } else { edge.clone() };
        let event_id = events[index].event_id.clone();
        let terms_version = events[index].terms_version.clone();
        let ledgers = ledgers.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({
                "name": format!("참가자{number}"), "phone": phone, "age14OrOlder": true,
                "privacyConsent": {"granted": true, "consentTextVersion": terms_version},
                "marketingConsent": {"granted": number % 2 == 0, "consentTextVersion": "2026-01"},
                "sourceChannel": "CHANNEL_INSTAGRAM",
            });
            let path = format!("/api/v1/events/{event_id}/participants");
            let route = if second { ENTER_AFTER_ROUTE } else { ENTER_ROUTE };
            let mut reply = client.send_at(route, reqwest::Method::POST, &path, Some(&body), intended).await;
            if second {
                let normal = reply.ok() || reply.status == 409 || reply.status == 400;
                let ended = intended.elapsed();
                let end = intended.saturating_duration_since(dropped_at) + ended;
                after.lock().unwrap_or_else(|p| p.into_inner()).push((end, normal && ended <= NORMAL_LATENCY));
            }
            let mut retried = false;
            // An unanswered entry is retried (a real client would), after the `Retry-After` the
            // edge asked for (bounded); a 409 on the retry means the first attempt was stored.
            for _ in 0..3 {
                if !(reply.status == 0 || reply.status >= 500 || reply.status == 429) {
                    break;
                }
                // When the load drops, it drops: first-phase clients stop retrying, so the second
                // phase measures the platform's recovery, not a backlog of retries.
                if !second && after_entries > 0 && Instant::now() >= dropped_at {
                    break;
                }
                retried = true;
                let wait =
                    reply.retry_after.unwrap_or_default().clamp(Duration::from_millis(300), Duration::from_secs(2));
                tokio::time::sleep(wait).await;
                reply = client.send_at(route, reqwest::Method::POST, &path, Some(&body), Instant::now()).await;
            }
            let mut ledgers = ledgers.lock().unwrap_or_else(|p| p.into_inner());
            let ledger = &mut ledgers[index];
            let known = ledger.accepted.contains(&phone);
            let unanswered = reply.status == 0 || reply.status >= 500 || reply.status == 429;
            // Requests race: whichever entry of a phone the service stores first is the original,
            // and every other one is a duplicate, whatever this driver intended.
            if reply.ok() {
                if known {
                    // A second acceptance of one phone: a duplicate effect the checks will flag.
                    ledger.duplicates_sent += 1;
                }
                ledger.unknown.remove(&phone);
                ledger.accepted.insert(phone);
            } else if reply.status == 409 {
                if retried && !known {
                    // Our own earlier attempt went unanswered but was stored.
                    ledger.unknown.remove(&phone);
                    ledger.accepted.insert(phone);
                } else {
                    ledger.duplicates_sent += 1;
                    ledger.duplicates_409 += 1;
                }
            } else if unanswered {
                if duplicate {
                    ledger.duplicates_sent += 1;
                    ledger.duplicates_unanswered += 1;
                }
                if !known {
                    ledger.unknown.insert(phone);
                }
            } else if duplicate {
                // Any other verdict on a duplicate (a 400, say) is neither 409 nor unanswered.
                ledger.duplicates_sent += 1;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let entry_phase = start.elapsed();
    let at_end = scrape(args.edge_metrics.clone()).await;
    polling.store(false, std::sync::atomic::Ordering::Relaxed);
    for poller in pollers {
        let _ = poller.await;
    }
    progress.abort();

    let ledgers = std::mem::take(&mut *ledgers.lock().unwrap_or_else(|p| p.into_inner()));
    let consistency = check(&events, &ledgers, deadline).await?;
    let routes = stats.snapshot();
    let budget = stats.totals();
    let recovery = (after_entries > 0).then(|| {
        let after = after.lock().unwrap_or_else(|p| p.into_inner());
        after.iter().filter(|(_, normal)| !normal).map(|(end, _)| *end).max().unwrap_or_default()
    });
    let mut edge_latency = Vec::new();
    let (drop_scraped, end_scraped) = (at_drop.flatten(), at_end);
    let phases = match (before, drop_scraped, end_scraped) {
        (Some(before), Some((drop, dropped)), Some((end, ended))) => vec![
            ("load", drop.since(&before.0), dropped.saturating_duration_since(start)),
            ("after", end.since(&drop), ended.saturating_duration_since(dropped)),
        ],
        (Some(before), None, Some((end, ended))) => {
            vec![("load", end.since(&before.0), ended.saturating_duration_since(start))]
        }
        _ => Vec::new(),
    };
    for (phase, buckets, length) in phases {
        if let (Some(p50), Some(p99)) = (buckets.quantile(0.5), buckets.quantile(0.99)) {
            edge_latency.push(EdgePhase { phase, accepted: buckets.count(), length, p50, p99 });
        }
    }
    Ok(LoadReport { routes, entry_phase, consistency, budget, recovery, edge_latency })
}

/// Reads back what was stored and compares it with what was accepted.
async fn check(events: &[PublishedEvent], ledgers: &[EventLedger], deadline: Instant) -> anyhow::Result<Consistency> {
    let mut c = Consistency { events: events.len() as u64, ..Consistency::default() };
    let settle = Instant::now() + Duration::from_secs(30);
    for (event, ledger) in events.iter().zip(ledgers) {
        let id = &event.event_id;
        c.accepted += ledger.accepted.len() as u64;
        c.duplicates_sent += ledger.duplicates_sent;
        c.duplicates_409 += ledger.duplicates_409;
        c.duplicates_unanswered += ledger.duplicates_unanswered;
        // Every stored entry, by the last four digits of its masked phone.
        let mut stored: BTreeMap<String, u64> = BTreeMap::new();
        let mut token = String::new();
        loop {
            let path = format!("/api/v1/events/{id}/participants?pageSize=500&pageToken={token}");
            let page = expect(
                persist(deadline, || event.owner.get("GET /api/v1/events/{id}/participants", &path)).await?,
                "ListParticipants",
            )?;
            for entry in page.body.get("entries").and_then(Value::as_array).into_iter().flatten() {
                let masked = entry.get("maskedPhone").and_then(Value::as_str).unwrap_or_default();
                let last4 = masked.rsplit('-').next().unwrap_or_default().to_owned();
                *stored.entry(last4).or_default() += 1;
            }
            token = page.str("/nextPageToken");
            if token.is_empty() {
                break;
            }
        }
        let total: u64 = stored.values().sum();
        c.stored += total;
        c.duplicate_effects += stored.values().filter(|n| **n > 1).map(|n| n - 1).sum::<u64>();
        c.lost += ledger
            .accepted
            .iter()
            .filter(|phone| !stored.contains_key(phone.rsplit('-').next().unwrap_or_default()))
            .count() as u64;

        // Analytics converge on the stored count (aggregation is asynchronous).
        loop {
            let reply =
                event.owner.get("GET /api/v1/events/{id}/analytics", format!("/api/v1/events/{id}/analytics")).await;
            let counted = reply
                .body
                .pointer("/analytics/totalParticipants")
                .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
                .unwrap_or(0);
            if counted == total {
                c.analytics_matching += 1;
                break;
            }
            if Instant::now() > settle {
                eprintln!("load: analytics of {id} count {counted}, {total} stored");
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        // Every published channel reaches a final state.
        loop {
            let reply = event
                .owner
                .get("GET /api/v1/events/{id}/distribution", format!("/api/v1/events/{id}/distribution"))
                .await;
            let deliveries = reply.body.get("deliveries").and_then(Value::as_array).cloned().unwrap_or_default();
            let finals = deliveries
                .iter()
                .filter(|d| {
                    matches!(
                        d.get("state").and_then(Value::as_str),
                        Some("DELIVERY_STATE_PUBLISHED" | "DELIVERY_STATE_FAILED")
                    )
                })
                .count() as u64;
            if finals == PUBLISH_CHANNELS.len() as u64 || Instant::now() > settle {
                c.channels += PUBLISH_CHANNELS.len() as u64;
                c.channels_final += finals;
                c.channels_failed += deliveries
                    .iter()
                    .filter(|d| d.get("state").and_then(Value::as_str) == Some("DELIVERY_STATE_FAILED"))
                    .count() as u64;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(c)
}
