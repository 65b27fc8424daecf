//! Socket options of every mesh connection, set on both ends.
//!
//! Dead peers (a vanished pod, a half-open connection after a node failure) are found by TCP
//! keepalive: probes after [`KEEPALIVE_IDLE`] without traffic, every [`KEEPALIVE_INTERVAL`],
//! and the connection is reset after [`KEEPALIVE_PROBES`] unanswered ones (about a minute).
//! Not by HTTP/2 PING keepalive: hyper's keepalive time-stamps every frame it receives (a lock
//! and a clock read per frame), which measured ~4% of the CPU of a small RPC under load, while
//! the kernel's probes cost nothing per call and find the same dead peers.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Idle time before the first keepalive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the kernel resets the connection.
pub const KEEPALIVE_PROBES: u32 = 3;

/// No Nagle delay (RPCs are small and latency-bound) and keepalive probing.
pub fn tune(tcp: &TcpStream) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let keepalive =
        TcpKeepalive::new().with_time(KEEPALIVE_IDLE).with_interval(KEEPALIVE_INTERVAL).with_retries(KEEPALIVE_PROBES);
    SockRef::from(tcp).set_tcp_keepalive(&keepalive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_ends_get_nodelay_and_keepalive_probing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        for tcp in [&client, &server] {
            tune(tcp).expect("tune");
            let socket = SockRef::from(tcp);
            assert!(tcp.nodelay().expect("nodelay"));
            assert!(socket.keepalive().expect("keepalive"));
            assert_eq!(socket.tcp_keepalive_time().expect("idle"), KEEPALIVE_IDLE);
            assert_eq!(socket.tcp_keepalive_interval().expect("interval"), KEEPALIVE_INTERVAL);
            assert_eq!(socket.tcp_keepalive_retries().expect("probes"), KEEPALIVE_PROBES);
        }
    }
}
