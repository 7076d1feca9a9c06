//! A cursor names its numbering: after a restart without a state dir, every transport (SSE,
//! `/follow`, poll JSON, poll text, WebSocket) tells a client whose cursor is from the old epoch
//! of the reset and sends the backlog; none resumes at a seq of another numbering. Also: the text
//! transports mark lines cut at `--max-line-bytes`. Every test runs the real binary and restarts it.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt as _;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(30);

/// The reproduction: `e.log` with 10 lines (seqs 1-10), rotated, `new-1..new-5` (seqs
/// 11-15), a restart (the new server numbers the file's lines 1-5), `new-6..new-25` appended.
struct Restarted {
    _dir: tempfile::TempDir,
    server: Server,
    /// The first server's epoch: a client holding `OLD-15` has seen `new-5`.
    old_epoch: u64,
    /// The running server's epoch.
    epoch: u64,
}

async fn restarted() -> Restarted {
    let dir = temp_dir();
    let log = join(&dir, "e.log");
    append_numbered(&log, "old", 1..11);
    let mut first = Server::start(&[path_str(&log)]);
    first.wait_last_seq("e.log", 10, LONG).await;
    let old_epoch = first.get_json("/poll?file=e.log&backlog=0").await["epoch"]
        .as_u64()
        .expect("epoch");
    std::fs::rename(&log, join(&dir, "e.log.1")).unwrap();
    append_numbered(&log, "new", 1..6);
    first.wait_last_seq("e.log", 15, LONG).await;
    first.terminate(LONG);
    let server = Server::start(&[path_str(&log)]);
    append_numbered(&log, "new", 6..26);
    server.wait_last_seq("e.log", 25, LONG).await;
    let epoch = server.get_json("/poll?file=e.log&backlog=0").await["epoch"]
        .as_u64()
        .expect("epoch");
    assert_ne!(epoch, old_epoch, "a restart is a new epoch");
    Restarted {
        _dir: dir,
        server,
        old_epoch,
        epoch,
    }
}

#[tokio::test]
async fn sse_resume_from_an_old_epoch_gets_a_reset_then_the_backlog() {
    let r = restarted().await;
    let old = format!("{}-15", r.old_epoch);
    let url = r.server.url("/sse?file=e.log");
    let text = stream_until(LONG, &url, &[("Last-Event-ID", &old)], "data: new-25\n").await;
    let events: Vec<eventsource_stream::Event> = {
        use eventsource_stream::Eventsource as _;
        let chunks =
            futures_util::stream::iter([Ok::<_, std::io::Error>(text.clone().into_bytes())]);
        chunks
            .eventsource()
            .filter_map(|e| async move { e.ok() })
            .collect()
            .await
    };
    let first = &events[0];
    assert_eq!(first.event, "reset", "the reset comes first: {text}");
    let data: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(data["epoch"], r.epoch, "{data}");
    assert_eq!(data["from_epoch"], r.old_epoch, "{data}");
    assert_eq!(data["reason"], "epoch", "{data}");
    let lines: Vec<(String, String)> = events[1..]
        .iter()
        .map(|e| (e.id.clone(), e.data.clone()))
        .collect();
    let expected: Vec<(String, String)> = (16..26)
        .map(|i| (format!("{}-{i}", r.epoch), format!("new-{i}")))
        .collect();
    assert_eq!(lines, expected, "the default backlog, ids qualified");

    // The reset's backlog is the request's `backlog=`: a client that wants all the server has.
    let url = r.server.url("/sse?file=e.log&backlog=100");
    let text = stream_until(LONG, &url, &[("Last-Event-ID", &old)], "data: new-25\n").await;
    assert!(text.contains("event: reset\n"), "{text}");
    assert!(text.contains("data: new-1\n\n"), "{text}");

    // A qualified id of this epoch resumes exactly, without a reset.
    let now = format!("{}-23", r.epoch);
    let text = stream_until(LONG, &url, &[("Last-Event-ID", &now)], "data: new-25\n").await;
    assert!(!text.contains("reset"), "{text}");
    assert!(
        text.contains(&format!("id: {}-24\ndata: new-24\n\n", r.epoch)),
        "{text}"
    );
    assert!(!text.contains("new-23"), "{text}");
}

#[tokio::test]
async fn follow_after_an_old_epoch_cursor_prints_a_reset_line_then_the_backlog() {
    let r = restarted().await;
    let url = r
        .server
        .url(&format!("/follow?file=e.log&after={}-15", r.old_epoch));
    let text = stream_until(LONG, &url, &[], "new-25\n").await;
    let mut lines = text.lines();
    let marker = lines.next().unwrap();
    assert!(
        marker.starts_with("==> tailcast: e.log: reset:") && marker.ends_with("<=="),
        "{marker}"
    );
    assert!(marker.contains(&r.old_epoch.to_string()), "{marker}");
    assert!(marker.contains(&r.epoch.to_string()), "{marker}");
    let rest: Vec<String> = lines.map(str::to_owned).collect();
    assert_lines_eq(&rest, &numbered("new", 16..26));
}

