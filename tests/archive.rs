//! A file's past on disk: the generations the real `logrotate` leaves (plain and gzip), pages
//! of lines read back by position (every boundary: first and last line, across generations, a
//! line longer than a read chunk, CRLF, invalid UTF-8), pages that start at a seq, searches
//! whose hits are exactly `grep -n`'s, searches stopped by a client that goes, and every bound
//! of a search refused or reported clearly.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt as _;
use serde_json::Value;

/// One generation as the test wrote it: its file name and its decompressed bytes.
struct Written {
    name: String,
    bytes: Vec<u8>,
}

fn logrotate(dir: &Path, log: &Path) {
    let conf = dir.join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n  rotate 5\n  compress\n  delaycompress\n  missingok\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    run_logrotate(&conf, &dir.join("logrotate.state"));
}

fn decompressed(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("zcat").arg(path).output().expect("zcat");
        assert!(out.status.success());
        out.stdout
    } else {
        bytes
    }
}

/// `app.log` and four rotations by the real logrotate (`compress`, `delaycompress`): the
/// generations, oldest first, as they are on disk at the end. Phase 1 (now `app.log.3.gz`)
/// holds the awkward lines: CRLF, invalid UTF-8, one line of 200 KiB (over the 64 KiB read
/// chunk and the cap of 64 KiB).
fn rotated_log(dir: &tempfile::TempDir) -> (PathBuf, Vec<Written>) {
    let log = dir.path().join("app.log");
    for phase in 0..4 {
        let mut text = Vec::new();
        for n in 0..(300 + phase * 50) {
            writeln!(
                text,
                "phase {phase} line {n} request id={:05} ok",
                n * 7 + phase
            )
            .unwrap();
            if phase == 1 && n == 10 {
                text.extend_from_slice(b"a CRLF line\r\n");
                text.extend_from_slice(b"bad utf-8 \xff\xfe here\n");
                text.extend_from_slice(&vec![b'L'; 200 * 1024]);
                text.push(b'\n');
            }
        }
        std::fs::write(&log, &text).unwrap();
        logrotate(dir.path(), &log);
    }
    let mut text = Vec::new();
    for n in 0..120 {
        writeln!(text, "current line {n} request id={:05} ok", n * 3).unwrap();
    }
    std::fs::write(&log, &text).unwrap();
    let names = [
        "app.log.4.gz",
        "app.log.3.gz",
        "app.log.2.gz",
        "app.log.1",
        "app.log",
    ];
    let generations = names
        .iter()
        .map(|name| Written {
            name: name.to_string(),
            bytes: decompressed(&dir.path().join(name)),
        })
        .collect();
    (log, generations)
}

/// What a page should say of each line: (generation name, offset, line number, text).
fn expected_lines(generations: &[Written], max_line: usize) -> Vec<(String, u64, u64, String)> {
    let mut out = Vec::new();
    for generation in generations {
        let mut offset = 0u64;
        for (n, raw) in generation
            .bytes
            .split_inclusive(|b| *b == b'\n')
            .enumerate()
        {
            let line = raw.strip_suffix(b"\n").unwrap_or(raw);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let shown = &line[..line.len().min(max_line)];
            out.push((
                generation.name.clone(),
                offset,
                n as u64 + 1,
                String::from_utf8_lossy(shown).into_owned(),
            ));
            offset += raw.len() as u64;
        }
    }
    out
}

