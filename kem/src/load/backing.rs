//! Private PostgreSQL and Redis servers for fault runs: each run starts its own on a free
//! loopback port, so stopping or restarting them never disturbs anything else on the machine.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A free TCP port on loopback (bound and released; the caller binds it right away).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A `redis-server` of our own.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port (nothing persisted).
    pub fn start() -> anyhow::Result<PrivateRedis> {
        let mut redis = PrivateRedis { port: free_port()?, child: None };
        redis.restart()?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (clients see connection refused).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server (install Redis; scripts/test does)")?;
        self.child = Some(child);
        anyhow::ensure!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "redis-server did not listen on {}",
            self.port
        );
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster of our own (`initdb` + `pg_ctl`), trust auth on loopback.
pub struct PrivatePostgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server binaries not found under /usr/lib/postgresql (install postgresql)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().context("no initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl PrivatePostgres {
    /// Creates and starts a cluster in a temporary directory.
    pub fn start() -> anyhow::Result<PrivatePostgres> {
        let bin = postgres_bin()?;
        let dir = std::env::temp_dir().join(format!("kem-pg-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let pg = PrivatePostgres { port: free_port()?, dir, bin };
        if is_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&pg.dir).status()?;
            anyhow::ensure!(status.success(), "cannot chown {} to postgres", pg.dir.display());
        }
        let data = pg.dir.join("data");
        pg.run(&pg.bin.join("initdb"), &["-D", &data.to_string_lossy(), "-A", "trust", "-U", "postgres", "--no-sync"])?;
        pg.ctl("start")?;
        Ok(pg)
    }

    fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<()> {
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let output = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .with_context(|| format!("cannot run {}", program.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "{} {args:?} failed: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    fn ctl(&self, action: &str) -> anyhow::Result<()> {
        let data = self.dir.join("data");
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("postgres.log");
        self.run(
            &self.bin.join("pg_ctl"),
            &["-D", &data.to_string_lossy(), "-o", &options, "-l", &log.to_string_lossy(), "-m", "fast", "-w", action],
        )
    }

    /// The admin URL (`postgres` database).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Restarts the server (every connection is cut).
    pub fn restart(&self) -> anyhow::Result<()> {
        self.ctl("restart")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Databases created for one run on a PostgreSQL server, dropped by [`Databases::drop_all`].
pub struct Databases {
    admin: String,
    /// Name → URL.
    pub urls: Vec<(String, String)>,
}

impl Databases {
    /// Creates `kem_load_<run>_<name>` for every name.
    pub async fn create(admin: &str, run: &str, names: &[&str]) -> anyhow::Result<Databases> {
        use sqlx::Connection;
        let mut conn =
            sqlx::PgConnection::connect(admin).await.with_context(|| format!("cannot connect to {admin}"))?;
        let mut urls = Vec::new();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).context("admin URL must end with /<database>")?;
        for name in names {
            let db = format!("kem_load_{run}_{name}");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
                .execute(&mut conn)
                .await
                .with_context(|| format!("cannot create database {db}"))?;
            urls.push(((*name).to_owned(), format!("{base}/{db}")));
        }
        let _ = conn.close().await;
        Ok(Databases { admin: admin.to_owned(), urls })
    }

    /// Drops them (forcing connections closed).
    pub async fn drop_all(self) {
        use sqlx::Connection;
        let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await else { return };
        for (_, url) in &self.urls {
            if let Some((_, db)) = url.rsplit_once('/') {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")))
                    .execute(&mut conn)
                    .await;
            }
        }
        let _ = conn.close().await;
    }
}
