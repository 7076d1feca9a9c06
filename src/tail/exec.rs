//! Commands as sources: `--exec 'journalctl -f'` runs a command and follows what it prints.
//!
//! Owns everything about a command source: parsing a `--exec` value (`[NAME=]COMMAND`, split into
//! words the way a shell would, run without a shell unless `--exec-shell`), running it in a
//! process group of its own, reading its stdout (and stderr with `--exec-stderr`), restarting it
//! with a growing, capped backoff, telling clients each start and exit as the file states
//! [`FileState::Started`] and [`FileState::Exited`], and stopping its whole group at shutdown
//! (SIGTERM, then SIGKILL after `grace`), so that nothing it started outlives tailcast.
//!
//! Threads: a *supervisor* spawns the command, waits for it, stops what it left in its group,
//! and restarts it; one *reader* per pipe and run blocks in `read` and hands chunks over a small
//! bounded channel; one *splitter* owns the [`TailSink`] and cuts the chunks into lines with the
//! files' [`LineSplitter`] (one per pipe: a partial stdout line is never joined to stderr), so
//! numbering, history, pacing and the line cap are those of a file. Starts and exits go through
//! the same channel as the bytes, so each state comes between the last line of one run and the
//! first of the next. The pipes are read continuously; when the hub paces the splitter the
//! channel fills, the readers wait and the pipe is the buffer, as for standard input.
//!
//! The exit of the command's leader is seen without reaping it (`waitid` with `WNOWAIT`), so its
//! process-group id cannot be reused while what is left in the group is signalled.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::follower::{FileState, FileStatus, FollowConfig, TailSink};
use super::splitter::{LineBatch, LineSplitter};

/// Chunks read ahead of the splitter: a little slack for bursts; beyond it the readers wait.
const CHUNKS_AHEAD: usize = 8;

/// How often a command's process group is looked for while what it left running ends.
const GROUP_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// The program `--exec-shell` runs commands with.
const SHELL: &str = "/bin/sh";

/// Environment variables a command does not inherit: tailcast's secrets are not its own.
const HIDDEN_ENV: &[&str] = &["TAILCAST_TOKEN"];

/// When a command that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Restart {
    /// Never: one run, then the source stays `exited` (its lines stay readable).
    Never,
    /// After every exit, whatever its status.
    Always,
    /// After an exit with a non-zero status or by a signal, or when it cannot be started.
    #[default]
    OnFailure,
}

impl Restart {
    /// The option's value that names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Never => "never",
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
        }
    }
}

/// How a command's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    fn of(status: std::process::ExitStatus) -> Exit {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(-1),
        }
    }

    /// Exited with status 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "status {code}"),
            Exit::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

impl FileState {
    /// For [`FileState::Exited`]: the exit status, when the command exited by itself.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            FileState::Exited(Exit::Code(code)) => Some(code),
            _ => None,
        }
    }

    /// For [`FileState::Exited`]: the signal that ended the command.
    pub fn exit_signal(self) -> Option<i32> {
        match self {
            FileState::Exited(Exit::Signal(signal)) => Some(signal),
            _ => None,
        }
    }
}

/// The state as a person reads it: its name, and how a command exited.
impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileState::Exited(exit) => write!(f, "exited with {exit}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// One `--exec` command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    /// The command as given, without its `NAME=`.
    pub text: String,
    /// The program and its arguments (`/bin/sh -c TEXT` with `--exec-shell`).
    pub argv: Vec<String>,
}

impl ExecCommand {
    /// Parses `[NAME=]COMMAND`: a `NAME=` prefix is kept apart when what precedes the first `=`
    /// is a plain name (letters, digits, `- . _ ~ /`, no space or quote). COMMAND is split into
    /// words like a shell does (quotes, backslashes) and nothing else: no variables, globs,
    /// pipes or redirections; with `shell` it is handed whole to `/bin/sh -c`.
    pub fn parse(value: &str, shell: bool) -> Result<(Option<String>, ExecCommand), String> {
        let (name, text) = match value.split_once('=') {
            Some((name, rest)) if !name.is_empty() && name.chars().all(plain_char) => {
                (Some(name.to_owned()), rest)
            }
            _ => (None, value),
        };
        let text = text.trim();
        let words = shlex::split(text).ok_or_else(|| {
            format!(
                "--exec `{value}`: unbalanced quotes or a trailing backslash; quote the command \
                 as a shell would"
            )
        })?;
        if words.is_empty() {
            return Err(format!(
                "--exec `{value}` names no command: give one, like --exec 'journalctl -f'"
            ));
        }
        let argv = if shell {
            vec![SHELL.to_owned(), "-c".to_owned(), text.to_owned()]
        } else {
            words
        };
        Ok((
            name,
            ExecCommand {
                text: text.to_owned(),
                argv,
            },
        ))
    }

