//! Dialling one endpoint: TCP, then TLS with a per-target client configuration.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Called after each TLS handshake with the end of validity of the server's certificate.
pub type OnConnect = Arc<dyn Fn(Option<SystemTime>) + Send + Sync>;

/// Builds a lazily connecting tonic channel to `addr` (`host:port`) that speaks TLS with `config`,
/// sending `server_name` as SNI. The channel reconnects on its own after a connection drops.
pub fn tls_channel(
    addr: &str,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    connect_timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    tls_channel_observed(addr, config, server_name, connect_timeout, None)
}

/// [`tls_channel`], reporting each new connection's server-certificate expiry to `on_connect`.
pub fn tls_channel_observed(
    addr: &str,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    connect_timeout: Duration,
    on_connect: Option<OnConnect>,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_max_header_list_size(crate::server::bound::MAX_HEADER_LIST_SIZE);
    let connector = tower::service_fn(move |uri: Uri| {
        let config = config.clone();
        let server_name = server_name.clone();
        let on_connect = on_connect.clone();
        async move {
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "endpoint has no host:port"))?;
            let tcp = TcpStream::connect(&authority).await?;
            // No HTTP/2 PING keepalive on the channel: dead servers are found by TCP keepalive.
            crate::socket::tune(&tcp)?;
            let tls = tokio_rustls::TlsConnector::from(config).connect(server_name, tcp).await?;
            if let Some(on_connect) = on_connect {
                let expiry = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(not_after_of);
                on_connect(expiry);
            }
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// A plaintext (h2c) channel, for admin ports and tests that measure the mesh against no TLS.
pub fn plaintext_channel(addr: &str, connect_timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// End of validity of a certificate.
pub fn not_after_of(cert: &rustls::pki_types::CertificateDer<'_>) -> Option<SystemTime> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let secs = u64::try_from(parsed.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}