async fn get(server: &Server, path: &str) -> (u16, Value) {
    let response = reqwest::get(server.url(path)).await.expect("GET");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

async fn gen_names(server: &Server, id: &str) -> HashMap<String, String> {
    let (status, list) = get(server, &format!("/api/generations?file={id}")).await;
    assert_eq!(status, 200, "{list}");
    list["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["gen"].as_str().unwrap().to_owned(),
                g["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A page's lines as (generation name, offset, line number, text).
fn page_lines(page: &Value, names: &HashMap<String, String>) -> Vec<(String, u64, u64, String)> {
    page["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines in {page}"))
        .iter()
        .map(|l| {
            (
                names[l["gen"].as_str().unwrap()].clone(),
                l["offset"].as_u64().unwrap(),
                l["line"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no line number: {l}")),
                l["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn paging_back_from_the_newest_line_to_line_1_of_the_oldest_generation_reads_every_line_once()
{
    let dir = temp_dir();
    let (log, generations) = rotated_log(&dir);
    let server = Server::start(&[path_str(&log)]);
    let names = gen_names(&server, "app.log").await;
    let listed: Vec<&str> = {
        let mut v: Vec<&str> = names.values().map(String::as_str).collect();
        v.sort();
        v
    };
    assert_eq!(
        listed,
        [
            "app.log",
            "app.log.1",
            "app.log.2.gz",
            "app.log.3.gz",
            "app.log.4.gz"
        ]
    );
    let expected = expected_lines(&generations, 64 * 1024);

    // Backwards, 7 lines a page (pages straddle every generation boundary).
    let mut pages = Vec::new();
    let mut query = "/api/page?file=app.log&max=7".to_owned();
    loop {
        let (status, page) = get(&server, &query).await;
        assert_eq!(status, 200, "{page}");
        pages.push(page_lines(&page, &names));
        match page["before"].as_str() {
            Some(before) => query = format!("/api/page?file=app.log&max=7&before={before}"),
            None => break,
        }
        assert!(pages.len() < 10_000, "paging back does not end");
    }
    let newest = &pages[0];
    assert_eq!(
        newest.last(),
        expected.last(),
        "the newest page ends at the last line"
    );
    let back: Vec<_> = pages.into_iter().rev().flatten().collect();
    assert_eq!(back.len(), expected.len());
    for (got, want) in back.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    assert_eq!(
        back[0],
        (
            "app.log.4.gz".into(),
            0,
            1,
            "phase 0 line 0 request id=00000 ok".into()
        )
    );

    // Forwards from the oldest line, 11 a page, to the end of the file at the path.
    let mut forward = Vec::new();
    let mut query = "/api/page?file=app.log&max=11&at=oldest".to_owned();
    loop {
        let (status, page) = get(&server, &query).await;
        assert_eq!(status, 200, "{page}");
        let lines = page_lines(&page, &names);
        if lines.is_empty() {
            break;
        }
        forward.extend(lines);
        query = format!(
            "/api/page?file=app.log&max=11&after={}",
            page["after"].as_str().unwrap()
        );
        assert!(
            forward.len() <= expected.len(),
            "paging forward does not end"
        );
    }
    assert_eq!(forward, expected);

    // The awkward lines: CRLF without its \r, invalid UTF-8 as U+FFFD, the long line cut at the
    // cap and marked, and the line after it at its true offset.
    let awkward = |text: &str| {
        back.iter()
            .find(|l| l.3.starts_with(text))
            .cloned()
            .unwrap()
    };
    assert_eq!(awkward("a CRLF").3, "a CRLF line");
    assert_eq!(awkward("bad utf-8").3, "bad utf-8 \u{fffd}\u{fffd} here");
    let long = awkward("LLLL");
    assert_eq!(long.3.len(), 64 * 1024);
    let (_, page) = get(
        &server,
        &format!(
            "/api/page?file=app.log&max=3&around={}:{}",
            names.iter().find(|(_, n)| *n == "app.log.3.gz").unwrap().0,
            long.1 + 100_000
        ),
    )
    .await;
    let lines = page["lines"].as_array().unwrap();
    assert_eq!(lines[1]["truncated"], true, "{}", lines[1]["offset"]);
    assert_eq!(lines[1]["offset"].as_u64(), Some(long.1));
    assert_eq!(lines[2]["offset"].as_u64(), Some(long.1 + 200 * 1024 + 1));
    assert!(lines[0].get("truncated").is_none());

    // format=text: the lines, and the cursors in headers.
    let response = reqwest::get(server.url("/api/page?file=app.log&max=3&format=text"))
        .await
        .unwrap();
    let before = response.headers()["x-tailcast-before"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(response.headers().contains_key("x-tailcast-after"));
    assert_eq!(
        response.text().await.unwrap(),
        "current line 117 request id=00351 ok\ncurrent line 118 request id=00354 ok\ncurrent line 119 request id=00357 ok\n"
    );
    let (_, above) = get(
        &server,
        &format!("/api/page?file=app.log&max=1&before={before}"),
    )
    .await;
    assert_eq!(
        above["lines"][0]["text"],
        "current line 116 request id=00348 ok"
    );
}

#[tokio::test]
async fn the_page_above_the_oldest_line_in_memory_is_one_request_and_pages_name_seqs() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_numbered("old", 0..1000);
    let server = Server::start(&["--history".to_owned(), "100".to_owned(), log.path_str()]);
    server
        .wait_last_seq("app.log", 1000, Duration::from_secs(10))
        .await;
    let backlog = server.get_json("/poll?file=app.log&backlog=100").await;
    let oldest = backlog["first_seq"].as_u64().unwrap();
    assert_eq!(oldest, 901);
    assert_eq!(backlog["lines"][0], "old-900");
    let (status, page) = get(
        &server,
        &format!("/api/page?file=app.log&max=50&before_seq={oldest}"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let lines = page["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 50);
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(line["text"], format!("old-{}", 850 + k));
        assert_eq!(line["seq"].as_u64(), Some(851 + k as u64), "{line}");
        assert_eq!(line["line"].as_u64(), Some(851 + k as u64), "{line}");
    }
    // After a rotation, the lines of the old generation still in memory are placed too.
    let rotated = log.rotate_to("app.log.1");
    log.append_numbered("new", 0..10);
    server
        .wait_last_seq("app.log", 1010, Duration::from_secs(10))
        .await;
    let (status, page) = get(&server, "/api/page?file=app.log&max=12").await;
    assert_eq!(status, 200, "{page}");
    let texts: Vec<_> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["text"].clone(), l["seq"].clone()))
        .collect();
    assert_eq!(texts[0], (Value::from("old-998"), Value::from(999)));
    assert_eq!(texts[11], (Value::from("new-9"), Value::from(1010)));
    let (status, page) = get(&server, "/api/page?file=app.log&max=2&before_seq=1001").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["lines"][1]["text"], "old-999");
    assert_eq!(page["lines"][1]["seq"], 1000);
    drop(rotated);
    // A seq nobody can place is refused with what to do instead.
    let (status, body) = get(&server, "/api/page?file=app.log&before_seq=5000").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_seq");
}

/// `grep -n ARGS` over one generation's text, each line prefixed with `label:` (or `label-`
/// for context), as grep prints several files.
fn grep(args: &[&str], pattern: &str, bytes: &[u8], label: Option<&str>) -> String {
    let mut child = Command::new("grep")
        .arg("-n")
        .args(args)
        .arg("--")
        .arg(pattern)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("grep");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    writer.join().unwrap().unwrap();
    child.wait().unwrap();
    match label {
        None => out,
        Some(label) => out
            .lines()
            .map(|line| {
                if line == "--" {
                    return "--\n".to_owned();
                }
                let digits = line.bytes().take_while(u8::is_ascii_digit).count();
                format!("{label}{}{line}\n", &line[digits..digits + 1])
            })
            .collect(),
    }
}

#[tokio::test]
async fn search_hits_are_exactly_grep_n_hits_on_every_generation() {
    let dir = temp_dir();
    let (log, generations) = rotated_log(&dir);
    let server = Server::start(&[path_str(&log)]);
    // The awkward lines of phase 1 are not what grep prints byte for byte (tailcast strips
    // the \r and shows invalid UTF-8 as U+FFFD), so the patterns keep away from them.
    let cases: [(&str, &[&str], &str); 6] = [
        ("q=line%2012&generations=all", &["-F"], "line 12"),
        (
            "q=id%3D0%5B0-4%5D%5B0-9%5D5&regex=1&generations=all",
            &["-E"],
            "id=0[0-4][0-9]5",
        ),
        (
            "q=PHASE%202&case=insensitive&generations=all",
            &["-F", "-i"],
            "PHASE 2",
        ),
        ("q=line%202&word=1&generations=all", &["-F", "-w"], "line 2"),
        (
            "q=line%2033%20&context=2&generations=all",
            &["-F", "-C", "2"],
            "line 33 ",
        ),
        (
            "q=current%20line%201&context=1",
            &["-F", "-C", "1"],
            "current line 1",
        ),
    ];
    let newest_first: Vec<&Written> = generations.iter().rev().collect();
    for (query, args, pattern) in cases {
        let all = query.contains("generations=all");
        let mut want = String::new();
        for generation in if all {
            &newest_first[..]
        } else {
            &newest_first[..1]
        } {
            let label = generation.name.as_str();
            want.push_str(&grep(
                args,
                pattern,
                &generation.bytes,
                all.then_some(label),
            ));
        }
        let url = format!("/api/search?file=app.log&{query}&format=text&line_number=1&max=10000");
        let response = reqwest::get(server.url(&url)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        let got = response.text().await.unwrap();
        assert!(!want.is_empty(), "{query}: grep finds nothing");
        assert_eq!(got, want, "{query}");
    }
    // ripgrep's own syntax (its crates match), against the real `rg -n` on the current file.
    for (query, pattern) in [
        ("q=%5Cbline%20%5Cd%7B2%7D%5Cb&regex=1", r"\bline \d{2}\b"),
        (
            "q=id%3D(%3F%3A003%7C012)%5Cd%2B&regex=1",
            r"id=(?:003|012)\d+",
        ),
    ] {
        let out = Command::new("rg")
            .args(["-n", "--no-heading", "--color", "never", "-e", pattern])
            .arg(&log)
            .output()
            .expect("rg (Debian: apt-get install ripgrep; scripts/test-all.sh does it)");
        let want = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!want.is_empty(), "{pattern}: rg finds nothing");
        let url = format!("/api/search?file=app.log&{query}&format=text&line_number=1");
        let got = get_text(&server, &url).await;
        assert_eq!(got, want, "{pattern}");
    }

    // Invert, on the current file only (as `grep -v -n`).
    let want = grep(&["-F", "-v"], "line 1", &newest_first[0].bytes, None);
    let got = reqwest::get(
        server.url("/api/search?file=app.log&q=line%201&invert=1&format=text&line_number=1"),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(got, want);

    // The JSON records: one per line, each hit with its generation, offset and line number.
    let body = reqwest::get(
        server.url("/api/search?file=app.log&q=phase%201%20line%2010%20&generations=all"),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let records: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"generation"));
    assert_eq!(kinds.last(), Some(&"end"));
    let hit = records.iter().find(|r| r["type"] == "match").unwrap();
    let phase1 = &generations[1];
    let offset = phase1
        .bytes
        .windows(b"phase 1 line 10 ".len())
        .position(|w| w == b"phase 1 line 10 ")
        .unwrap() as u64;
    assert_eq!(hit["offset"].as_u64(), Some(offset), "{hit}");
    assert_eq!(hit["line"].as_u64(), Some(11));
    let names = gen_names(&server, "app.log").await;
    assert_eq!(names[hit["gen"].as_str().unwrap()], "app.log.3.gz");
    let end = records.last().unwrap();
    assert_eq!(end["hits"], 1);
    assert_eq!(end["stopped"], Value::Null);
    // The hit's page: its context, from which the reader scrolls both ways.
    let (_, page) = get(
        &server,
        &format!(
            "/api/page?file=app.log&max=5&around={}:{}",
            hit["gen"].as_str().unwrap(),
            offset
        ),
    )
    .await;
    assert_eq!(page["lines"][2]["text"], hit["text"]);
    assert_eq!(page["lines"][2]["line"], 11);
}

/// Writes `mib` MiB of distinct 100-byte lines to `path`.
fn big_file(path: &Path, mib: usize) {
    std::fs::File::create(path).unwrap();
    append_big(path, mib);
}

/// Appends `mib` MiB of request lines, every one with `status=200`, none with `agent=wget`.
fn append_big(path: &Path, mib: usize) {
    ensure_room(path.parent().unwrap(), mib as u64);
    let file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    // Every line is 100 bytes, so the numbering goes on from the lines already there.
    let mut n = file.metadata().unwrap().len() / 100;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    for _ in 0..mib {
        let mut block = Vec::with_capacity(1 << 20);
        while block.len() + 100 <= 1 << 20 {
            let line = format!(
                "{n:012} GET /api/v1/items?page={} status=200 bytes={} agent=curl/8.5.0 ",
                n % 977,
                n % 65_536
            );
            block.extend_from_slice(format!("{line:<99}\n").as_bytes());
            n += 1;
        }
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
}

/// Threads of `pid` named `tailcast-search`.
fn search_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "tailcast-search")
                })
                .count()
        })
        .unwrap_or(0)
}

/// A search of `file` for `status=200` (every line of [`big_file`]) by a client that reads
/// nothing: 21 lines a hit, far more than every buffer on the way holds, so the search waits for
/// it. Returns once the search thread runs.
/// A search of a [`big_file`] whose answer no buffer holds: every tenth line a hit (`0 GET`),
/// each with ten lines of context around it, so 10 000 hits bring about 20 MB of events.
const FLOOD: &str = "q=0%20GET&max=10000&context=10";

async fn stalled_search(server: &Server, file: &str) -> std::net::TcpStream {
    // An earlier search's thread may not have ended yet: counting it as this one's would let
    // the test go on before this search holds its place.
    wait_threads(server.pid(), 0, Duration::from_secs(5))
        .await
        .expect("earlier searches end");
    let mut stalled = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        stalled,
        "GET /api/search?file={file}&{FLOOD} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    wait_threads(server.pid(), 1, Duration::from_secs(5))
        .await
        .expect("the search runs");
    stalled
}

async fn wait_threads(pid: u32, want: usize, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    wait_for(within, || async {
        (search_threads(pid) == want).then(|| started.elapsed())
    })
    .await
}

#[tokio::test]
async fn a_client_that_goes_stops_its_search_at_once() {
    // 400 MiB, and 400 more up to four times on a machine that scans it too quickly.
    let dir = big_temp_dir(2000);
    let log = dir.path().join("big.log");
    big_file(&log, 400);
    let server = Server::start(&[
        "--search-timeout".to_owned(),
        "120s".to_owned(),
        path_str(&log),
    ]);
    let pid = server.pid();

    // A scan with no hit writes nothing for a long while, yet the client's going is seen. First
    // how long the whole scan takes (the pattern defeats the literal fast paths).
    let url =
        server.url("/api/search?file=big.log&q=(%3Fi)%5Cbagent%3Dwget%7C%5Cbpage%3Dx&regex=1");
    // A machine that scans it too quickly to stop midway gets a bigger file.
    let mut whole = Duration::ZERO;
    for _ in 0..4 {
        let full = Instant::now();
        let records = reqwest::get(url.clone())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        whole = full.elapsed();
        assert!(records.contains("\"type\":\"end\""), "{records}");
        if whole > Duration::from_millis(400) {
            break;
        }
        append_big(&log, 400);
    }
    assert!(
        whole > Duration::from_millis(400),
        "the scan ({whole:?}) is too quick to stop midway even of 2 GB"
    );
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"{\"type\":\"generation\""), "{first:?}");
    assert!(
        wait_threads(pid, 1, Duration::from_secs(5)).await.is_some(),
        "the search thread runs"
    );
    tokio::time::sleep(whole / 4).await;
    assert_eq!(search_threads(pid), 1, "the scan is still running");
    drop(body);
    let stopped = wait_threads(pid, 0, Duration::from_secs(2))
        .await
        .expect("the search stops when its client goes");
    eprintln!("a {whole:?} scan stopped {stopped:?} after its client went");
    assert!(
        stopped < whole / 2,
        "stopped after {stopped:?}, the whole scan takes {whole:?}"
    );

    // A client that reads nothing while every line matches: the search waits, bounded, and
    // ends when the client goes.
    let stalled = stalled_search(&server, "big.log").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(search_threads(pid), 1, "the search waits for its client");
    let rss = server.rss_kib();
    drop(stalled);
    wait_threads(pid, 0, Duration::from_secs(2))
        .await
        .expect("a stalled search ends when its client goes");
    assert!(
        rss < 200 * 1024,
        "RSS {rss} KiB while a search waits for its client"
    );
}

#[tokio::test]
async fn search_bounds_are_refused_or_reported_clearly() {
    let dir = big_temp_dir(64);
    let log = dir.path().join("app.log");
    big_file(&log, 64);
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("app.log.9")).unwrap();
    let server = Server::start(&["--max-searches".to_owned(), "1".to_owned(), path_str(&log)]);
    let refused = [
        ("/api/search?file=app.log", 400, "`q`"),
        ("/api/search?file=app.log&q=x&context=11", 400, "context"),
        (
            "/api/search?file=app.log&q=x&max=0",
            400,
            "--search-max-hits",
        ),
        (
            "/api/search?file=app.log&q=x&max=10001",
            400,
            "--search-max-hits",
        ),
        ("/api/search?file=app.log&q=x&case=upper", 400, "case=smart"),
        (
            "/api/search?file=app.log&q=(%5Cw%7B100%7D)%7B100%7D&regex=1",
            400,
            "compile",
        ),
        ("/api/search?file=app.log&q=x&fuzzy=1", 400, "`fuzzy`"),
        (
            "/api/search?file=..%2F..%2Fetc%2Fpasswd&q=root",
            404,
            "no file",
        ),
        (
            "/api/search?file=app.log&q=root&gen=..%2F..%2Fetc%2Fpasswd",
            400,
            "generation key",
        ),
        (
            "/api/search?file=app.log&q=root&gen=app.log.9",
            400,
            "generation key",
        ),
        (
            "/api/search?file=app.log&q=root&gen=0123456789abcdef",
            404,
            "no generation",
        ),
        (
            "/api/page?file=app.log&gen=%2Fetc%2Fpasswd",
            400,
            "generation key",
        ),
        (
            "/api/page?file=app.log&before=..%2Fx%3A5",
            400,
            "generation key",
        ),
        ("/api/page?file=app.log&before=1&after=2", 400, "one place"),
        ("/api/page?file=%2Fetc%2Fpasswd", 404, "no file"),
    ];
    for (path, status, says) in refused {
        let (got, body) = get(&server, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap_or_default().contains(says),
            "{path}: {body}"
        );
    }
    // The symlink beside the file is not one of its generations, and nothing of it is read.
    let names = gen_names(&server, "app.log").await;
    assert_eq!(names.values().collect::<Vec<_>>(), ["app.log"]);
    let body = get_text(
        &server,
        "/api/search?file=app.log&q=root%3A&generations=all&format=text",
    )
    .await;
    assert_eq!(body, "");

    // max=3: three hits, then the end says why it stopped.
    let body = get_text(&server, "/api/search?file=app.log&q=status%3D200&max=3").await;
    assert_eq!(body.matches("\"type\":\"match\"").count(), 3);
    assert!(
        body.trim_end().ends_with(r#""stopped":"max_hits"}"#),
        "{body}"
    );

    // One search at a time (--max-searches 1): a second is refused while the first waits for
    // a client that reads nothing, and taken once it is gone.
    let stalled = stalled_search(&server, "app.log").await;
    let (status, body) = get(&server, "/api/search?file=app.log&q=x").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("--max-searches"),
        "{body}"
    );
    drop(stalled);
    let taken = wait_for(Duration::from_secs(5), || async {
        let (status, _) = get(&server, "/api/search?file=app.log&q=nothing-like-this").await;
        (status == 200).then_some(())
    })
    .await;
    assert!(
        taken.is_some(),
        "the place is given back when the first client goes"
    );

    // A time limit: the search ends with what it found, and says so. The client reads nothing
    // until the limit has passed with the search still running (held by its full buffers), so
    // the limit is met however fast the machine scans.
    let limit = Duration::from_millis(300);
    let server = Server::start(&[
        "--search-timeout".to_owned(),
        "300ms".to_owned(),
        path_str(&log),
    ]);
    let body = search_read_late(&server, "app.log", "", limit).await;
    assert!(body.matches("\"type\":\"match\"").count() > 0, "{body}");
    assert!(
        body.trim_end().ends_with(r#""stopped":"time_limit"}"#),
        "{}",
        &body[body.len().saturating_sub(500)..]
    );
    let text = search_read_late(&server, "app.log", "&format=text", limit).await;
    assert!(
        text.contains("--search-timeout"),
        "{}",
        &text[text.len().saturating_sub(500)..]
    );
}

/// A [`FLOOD`] search of `file` whose client reads nothing until `limit` has passed while
/// the search still runs, then reads the whole answer (de-chunked).
async fn search_read_late(server: &Server, file: &str, extra: &str, limit: Duration) -> String {
    wait_threads(server.pid(), 0, Duration::from_secs(5))
        .await
        .expect("earlier searches end");
    let asked = Instant::now();
    let mut client = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        client,
        "GET /api/search?file={file}&{FLOOD}{extra} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    wait_threads(server.pid(), 1, Duration::from_secs(5))
        .await
        .expect("the search runs");
    tokio::time::sleep(
        (asked + limit + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
    )
    .await;
    assert_eq!(
        search_threads(server.pid()),
        1,
        "the search still runs past its limit, held by a client that reads nothing"
    );
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    client.read_to_end(&mut raw).expect("the answer ends");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    String::from_utf8(dechunk(&raw[split + 4..])).unwrap()
}

/// The body of an HTTP/1.1 chunked transfer.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[tokio::test]
async fn the_readme_curl_example_prints_like_grep() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append(b"GET / 200\nupstream timeout after 30s\nGET /health 200\nread timeout\n");
    let server = Server::start(&[log.path_str()]);
    let snippet = readme_snippet("search-example").replace("http://127.0.0.1:7070", &server.base);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&snippet)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "upstream timeout after 30s\nread timeout\n2:upstream timeout after 30s\n4:read timeout\n"
    );
}