    /// The source id of a command without a `NAME=`: its program's file name (the first word of
    /// the command, also with `--exec-shell`), other characters than a name's replaced by `_`.
    pub fn default_name(&self) -> String {
        let first = shlex::split(&self.text)
            .and_then(|words| words.into_iter().next())
            .unwrap_or_default();
        let base = first.rsplit('/').next().unwrap_or_default();
        let name: String = base
            .chars()
            .map(|c| if plain_char(c) { c } else { '_' })
            .take(64)
            .collect();
        if name.is_empty() {
            "exec".to_owned()
        } else {
            name
        }
    }

    /// The program run.
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }
}

/// A character allowed in a source name (it goes into URLs and terminals).
pub fn plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~/".contains(c)
}

/// How command sources run; every interval a `Duration`.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// When a command that exited is started again.
    pub restart: Restart,
    /// The first wait before a restart; it doubles after each restart, up to `backoff_max`.
    pub backoff: Duration,
    /// The longest wait before a restart; a run that lasted at least this long starts the
    /// backoff again from `backoff`.
    pub backoff_max: Duration,
    /// After SIGTERM, how long a command's process group has to end before SIGKILL.
    pub grace: Duration,
    /// Follow stderr too, into the same source (else it goes to tailcast's own stderr).
    pub stderr: bool,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            restart: Restart::OnFailure,
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            stderr: false,
        }
    }
}

/// A command that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The first start failed: the program is missing, not executable, ...
    #[error("--exec `{command}`: cannot start `{program}`: {why}")]
    Spawn {
        /// The command as given.
        command: String,
        /// The program.
        program: String,
        /// Why, and what to do.
        why: String,
    },
    /// No thread could be started for it.
    #[error("--exec `{command}`: cannot start a thread: {source}")]
    Thread {
        /// The command as given.
        command: String,
        /// Why.
        source: io::Error,
    },
}

/// Why `program` cannot be started, and what to do, in words.
fn spawn_failure(program: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound if program.contains('/') => {
            format!("there is no such file (or its #! interpreter is missing): {e}; fix the path")
        }
        io::ErrorKind::NotFound => format!(
            "no such program on PATH ({}); install it, fix its name, or give its full path",
            std::env::var("PATH").unwrap_or_default()
        ),
        io::ErrorKind::PermissionDenied => format!(
            "tailcast's user may not run it ({e}); make it executable (chmod +x) or name another \
             program"
        ),
        _ => format!("{e}; check the command"),
    }
}

/// What the readers and the supervisor hand the splitter, in order.
enum Event {
    /// A run started.
    Started,
    /// Bytes read from stdout (`false`) or stderr (`true`).
    Bytes(bool, Vec<u8>),
    /// That pipe ended: its unfinished line is a line.
    Eof(bool),
    /// The run ended; `error` is what clients are told of a failure (with what happens next).
    Exited { exit: Exit, error: Option<String> },
    /// A restart failed.
    SpawnFailed(String),
}

/// What the supervisor and [`ExecSource::shutdown`] share.
#[derive(Default)]
struct Control {
    /// Shutdown has begun: start nothing more.
    stopping: bool,
    /// When shutdown began (the SIGTERM), for the grace period.
    stop_began: Option<Instant>,
    /// The running command's process group (its leader's pid), while the leader is not reaped.
    group: Option<i32>,
    /// The supervisor has finished.
    finished: bool,
}

