//! The command line: every option, its default, its `TAILCAST_*` variable and its help text.
//!
//! [`Cli`] is what clap parses; [`Cli::into_config`] checks it against the file system (paths,
//! globs, directories, the TLS certificate and key) and produces the [`Config`] the rest of the
//! program runs on. Errors here are one readable sentence each ([`ConfigError`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::archive::ArchiveLimits;
use crate::cluster::ClusterConfig;
use crate::error::ConfigError;
use crate::files::{add_commands, resolve_sources, LiveRule, WatchedFile};
use crate::http::ServerConfig;
use crate::hub::HubConfig;
use crate::net::IpRange;
use crate::tail::exec::Restart;
use crate::tail::{ExecConfig, FollowConfig, TailConfig, WatchMode};
use crate::tls::{self, TlsFiles};

/// Follow growing log files and stream every new line, live, to browsers (WebSocket) and to
/// curl (HTTP long-poll).
///
/// With no PATH, serves a demo: copies of `sample-logs/` that keep growing. `-` follows standard
/// input (`journalctl -f | tailcast -`); `--exec` runs a command and follows its output.
#[derive(Debug, Parser)]
#[command(name = "tailcast", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Files or glob patterns to follow (quote globs: 'logs/*.log'). A named file that does not
    /// exist yet is watched and picked up when it appears; its directory must exist. `-` is
    /// standard input (once; a file called `-` is ./-), followed until its end, when it is
    /// reported `ended` and its lines stay readable.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,

    /// The name clients use for standard input (a `-` PATH): `?file=NAME`. Default: stdin.
    #[arg(long, env = "TAILCAST_NAME", value_name = "NAME")]
    pub name: Option<String>,

    /// Run a command and follow its output as a source (repeatable): `--exec 'journalctl -f'`.
    /// `NAME=` before it names the source (`--exec 'sys=journalctl -f'`), else its program does.
    /// Split into words like a shell (quotes, backslashes) but run without one: no pipes,
    /// variables or globs (see --exec-shell). It runs in a process group of its own, which is
    /// stopped with tailcast; each start and exit is told to clients as the states `started` and
    /// `exited`. Only the command line names commands, never a client.
    #[arg(long = "exec", value_name = "[NAME=]COMMAND")]
    pub exec: Vec<String>,

    /// Run every --exec command with `/bin/sh -c COMMAND` (pipes, variables, globs), instead of
    /// splitting it into words.
    #[arg(long, env = "TAILCAST_EXEC_SHELL")]
    pub exec_shell: bool,

    /// Follow the --exec commands' stderr too, in the same source as their stdout (without it,
    /// their stderr goes to tailcast's).
    #[arg(long, env = "TAILCAST_EXEC_STDERR")]
    pub exec_stderr: bool,

    /// When an --exec command that exited is started again: never, always, or on-failure (a
    /// non-zero status or a signal).
    #[arg(
        long,
        env = "TAILCAST_EXEC_RESTART",
        value_name = "WHEN",
        value_enum,
        default_value_t = Restart::OnFailure
    )]
    pub exec_restart: Restart,

    /// The first wait before an --exec command is restarted; it doubles at each restart, up to
    /// --exec-backoff-max.
    #[arg(long, env = "TAILCAST_EXEC_BACKOFF", default_value = "1s", value_parser = parse_duration)]
    pub exec_backoff: Duration,

    /// The longest wait before a restart; a run that lasted at least this long starts the
    /// backoff again from --exec-backoff.
    #[arg(long, env = "TAILCAST_EXEC_BACKOFF_MAX", default_value = "1m", value_parser = parse_duration)]
    pub exec_backoff_max: Duration,

    /// At shutdown (and after an --exec command exits, for what it left running), its process
    /// group gets SIGTERM, then SIGKILL after this long.
    #[arg(long, env = "TAILCAST_EXEC_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub exec_grace: Duration,

    /// Address to listen on. Use 0.0.0.0:7070 to listen on every interface (then set --token).
    #[arg(long, env = "TAILCAST_BIND", default_value = "127.0.0.1:7070")]
    pub bind: SocketAddr,

    /// Lines a new viewer gets before live lines, when it does not ask for a number.
    #[arg(
        short = 'n',
        long = "lines",
        env = "TAILCAST_LINES",
        default_value_t = 10
    )]
    pub lines: usize,

    /// Lines kept in memory per file, for backlog and for resuming clients.
    #[arg(long, env = "TAILCAST_HISTORY", default_value_t = 10_000)]
    pub history: usize,

    /// Bytes kept in memory per file at most (suffixes: KiB, MiB, GiB).
    #[arg(long, env = "TAILCAST_HISTORY_BYTES", default_value = "4MiB", value_parser = parse_size)]
    pub history_bytes: u64,

    /// Longest line kept; longer lines are cut there and marked truncated.
    #[arg(long, env = "TAILCAST_MAX_LINE_BYTES", default_value = "65536", value_parser = parse_size)]
    pub max_line_bytes: u64,

    /// Interval of the server's heartbeat ping to WebSocket clients.
    #[arg(long, env = "TAILCAST_HEARTBEAT", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat: Duration,

    /// A WebSocket client that has sent nothing for this long is disconnected.
    #[arg(long, env = "TAILCAST_CLIENT_TIMEOUT", default_value = "35s", value_parser = parse_duration)]
    pub client_timeout: Duration,

    /// A send to a client that does not complete within this time closes that client.
    #[arg(long, env = "TAILCAST_SEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub send_timeout: Duration,

    /// How often each file is checked without any file-system event (the safety net).
    #[arg(long, env = "TAILCAST_STAT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub stat_interval: Duration,

    /// An unfinished last line (no newline yet) is shown after this long without new bytes; it
    /// gets its number (and becomes a line in the history) only when its newline comes, or when
    /// the file is truncated or rotated away.
    #[arg(long, env = "TAILCAST_PARTIAL_LINE_TIMEOUT", default_value = "200ms", value_parser = parse_duration)]
    pub partial_line_timeout: Duration,

    /// Most files followed at once, counting those live globs and directories find after start
    /// (each followed from its first line); past it, new matches are refused with one warning
    /// and counted in the metrics. Files named on the command line are always followed.
    #[arg(long, env = "TAILCAST_MAX_FILES", default_value_t = 1024)]
    pub max_files: usize,

    /// Keep checkpoints here (file identity, read offset, line numbers, epoch) so that a
    /// restart, a crash or an upgrade loses no line and repeats none: lines written while
    /// tailcast was down arrive with the numbers they would have had, and clients resume with
    /// their old cursors. Created if missing; one server per directory (it is locked).
    #[arg(long, env = "TAILCAST_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How often checkpoints are written to --state-dir (and once more at shutdown). A crash
    /// loses nothing either way: lines past the last checkpoint are read again with their
    /// numbers; a longer interval only means more to read again.
    #[arg(long, env = "TAILCAST_CHECKPOINT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,

    /// After a rotation, how long the old file is still read (writers reopen their log late).
    #[arg(long, env = "TAILCAST_ROTATE_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub rotate_wait: Duration,

    /// Follow files by the stat timer only, without file-system events (NFS, inotify limits).
    #[arg(long, env = "TAILCAST_NO_WATCH")]
    pub no_watch: bool,

    /// Inotify instances taken for followers' own watches of their files (one each, so a write
    /// wakes only its follower); files past it are woken by their directory's events, which
    /// costs a wake-up per write to any file there. The kernel's limit is per user
    /// (`fs.inotify.max_user_instances`, often 128) and other programs need some.
    /// Default: a quarter of that limit.
    #[arg(long, env = "TAILCAST_INOTIFY_INSTANCES")]
    pub inotify_instances: Option<usize>,

    /// Testing aid: make the file-system watcher but ignore its events.
    #[arg(long, hide = true, env = "TAILCAST_DROP_FS_EVENTS")]
    pub drop_fs_events: bool,

    /// Testing aid: no follower takes an inotify watch of its own; notify's events for their
    /// directories wake them (what a follower falls back on past the inotify instance limit).
    #[arg(long, hide = true, env = "TAILCAST_DIRECTORY_FS_EVENTS")]
    pub directory_fs_events: bool,

    /// During a burst larger than the history, reading a file waits for its clients to keep up
    /// (the file is the buffer); a client that does not make room within this time is left
    /// behind (told of a gap) and holds nobody up again until it has caught up.
    #[arg(long, env = "TAILCAST_PACE_TIMEOUT", default_value = "250ms", value_parser = parse_duration)]
    pub pace_timeout: Duration,

    /// Lines that follow each other closely are sent together, at most once per this interval
    /// per file (a line after a quiet spell goes out at once); 0 sends every read at once.
    #[arg(long, env = "TAILCAST_COALESCE", default_value = "3ms", value_parser = parse_duration)]
    pub coalesce: Duration,

    /// Largest message accepted from a client; a larger one closes its WebSocket (1009).
    #[arg(long, env = "TAILCAST_MAX_MESSAGE_BYTES", default_value = "65536", value_parser = parse_size)]
    pub max_message_bytes: u64,

    /// Longest `grep=` pattern a client may give (server-side filtering); a longer one is refused
    /// with 400 (a WebSocket `bad_grep` error).
    #[arg(long, env = "TAILCAST_MAX_GREP_BYTES", default_value = "1024", value_parser = parse_size)]
    pub max_grep_bytes: u64,

    /// Most hits one `/api/search` may return (its `max=` is at most this; the default is 1000
    /// or this, whichever is less).
    #[arg(long, env = "TAILCAST_SEARCH_MAX_HITS", default_value_t = 10_000)]
    pub search_max_hits: usize,

    /// Most searches of files on disk running at once; more are refused with 503.
    #[arg(long, env = "TAILCAST_MAX_SEARCHES", default_value_t = 4)]
    pub max_searches: usize,

    /// Longest a search (or a page read) of files on disk may take; a search that reaches it
    /// ends with what it found and says it stopped.
    #[arg(long, env = "TAILCAST_SEARCH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub search_timeout: Duration,

    /// Most lines in one `/api/page` answer.
    #[arg(long, env = "TAILCAST_PAGE_MAX_LINES", default_value_t = 1000)]
    pub page_max_lines: usize,

    /// Most streaming clients (WebSocket, SSE and /follow together) at once; more are refused
    /// with 503.
    #[arg(long, env = "TAILCAST_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most held long-poll requests at once; more are refused with 503.
    #[arg(long, env = "TAILCAST_MAX_POLLS", default_value_t = 10_000)]
    pub max_polls: usize,

    /// Longest a long-poll request may be held (a larger `timeout=` is clamped to it).
    #[arg(long, env = "TAILCAST_MAX_POLL_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub max_poll_timeout: Duration,

    /// Bytes that may wait to go out to one client (WebSocket frames, stream chunks, a poll
    /// answer, a file); a client that does not take them within --send-timeout is disconnected.
    /// Also the most bytes of lines in one long-poll answer (the rest comes on the next poll).
    #[arg(long, env = "TAILCAST_CLIENT_BUFFER", default_value = "1MiB", value_parser = parse_size)]
    pub client_buffer: u64,

    /// Bytes that may wait to go out to all clients together; past it, new requests get 503 and
    /// streams wait.
    #[arg(long, env = "TAILCAST_TOTAL_BUFFER", default_value = "256MiB", value_parser = parse_size)]
    pub total_buffer: u64,

    /// Require this token: `?token=` or `Authorization: Bearer`. Prefer the TAILCAST_TOKEN
    /// variable, which does not show in `ps`.
    #[arg(long, env = "TAILCAST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Extra browser origin allowed (repeatable), e.g. https://logs.example.com: the name a reverse
    /// proxy serves tailcast under. The server's own host is always allowed.
    #[arg(
        long = "allow-origin",
        env = "TAILCAST_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// A reverse proxy whose forwarded host (`X-Forwarded-Host`, `Forwarded: host=`) is believed,
    /// by its address as tailcast sees the connection: an IP address or a range (repeatable,
    /// comma-separated), e.g. 127.0.0.1 or 10.0.0.0/8. Without it, forwarded headers are ignored:
    /// anyone can send them.
    #[arg(
        long = "trust-proxy",
        env = "TAILCAST_TRUST_PROXY",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub trust_proxies: Vec<IpRange>,

    /// Serve https and wss with this certificate chain (PEM: the server certificate first, then
    /// its intermediates). Needs --tls-key. Both files are read again on SIGHUP.
    #[arg(long, env = "TAILCAST_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or SEC1). Needs --tls-cert.
    #[arg(long, env = "TAILCAST_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,

    /// Join a cluster through this Redis (`redis://HOST:PORT/DB`, or `rediss://` for TLS; a
    /// password may be in the URL, better in --redis-password-file): this node's files are
    /// published into Redis Streams, and every file of the cluster is served here. With no PATH,
    /// the node only serves the others' files.
    #[arg(
        long,
        env = "TAILCAST_REDIS",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,

    /// A file holding the Redis password (its first line), so that it shows neither in `ps` nor
    /// in the environment.
    #[arg(long, env = "TAILCAST_REDIS_PASSWORD_FILE", value_name = "PATH")]
    pub redis_password_file: Option<PathBuf>,

    /// This node's name in the cluster (letters, digits, `.`, `-`, `_`): its files' ids start
    /// with it (`NODE/app.log`). Default: the host name.
    #[arg(long, env = "TAILCAST_NODE", value_name = "NAME")]
    pub node: Option<String>,

    /// What every Redis key of this cluster starts with; clusters sharing a Redis use different
    /// prefixes, and a node reads nothing outside its own.
    #[arg(
        long,
        env = "TAILCAST_REDIS_PREFIX",
        default_value = "tailcast",
        value_name = "PREFIX"
    )]
    pub redis_prefix: String,

    /// Lines kept in Redis per file (older ones are trimmed): how far back a cursor can resume
    /// on any node.
    #[arg(long, env = "TAILCAST_REDIS_HISTORY", default_value_t = 100_000)]
    pub redis_history: usize,

    /// Bytes of lines kept in Redis per file at most (suffixes: KiB, MiB, GiB).
    #[arg(long, env = "TAILCAST_REDIS_HISTORY_BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub redis_history_bytes: u64,

    /// How often a node tells the cluster it is alive and what its files are; a node silent for
    /// three times this long is shown offline.
    #[arg(long, env = "TAILCAST_REDIS_HEARTBEAT", default_value = "2s", value_parser = parse_duration)]
    pub redis_heartbeat: Duration,

    /// How long the cluster keeps the lines of a node that stopped: once its heartbeat has been
    /// silent this long, any node removes its files' streams from Redis (0 keeps them for good).
    #[arg(long, env = "TAILCAST_REDIS_RETENTION", default_value = "7days", value_parser = parse_duration)]
    pub redis_retention: Duration,

    /// Longest a Redis command may take before the connection is counted lost (and retried
    /// with backoff).
    #[arg(long, env = "TAILCAST_REDIS_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// Disable the WebSocket endpoint (browsers then use long-poll).
    #[arg(long, env = "TAILCAST_NO_WEBSOCKET")]
    pub no_websocket: bool,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "TAILCAST_WORKERS")]
    pub workers: Option<usize>,

    /// Serve everything under this path prefix, e.g. /logs behind a reverse proxy.
    #[arg(long, env = "TAILCAST_BASE_PATH", default_value = "", value_parser = parse_base_path)]
    pub base_path: String,

    /// Log format on stderr: text or json (filter with RUST_LOG, e.g. RUST_LOG=tailcast=debug).
    #[arg(long, env = "TAILCAST_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) and exit.
    #[arg(long, exclusive = true)]
    pub man: bool,
}