#[tokio::test]
async fn line_numbers_deep_in_a_big_file_come_from_the_index() {
    let dir = big_temp_dir(300);
    let log = dir.path().join("big.log");
    big_file(&log, 300);
    let lines_per_mib = (1 << 20) / 100;
    let total = 300 * lines_per_mib as u64;
    let server = Server::start(&[path_str(&log)]);
    // The first page far from the start may come without numbers; the index is then built in
    // the background, and the numbers come.
    let numbered = wait_for(Duration::from_secs(60), || async {
        let (_, page) = get(&server, "/api/page?file=big.log&max=3").await;
        page["lines"][2]["line"].as_u64().map(|n| (n, page))
    })
    .await;
    let (last, page) = numbered.expect("line numbers within a minute");
    assert_eq!(last, total, "{page}");
    for offset in [0u64, 100 * 1_777_777, 100 * (total - 1)] {
        let (_, page) = get(
            &server,
            &format!("/api/page?file=big.log&max=1&after={offset}"),
        )
        .await;
        assert_eq!(
            page["lines"][0]["line"].as_u64(),
            Some(offset / 100 + 1),
            "{page}"
        );
        let (_, page) = get(
            &server,
            &format!("/api/page?file=big.log&max=2&around={}", offset + 50),
        )
        .await;
        let at = page["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["offset"] == offset)
            .cloned();
        assert_eq!(at.unwrap()["line"].as_u64(), Some(offset / 100 + 1));
    }
}

#[tokio::test]
async fn a_configured_path_that_is_a_link_is_read_and_a_linked_sibling_is_not() {
    let dir = temp_dir();
    let real = dir.path().join("real-app.log");
    std::fs::write(&real, "named through a link\n").unwrap();
    let log = dir.path().join("app.log");
    std::os::unix::fs::symlink(&real, &log).unwrap();
    std::fs::write(dir.path().join("secret"), "SECRET-LINE\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("app.log.1")).unwrap();
    let server = Server::start(&[path_str(&log)]);
    let names = gen_names(&server, "app.log").await;
    assert_eq!(names.values().collect::<Vec<_>>(), ["app.log"]);
    let text = get_text(
        &server,
        "/api/search?file=app.log&q=(THROUGH|SECRET)&regex=1&case=insensitive&generations=all&format=text",
    )
    .await;
    assert_eq!(text, "named through a link\n");
}

/// Every line of every generation, newest page first, by following `before` to the end.
async fn page_back_all(server: &Server, id: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut query = format!("/api/page?file={id}&max=3");
    for _ in 0..10_000 {
        let (status, page) = get(server, &query).await;
        assert_eq!(status, 200, "{query}: {page}");
        let mut batch = page["lines"].as_array().unwrap().clone();
        batch.extend(lines);
        lines = batch;
        match page["before"].as_str() {
            Some(before) => query = format!("/api/page?file={id}&max=3&before={before}"),
            None => return lines,
        }
    }
    panic!("paging back does not end: {query}");
}

#[tokio::test]
async fn generations_that_begin_alike_keep_apart_and_pages_name_their_own_seqs() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    let server = Server::start(&[
        "--rotate-wait".to_owned(),
        "200ms".to_owned(),
        log.path_str(),
    ]);
    // Three generations that begin with the same banner, rotated by hand while followed.
    for (k, name) in [(0, "app.log.2"), (1, "app.log.1")] {
        log.append(format!("=== start ===\ngen{k}-a\ngen{k}-b\n").as_bytes());
        server
            .wait_last_seq("app.log", 3 * (k + 1), Duration::from_secs(10))
            .await;
        log.rotate_to(name);
        log.append(b"");
    }
    log.append(b"=== start ===\ngen2-a\n");
    server
        .wait_last_seq("app.log", 8, Duration::from_secs(10))
        .await;
    let names = gen_names(&server, "app.log").await;
    assert_eq!(names.len(), 3, "{names:?}");
    let lines = page_back_all(&server, "app.log").await;
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "=== start ===",
            "gen0-a",
            "gen0-b",
            "=== start ===",
            "gen1-a",
            "gen1-b",
            "=== start ===",
            "gen2-a"
        ]
    );
    // Every seq a page names is the seq the history gives that line.
    let poll = server.get_json("/poll?file=app.log&after=0").await;
    let by_seq: HashMap<u64, String> = poll["lines"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                poll["first_seq"].as_u64().unwrap() + i as u64,
                t.as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut named = 0;
    for line in &lines {
        if let Some(seq) = line["seq"].as_u64() {
            assert_eq!(by_seq[&seq], line["text"].as_str().unwrap(), "{line}");
            named += 1;
        }
    }
    assert_eq!(named, 8, "{lines:?}");
}

