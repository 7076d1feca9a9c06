//! More followed files than the kernel lets a user have inotify instances
//! (`fs.inotify.max_user_instances`, 128 by default): each follower watches its files for writes
//! with an instance of its own, and those past the limit must still be woken by events (their
//! directory's, through notify), with one warning, not left to the stat timer.
//!
//! Its own test binary: one test takes nearly every instance this user may have while it runs,
//! which would take them from tests running beside it (the two here take turns).

mod common;

use std::time::Duration;

use common::*;

/// The tests here take turns: one of them leaves the other no instance.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Files followed; the server is left instances for its two watchers and the first follower.
const FILES: usize = 6;
const LEFT_FOR_THE_SERVER: usize = 3;

/// Takes every inotify instance this user may still make; fails loudly when the open-file limit,
/// not the instance limit, is what stops it.
fn take_every_instance() -> Vec<inotify::Inotify> {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    let mut taken = Vec::new();
    while let Ok(instance) = inotify::Inotify::init() {
        taken.push(instance);
        assert!(
            taken.len() < 1_000_000,
            "a million inotify instances and no limit: set fs.inotify.max_user_instances"
        );
    }
    let probe = std::fs::File::open("/proc/self/stat");
    assert!(
        probe.is_ok(),
        "the open-file limit ran out before the inotify instance limit ({} instances taken): \
         raise ulimit -n above fs.inotify.max_user_instances for this test",
        taken.len()
    );
    taken
}

#[tokio::test]
async fn files_past_the_inotify_instance_limit_are_still_woken_by_events() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir();
    let logs = log_files(&dir);
    let mut taken = take_every_instance();
    assert!(
        taken.len() >= LEFT_FOR_THE_SERVER,
        "only {} inotify instances left to this user: the test needs {LEFT_FOR_THE_SERVER}",
        taken.len()
    );
    taken.truncate(taken.len() - LEFT_FOR_THE_SERVER);

    // A stat timer far beyond the deadlines below: only events can bring the lines in time.
    let mut args: Vec<String> = vec!["--stat-interval".into(), "60s".into()];
    args.extend(logs.iter().map(LogFile::path_str));
    let mut server = Server::start(&args);
    let log = server.wait_log("no inotify watch of its own", 1, Duration::from_secs(10));
    // Given back once the server has made its own: the followers' share is settled.
    drop(taken);
    assert!(
        log.contains("fs.inotify.max_user_instances"),
        "the warning says what to raise: {log}"
    );

    every_file_gets_its_lines_by_events(&server, &logs).await;
    let log = server.stderr_text();
    let warnings = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("no inotify watch of its own"));
    assert_eq!(
        warnings.count(),
        1,
        "one warning for all the followers past the limit: {log}"
    );
}

/// `FILES` empty logs, `f0.log`, `f1.log`, ...
fn log_files(dir: &tempfile::TempDir) -> Vec<LogFile> {
    (0..FILES)
        .map(|i| LogFile::new(dir, &format!("f{i}.log")))
        .collect()
}

/// Two lines to every file, each within a deadline far below the stat interval.
async fn every_file_gets_its_lines_by_events(server: &Server, logs: &[LogFile]) {
    for round in 0..2 {
        for (i, file) in logs.iter().enumerate() {
            file.append_line(&format!("round {round} file {i}"));
        }
        for i in 0..logs.len() {
            server
                .wait_last_seq(&format!("f{i}.log"), round + 1, Duration::from_secs(10))
                .await;
        }
    }
}

/// The server's open inotify instances.
fn inotify_instances(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy() == "anon_inode:inotify")
        .count()
}

#[tokio::test]
async fn a_server_takes_no_more_inotify_instances_than_it_is_given() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = temp_dir();
    let logs = log_files(&dir);
    let mut args: Vec<String> = vec![
        "--stat-interval".into(),
        "60s".into(),
        "--inotify-instances".into(),
        "2".into(),
    ];
    args.extend(logs.iter().map(LogFile::path_str));
    let mut server = Server::start(&args);
    let log = server.wait_log("no inotify watch of its own", 1, Duration::from_secs(10));
    assert!(
        log.contains("--inotify-instances"),
        "the warning names the option: {log}"
    );
    // Two followers' own, and the two directory watchers.
    assert_eq!(inotify_instances(server.pid()), 2 + 2);
    every_file_gets_its_lines_by_events(&server, &logs).await;
}