struct Shared {
    control: Mutex<Control>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running command source; [`ExecSource::shutdown`] (or dropping it) stops its process group.
pub struct ExecSource {
    name: String,
    shared: Arc<Shared>,
    grace: Duration,
    supervisor: Option<JoinHandle<()>>,
}

/// Starts the command and follows its output into `sink`. The first start happens here, so a
/// command that cannot run is an error at start-up; later restarts that fail are reported to
/// clients (the source's `error`) and retried according to `exec.restart`.
pub fn follow_command<S: TailSink>(
    name: &str,
    command: &ExecCommand,
    exec: &ExecConfig,
    follow: &FollowConfig,
    sink: S,
) -> Result<ExecSource, ExecError> {
    let thread_error = |source| ExecError::Thread {
        command: command.text.clone(),
        source,
    };
    let shared = Arc::new(Shared {
        control: Mutex::new(Control::default()),
        changed: Condvar::new(),
    });
    let (tx, rx) = sync_channel(CHUNKS_AHEAD);
    let chunk_bytes = follow.read_chunk_bytes.max(4096);
    let follow = follow.clone();
    std::thread::Builder::new()
        .name(format!("exec {name} lines"))
        .spawn(move || split_events(&rx, &follow, sink))
        .map_err(thread_error)?;
    let child = spawn(command, exec).map_err(|e| ExecError::Spawn {
        command: command.text.clone(),
        program: command.program().to_owned(),
        why: spawn_failure(command.program(), &e),
    })?;
    shared.lock().group = Some(child.id() as i32);
    let mut supervisor = Supervisor {
        name: name.to_owned(),
        command: command.clone(),
        exec: exec.clone(),
        chunk_bytes,
        shared: shared.clone(),
        tx,
    };
    let handle = std::thread::Builder::new()
        .name(format!("exec {name}"))
        .spawn(move || supervisor.run(child));
    match handle {
        Ok(handle) => Ok(ExecSource {
            name: name.to_owned(),
            shared,
            grace: exec.grace,
            supervisor: Some(handle),
        }),
        Err(e) => {
            // The child is not watched by anyone: stop it now (the closure that owned it is gone,
            // and with it the Child; its group is signalled by pid).
            if let Some(group) = shared.lock().group.take() {
                kill_group(group, libc::SIGKILL);
            }
            Err(thread_error(e))
        }
    }
}

impl ExecSource {
    /// Stops the command: SIGTERM to its process group, SIGKILL to what is left after the grace
    /// period; waits (bounded) for the supervisor, which announces the exit.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Stops every command at once: all groups get SIGTERM together, so that shutting down
    /// takes one grace period at most, not one per command.
    pub fn shutdown_all(sources: Vec<ExecSource>) {
        sources.iter().for_each(ExecSource::begin_stop);
        sources.into_iter().for_each(ExecSource::shutdown);
    }

    /// Tells the supervisor to start nothing more and sends SIGTERM to the group (once).
    fn begin_stop(&self) {
        let mut control = self.shared.lock();
        if control.stopping {
            return;
        }
        control.stopping = true;
        control.stop_began = Some(Instant::now());
        if let Some(group) = control.group {
            tracing::debug!(file = %self.name, group, "stopping the command: SIGTERM");
            kill_group(group, libc::SIGTERM);
        }
        self.shared.changed.notify_all();
    }

    fn stop(&mut self) {
        let Some(handle) = self.supervisor.take() else {
            return;
        };
        self.begin_stop();
        let control = self.shared.lock();
        let began = control.stop_began.unwrap_or_else(Instant::now);
        let left = (began + self.grace).saturating_duration_since(Instant::now());
        let (mut control, _) = self
            .shared
            .changed
            .wait_timeout_while(control, left, |c| !c.finished)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !control.finished {
            if let Some(group) = control.group {
                tracing::warn!(
                    file = %self.name,
                    "the command did not end within {:?} of SIGTERM: SIGKILL",
                    self.grace
                );
                kill_group(group, libc::SIGKILL);
            }
            // A killed group ends at once; the supervisor then reaps it and lets go.
            control = self
                .shared
                .changed
                .wait_timeout_while(control, self.grace, |c| !c.finished)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        let finished = control.finished;
        drop(control);
        if finished {
            let _ = handle.join();
        } else {
            tracing::warn!(file = %self.name, "the command's supervisor did not finish; leaving it");
        }
    }
}

impl Drop for ExecSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns one run: in a process group of its own, stdin from /dev/null, stdout (and stderr when
/// followed) to pipes.
fn spawn(command: &ExecCommand, exec: &ExecConfig) -> io::Result<Child> {
    let mut cmd = Command::new(command.program());
    cmd.args(&command.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if exec.stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .process_group(0);
    for name in HIDDEN_ENV {
        cmd.env_remove(name);
    }
    cmd.spawn()
}

/// Sends `signal` to the process group `group`; a group already gone is no error.
fn kill_group(group: i32, signal: libc::c_int) {
    if group <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers; a negative pid names a process group.
    let rc = unsafe { libc::kill(-group, signal) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!("cannot signal process group {group}: {e}");
        }
    }
}

/// Waits until the process `pid` (our child) has exited, without reaping it: while it is a
/// zombie its pid, and so its process-group id, cannot be reused.
fn wait_exited_unreaped(pid: i32) -> io::Result<()> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid(2).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The wait before a restart: `first`, doubled after each restart up to `max`, and `first`
/// again after a run that lasted at least `max` (it was not failing in a loop).
#[derive(Debug)]
struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max: max.max(first),
            next: first,
        }
    }

