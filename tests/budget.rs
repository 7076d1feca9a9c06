//! The server-wide output budget, seen from outside: past `--total-buffer` a new request gets
//! 503, and once the bytes waiting for stalled clients are gone (taken, or their connections
//! reset after `--send-timeout`) the server answers again.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// A client that asks for `path` four times over (pipelined) and never reads (4 KiB receive
/// buffer).
async fn stalled_stream(addr: &str, path: &str) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket
        .connect(addr.parse().expect("address"))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").repeat(4);
    stream.write_all(request.as_bytes()).await.expect("write");
    stream
}

/// Status of a plain GET on a fresh connection.
async fn status_of(addr: &str, path: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = vec![0; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let text = String::from_utf8_lossy(&head[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

#[tokio::test]
async fn past_the_server_budget_new_requests_get_503_until_the_stalled_clients_are_reset() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    // Lines of 1 000 bytes: 4 000 of them, 4 MB, far more than the budgets below.
    let line = "x".repeat(1000);
    let text: String = (0..4000).map(|i| format!("{i} {line}\n")).collect();
    std::fs::write(&log, text).expect("write the log");
    let server = Server::start(&[
        "--client-buffer",
        "64KiB",
        "--total-buffer",
        "128KiB",
        "--send-timeout",
        "2s",
        &path_str(&log),
    ]);
    let addr = server.addr.clone();
    assert_eq!(status_of(&addr, "/healthz").await, 200, "before the attack");

    // Stalled clients of the dashboard's entry script (counted whole when answered): each keeps
    // what its socket buffers do not take of one answer waiting, the server may keep 128 KiB in
    // all, so enough of them fill the budget. How much one holds depends on the script's size
    // and the kernel's buffers, so they are added until a new request is refused (quickly: the
    // first are reset after --send-timeout, 2 s). (Streams never fill the budget: they wait for
    // room instead of queueing.)
    let mut stalled = Vec::new();
    let mut refused = false;
    while !refused && stalled.len() < 400 {
        for _ in 0..8 {
            stalled.push(stalled_stream(&addr, "/app.js").await);
        }
        refused = status_of(&addr, "/api/files").await == 503;
    }
    assert!(
        refused,
        "with {} stalled clients holding the server's output budget, a new request must get 503",
        stalled.len()
    );
    println!("{} stalled clients filled the budget", stalled.len());

    // The stalled clients are reset after --send-timeout; then the server answers again.
    let recovered = wait_for(Duration::from_secs(10), || async {
        (status_of(&addr, "/api/files").await == 200).then_some(())
    })
    .await;
    assert!(
        recovered.is_some(),
        "the server must answer again once the stalled clients are reset"
    );
    // (That the stalled connections themselves are closed by the server, without reading, is
    // checked in tests/abuse.rs.)
    drop(stalled);
}

/// Server RSS, in KiB.
fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:").unwrap_or(0)
}

#[tokio::test]
async fn pipelined_requests_with_bodyless_answers_do_not_grow_the_server() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "one\n").expect("write the log");
    let server = Server::start(&["--send-timeout", "3s", &path_str(&log)]);
    let idle = rss_kib(server.pid());
    // `OPTIONS /` gets an answer with a head and no body (405): before the fix each pipelined
    // request added its head to actix's write buffer whatever it held.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket
        .connect(server.addr.parse().expect("address"))
        .await
        .expect("connect");
    let request = b"OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(10_000);
    let mut sent = 0usize;
    let mut peak = idle;
    // Up to 40 MB of requests, or until the server stops reading them (the writes block).
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_millis(200), stream.write_all(&request)).await {
            Ok(Ok(())) => sent += request.len(),
            _ => break,
        }
        peak = peak.max(rss_kib(server.pid()));
    }
    peak = peak.max(rss_kib(server.pid()));
    let growth_mib = peak.saturating_sub(idle) as f64 / 1024.0;
    assert!(
        growth_mib < 16.0,
        "RSS grew {growth_mib:.1} MiB while a client pipelined {} MB of OPTIONS / without \
         reading (expected < 16 MiB: actix's write buffer is bounded)",
        sent / 1_000_000
    );
    assert!(
        sent < 40 * 1_000_000,
        "the server kept reading pipelined requests it could not answer ({sent} bytes taken)"
    );
}
