//! A Redis connection and key prefix per test.

use fred::prelude::*;
use fred::types::CustomCommand;

/// The server tests use, overridable with `KEM_TEST_REDIS_URL`.
pub fn redis_url() -> String {
    std::env::var("KEM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A connected Redis client and a prefix under which the test keeps all its keys.
pub struct TestRedis {
    /// The connected client.
    pub client: Client,
    /// Prefix for every key of this test, e.g. `kem-test:abcd…:`.
    pub prefix: String,
}

impl TestRedis {
    /// Connects (panicking with instructions when Redis is unreachable) and picks a fresh prefix.
    pub async fn new() -> TestRedis {
        let url = redis_url();
        let config = Config::from_url(&url).unwrap_or_else(|e| panic!("invalid KEM_TEST_REDIS_URL {url:?}: {e}"));
        let client = Builder::from_config(config)
            .with_connection_config(|c| c.connection_timeout = std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_else(|e| panic!("cannot build a Redis client for {url}: {e}"));
        client.init().await.unwrap_or_else(|e| {
            panic!("Redis is required for this test but {url} is unreachable: {e}. Start it (scripts/test does) or set KEM_TEST_REDIS_URL.")
        });
        TestRedis { client, prefix: format!("kem-test:{}:", crate::unique_suffix()) }
    }

    /// `prefix + key`.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Keys currently stored under this test's prefix.
    pub async fn keys(&self) -> Vec<String> {
        self.client
            .custom(CustomCommand::new_static("KEYS", None, false), vec![format!("{}*", self.prefix)])
            .await
            .unwrap_or_else(|e| panic!("KEYS {}* failed: {e}", self.prefix))
    }

    /// Deletes every key under the prefix and disconnects.
    pub async fn cleanup(self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let _: i64 = self.client.del(keys).await.unwrap_or_else(|e| panic!("cleanup DEL failed: {e}"));
        }
        let _ = self.client.quit().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prefixes_isolate_tests_and_cleanup_removes_keys() {
        let a = TestRedis::new().await;
        let b = TestRedis::new().await;
        assert_ne!(a.prefix, b.prefix);
        let _: () = a.client.set(a.key("k"), "1", None, None, false).await.expect("set");
        assert_eq!(a.keys().await, vec![a.key("k")]);
        assert!(b.keys().await.is_empty());
        let watcher = TestRedis::new().await;
        let pattern_key = a.key("k");
        a.cleanup().await;
        let exists: i64 = watcher.client.exists(pattern_key).await.expect("exists");
        assert_eq!(exists, 0);
        b.cleanup().await;
        watcher.cleanup().await;
    }
}
