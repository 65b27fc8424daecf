//! Storage on both backends, and the fixture every store-backed test (queue, outbox) shares:
//! one suite, run on PostgreSQL (a fresh database per test) and on SQLite (a temp file per test).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use kem_kit::Secret;
use kem_kit::store::{self, Backend, ConnectRetry, Migrations, Pool, Store, StoreConfig, StoreError, kit_migrations};
use kem_testkit::postgres::TestDatabase;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// A migrated store on one backend, cleaned up by [`Fixture::finish`] (or on drop after a panic).
pub struct Fixture {
    /// The store under test, kit tables migrated.
    pub store: Store,
    db: Option<TestDatabase>,
    dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// A fresh PostgreSQL database (panics with instructions when PostgreSQL is unreachable).
    pub async fn postgres() -> Fixture {
        Fixture::postgres_with(|_| {}).await
    }

    /// A fresh PostgreSQL database, with `tune` applied to the store's configuration.
    pub async fn postgres_with(tune: impl FnOnce(&mut StoreConfig)) -> Fixture {
        let db = TestDatabase::create().await;
        let mut config = StoreConfig::new(db.url());
        config.max_connections = 24;
        // Tests share two cores with parallel tests: waiting for a connection is expected,
        // timing out on it is not what any test measures.
        config.acquire_timeout = std::time::Duration::from_secs(60);
        config.application_name = Some("kem-kit-test".into());
        tune(&mut config);
        let store = Store::connect(&config).await.expect("connect to the test database");
        store.migrate_kit().await.expect("kit migrations on PostgreSQL");
        Fixture { store, db: Some(db), dir: None }
    }

    /// A fresh SQLite file in a temporary directory, through the embedded configuration.
    pub async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = StoreConfig::embedded(dir.path(), "test");
        config.max_connections = 8;
        // SQLite has one writer: under the crash test's producers, relays and consumers a
        // connection can be busy for seconds on a loaded machine; waiting is correct there.
        config.acquire_timeout = std::time::Duration::from_secs(60);
        config.sqlite_busy_timeout = std::time::Duration::from_secs(60);
        let store = Store::connect(&config).await.expect("open the SQLite database");
        store.migrate_kit().await.expect("kit migrations on SQLite");
        Fixture { store, db: None, dir: Some(dir) }
    }

    /// The backend under test.
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Closes the store and removes the database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(db) = self.db {
            db.drop_now().await;
        }
        drop(self.dir);
    }
}

/// Generates, for each scenario `async fn name(f: &Fixture)`, a test `postgres::name` and a test
/// `sqlite::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = $crate::store::Fixture::postgres().await;
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = $crate::store::Fixture::sqlite().await;
                    super::$name(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// Runs DDL written per backend.
pub async fn ddl(store: &Store, postgres: &'static str, sqlite: &'static str) {
    let sql = match store.backend() {
        Backend::Postgres => postgres,
        Backend::Sqlite => sqlite,
    };
    store::query(sql).execute(store).await.unwrap_or_else(|e| panic!("DDL failed: {e}\n{sql}"));
}

on_both_backends!(
    health_and_migrations_are_idempotent,
    portable_queries_round_trip_every_type,
    transactions_commit_or_roll_back,
    service_migrations_are_tracked_apart_from_the_kit,
    an_edited_migration_is_refused,
);

async fn health_and_migrations_are_idempotent(f: &Fixture) {
    f.store.health(Duration::from_secs(2)).await.expect("healthy");
    f.store.migrate_kit().await.expect("kit migrations run twice");
    for table in ["kem_queue_messages", "kem_queue_dead_letters", "kem_outbox", "kem_inbox"] {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}"));
        let row = store::query(sql).fetch_one(f.store.reader()).await.expect("kit table exists");
        assert_eq!(row.get::<i64>("n").expect("count"), 0, "{table} starts empty");
    }
}