#[tokio::test]
async fn edges_unfinished_lines_empty_pages_and_broken_generations() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    std::fs::write(dir.path().join("app.log.1"), "old-1\nold-2\n").unwrap();
    // A gzip generation cut short (as while logrotate compresses, or after a full disk).
    let many: String = (0..20_000).map(|i| format!("oldest-{i}\n")).collect();
    let mut gz = flate2_gzip(many.as_bytes());
    gz.truncate(gz.len() / 2);
    std::fs::write(dir.path().join("app.log.2.gz"), gz).unwrap();
    let server = Server::start(&[log.path_str()]);
    let names = gen_names(&server, "app.log").await;
    let key_of = |name: &str| names.iter().find(|(_, n)| *n == name).unwrap().0.clone();
    let old = key_of("app.log.1");

    // The current file is empty: an empty page down from the end of app.log.1 says to ask
    // from there again, and then gets the new lines.
    let (_, page) = get(&server, &format!("/api/page?file=app.log&after={old}:12")).await;
    assert_eq!(page["lines"], serde_json::json!([]));
    assert_eq!(page["after"], format!("{old}:12"));
    assert_eq!(page["before"], format!("{old}:12"));
    log.append(b"new-1\nnew-2\npartial");
    let (_, page) = get(&server, &format!("/api/page?file=app.log&after={old}:12")).await;
    let texts: Vec<_> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].clone())
        .collect();
    assert_eq!(
        texts,
        ["new-1", "new-2"],
        "the unfinished line is not a line yet"
    );
    // Nor backwards, from past the end.
    let (_, page) = get(&server, "/api/page?file=app.log&before=99999&max=1").await;
    assert_eq!(page["lines"][0]["text"], "new-2");
    let after = page["after"].as_str().unwrap().to_owned();
    log.append(b" now-complete\nnext\n");
    let (_, page) = get(&server, &format!("/api/page?file=app.log&after={after}")).await;
    let texts: Vec<_> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].clone())
        .collect();
    assert_eq!(texts, ["partial now-complete", "next"]);

    // The broken generation is passed over, named, and the others still read.
    let (status, page) = get(&server, "/api/page?file=app.log&max=100").await;
    assert_eq!(status, 200, "{page}");
    let texts: Vec<_> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [
            "old-1",
            "old-2",
            "new-1",
            "new-2",
            "partial now-complete",
            "next"
        ]
    );
    assert_eq!(page["skipped"][0]["name"], "app.log.2.gz", "{page}");
    // What can be read of it is still read from its start.
    let (status, page) = get(&server, "/api/page?file=app.log&at=oldest&max=1").await;
    assert_eq!(
        (status, page["lines"][0]["text"].clone()),
        (200, Value::from("oldest-0")),
        "{page}"
    );

    // Offsets at the ends of u64 give whole lines or nothing, never a 500.
    for query in [
        "around=18446744073709551615",
        "after=9223372036854775807",
        "before=18446744073709551615",
    ] {
        let (status, page) = get(&server, &format!("/api/page?file=app.log&max=2&{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
    }

    // A generation renamed after it was listed is still found, by what it is.
    let names = gen_names(&server, "app.log").await;
    let current = names
        .iter()
        .find(|(_, n)| *n == "app.log")
        .unwrap()
        .0
        .clone();
    log.rotate_to("app.log.0");
    log.append(b"after rotation\n");
    let (status, page) = get(
        &server,
        &format!("/api/page?file=app.log&max=1&before={current}:12"),
    )
    .await;
    assert_eq!(
        (status, page["lines"][0]["text"].clone()),
        (200, Value::from("new-2")),
        "{page}"
    );

    // Labels of a search come from the configured name, even with the file gone.
    std::fs::remove_file(log.path()).unwrap();
    let text = get_text(
        &server,
        "/api/search?file=app.log&q=old&generations=all&format=text",
    )
    .await;
    assert_eq!(text.lines().next(), Some("app.log.1:old-1"), "{text}");
}

fn flate2_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap().stdout
}

