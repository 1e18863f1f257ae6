//! L3: the local server bounds how long a client may take and how many connections it holds,
//! so a stalled or flooding client cannot keep it from serving others.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use passwordless::config::{Config, MailerConfig, StoreConfig, VaultConfig};
use passwordless::App;
use passwordless_cli::server::{serve, ServerOptions};

struct Server {
    address: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn server(options: ServerOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        store: StoreConfig::Sqlite(dir.path().join("store.db")),
        mailer: MailerConfig::Outbox(dir.path().join("outbox")),
        vault: VaultConfig::File(dir.path().join("store.key")),
        public_url: "https://login.example".into(),
    };
    let app = Arc::new(App::from_config(&config).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(app, listener, options, std::future::pending()));
    Server { address, _dir: dir }
}

/// Reads until the peer closes or `within` passes; what arrived, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

const JWKS: &[u8] = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn l3_a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = server(ServerOptions {
        header_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await;
    let mut stalled = TcpStream::connect(server.address).await.unwrap();
    stalled
        .write_all(b"POST /api/passwordless/login HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut stalled, Duration::from_secs(10)).await;
    assert!(closed, "the server must hang up on a stalled request");
}

#[tokio::test]
async fn l3_a_client_that_never_finishes_its_body_gets_408() {
    let server = server(ServerOptions {
        body_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await;
    let mut stalled = TcpStream::connect(server.address).await.unwrap();
    stalled
        .write_all(b"POST /api/passwordless/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut stalled, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn l3_connections_beyond_the_cap_wait_until_one_is_free() {
    let server = server(ServerOptions {
        max_connections: 1,
        header_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    })
    .await;
    let mut holder = TcpStream::connect(server.address).await.unwrap();
    // The holder's connection is served: it gets its answer and keeps the connection open.
    holder
        .write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    holder.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let mut waiting = TcpStream::connect(server.address).await.unwrap();
    waiting.write_all(JWKS).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a second connection is not served while the first holds the only slot"
    );

    drop(holder);
    let (answer, _) = read_until_closed(&mut waiting, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// N4, S37: a connection that sends nothing is closed after the first-byte deadline, well
/// before the header deadline, so idle connections cannot hold the server's slots.
#[tokio::test]
async fn n4_s37_a_silent_connection_is_closed_at_the_first_byte_deadline() {
    let server = server(ServerOptions {
        first_byte_timeout: Duration::from_millis(300),
        header_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    })
    .await;
    let began = std::time::Instant::now();
    let mut silent = TcpStream::connect(server.address).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(closed, "a silent connection is closed");
    assert!(began.elapsed() < Duration::from_secs(10));
    // One that speaks in time is served.
    let mut speaking = TcpStream::connect(server.address).await.unwrap();
    speaking.write_all(JWKS).await.unwrap();
    let (answer, _) = read_until_closed(&mut speaking, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// N4, S37: one source holds at most its share of connections: past it, its new connections
/// are closed at once, and the server still has room for everybody else (here, the same
/// source once one of its connections ends).
#[tokio::test]
async fn n4_s37_one_source_cannot_hold_more_than_its_share_of_connections() {
    let server = server(ServerOptions {
        max_connections_per_source: 4,
        first_byte_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_secs(30),
        ..ServerOptions::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.address).await.unwrap());
    }
    // Let the server count them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fifth = TcpStream::connect(server.address).await.unwrap();
    let (answer, closed) = read_until_closed(&mut fifth, Duration::from_secs(5)).await;
    assert!(
        closed && answer.is_empty(),
        "the fifth is closed unanswered: {answer}"
    );
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = TcpStream::connect(server.address).await.unwrap();
    next.write_all(JWKS).await.unwrap();
    let (answer, _) = read_until_closed(&mut next, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