async fn portable_queries_round_trip_every_type(f: &Fixture) {
    ddl(
        &f.store,
        "CREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT NOT NULL, small INTEGER NOT NULL, flag BOOLEAN NOT NULL, \
         ratio DOUBLE PRECISION NOT NULL, data BYTEA NOT NULL, note TEXT)",
        "CREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT NOT NULL, small INTEGER NOT NULL, flag BOOLEAN NOT NULL, \
         ratio DOUBLE PRECISION NOT NULL, data BLOB NOT NULL, note TEXT)",
    )
    .await;
    let insert = |id: &'static str, n: i64, note: Option<&'static str>| {
        store::query("INSERT INTO things (id, n, small, flag, ratio, data, note) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(n)
            .bind(7_i32)
            .bind(n % 2 == 0)
            .bind(0.25_f64)
            .bind(vec![0_u8, 1, 255])
            .bind(note)
    };
    assert_eq!(insert("a", i64::MAX, Some("ünïcode ✓")).execute(&f.store).await.expect("insert a"), 1);
    assert_eq!(insert("b", -3, None).execute(&f.store).await.expect("insert b"), 1);
    let duplicate = insert("a", 1, None).execute(&f.store).await;
    assert!(matches!(duplicate, Err(StoreError::Database { .. })), "{duplicate:?}");

    // Placeholders may repeat and appear out of order.
    let rows =
        store::query("SELECT id, n, small, flag, ratio, data, note FROM things WHERE n <> $2 OR id = $1 ORDER BY id")
            .bind("b")
            .bind(0_i64)
            .fetch_all(f.store.reader())
            .await
            .expect("select");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<String>("id").expect("id"), "a");
    assert_eq!(rows[0].get::<i64>("n").expect("n"), i64::MAX);
    assert_eq!(rows[0].get::<i32>("small").expect("small"), 7);
    assert!(!rows[0].get::<bool>("flag").expect("flag"));
    assert_eq!(rows[0].get::<f64>("ratio").expect("ratio"), 0.25);
    assert_eq!(rows[0].get::<Vec<u8>>("data").expect("data"), vec![0, 1, 255]);
    assert_eq!(rows[0].get::<Option<String>>("note").expect("note").as_deref(), Some("ünïcode ✓"));
    assert_eq!(rows[1].get::<Option<String>>("note").expect("null note"), None);
    assert!(matches!(rows[0].get::<i64>("missing"), Err(StoreError::Mapping { .. })));

    let none = store::query("SELECT id FROM things WHERE id = $1").bind("zzz").fetch_optional(&f.store).await;
    assert!(none.expect("query").is_none());
    let one = store::query("SELECT id FROM things WHERE id = $1").bind("zzz").fetch_one(&f.store).await;
    assert!(one.is_err(), "fetch_one on no row must fail");
}

async fn transactions_commit_or_roll_back(f: &Fixture) {
    ddl(&f.store, "CREATE TABLE t (id BIGINT PRIMARY KEY)", "CREATE TABLE t (id BIGINT PRIMARY KEY)").await;
    let count = || async {
        store::query("SELECT COUNT(*) AS n FROM t")
            .fetch_one(&f.store)
            .await
            .expect("count")
            .get::<i64>("n")
            .expect("n")
    };
    let mut tx = f.store.begin().await.expect("begin");
    assert_eq!(tx.backend(), f.backend());
    store::query("INSERT INTO t (id) VALUES ($1)").bind(1_i64).execute(&mut tx).await.expect("insert");
    tx.rollback().await.expect("rollback");
    assert_eq!(count().await, 0);

    let mut tx = f.store.begin().await.expect("begin");
    store::query("INSERT INTO t (id) VALUES ($1)").bind(2_i64).execute(&mut tx).await.expect("insert");
    drop(tx); // dropping rolls back too
    assert_eq!(count().await, 0);

    let mut tx = f.store.begin().await.expect("begin");
    store::query("INSERT INTO t (id) VALUES ($1)").bind(3_i64).execute(&mut tx).await.expect("insert");
    let seen = store::query("SELECT COUNT(*) AS n FROM t").fetch_one(&mut tx).await.expect("read own write");
    assert_eq!(seen.get::<i64>("n").expect("n"), 1);
    tx.commit().await.expect("commit");
    assert_eq!(count().await, 1);

    // Concurrent writers: each transaction sees its own work and all commit.
    let writers: Vec<_> = (10..20_i64)
        .map(|id| {
            let store = f.store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                store::query("INSERT INTO t (id) VALUES ($1)").bind(id).execute(&mut tx).await.expect("insert");
                tx.commit().await.expect("commit");
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(count().await, 11);
}

fn migration(version: i64, sql: &'static str) -> Migration {
    Migration::new(version, Cow::Borrowed("test"), MigrationType::Simple, sql.into_sql_str(), false)
}

fn service_migrations(sql: &'static str) -> Migrations {
    Migrations::new(
        Migrator::with_migrations(vec![migration(1, sql)]),
        Migrator::with_migrations(vec![migration(1, sql)]),
    )
}

async fn service_migrations_are_tracked_apart_from_the_kit(f: &Fixture) {
    // Version 1 exists in both the kit's set and the service's: separate tracking tables.
    let service = service_migrations("CREATE TABLE widgets (id TEXT PRIMARY KEY)");
    f.store.migrate(&service).await.expect("kit then service migrations");
    f.store.migrate(&service).await.expect("a second run is a no-op");
    store::query("INSERT INTO widgets (id) VALUES ($1)").bind("w").execute(&f.store).await.expect("service table");
    let kit = store::query("SELECT COUNT(*) AS n FROM _kem_kit_migrations").fetch_one(&f.store).await.expect("kit");
    assert_eq!(kit.get::<i64>("n").expect("n"), kit_migrations().postgres().iter().count() as i64);
    let own = store::query("SELECT COUNT(*) AS n FROM _sqlx_migrations").fetch_one(&f.store).await.expect("service");
    assert_eq!(own.get::<i64>("n").expect("n"), 1);
}

async fn an_edited_migration_is_refused(f: &Fixture) {
    f.store.migrate(&service_migrations("CREATE TABLE gadgets (id TEXT PRIMARY KEY)")).await.expect("first version");
    let edited = f.store.migrate(&service_migrations("CREATE TABLE gadgets (id TEXT PRIMARY KEY, extra TEXT)")).await;
    let error = edited.expect_err("an applied migration that changed must be refused");
    assert!(matches!(error, StoreError::Migrate { which: "service", .. }), "{error:?}");
    assert!(error.to_string().contains("modified"), "the message says what happened: {error}");
}

#[tokio::test]
async fn postgres_settings_apply_to_every_connection() {
    let f = Fixture::postgres_with(|c| {
        c.statement_timeout = Some(Duration::from_millis(300));
        c.max_connections = 3;
    })
    .await;
    let Pool::Postgres(pool) = f.store.primary() else { panic!("a PostgreSQL pool") };
    // Every pooled connection, not only the first, carries the timeout.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(pool.acquire().await.expect("acquire"));
    }
    for conn in &mut conns {
        let timeout: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&mut **conn).await.expect("show");
        assert_eq!(timeout, "300ms");
        let name: String = sqlx::query_scalar("SHOW application_name").fetch_one(&mut **conn).await.expect("show");
        assert_eq!(name, "kem-kit-test");
    }
    drop(conns);
    // PostgreSQL itself sleeps past the 300 ms statement timeout, which is what is tested.
    let slow = store::query("SELECT pg_sleep(2)").execute(&f.store).await.expect_err("statement timeout");
    assert!(slow.is_transient(), "a statement timeout is worth retrying: {slow}");
    f.finish().await;
}