#[tokio::test]
async fn line_numbers_stay_true_when_a_file_is_rewritten_in_place() {
    let dir = temp_dir();
    let log = dir.path().join("app.log");
    let write = |width: usize, n: usize| {
        let mut text = String::from("header\n");
        for i in 0..n {
            text.push_str(&format!("{i:0width$}\n"));
        }
        std::fs::write(&log, text).unwrap();
    };
    write(9, 2_000_000); // 20 MB: five marks of the index
    let server = Server::start(&[path_str(&log)]);
    let line_at = |offset: u64| {
        let server = &server;
        async move {
            let (_, page) = get(
                server,
                &format!("/api/page?file=app.log&max=1&after={offset}"),
            )
            .await;
            (
                page["lines"][0]["line"].as_u64(),
                page["lines"][0]["text"].as_str().map(str::to_owned),
            )
        }
    };
    // The line at an offset, and the number it shows (the header is line 1, `0..` from 2).
    let (n, text) = line_at(15_000_000).await;
    let want = text.expect("a line there").parse::<u64>().unwrap() + 2;
    assert_eq!(n, Some(want));
    // Rewritten in place (same inode, same first line), longer lines, bigger.
    write(14, 1_600_000);
    let (n, text) = line_at(15_000_000).await;
    let want = text.expect("a line there").parse::<u64>().unwrap() + 2;
    assert_eq!(n, Some(want), "a stale index");
}