    /// The wait before the next restart.
    fn wait(&self) -> Duration {
        self.next
    }

    /// A run ended after `lasted`.
    fn ran(&mut self, lasted: Duration) {
        if lasted >= self.max {
            self.next = self.first;
        }
    }

    /// The wait is over (a restart follows): the next one is longer.
    fn waited(&mut self) {
        self.next = self.next.saturating_mul(2).clamp(self.first, self.max);
    }
}

struct Supervisor {
    name: String,
    command: ExecCommand,
    exec: ExecConfig,
    chunk_bytes: usize,
    shared: Arc<Shared>,
    tx: SyncSender<Event>,
}

impl Supervisor {
    fn run(&mut self, first: Child) {
        let mut child = Some(first);
        let mut backoff = Backoff::new(self.exec.backoff, self.exec.backoff_max);
        loop {
            if let Some(running) = child.take() {
                let started = Instant::now();
                let exit = self.follow_run(running);
                backoff.ran(started.elapsed());
                let (restart, error) = self.after_exit(exit, backoff.wait());
                let _ = self.tx.send(Event::Exited { exit, error });
                if !restart {
                    break;
                }
            }
            if !self.wait_backoff(backoff.wait()) {
                break;
            }
            backoff.waited();
            let mut control = self.shared.lock();
            if control.stopping {
                break;
            }
            match spawn(&self.command, &self.exec) {
                Ok(next) => {
                    control.group = Some(next.id() as i32);
                    child = Some(next);
                }
                Err(e) => {
                    drop(control);
                    // Only restarts get here (`never` does not restart): try again later.
                    let why = format!(
                        "cannot start `{}`: {}; trying again in {}",
                        self.command.program(),
                        spawn_failure(self.command.program(), &e),
                        humantime::format_duration(backoff.wait())
                    );
                    tracing::warn!(file = %self.name, "{why}");
                    let _ = self.tx.send(Event::SpawnFailed(why));
                }
            }
        }
        let mut control = self.shared.lock();
        control.finished = true;
        self.shared.changed.notify_all();
    }

    /// Whether to restart after `exit`, and what clients are told of a failure.
    fn after_exit(&self, exit: Exit, backoff: Duration) -> (bool, Option<String>) {
        let stopping = self.shared.lock().stopping;
        let restart = !stopping
            && match self.exec.restart {
                Restart::Never => false,
                Restart::Always => true,
                Restart::OnFailure => !exit.success(),
            };
        let next = if stopping {
            "tailcast is stopping".to_owned()
        } else if restart {
            format!("restarting in {}", humantime::format_duration(backoff))
        } else {
            format!(
                "not restarted (--exec-restart {})",
                self.exec.restart.as_str()
            )
        };
        let log = format!("`{}` exited with {exit}; {next}", self.command.text);
        if exit.success() || stopping {
            tracing::info!(file = %self.name, "{log}");
        } else {
            tracing::warn!(file = %self.name, "{log}");
        }
        let error = (!exit.success() && !stopping).then(|| format!("exited with {exit}; {next}"));
        (restart, error)
    }

    /// Sleeps `backoff` unless shutdown begins; false when it does.
    fn wait_backoff(&self, backoff: Duration) -> bool {
        let control = self.shared.lock();
        let (control, _) = self
            .shared
            .changed
            .wait_timeout_while(control, backoff, |c| !c.stopping)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !control.stopping
    }