#[tokio::test]
async fn poll_json_and_text_after_an_old_epoch_cursor_say_reset() {
    let r = restarted().await;
    let answer = r
        .server
        .get_json(&format!(
            "/poll?file=e.log&after={}-15&timeout=30",
            r.old_epoch
        ))
        .await;
    assert_eq!(answer["reset"], true, "{answer}");
    assert_eq!(answer["reset_reason"], "epoch", "{answer}");
    assert_eq!(answer["epoch"], r.epoch, "{answer}");
    assert_eq!(answer["first_seq"], 16, "{answer}");
    assert_eq!(answer["lines"], json!(numbered("new", 16..26)), "{answer}");
    assert_eq!(answer["cursor"], format!("{}-25", r.epoch), "{answer}");

    // The cursor it gives is taken back without a reset, and held until news.
    let next = r
        .server
        .get_json(&format!(
            "/poll?file=e.log&after={}&timeout=0",
            answer["cursor"].as_str().unwrap()
        ))
        .await;
    assert!(next.get("reset").is_none(), "{next}");
    assert_eq!(next["lines"], json!([]), "{next}");

    // A bare seq works as it always did: taken in the current numbering.
    let bare = r.server.get_json("/poll?file=e.log&after=23").await;
    assert!(bare.get("reset").is_none(), "{bare}");
    assert_eq!(bare["lines"], json!(["new-24", "new-25"]), "{bare}");

    let response = reqwest::get(r.server.url(&format!(
        "/poll?file=e.log&format=text&backlog=3&after={}-15",
        r.old_epoch
    )))
    .await
    .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("x-tailcast-reset").as_deref(), Some("1"));
    assert_eq!(header("x-tailcast-reset-reason").as_deref(), Some("epoch"));
    assert_eq!(header("x-tailcast-cursor"), Some(format!("{}-25", r.epoch)));
    assert_eq!(header("x-tailcast-epoch"), Some(r.epoch.to_string()));
    assert_eq!(
        response.text().await.unwrap(),
        "new-23\nnew-24\nnew-25\n",
        "the reset's backlog is backlog="
    );
}

#[tokio::test]
async fn websocket_subscribe_with_an_old_epoch_gets_a_reset_then_the_backlog() {
    let r = restarted().await;
    for after in [json!(15), json!(format!("{}-15", r.old_epoch))] {
        let mut ws = WsClient::connect(&r.server).await;
        assert_eq!(ws.hello["epoch"], r.epoch);
        let mut subscribe = json!({"type":"subscribe","file":"e.log","after":after});
        if after.is_u64() {
            subscribe["epoch"] = json!(r.old_epoch);
        }
        ws.send(subscribe).await;
        let reset = ws.next_non_ping(LONG).await.expect("an answer");
        assert_eq!(reset["type"], "reset", "{reset}");
        assert_eq!(reset["file"], "e.log", "{reset}");
        assert_eq!(reset["epoch"], r.epoch, "{reset}");
        assert_eq!(reset["from_epoch"], r.old_epoch, "{reset}");
        let mut lines = Vec::new();
        ws.collect_lines("e.log", 10, LONG, &mut lines).await;
        let seqs: Vec<u64> = lines.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (16..26).collect::<Vec<_>>());
        let texts: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
        assert_lines_eq(&texts, &numbered("new", 16..26));
    }

    // The current epoch resumes; `backlog` beside a qualified cursor is allowed.
    let mut ws = WsClient::connect(&r.server).await;
    ws.send(json!({"type":"subscribe","file":"e.log","after":24,"epoch":r.epoch,"backlog":3}))
        .await;
    let msg = ws.next_non_ping(LONG).await.expect("lines");
    assert_eq!(msg["type"], "lines", "{msg}");
    assert_eq!(msg["seq"], 25, "{msg}");

    // A malformed cursor string is refused by name.
    ws.send(json!({"type":"subscribe","file":"e.log","after":"1-x"}))
        .await;
    let msg = ws.next_non_ping(LONG).await.expect("error");
    assert_eq!(msg["code"], "bad_message", "{msg}");
}

#[tokio::test]
async fn text_transports_mark_lines_cut_at_max_line_bytes() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    let long = "x".repeat(100);
    append(&log, format!("short\n{long}\nok\n{long}\n").as_bytes());
    let server = Server::start(&["--max-line-bytes", "16", &path_str(&log)]);
    server.wait_last_seq("app.log", 4, LONG).await;

    let response = reqwest::get(server.url("/poll?file=app.log&format=text"))
        .await
        .unwrap();
    assert_eq!(response.headers()["x-tailcast-truncated"], "2,4");
    let json = server.get_json("/poll?file=app.log").await;
    assert_eq!(json["truncated"], json!([2, 4]), "{json}");

    let cut = format!("{} [tailcast: line cut at --max-line-bytes]", &long[..16]);
    let needle = format!("ok\n{cut}\n");
    let text = stream_until(LONG, &server.url("/follow?file=app.log"), &[], &needle).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["short", cut.as_str(), "ok", cut.as_str()],
        "{text:?}"
    );

    let epoch = json["epoch"].as_u64().unwrap();
    let sse = stream_until(
        LONG,
        &server.url("/sse?file=app.log"),
        &[],
        "data: {\"seq\":4}",
    )
    .await;
    assert!(
        sse.contains(&format!(
            "id: {epoch}-2\ndata: {}\n\nevent: truncated\ndata: {{\"seq\":2}}\n\n",
            &long[..16]
        )),
        "{sse}"
    );
    assert!(
        sse.contains(&format!("id: {epoch}-3\ndata: ok\n\nid: {epoch}-4\n")),
        "an uncut line has no mark: {sse}"
    );
}
