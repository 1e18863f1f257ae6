//! All routes on one port, through the same handler the Lambda functions use.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

use passwordless::http::errors::ApiError;
use passwordless::http::{handle, HttpRequest, MAX_BODY_BYTES};
use passwordless::App;

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new().fallback(dispatch).with_state(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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

async fn dispatch(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = request_id();
    let (parts, body) = request.into_parts();
    // Read at most one byte past the limit: a larger body is refused without being buffered.
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::body_too_large()
                .into_response(&request_id)
                .map(Body::from)
        }
    };
    let request = HttpRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        source_ip: Some(peer.ip()),
        request_id,
    };
    handle(&app, request).await.map(Body::from)
}