    /// One run: announce it, read its pipes, wait for its leader, stop what it left in its
    /// group, reap it. Returns how it ended.
    fn follow_run(&mut self, mut child: Child) -> Exit {
        let pid = child.id() as i32;
        tracing::info!(file = %self.name, pid, "started `{}`", self.command.text);
        let _ = self.tx.send(Event::Started);
        let (done_tx, done_rx) = channel();
        let mut readers = 0;
        if let Some(out) = child.stdout.take() {
            readers += self.start_reader(out, false, &done_tx);
        }
        if let Some(err) = child.stderr.take() {
            readers += self.start_reader(err, true, &done_tx);
        }
        drop(done_tx);
        if let Err(e) = wait_exited_unreaped(pid) {
            tracing::warn!(file = %self.name, "cannot wait for pid {pid}: {e}");
        }
        // What the leader left in its group goes with it (bytes already in the pipes are still
        // read): SIGTERM, and SIGKILL to what is still there once the grace period is over.
        kill_group(pid, libc::SIGTERM);
        let deadline = Instant::now() + self.exec.grace;
        let drained = wait_readers(&done_rx, &mut readers, deadline);
        let mut alive = group_alive(pid);
        while alive && Instant::now() < deadline {
            std::thread::sleep(GROUP_CHECK_INTERVAL);
            alive = group_alive(pid);
        }
        if !drained || alive {
            tracing::info!(
                file = %self.name,
                "what the command left running did not end within {:?} of SIGTERM: SIGKILL",
                self.exec.grace
            );
            kill_group(pid, libc::SIGKILL);
            if !wait_readers(&done_rx, &mut readers, Instant::now() + self.exec.grace) {
                tracing::warn!(
                    file = %self.name,
                    "a process that left the command's group still holds its output open; not \
                     waiting for it"
                );
            }
        }
        // Reap under the lock: from now on the group id may name another group.
        let mut control = self.shared.lock();
        let status = child.wait();
        control.group = None;
        drop(control);
        match status {
            Ok(status) => Exit::of(status),
            Err(e) => {
                tracing::warn!(file = %self.name, "cannot reap pid {pid}: {e}");
                Exit::Code(-1)
            }
        }
    }

    /// Starts a reader thread for one pipe; 1 when started, 0 when not (then the pipe is closed).
    fn start_reader<R: Read + Send + 'static>(
        &self,
        pipe: R,
        stderr: bool,
        done: &Sender<()>,
    ) -> usize {
        let tx = self.tx.clone();
        let done = done.clone();
        let chunk_bytes = self.chunk_bytes;
        let name = self.name.clone();
        let started = std::thread::Builder::new()
            .name(format!(
                "exec {} {}",
                self.name,
                if stderr { "err" } else { "out" }
            ))
            .spawn(move || {
                read_pipe(pipe, stderr, chunk_bytes, &tx, &name);
                let _ = done.send(());
            });
        match started {
            Ok(_) => 1,
            Err(e) => {
                tracing::error!(file = %self.name, "cannot start a reader thread: {e}");
                0
            }
        }
    }
}

/// Waits until `deadline` for `readers` reader threads to finish; true when all have.
fn wait_readers(done: &Receiver<()>, readers: &mut usize, deadline: Instant) -> bool {
    while *readers > 0 {
        match done.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) => *readers -= 1,
            Err(RecvTimeoutError::Timeout) => return false,
            // Every reader has let go of its sender: all have finished.
            Err(RecvTimeoutError::Disconnected) => *readers = 0,
        }
    }
    true
}

/// Whether a live process (not a zombie) is in the process group `group`, from `/proc`. A
/// process that left the group (`setsid`) is not looked for: it is no longer the command's.
fn group_alive(group: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the command name (which may hold anything) come state, ppid and pgrp.
        let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
        pgrp == Some(group) && !matches!(state, Some("Z" | "X"))
    })
}

fn read_pipe<R: Read>(
    mut pipe: R,
    stderr: bool,
    chunk_bytes: usize,
    tx: &SyncSender<Event>,
    name: &str,
) {
    loop {
        let mut buf = vec![0; chunk_bytes];
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                buf.truncate(n);
                if tx.send(Event::Bytes(stderr, buf)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(file = %name, "cannot read the command's output: {e}");
                break;
            }
        }
    }
    let _ = tx.send(Event::Eof(stderr));
}

