//! How long the server keeps a connection that carries no request: long enough that clients
//! and proxies, which keep idle connections for up to 90 s, close first.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: netcheck\r\n\r\n";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Sends `/healthz` and reads its answer (small enough to come in one read).
async fn healthz(conn: &mut TcpStream) -> String {
    conn.write_all(HEALTHZ).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Reads until the server closes the connection; what it sent on the way.
async fn until_closed(conn: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(within, conn.read_to_end(&mut got))
        .await
        .expect("the server closes the idle connection")
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn connections_stay_open_longer_than_actix_default_without_a_request() {
    let app = spawn_app().await;
    // actix's own default closes both after 5 s.
    let idle = Duration::from_secs(6);
    let before_first = async {
        let mut conn = connect(&app).await;
        tokio::time::sleep(idle).await;
        healthz(&mut conn).await
    };
    let between = async {
        let mut conn = connect(&app).await;
        let first = healthz(&mut conn).await;
        tokio::time::sleep(idle).await;
        (first, healthz(&mut conn).await)
    };
    let (before_first, (first, second)) = tokio::join!(before_first, between);
    for answer in [&before_first, &first, &second] {
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

#[tokio::test]
async fn connections_idle_past_keep_alive_secs_are_closed() {
    let app = spawn_app_with(|s| s.http.keep_alive_secs = 1).await;
    let mut unused = connect(&app).await;
    let mut used = connect(&app).await;
    assert!(healthz(&mut used).await.starts_with("HTTP/1.1 200"));
    let within = Duration::from_secs(5);
    let (unused, used) = tokio::join!(
        until_closed(&mut unused, within),
        until_closed(&mut used, within)
    );
    // A connection that never sent a head hears why it is closed; one between requests is
    // simply closed.
    assert!(unused.starts_with("HTTP/1.1 408"), "{unused}");
    assert_eq!(used, "");
}
