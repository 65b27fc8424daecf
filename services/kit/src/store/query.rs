//! Portable SQL: one query string and one set of bound values, run on either backend.
//!
//! ```ignore
//! let affected = store::query("UPDATE events SET status = $1 WHERE id = $2 AND owner = $3")
//!     .bind("PUBLISHED")
//!     .bind(event_id)
//!     .bind(owner_id)
//!     .execute(&mut tx)
//!     .await?;
//! let row = store::query("SELECT status, updated_at FROM events WHERE id = $1")
//!     .bind(event_id)
//!     .fetch_optional(store.reader())
//!     .await?;
//! ```

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Decode, Encode, Postgres, SqlStr, Sqlite, Type};

use super::{Pool, Store, StoreError, Tx};

/// A value that binds on both backends (`i16`/`i32`/`i64`, `f64`, `bool`, `String`/`&str`,
/// `Vec<u8>`/`&[u8]`, and `Option` of those).
pub trait Value: for<'q> Encode<'q, Postgres> + Type<Postgres> + for<'q> Encode<'q, Sqlite> + Type<Sqlite> {}

impl<T> Value for T where T: for<'q> Encode<'q, Postgres> + Type<Postgres> + for<'q> Encode<'q, Sqlite> + Type<Sqlite> {}

/// A column type that decodes on both backends (the owned forms of [`Value`]).
pub trait Decodable: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite> {}

impl<T> Decodable for T where
    T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

/// Where a query runs: a pool (each statement on any free connection) or a transaction.
#[derive(Debug)]
pub enum Conn<'c> {
    /// A pool.
    Pool(&'c Pool),
    /// An open transaction.
    Tx(&'c mut Tx),
}

impl<'c> From<&'c Pool> for Conn<'c> {
    fn from(pool: &'c Pool) -> Self {
        Conn::Pool(pool)
    }
}

impl<'c> From<&'c Store> for Conn<'c> {
    /// The store's primary pool.
    fn from(store: &'c Store) -> Self {
        Conn::Pool(store.primary())
    }
}

impl<'c> From<&'c mut Tx> for Conn<'c> {
    fn from(tx: &'c mut Tx) -> Self {
        Conn::Tx(tx)
    }
}

/// A SQL statement with `$1, $2, …` placeholders and its bound values, for either backend.
///
/// Values are encoded for both drivers as they are bound (cheap, and it keeps the builder free of
/// generics); the backend is chosen when the query runs.
pub struct Query {
    sql: SqlStr,
    pg: PgArguments,
    sqlite: SqliteArguments,
    bound: usize,
    error: Option<StoreError>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are left out on purpose: they may be personal data.
        f.debug_struct("Query").field("sql", &self.sql.as_str()).field("bound", &self.bound).finish()
    }
}

/// Starts a portable query. `sql` is a `&'static str` (or `sqlx::AssertSqlSafe` for SQL built at
/// run time from trusted pieces): values always go through [`Query::bind`], never into the text.
pub fn query(sql: impl sqlx::SqlSafeStr) -> Query {
    Query {
        sql: sql.into_sql_str(),
        pg: PgArguments::default(),
        sqlite: SqliteArguments::default(),
        bound: 0,
        error: None,
    }
}

impl Query {
    /// Binds the next placeholder (`$1` first).
    pub fn bind<T: Value>(mut self, value: T) -> Query {
        self.bound += 1;
        if self.error.is_none() {
            let encoded = self.pg.add(&value).and_then(|()| self.sqlite.add(&value));
            if let Err(e) = encoded {
                self.error = Some(StoreError::Mapping {
                    action: "encode",
                    column: format!("${}", self.bound),
                    reason: e.to_string(),
                });
            }
        }
        self
    }

