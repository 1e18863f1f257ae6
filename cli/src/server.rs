//! All routes on one port, through the same handler the Lambda functions use.
//!
//! The server is hyper's HTTP/1 connection builder with the limits a server that faces a
//! network needs (L3, S37): a cap on open connections and a smaller one per source, a short
//! deadline for a new connection's first byte, one for a request's headers and one for its
//! body, so that idle or stalled clients cannot hold the server's connections.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use passwordless::http::errors::ApiError;
use passwordless::http::{handle, HttpRequest, MAX_BODY_BYTES};
use passwordless::App;

/// The limits and trust settings of the local server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Proxies whose `X-Forwarded-For` hop is believed (S27). Empty: the socket peer is the
    /// client, whatever headers say.
    pub trusted_proxies: Vec<IpNet>,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Connections one source (the socket peer; a trusted proxy is not held to it) may hold
    /// at once; more are closed as they arrive.
    pub max_connections_per_source: usize,
    /// How long a new connection may stay silent before its first byte.
    pub first_byte_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
    /// The demo relying party and inbox under `/demo/` (local development only).
    pub demo: Option<crate::demo_pages::DemoPages>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            max_connections: 512,
            max_connections_per_source: 64,
            first_byte_timeout: Duration::from_secs(3),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            demo: None,
        }
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = Arc::new(options);
    let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let per_source: SourceCounts = Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let exempt = options
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip()));
        let Some(slot) = SourceSlot::take(
            &per_source,
            peer.ip(),
            exempt,
            options.max_connections_per_source,
        ) else {
            warn!("a source holds its share of connections: one more is closed");
            continue;
        };
        let (app, options) = (app.clone(), options.clone());
        let service = hyper::service::service_fn({
            let options = options.clone();
            move |request: http::Request<Incoming>| {
                let (app, options) = (app.clone(), options.clone());
                async move { Ok::<_, Infallible>(dispatch(&app, &options, peer, request).await) }
            }
        });
        let (http, watcher) = (http.clone(), graceful.watcher());
        tokio::spawn(async move {
            // A connection that says nothing is closed soon; one that speaks gets the header
            // and body deadlines.
            let mut first = [0u8; 1];
            let spoke =
                tokio::time::timeout(options.first_byte_timeout, stream.peek(&mut first)).await;
            if matches!(spoke, Ok(Ok(1..))) {
                // A client that hangs up mid-request is not the server's error.
                let _ = watcher
                    .watch(http.serve_connection(TokioIo::new(stream), service))
                    .await;
            }
            drop(slot);
            drop(permit);
        });
    }
    graceful.shutdown().await;
    Ok(())
}

type SourceCounts = Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>;

/// One connection of a source, counted while it lives.
struct SourceSlot {
    counts: SourceCounts,
    source: Option<IpAddr>,
}

impl SourceSlot {
    /// A slot for `source`, or `None` when it holds `cap` connections already. A trusted
    /// proxy speaks for many clients and is not counted.
    fn take(counts: &SourceCounts, source: IpAddr, exempt: bool, cap: usize) -> Option<Self> {
        if exempt {
            return Some(Self {
                counts: counts.clone(),
                source: None,
            });
        }
        let mut held = counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(source).or_insert(0);
        if *count >= cap.max(1) {
            return None;
        }
        *count += 1;
        Some(Self {
            counts: counts.clone(),
            source: Some(source),
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let Some(source) = self.source else {
            return;
        };
        let mut held = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                held.remove(&source);
            }
        }
    }
}

fn request_id() -> String {
    use passwordless::ports::Entropy;
    let mut bytes = [0u8; 16];
    // A request id only correlates logs; a failed draw falls back to zeros rather than failing the request.
    let _ = passwordless::adapters::entropy::OsEntropy.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The client's address (S27): the socket peer, unless the peer is a trusted proxy; then the
/// `X-Forwarded-For` hops are read from the right, past every trusted proxy, and the first
/// untrusted hop is the client. A hop that does not parse ends the walk at the last good one.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !trusted(&client) {
        return client;
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

async fn dispatch(
    app: &App,
    options: &ServerOptions,
    peer: SocketAddr,
    request: http::Request<Incoming>,
) -> http::Response<Full<Bytes>> {
    let request_id = request_id();
    let (parts, body) = request.into_parts();
    // Read at most one byte past the limit: a larger body is refused without being buffered.
    let read = tokio::time::timeout(
        options.body_timeout,
        Limited::new(body, MAX_BODY_BYTES + 1).collect(),
    )
    .await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            return ApiError::body_too_large()
                .into_response(&request_id)
                .map(Full::new)
        }
        Err(_) => {
            let mut response = http::Response::new(Full::new(Bytes::new()));
            *response.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
            return response;
        }
    };
    let forwarded_for: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let source_ip = client_address(peer.ip(), &forwarded_for, &options.trusted_proxies);
    let request = HttpRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body,
        source_ip: Some(source_ip),
        request_id,
    };
    if let Some(demo) = &options.demo {
        if let Some(response) = demo.answer(app, &request).await {
            return response.map(Full::new);
        }
    }
    handle(app, request).await.map(Full::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn m6_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(
            client_address(ip("203.0.113.9"), &["198.51.100.1"], &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn m6_behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client wrote the first hop itself; the proxy appended the address it saw.
        let header = ["1.2.3.4, 203.0.113.9, 10.0.0.7"];
        assert_eq!(
            client_address(ip("10.0.0.2"), &header, &proxies),
            ip("203.0.113.9")
        );
        // A peer that is not a trusted proxy is believed over any header.
        assert_eq!(
            client_address(ip("192.0.2.1"), &header, &proxies),
            ip("192.0.2.1")
        );
        // Garbage in the chain stops the walk at the last address a proxy vouched for.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["junk, 10.0.0.7"], &proxies),
            ip("10.0.0.7")
        );
    }
}