/// Everything the server runs on, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Files to follow, with their ids.
    pub files: Vec<WatchedFile>,
    /// Address to listen on.
    pub bind: SocketAddr,
    /// TLS settings (certificate and key, loaded and checked) when https is on.
    pub tls: Option<rustls::ServerConfig>,
    /// Reloads `tls`'s certificate and key from their files (on SIGHUP).
    pub tls_reload: Option<tls::TlsReload>,
    /// Tailing settings.
    pub tail: TailConfig,
    /// How `--exec` commands run.
    pub exec: ExecConfig,
    /// History and fan-out bounds.
    pub hub: HubConfig,
    /// Transport settings.
    pub server: ServerConfig,
    /// Globs and directories that go on taking files after start.
    pub rules: Vec<LiveRule>,
    /// Where checkpoints are kept (`--state-dir`), if anywhere.
    pub state_dir: Option<PathBuf>,
    /// How often they are written.
    pub checkpoint_interval: Duration,
    /// Bounds of reads of the files' past on disk.
    pub archive: ArchiveLimits,
    /// With `--redis`: the cluster to join.
    pub cluster: Option<ClusterConfig>,
}

impl Cli {
    /// Checks the options and the paths; `demo_paths` replaces an empty PATH list.
    pub fn into_config(self, demo_paths: Option<Vec<String>>) -> Result<Config, ConfigError> {
        if self.heartbeat.is_zero() || self.client_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "--heartbeat and --client-timeout must be greater than zero".into(),
            ));
        }
        if self.history == 0 {
            return Err(ConfigError::Invalid(
                "--history must be at least 1 line".into(),
            ));
        }
        let cluster = self.cluster_config()?;
        // An empty value (TAILCAST_TLS_CERT= in an environment file) counts as not given.
        let given = |path: Option<PathBuf>| path.filter(|p| !p.as_os_str().is_empty());
        let (tls, tls_reload) = match (given(self.tls_cert), given(self.tls_key)) {
            (Some(cert), Some(key)) => {
                let (config, reload) = tls::load(&TlsFiles { cert, key })?;
                (Some(config), Some(reload))
            }
            (None, None) => (None, None),
            (Some(_), None) => return Err(half_tls("--tls-cert", "--tls-key (TAILCAST_TLS_KEY)")),
            (None, Some(_)) => return Err(half_tls("--tls-key", "--tls-cert (TAILCAST_TLS_CERT)")),
        };
        let paths = match demo_paths {
            Some(paths) if self.paths.is_empty() => paths,
            _ => self.paths,
        };
        if paths.is_empty() && self.exec.is_empty() && cluster.is_none() {
            return Err(ConfigError::Invalid(
                "no file to follow: name at least one PATH (or - for standard input, or --exec \
                 COMMAND)"
                    .into(),
            ));
        }
        let name = self.name.filter(|n| !n.is_empty());
        if name.is_some() && !paths.iter().any(|p| p == crate::files::STDIN_PATH) {
            return Err(ConfigError::Invalid(
                "--name (TAILCAST_NAME) names standard input: it needs a `-` PATH".into(),
            ));
        }
        let sources = resolve_sources(&paths, name.as_deref().unwrap_or("stdin"))?;
        let mut files = sources.files;
        add_commands(&mut files, &self.exec, self.exec_shell)?;
        if let Some(cluster) = &cluster {
            // Ids are the cluster's: this node's name first, so no two nodes' files share one.
            for file in &mut files {
                file.id = cluster.file_id(&file.id);
            }
        }
        // Files named on the command line are bounded by it; --max-files bounds what live globs
        // and directories add to them.
        let more_files = if sources.rules.is_empty() && cluster.is_none() {
            0
        } else {
            self.max_files.saturating_sub(files.len())
        };
        let max_line_bytes = self.max_line_bytes.clamp(1, 64 << 20) as usize;
        let history_bytes = self.history_bytes.max(1) as usize;
        let client_buffer = self.client_buffer.clamp(64 << 10, 1 << 30) as usize;
        let watch_mode = if self.no_watch {
            WatchMode::PollOnly
        } else if self.drop_fs_events {
            WatchMode::DropEvents
        } else if self.directory_fs_events {
            WatchMode::DirectoryEvents
        } else {
            WatchMode::Events
        };
        Ok(Config {
            files,
            bind: self.bind,
            tls,
            tls_reload,
            tail: TailConfig {
                follow: FollowConfig {
                    max_line_bytes,
                    read_chunk_bytes: crate::tail::DEFAULT_READ_CHUNK_BYTES,
                    partial_line_timeout: self.partial_line_timeout,
                    rotate_wait: self.rotate_wait,
                    initial_tail_bytes: history_bytes as u64,
                    coalesce: self.coalesce,
                    no_symlinks: false,
                },
                stat_interval: self.stat_interval.max(Duration::from_millis(10)),
                watch_mode,
                own_watches: self
                    .inotify_instances
                    .unwrap_or_else(crate::tail::watch::default_own_watches),
            },
            exec: ExecConfig {
                restart: self.exec_restart,
                backoff: self.exec_backoff,
                backoff_max: self.exec_backoff_max.max(self.exec_backoff),
                grace: self.exec_grace,
                stderr: self.exec_stderr,
            },
            hub: HubConfig {
                history_lines: self.history,
                history_bytes,
                pace_timeout: self.pace_timeout,
                more_files,
                node: cluster.as_ref().map(|c| c.node.clone()),
                // A node lags behind the publisher by less than Redis keeps (beyond that its
                // readers would get a gap anyway).
                remote_ahead: cluster.as_ref().map_or(0, |c| c.keep_lines as u64),
            },
            server: ServerConfig {
                heartbeat: self.heartbeat,
                client_timeout: self.client_timeout,
                send_timeout: self.send_timeout,
                max_message_bytes: self.max_message_bytes.clamp(128, 64 << 20) as usize,
                max_connections: self.max_connections,
                max_polls: self.max_polls,
                max_poll_timeout: self.max_poll_timeout,
                client_buffer,
                total_buffer: (self.total_buffer as usize).max(client_buffer),
                token: self.token.filter(|t| !t.is_empty()),
                allow_origins: self.allow_origins,
                trust_proxies: self.trust_proxies,
                no_websocket: self.no_websocket,
                default_backlog: self.lines,
                max_backlog: self.history,
                max_grep_bytes: self.max_grep_bytes.min(64 << 10) as usize,
                workers: self.workers,
                base_path: self.base_path,
                loopback_only: self.bind.ip().is_loopback(),
            },
            rules: sources.rules,
            state_dir: self.state_dir.filter(|d| !d.as_os_str().is_empty()),
            checkpoint_interval: self.checkpoint_interval.max(Duration::from_millis(10)),
            archive: ArchiveLimits {
                page_max_lines: self.page_max_lines.max(1),
                page_max_bytes: client_buffer.max(max_line_bytes),
                max_line: max_line_bytes,
                search_max_hits: self.search_max_hits.max(1),
                max_searches: self.max_searches,
                max_page_reads: 16,
                search_timeout: self.search_timeout.max(Duration::from_millis(10)),
                regex_size: 1 << 20,
                max_context: 10,
            },
            cluster,
        })
    }

    /// The cluster settings, checked, when `--redis` is given.
    fn cluster_config(&self) -> Result<Option<ClusterConfig>, ConfigError> {
        let Some(url) = self.redis.as_ref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let password = match self
            .redis_password_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "cannot read --redis-password-file {}: {e}",
                        path.display()
                    ))
                })?;
                Some(text.lines().next().unwrap_or_default().to_owned())
            }
            None => None,
        };
        let node = match &self.node {
            Some(node) if !node.is_empty() => node.clone(),
            _ => crate::cluster::host_name(),
        };
        let config = ClusterConfig {
            url: url.clone(),
            password,
            node,
            prefix: self.redis_prefix.clone(),
            keep_lines: self.redis_history.max(1),
            keep_bytes: self.redis_history_bytes.max(1 << 20) as usize,
            heartbeat: self.redis_heartbeat.max(Duration::from_millis(50)),
            timeout: self.redis_timeout.max(Duration::from_millis(100)),
            retention: self.redis_retention,
        };
        config.check().map_err(ConfigError::Invalid)?;
        Ok(Some(config))
    }
}

/// One of `--tls-cert` and `--tls-key` without the other.
fn half_tls(given: &str, missing: &str) -> ConfigError {
    ConfigError::Invalid(format!(
        "{given} needs {missing} too: give both the certificate chain and its private key, or \
         neither to serve plain http"
    ))
}

/// Parses a path prefix: `/logs`, `logs/` and `/logs/` all become `/logs`; `/` becomes "".
pub fn parse_base_path(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.split('/').all(|part| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    });
    if valid {
        Ok(format!("/{trimmed}"))
    } else {
        Err(format!(
            "`{text}` is not a path prefix: use letters, digits, - . _ ~ and /, like /logs"
        ))
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h 30m` (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}: write a number with a unit, like 500ms, 30s or 2m"))
}

/// Parses `65536`, `64KiB`, `8MiB`, `1GiB` (also KB/MB/GB and K/M/G, all powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a size: write bytes, or a number with KiB, MiB or GiB")
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}`: use KiB, MiB or GiB")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_base_path("/logs/").as_deref(), Ok("/logs"));
        assert_eq!(parse_base_path("/").as_deref(), Ok(""));
        assert!(parse_base_path("/../x").is_err());
    }
}