#[tokio::test]
async fn a_search_of_several_files_reads_each_in_turn_and_labels_them() {
    let dir = temp_dir();
    let a = LogFile::new(&dir, "a.log");
    let b = LogFile::new(&dir, "b.log");
    a.append(b"a one timeout\na two\n");
    std::fs::write(dir.path().join("b.log.1"), "b old timeout\n").unwrap();
    b.append(b"b new timeout\n");
    let server = Server::start(&[a.path_str(), b.path_str()]);
    let text = get_text(
        &server,
        "/api/search?file=a.log&file=b.log&q=timeout&generations=all&format=text&line_number=1",
    )
    .await;
    assert_eq!(
        text,
        "a.log:1:a one timeout\nb.log:1:b new timeout\nb.log.1:1:b old timeout\n"
    );
    let body = get_text(&server, "/api/search?file=a.log&file=b.log&q=timeout").await;
    let files: Vec<String> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "match")
        .map(|r| r["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files, ["a.log", "b.log"]);
    let (status, body) = get(&server, "/api/search?file=a.log&file=a.log&q=x").await;
    assert_eq!(status, 400, "{body}");
}

/// A line of a big generation (`gen` names it): every 997th one without ` ok`.
fn big_generation_line(gen: &str, n: usize) -> String {
    let verb = ["GET", "POST", "get", "ERROR timeout"][n % 4];
    let end = if n % 997 == 0 { "failed" } else { "ok" };
    format!(
        "{gen} line {n} request id={:05} {verb} {end}\n",
        n * 7 % 100_000
    )
}

#[tokio::test]
async fn big_generations_searched_in_place_give_exactly_grep_n_hits() {
    let dir = temp_dir();
    let log = dir.path().join("app.log");
    // Plain generations past the size searched through a map (1 MiB) and longer than the
    // matcher's window (2 MiB): a rotated one whole, the current one to its last complete line.
    let generation = |name: &str, bytes: usize| {
        let mut text = Vec::new();
        let mut n = 0;
        while text.len() < bytes {
            text.extend_from_slice(big_generation_line(name, n).as_bytes());
            n += 1;
        }
        text
    };
    let rotated = generation("old", 5 << 20);
    let current = generation("new", 3 << 20);
    std::fs::write(dir.path().join("app.log.1"), &rotated).unwrap();
    let mut on_disk = current.clone();
    on_disk.extend_from_slice(b"unfinished line 123 id=00012 failed");
    std::fs::write(&log, &on_disk).unwrap();
    let server = Server::start(&[path_str(&log)]);
    let cases: [(&str, &[&str], &str); 6] = [
        ("q=line%20123", &["-F"], "line 123"),
        (
            "q=id%3D0%5B0-4%5D%5B0-9%5D5&regex=1",
            &["-E"],
            "id=0[0-4][0-9]5",
        ),
        ("q=ID%3D0001&case=insensitive", &["-F", "-i"], "ID=0001"),
        ("q=line%2012&word=1", &["-F", "-w"], "line 12"),
        (
            "q=line%204242%20&context=2",
            &["-F", "-C", "2"],
            "line 4242 ",
        ),
        ("q=%20ok&invert=1", &["-F", "-v"], " ok"),
    ];
    for (query, args, pattern) in cases {
        let want = grep(args, pattern, &current, Some("app.log"))
            + &grep(args, pattern, &rotated, Some("app.log.1"));
        let url = format!(
            "/api/search?file=app.log&{query}&generations=all&format=text&line_number=1&max=10000"
        );
        let got = get_text(&server, &url).await;
        assert!(want.lines().count() > 1, "{query}: grep finds too little");
        assert_eq!(got, want, "{query}");
    }
    let out = Command::new("rg")
        .args(["-n", "--no-heading", "--color", "never", "-e"])
        .arg(r"\bline 9\d{2}\b")
        .arg(dir.path().join("app.log.1"))
        .output()
        .expect("rg (Debian: apt-get install ripgrep; scripts/test-all.sh does it)");
    let want = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!want.is_empty(), "rg finds nothing");
    let names = gen_names(&server, "app.log").await;
    let key = names
        .iter()
        .find(|(_, name)| name.as_str() == "app.log.1")
        .map(|(key, _)| key.clone())
        .unwrap();
    let got = get_text(
        &server,
        &format!("/api/search?file=app.log&gen={key}&q=%5Cbline%209%5Cd%7B2%7D%5Cb&regex=1&format=text&line_number=1"),
    )
    .await;
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_file_truncated_while_it_is_searched_ends_that_search_with_an_error_and_the_server_lives()
{
    let dir = big_temp_dir(64);
    let log = dir.path().join("big.log");
    big_file(&log, 64);
    let server = Server::start(&[path_str(&log)]);
    // A search whose answer no buffer holds, read only up to its first hit: it runs, on the
    // map, and cannot have ended.
    let mut client = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        client,
        "GET /api/search?file=big.log&{FLOOD} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains("\"type\":\"match\"") {
        let n = client.read(&mut buf).expect("the first hits");
        assert!(n > 0, "the answer ended early");
        raw.extend_from_slice(&buf[..n]);
    }
    // What `copytruncate` does once it has copied the file.
    truncate_in_place(&log);
    client.read_to_end(&mut raw).expect("the answer ends");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let body = String::from_utf8(dechunk(&raw[split + 4..])).unwrap();
    let records: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "match" || r["type"] == "context")
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let text = line["text"].as_str().unwrap();
        assert!(
            text.contains(" GET /api/v1/items?page=") && !text.contains('\0'),
            "a line of the file, not of zeros: {line}"
        );
    }
    let error = &records[records.len() - 2];
    assert_eq!(error["type"], "error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("big.log shrank while it was searched")
            && message.contains("were not searched"),
        "{message}"
    );
    let end = records.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["stopped"], Value::Null);
    // The server lives, and searches the file as it is now.
    std::fs::write(&log, "after the rotation GET\n").unwrap();
    let text = get_text(&server, "/api/search?file=big.log&q=GET&format=text").await;
    assert_eq!(text, "after the rotation GET\n");
}
