//! A fresh PostgreSQL database per test.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

/// The server tests use, overridable with `KEM_TEST_POSTGRES_URL`.
pub fn admin_url() -> String {
    std::env::var("KEM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped when the test is done.
///
/// Call [`TestDatabase::drop_now`] at the end of a test for a deterministic cleanup; if the test
/// panics first, `Drop` removes the database from a helper thread.
pub struct TestDatabase {
    name: String,
    url: String,
    admin: String,
    pool: Option<PgPool>,
}

impl TestDatabase {
    /// Creates an empty database named `kem_test_<random>`.
    pub async fn create() -> TestDatabase {
        let admin = admin_url();
        let name = format!("kem_test_{}", crate::unique_suffix());
        let mut conn = admin_connection(&admin).await;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} on {admin}: {e}"));
        let _ = conn.close().await;

        let options: PgConnectOptions =
            admin.parse().unwrap_or_else(|e| panic!("invalid KEM_TEST_POSTGRES_URL {admin:?}: {e}"));
        let options = options.database(&name);
        let url = options.to_url_lossy().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to test database {name}: {e}"));
        TestDatabase { name, url, admin, pool: Some(pool) }
    }

    /// Creates a database and applies `migrator` to it.
    pub async fn migrated(migrator: &Migrator) -> TestDatabase {
        let db = Self::create().await;
        migrator.run(db.pool()).await.unwrap_or_else(|e| panic!("migrations failed on {}: {e}", db.name));
        db
    }

    /// A pool connected to this database.
    pub fn pool(&self) -> &PgPool {
        self.pool.as_ref().unwrap_or_else(|| panic!("test database {} already dropped", self.name))
    }

    /// The database's connection URL (for roles started by the test).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now (closing every connection to it first).
    pub async fn drop_now(mut self) {
        if let Some(pool) = self.pool.take() {
            pool.close().await;
        }
        drop_database(&self.admin, &self.name).await;
        self.name.clear();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let (admin, name, pool) = (self.admin.clone(), self.name.clone(), self.pool.take());
        // Drop can run inside a runtime that is shutting down; a private runtime on a helper
        // thread still gets the database removed.
        let cleanup = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(async move {
                    drop(pool);
                    drop_database(&admin, &name).await;
                });
            }
        });
        let _ = cleanup.join();
    }
}

async fn admin_connection(admin: &str) -> PgConnection {
    let mut last = None;
    for _ in 0..20 {
        match PgConnection::connect(admin).await {
            Ok(conn) => return conn,
            Err(e) => last = Some(e),
        }
        // Real time by design: PostgreSQL is another process, so retry after a pause until it accepts connections.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "PostgreSQL is required for this test but {admin} is unreachable: {}. Start it (scripts/test does) \
         or point KEM_TEST_POSTGRES_URL at a server.",
        last.map(|e| e.to_string()).unwrap_or_default()
    );
}

async fn drop_database(admin: &str, name: &str) {
    let mut conn = admin_connection(admin).await;
    if let Err(e) = conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).await
    {
        eprintln!("warning: could not drop test database {name}: {e}");
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn databases_are_isolated_and_removed() {
        let a = TestDatabase::create().await;
        let b = TestDatabase::create().await;
        assert_ne!(a.name(), b.name());
        sqlx::query("CREATE TABLE t (id INT PRIMARY KEY)").execute(a.pool()).await.expect("create in a");
        sqlx::query("INSERT INTO t VALUES (1)").execute(a.pool()).await.expect("insert in a");
        let missing = sqlx::query("SELECT * FROM t").execute(b.pool()).await;
        assert!(missing.is_err(), "b must not see a's table");

        let name = a.name().to_owned();
        a.drop_now().await;
        drop(b); // exercises the Drop path
        let mut conn = admin_connection(&admin_url()).await;
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .expect("query pg_database");
        assert_eq!(left, 0, "database {name} was not dropped");
    }
}