    fn checked(mut self) -> Result<Self, StoreError> {
        match self.error.take() {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }

    /// Runs a statement; returns the number of rows it affected.
    pub async fn execute<'c>(self, on: impl Into<Conn<'c>>) -> Result<u64, StoreError> {
        let q = self.checked()?;
        let result = match on.into() {
            Conn::Pool(Pool::Postgres(pool)) => {
                sqlx::query_with(q.sql, q.pg).execute(pool).await.map(|r| r.rows_affected())
            }
            Conn::Pool(Pool::Sqlite(pool)) => {
                sqlx::query_with(q.sql, q.sqlite).execute(pool).await.map(|r| r.rows_affected())
            }
            Conn::Tx(Tx::Postgres(tx)) => {
                sqlx::query_with(q.sql, q.pg).execute(&mut **tx).await.map(|r| r.rows_affected())
            }
            Conn::Tx(Tx::Sqlite(tx)) => {
                sqlx::query_with(q.sql, q.sqlite).execute(&mut **tx).await.map(|r| r.rows_affected())
            }
        };
        result.map_err(|source| StoreError::Database { action: "execute a statement", source })
    }

    /// Runs a query and returns all its rows.
    pub async fn fetch_all<'c>(self, on: impl Into<Conn<'c>>) -> Result<Vec<Row>, StoreError> {
        let q = self.checked()?;
        let result = match on.into() {
            Conn::Pool(Pool::Postgres(pool)) => sqlx::query_with(q.sql, q.pg)
                .fetch_all(pool)
                .await
                .map(|rows| rows.into_iter().map(Row::Postgres).collect()),
            Conn::Pool(Pool::Sqlite(pool)) => sqlx::query_with(q.sql, q.sqlite)
                .fetch_all(pool)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
            Conn::Tx(Tx::Postgres(tx)) => sqlx::query_with(q.sql, q.pg)
                .fetch_all(&mut **tx)
                .await
                .map(|rows| rows.into_iter().map(Row::Postgres).collect()),
            Conn::Tx(Tx::Sqlite(tx)) => sqlx::query_with(q.sql, q.sqlite)
                .fetch_all(&mut **tx)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
        };
        result.map_err(|source| StoreError::Database { action: "run a query", source })
    }

    /// Runs a query and returns its first row, if any.
    pub async fn fetch_optional<'c>(self, on: impl Into<Conn<'c>>) -> Result<Option<Row>, StoreError> {
        let q = self.checked()?;
        let result = match on.into() {
            Conn::Pool(Pool::Postgres(pool)) => {
                sqlx::query_with(q.sql, q.pg).fetch_optional(pool).await.map(|r| r.map(Row::Postgres))
            }
            Conn::Pool(Pool::Sqlite(pool)) => {
                sqlx::query_with(q.sql, q.sqlite).fetch_optional(pool).await.map(|r| r.map(Row::Sqlite))
            }
            Conn::Tx(Tx::Postgres(tx)) => {
                sqlx::query_with(q.sql, q.pg).fetch_optional(&mut **tx).await.map(|r| r.map(Row::Postgres))
            }
            Conn::Tx(Tx::Sqlite(tx)) => {
                sqlx::query_with(q.sql, q.sqlite).fetch_optional(&mut **tx).await.map(|r| r.map(Row::Sqlite))
            }
        };
        result.map_err(|source| StoreError::Database { action: "run a query", source })
    }

    /// Runs a query that must return a row.
    pub async fn fetch_one<'c>(self, on: impl Into<Conn<'c>>) -> Result<Row, StoreError> {
        match self.fetch_optional(on).await? {
            Some(row) => Ok(row),
            None => Err(StoreError::Database { action: "fetch exactly one row", source: sqlx::Error::RowNotFound }),
        }
    }
}

/// A result row from either backend.
#[derive(Debug)]
pub enum Row {
    /// From PostgreSQL.
    Postgres(PgRow),
    /// From SQLite.
    Sqlite(SqliteRow),
}

impl Row {
    /// Reads column `name` as `T`.
    pub fn get<T: Decodable>(&self, name: &str) -> Result<T, StoreError> {
        use sqlx::Row as _;
        let result = match self {
            Row::Postgres(row) => row.try_get::<T, _>(name),
            Row::Sqlite(row) => row.try_get::<T, _>(name),
        };
        result.map_err(|e| StoreError::Mapping { action: "decode", column: name.to_owned(), reason: e.to_string() })
    }
}