#[tokio::test]
async fn a_read_replica_gets_its_own_pool_and_health_check() {
    let db = TestDatabase::create().await;
    // The same server under a different URL stands in for a replica.
    let mut config = StoreConfig::new(db.url());
    let separator = if db.url().contains('?') { '&' } else { '?' };
    config.read_url = Some(Secret::new(format!("{}{separator}application_name=replica", db.url())));
    let store = Store::connect(&config).await.expect("primary and replica");
    let Pool::Postgres(reader) = store.reader() else { panic!("a PostgreSQL pool") };
    let name: String = sqlx::query_scalar("SHOW application_name").fetch_one(reader).await.expect("show");
    assert_eq!(name, "replica", "reads go to the replica pool");
    store.health(Duration::from_secs(2)).await.expect("both healthy");
    store.close().await;

    // A replica that cannot be reached fails the start, naming the replica (without secrets).
    let dead = format!("postgres://kem:hunter2@127.0.0.1:{}/nope", kem_testkit::net::free_port());
    config.read_url = Some(Secret::new(dead));
    config.connect_retry =
        ConnectRetry { max_attempts: 2, initial_delay: Duration::from_millis(20), ..ConnectRetry::default() };
    let error = Store::connect(&config).await.expect_err("unreachable replica");
    assert!(matches!(error, StoreError::Connect { attempts: 2, .. }), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "no password in errors: {error}");
    db.drop_now().await;
}

#[tokio::test]
async fn unreachable_database_fails_after_bounded_retries() {
    let url = format!("postgres://postgres@127.0.0.1:{}/kem", kem_testkit::net::free_port());
    let mut config = StoreConfig::new(url);
    config.connect_retry = ConnectRetry {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(80),
        max_elapsed: Duration::from_secs(10),
        max_attempts: 4,
    };
    let started = Instant::now();
    let error = Store::connect(&config).await.expect_err("nothing listens there");
    assert!(matches!(error, StoreError::Connect { attempts: 4, .. }), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(20 + 40 + 80), "backed off between attempts");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(error.to_string().contains("check that the database is running"), "{error}");
}

#[tokio::test]
async fn a_missing_database_is_refused_without_retrying() {
    let admin: sqlx::postgres::PgConnectOptions = kem_testkit::postgres::admin_url().parse().expect("admin url");
    let url = sqlx::ConnectOptions::to_url_lossy(&admin.database("kem_no_such_database")).to_string();
    let started = Instant::now();
    let error = Store::connect(&StoreConfig::new(url)).await.expect_err("no such database");
    assert!(matches!(error, StoreError::Rejected { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "no retry loop for a permanent error");
}

#[tokio::test]
async fn embedded_sqlite_uses_wal_and_a_busy_timeout_under_the_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("nested").join("data");
    let mut config = StoreConfig::embedded(&data_dir, "event");
    config.sqlite_busy_timeout = Duration::from_millis(1234);
    let store = Store::connect(&config).await.expect("open");
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(data_dir.join("db").join("event.db").exists(), "the file lives under the data dir");
    let Pool::Sqlite(pool) = store.primary() else { panic!("a SQLite pool") };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.expect("pragma");
    assert_eq!(mode, "wal");
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(pool).await.expect("pragma");
    assert_eq!(busy, 1234);
    store.health(Duration::from_secs(1)).await.expect("healthy");
    store.close().await;
}
