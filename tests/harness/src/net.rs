//! Free-port allocation on loopback.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A loopback port nobody was listening on a moment ago. Prefer binding port 0 directly and
/// reading the bound address; use this only when a port must be known before binding (e.g.
/// passing it to a child process).
pub fn free_port() -> u16 {
    free_addr().port()
}

/// A loopback address (127.0.0.1) with a free port.
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind an ephemeral loopback port: {e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("cannot read the ephemeral port: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_bindable() {
        let port = super::free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }
}
