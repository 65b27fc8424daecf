//! `kem bench queue`: the store-backed queue on PostgreSQL, end to end.
//!
//! For each consumer count (default 1, 4 and 16):
//! - **throughput**: producers `send` N messages while the consumers (each a
//!   [`Consumer`] runner with concurrency 1, like one worker process each) receive and complete
//!   them; messages/s is N over the time from the first send to the last complete;
//! - **outbox relay lag** at fractions of that throughput (default 50% and 80%): producers commit
//!   one outbox message per transaction on an open-loop schedule, an [`OutboxRelay`] publishes them (woken after each
//!   commit) and the same consumers take them; lag is measured from each message's *scheduled*
//!   commit time to the start of its handler (no coordinated omission), p50/p99/max.
//!
//! The benchmark creates its own database on the server (and drops it at the end).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use kem_kit::outbox::{Consumer, ConsumerOptions, Outbox, OutboxRelay, OutboxWaker, RelayOptions};
use kem_kit::queue::store::{StoreQueue, StoreQueueOptions};
use kem_kit::queue::{OutgoingMessage, Queue, ReceivedMessage};
use kem_kit::store::{self, Backend, Store, StoreConfig};
use kem_mesh::Shutdown;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::load::{Latency, ms};

/// Options of `kem bench queue`.
#[derive(Args, Debug, Clone)]
pub struct QueueBenchArgs {
    /// PostgreSQL server to benchmark on (a database is created and dropped on it).
    #[arg(long, env = "KEM_BENCH_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 10_000)]
    pub messages: u64,
    /// Consumer counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub consumers: Vec<usize>,
    /// Concurrent producers.
    #[arg(long, default_value_t = 8)]
    pub producers: usize,
    /// Seconds of each outbox-lag run.
    #[arg(long, default_value_t = 5)]
    pub lag_seconds: u64,
    /// Outbox-lag runs at these fractions of the measured throughput (the outbox path does about
    /// twice the database work of a direct send, so near 1.0 the lag measures a backlog).
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.8")]
    pub lag_load: Vec<f64>,
}

/// Runs the benchmark and prints the table.
pub async fn run(args: QueueBenchArgs) -> anyhow::Result<()> {
    let admin_config = StoreConfig::new(args.database_url.clone());
    anyhow::ensure!(
        admin_config.backend()? == Backend::Postgres,
        "kem bench queue measures PostgreSQL; --database-url must be a postgres:// URL"
    );
    let mut admin_config = admin_config;
    admin_config.max_connections = 1;
    let admin = Store::connect(&admin_config).await.context("connecting to the benchmark server")?;
    let name = format!("kem_bench_{}", std::process::id());
    store::query(sqlx_safe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&admin)
        .await
        .context("creating the database")?;
    let result = bench(&args, &name).await;
    let dropped =
        store::query(sqlx_safe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).execute(&admin).await;
    admin.close().await;
    if let Err(error) = dropped {
        eprintln!("warning: could not drop benchmark database {name}: {error}");
    }
    result
}

/// The database name is ours (a fixed prefix and the process id), never user input.
fn sqlx_safe(sql: String) -> store::AssertSqlSafe<String> {
    store::AssertSqlSafe(sql)
}

async fn bench(args: &QueueBenchArgs, database: &str) -> anyhow::Result<()> {
    let mut config = StoreConfig::new(with_database(&args.database_url, database));
    config.max_connections = u32::try_from(args.consumers.iter().max().copied().unwrap_or(1) + args.producers + 8)?;
    config.application_name = Some("kem-bench-queue".into());
    let db = Store::connect(&config).await.context("connecting to the benchmark database")?;
    db.migrate_kit().await?;
    println!(
        "kem bench queue: store-backed queue on PostgreSQL ({}), {} messages per run, {} producers",
        db.target(),
        args.messages,
        args.producers
    );
    println!("throughput: send -> receive -> complete, consumers = Consumer runners with concurrency 1");
    println!(
        "outbox lag: scheduled commit -> handler start, open loop at a fraction (load) of the measured throughput \
         for {} s\n",
        args.lag_seconds
    );
    println!(
        "{:>9} {:>14} {:>6} {:>11} {:>12} {:>12} {:>12} {:>8}",
        "consumers", "throughput/s", "load", "lag rate/s", "lag p50", "lag p99", "lag max", "samples"
    );
    let mut scaling = Vec::new();
    for &consumers in &args.consumers {
        let throughput = measure_throughput(&db, args, consumers).await?;
        scaling.push((consumers, throughput));
        for (i, &load) in args.lag_load.iter().enumerate() {
            let rate = ((throughput * load) as u32).max(1);
            let (lag, samples) = measure_lag(&db, args, consumers, rate).await?;
            let (shown_consumers, shown_throughput) = if i == 0 {
                (consumers.to_string(), format!("{throughput:.0}"))
            } else {
                (String::new(), String::new())
            };
            println!(
                "{:>9} {:>14} {:>5.0}% {:>11} {:>12} {:>12} {:>12} {:>8}",
                shown_consumers,
                shown_throughput,
                load * 100.0,
                rate,
                ms(lag.p50),
                ms(lag.p99),
                ms(lag.max),
                samples
            );
        }
    }
    if let (Some(first), Some(last)) = (scaling.first(), scaling.last())
        && scaling.len() > 1
        && first.1 > 0.0
    {
        println!("\nscaling {} -> {} consumers: {:.2}x", first.0, last.0, last.1 / first.1);
    }
    db.close().await;
    Ok(())
}

