//! tailcast: follow growing log files and stream every new line, live, to browsers (WebSocket)
//! and to curl (HTTP long-poll).
//!
//! # Layout
//!
//! - [`tail`]: the tailing core. One follower per configured path, like `tail -F`: notify events
//!   on the parent directory as wake-ups plus a stat timer, identity by (dev, inode), rotation,
//!   truncation and deletion told apart, a pure line splitter. Knows nothing of HTTP.
//! - [`hub`]: per-file history (a ring bounded in lines and bytes, numbered by `seq`) that every
//!   client reads by cursor, batches serialized once, and pacing of the tailer during bursts. The one piece of shared state; a cheap-clone handle.
//! - [`http`]: actix-web routes: WebSocket sessions (actix-ws), long-poll, the embedded dashboard,
//!   token and Origin checks, the JSON API.
//! - [`archive`]: a file's past on disk: its rotated generations, pages of lines before or after
//!   a position, and search with ripgrep's crates. Knows files, not HTTP.
//! - [`cluster`]: the Redis Streams cluster: publishing this node's files, mirroring the
//!   others' into the hub with their own seqs, the heartbeat. Knows Redis and the hub, not HTTP.
//! - [`protocol`]: every wire message, in one place.
//! - [`state`]: checkpoints for `--state-dir`, so numbering and read positions survive restarts
//!   and crashes.
//! - [`cli`] and [`files`]: options, paths, globs and file ids; [`net`]: IP ranges for
//!   `--trust-proxy`; [`tls`]: the certificate and key for https, reloadable; [`error`]: error
//!   types at the boundaries; [`stats`]: counters; [`shutdown`]: the shutdown signal; [`app`]:
//!   wires it all; [`demo`]: the sample logs that grow when no path is given; [`malloc`]: how
//!   much freed memory the C allocator keeps for reuse.

pub mod app;
pub mod archive;
pub mod cli;
pub mod cluster;
pub mod demo;
pub mod descriptors;
pub mod error;
pub mod files;
pub mod http;
pub mod hub;
pub mod malloc;
pub mod net;
pub mod protocol;
pub mod shutdown;
pub mod state;
pub mod stats;
pub mod tail;
pub mod tls;
