//! The server in the test's own process: [`tailcast::app::run`] on a listener bound to port 0,
//! with a shutdown future the test completes, as a program that embeds tailcast would run it.
//! The other test files start the real binary; this one checks the library entry point itself:
//! `on_ready` means "serving", and completing the future drains the sessions and returns.

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use common::*;
use tailcast::app;
use tailcast::cli::Cli;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn run_on_port_0_streams_a_line_and_returns_within_a_second_of_shutdown() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_numbered("old", 0..3);
    let config = Cli::parse_from(["tailcast", &log.path_str()])
        .into_config(None)
        .expect("a valid configuration");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let addr = listener.local_addr().unwrap();

    // The server gets its own thread and actix System, as in the binary's `main`; the test's
    // client runs on the test's runtime.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let result = app::run(config, listener, shutdown, |ready| {
                let _ = ready_tx.send((ready.addr, ready.files.len()));
            })
            .await;
            (result, Instant::now())
        })
    });
    let (ready_addr, files) = ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("on_ready within 30 s");
    assert_eq!(ready_addr, addr, "on_ready reports the listener's address");
    assert_eq!(files, 1, "one followed file");

    let mut ws = WsClient::connect_url(&format!("ws://{addr}/ws")).await;
    assert_eq!(ws.hello["files"][0]["last_seq"], 3, "hello: {}", ws.hello);
    ws.subscribe_backlog("app.log", 0).await;
    log.append_line("live-0");
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 1, LONG, &mut lines).await;
    assert_eq!(lines, [(4, "live-0".to_owned())]);

    let shutdown_at = Instant::now();
    stop.send(())
        .expect("run still waits for its shutdown future");
    assert_eq!(
        ws.expect_close(Duration::from_secs(5)).await,
        CloseCode::Away,
        "a session closes with 1001 on shutdown"
    );
    // Joined with a deadline: a `run` that never returns fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.is_finished() {
        assert!(
            Instant::now() < deadline,
            "app::run had not returned 10 s after its shutdown future completed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (result, returned_at) = server.join().expect("the server thread did not panic");
    result.expect("app::run returns Ok");
    let took = returned_at.duration_since(shutdown_at);
    println!("app::run returned {took:?} after its shutdown future completed");
    assert!(
        took < Duration::from_secs(1),
        "app::run returned {took:?} after the shutdown future completed, expected under 1 s"
    );
}
