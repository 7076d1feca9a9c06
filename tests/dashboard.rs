//! The browser dashboard, in a real headless Chromium driven by playwright-core
//! (`tests/browser/dashboard.mjs`): page load, a 100 000-line burst, filter/highlight/pause,
//! restart and socket cuts, long-poll fallback, XSS. The script starts the real binary itself.
//! A missing browser or npm package fails this test with what to install; it never skips.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn dashboard_in_headless_chromium() {
    let root = env!("CARGO_MANIFEST_DIR");
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        node_ok,
        "node is needed for the browser tests: install Node.js 18+"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed for the browser tests: apt-get install chromium \
         (scripts/test-all.sh does it)"
    );
    assert!(
        std::path::Path::new(&format!(
            "{root}/tests/browser/node_modules/playwright-core"
        ))
        .exists(),
        "playwright-core is needed: (cd tests/browser && npm ci) (scripts/test-all.sh does it)"
    );
    let mut child = Command::new("node")
        .arg("tests/browser/dashboard.mjs")
        .current_dir(root)
        .env("TAILCAST_BIN", env!("CARGO_BIN_EXE_tailcast"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("the browser suite did not finish within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = reader.join().expect("reader");
    println!("{output}");
    match status.code() {
        Some(0) => {}
        Some(77) => panic!(
            "the browser suite could not start Chromium or playwright-core (exit 77); \
             run scripts/test-all.sh, which installs them\n{output}"
        ),
        other => panic!("the browser suite failed ({other:?}):\n{output}"),
    }
    assert!(
        output.contains(" passed, 0 failed, 0 skipped"),
        "every check must run and pass:\n{output}"
    );
}