fn queue_options() -> StoreQueueOptions {
    StoreQueueOptions { poll_interval: Duration::from_millis(20), ..StoreQueueOptions::default() }
}

fn consumer_options(queue: &str) -> ConsumerOptions {
    ConsumerOptions {
        concurrency: 1,
        max_batch: 1,
        receive_wait: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(10),
        ..ConsumerOptions::new(queue)
    }
}

fn message(queue: &str, id: String, body: Vec<u8>) -> OutgoingMessage {
    OutgoingMessage {
        queue: queue.to_owned(),
        id,
        body,
        content_type: "text/plain".into(),
        traceparent: None,
        delay: None,
        properties: Default::default(),
    }
}

async fn measure_throughput(db: &Store, args: &QueueBenchArgs, consumers: usize) -> anyhow::Result<f64> {
    let name = format!("bench-throughput-{consumers}");
    let queue = Arc::new(StoreQueue::with_options(db.clone(), queue_options()));
    let handled = Arc::new(AtomicU64::new(0));
    let shutdown = Shutdown::new();
    let runners: Vec<_> = (0..consumers)
        .map(|_| {
            let handled = handled.clone();
            let handler = move |_m: ReceivedMessage| {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            };
            tokio::spawn(Consumer::run(queue.clone(), handler, consumer_options(&name), shutdown.clone()))
        })
        .collect();
    let total = args.messages;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let producers: Vec<_> = (0..args.producers.max(1))
        .map(|_| {
            let (queue, next, name) = (queue.clone(), next.clone(), name.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<_, anyhow::Error>(());
                    }
                    queue.send(message(&name, format!("t{i}"), b"0123456789abcdef".to_vec())).await?;
                }
            })
        })
        .collect();
    let finished = async {
        for producer in producers {
            producer.await??;
        }
        // Every message handled, then every lock released by its complete.
        let limit = Duration::from_secs(600);
        while handled.load(Ordering::Relaxed) < total || queue.depth(&name).await?.locked > 0 {
            anyhow::ensure!(started.elapsed() < limit, "throughput run did not finish within {limit:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok::<_, anyhow::Error>(started.elapsed())
    }
    .await;
    // Stop the consumers on every path, errors included.
    shutdown.trigger();
    for runner in runners {
        runner.await?;
    }
    Ok(total as f64 / finished?.as_secs_f64())
}

async fn measure_lag(
    db: &Store,
    args: &QueueBenchArgs,
    consumers: usize,
    rate: u32,
) -> anyhow::Result<(Latency, usize)> {
    // A queue per run: message ids repeat across runs and the queue drops duplicates.
    let name = format!("bench-lag-{consumers}-{rate}");
    let queue = Arc::new(StoreQueue::with_options(db.clone(), queue_options()));
    let shutdown = Shutdown::new();
    let origin = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let runners: Vec<_> = (0..consumers)
        .map(|_| {
            let samples = samples.clone();
            let handler = move |m: ReceivedMessage| {
                let samples = samples.clone();
                async move {
                    // The body is the scheduled commit time, in nanoseconds since `origin`.
                    let scheduled = std::str::from_utf8(&m.body).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                    let lag = origin.elapsed().saturating_sub(Duration::from_nanos(scheduled));
                    samples.lock().await.push(lag);
                    Ok(())
                }
            };
            tokio::spawn(Consumer::run(queue.clone(), handler, consumer_options(&name), shutdown.clone()))
        })
        .collect();
    let relay = OutboxRelay::new(db.clone(), queue.clone(), RelayOptions::default());
    let waker = relay.waker();
    let relay = relay.spawn(shutdown.clone());
    let produced = produce_and_wait(db, args, &name, rate, origin, waker, &samples).await;
    // Stop the consumers and the relay on every path, errors included.
    shutdown.trigger();
    for runner in runners {
        runner.await?;
    }
    relay.await?;
    produced?;
    let mut samples = samples.lock().await;
    let count = samples.len();
    Ok((Latency::of(&mut samples), count))
}

/// Commits `rate × lag_seconds` outbox messages on schedule, then waits until all are handled.
async fn produce_and_wait(
    db: &Store,
    args: &QueueBenchArgs,
    name: &str,
    rate: u32,
    origin: Instant,
    waker: OutboxWaker,
    samples: &Mutex<Vec<Duration>>,
) -> anyhow::Result<()> {
    let total = u64::from(rate) * args.lag_seconds;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    let mut commits = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        let intended = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(intended).await;
        let (db, waker, name) = (db.clone(), waker.clone(), name.to_owned());
        let scheduled = (intended - origin).as_nanos().to_string().into_bytes();
        commits.push(tokio::spawn(async move {
            let mut tx = db.begin().await?;
            Outbox::enqueue(&mut tx, message(&name, format!("l{i}"), scheduled)).await?;
            tx.commit().await?;
            waker.wake();
            Ok::<_, anyhow::Error>(())
        }));
    }
    for commit in commits {
        commit.await??;
    }
    let limit = Instant::now() + Duration::from_secs(120);
    while (samples.lock().await.len() as u64) < total {
        anyhow::ensure!(Instant::now() < limit, "outbox lag run did not drain within 120 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// `url` with its database (path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(with_database("postgres://u:p@h:5432/postgres", "b"), "postgres://u:p@h:5432/b");
        assert_eq!(with_database("postgres://h/postgres?sslmode=disable", "b"), "postgres://h/b?sslmode=disable");
        assert_eq!(with_database("postgres://h:5432", "b"), "postgres://h:5432/b");
    }
}
