//! Per-backend migration sets: the kit's own and each service's.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::migrate::Migrator;

use super::{Pool, StoreError};

/// The table the kit's migrations are tracked in, apart from the service's `_sqlx_migrations`.
const KIT_MIGRATIONS_TABLE: &str = "_kem_kit_migrations";

/// One migration set written twice: for PostgreSQL and for SQLite (same tables, same meaning).
#[derive(Debug)]
pub struct Migrations {
    postgres: Migrator,
    sqlite: Migrator,
}

impl Migrations {
    /// From two `sqlx::migrate!` sets, e.g.
    /// `Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite"))`.
    pub fn new(postgres: Migrator, sqlite: Migrator) -> Migrations {
        Migrations { postgres, sqlite }
    }

    /// Tracks this set in `table` instead of `_sqlx_migrations` (for a second, independent set
    /// in the same database, as the kit does).
    pub fn tracked_in(mut self, table: &'static str) -> Migrations {
        self.postgres.table_name = Cow::Borrowed(table);
        self.sqlite.table_name = Cow::Borrowed(table);
        self
    }

    /// The PostgreSQL set (e.g. for `kem_testkit::postgres::TestDatabase::migrated`).
    pub fn postgres(&self) -> &Migrator {
        &self.postgres
    }

    /// The SQLite set.
    pub fn sqlite(&self) -> &Migrator {
        &self.sqlite
    }

    /// Applies the set matching `pool`'s backend. `which` names the set in errors.
    pub(crate) async fn run(&self, pool: &Pool, which: &'static str) -> Result<(), StoreError> {
        let result = match pool {
            Pool::Postgres(pg) => self.postgres.run(pg).await,
            Pool::Sqlite(lite) => self.sqlite.run(lite).await,
        };
        result.map_err(|source| StoreError::Migrate { which, backend: pool.backend().name(), source })
    }
}

static KIT: LazyLock<Migrations> = LazyLock::new(|| {
    Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite"))
        .tracked_in(KIT_MIGRATIONS_TABLE)
});

/// The kit's tables (store-backed queue, dead letters, outbox, inbox), tracked in
/// `_kem_kit_migrations`. [`Store::migrate`](super::Store::migrate) applies them before the
/// service's own migrations.
pub fn kit_migrations() -> &'static Migrations {
    &KIT
}