/// The splitter thread: events in, lines, states and statuses out, until every sender is gone.
fn split_events<S: TailSink>(rx: &Receiver<Event>, config: &FollowConfig, mut sink: S) {
    let mut splitters = [
        LineSplitter::new(config.max_line_bytes),
        LineSplitter::new(config.max_line_bytes),
    ];
    let mut batch = LineBatch::default();
    let mut size: u64 = 0;
    let mut running = false;
    loop {
        let partial = splitters.iter().any(LineSplitter::has_partial);
        let event = if partial {
            match rx.recv_timeout(config.partial_line_timeout) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => {
                    splitters.iter_mut().for_each(|s| s.flush(&mut batch));
                    sink.lines(std::mem::take(&mut batch));
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => None,
            }
        } else {
            rx.recv().ok()
        };
        let Some(mut event) = event else { break };
        // Coalesce what is already there into one batch of about a chunk's worth of lines.
        loop {
            match event {
                Event::Bytes(stderr, bytes) => {
                    size += bytes.len() as u64;
                    splitters[usize::from(stderr)].feed(&bytes, &mut batch);
                }
                Event::Eof(stderr) => splitters[usize::from(stderr)].flush(&mut batch),
                Event::Started => {
                    emit(&mut sink, &mut batch);
                    running = true;
                    // The status first: a client told of the state finds /api/files agreeing.
                    sink.status(FileStatus {
                        exists: true,
                        size,
                        error: None,
                    });
                    sink.state(FileState::Started);
                }
                Event::Exited { exit, error } => {
                    splitters.iter_mut().for_each(|s| s.flush(&mut batch));
                    emit(&mut sink, &mut batch);
                    running = false;
                    sink.status(FileStatus {
                        exists: false,
                        size,
                        error,
                    });
                    sink.state(FileState::Exited(exit));
                }
                Event::SpawnFailed(why) => sink.status(FileStatus {
                    exists: false,
                    size,
                    error: Some(why),
                }),
            }
            if batch.text_bytes() >= config.read_chunk_bytes {
                break;
            }
            match rx.try_recv() {
                Ok(next) => event = next,
                Err(_) => break,
            }
        }
        emit(&mut sink, &mut batch);
        if running {
            sink.status(FileStatus {
                exists: true,
                size,
                error: None,
            });
        }
    }
    splitters.iter_mut().for_each(|s| s.flush(&mut batch));
    emit(&mut sink, &mut batch);
}

fn emit<S: TailSink>(sink: &mut S, batch: &mut LineBatch) {
    if !batch.is_empty() {
        sink.lines(std::mem::take(batch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_words_and_shell() {
        let (name, cmd) = ExecCommand::parse("sys=journalctl -f -o 'short iso'", false).unwrap();
        assert_eq!(name.as_deref(), Some("sys"));
        assert_eq!(cmd.argv, ["journalctl", "-f", "-o", "short iso"]);
        assert_eq!(cmd.text, "journalctl -f -o 'short iso'");
        assert_eq!(cmd.default_name(), "journalctl");

        let (name, cmd) = ExecCommand::parse("/usr/bin/env A=b tool", false).unwrap();
        assert_eq!(name, None, "the `=` comes after a space: no name");
        assert_eq!(cmd.argv, ["/usr/bin/env", "A=b", "tool"]);
        assert_eq!(cmd.default_name(), "env");

        let (_, cmd) = ExecCommand::parse("tail -f x | grep y", true).unwrap();
        assert_eq!(cmd.argv, [SHELL, "-c", "tail -f x | grep y"]);
        assert_eq!(cmd.default_name(), "tail");

        assert!(ExecCommand::parse("a='unbalanced", false).is_err());
        assert!(ExecCommand::parse("name=  ", false).is_err());
        assert!(ExecCommand::parse("", false).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_starts_again_after_a_long_run() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(350));
        let mut waits = Vec::new();
        for _ in 0..4 {
            backoff.ran(ms(1));
            waits.push(backoff.wait());
            backoff.waited();
        }
        assert_eq!(waits, [ms(100), ms(200), ms(350), ms(350)]);
        backoff.ran(ms(350));
        assert_eq!(
            backoff.wait(),
            ms(100),
            "a run as long as the cap resets it"
        );
        assert_eq!(Backoff::new(ms(0), ms(0)).wait(), ms(0));
    }

    #[test]
    fn exits_read_as_people_say_them() {
        assert_eq!(
            FileState::Exited(Exit::Code(1)).to_string(),
            "exited with status 1"
        );
        assert_eq!(FileState::Exited(Exit::Signal(9)).exit_signal(), Some(9));
        assert_eq!(FileState::Started.to_string(), "started");
        assert_eq!(FileState::Started.exit_code(), None);
    }
}
