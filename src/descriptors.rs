//! The open-file limit: raised to its hard limit at start, and the connection limits fitted in it.
//!
//! Every connection and every followed file takes a descriptor. If the limits the operator set
//! (`--max-connections`, `--max-polls`) need more than the process may open, accepting would fail
//! with EMFILE in a loop (actix retries every half second) and files could no longer be opened;
//! instead the limits are lowered to fit, with one warning saying how to keep them.

/// Descriptors kept for everything but client connections: the listener, the file watcher,
/// standard streams, the log, TLS files, the runtime's own.
const RESERVED: u64 = 64;
/// Descriptors kept per followed file: the file and rotated generations still being read, and
/// its follower's doorbell (an eventfd) and inotify instance (`tail::watch`).
const PER_FILE: u64 = 10;
/// Connections that are neither streams nor held polls (the dashboard's assets, API calls,
/// keep-alive connections between requests).
pub const OTHER_CONNECTIONS: usize = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force after.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Connection limits that fit in an open-file limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// WebSocket, SSE and `/follow` clients at once.
    pub max_connections: usize,
    /// Held long-polls at once.
    pub max_polls: usize,
    /// TCP connections at once, all kinds.
    pub tcp_connections: usize,
    /// Set when the limits do not all fit: what to log.
    pub warning: Option<String>,
    /// True when a limit had to be lowered (not only shared): a warning, not a note.
    pub lowered: bool,
}

/// Fits `max_connections` and `max_polls` (plus [`OTHER_CONNECTIONS`]) into `open_files`
/// descriptors, keeping some for `files` followed files and the process itself.
pub fn fit(open_files: u64, files: usize, max_connections: usize, max_polls: usize) -> Fitted {
    let wanted = max_connections + max_polls + OTHER_CONNECTIONS;
    let reserved = RESERVED + PER_FILE * files as u64;
    let available = open_files.saturating_sub(reserved) as usize;
    if wanted <= available {
        return Fitted {
            max_connections,
            max_polls,
            tcp_connections: wanted,
            warning: None,
            lowered: false,
        };
    }
    // The connections of all kinds share what is left; each limit alone is lowered only if even
    // it cannot fit, and the total is capped, so accepting never runs out of descriptors.
    let room = available.saturating_sub(OTHER_CONNECTIONS).max(2);
    let fitted_connections = max_connections.min(room).max(1);
    let fitted_polls = max_polls.min(room).max(1);
    let tcp_connections = wanted.min(available).max(OTHER_CONNECTIONS + 2);
    let warning = format!(
        "the open-file limit is {open_files} descriptors: with {files} file(s) it holds {} \
         connections at once, fewer than --max-connections {max_connections} plus --max-polls \
         {max_polls} ask for; streaming clients and held polls share them (each kind at most \
         {fitted_connections} and {fitted_polls}); raise the limit to at least {} (ulimit -n, \
         or LimitNOFILE= in the systemd unit) to have both at once",
        tcp_connections,
        wanted as u64 + reserved
    );
    Fitted {
        max_connections: fitted_connections,
        max_polls: fitted_polls,
        tcp_connections,
        warning: Some(warning),
        lowered: fitted_connections < max_connections || fitted_polls < max_polls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_fit_are_kept() {
        let fitted = fit(1 << 20, 3, 10_000, 10_000);
        assert_eq!(fitted.max_connections, 10_000);
        assert_eq!(fitted.max_polls, 10_000);
        assert!(fitted.warning.is_none());
    }

    #[test]
    fn limits_that_do_not_fit_share_what_the_descriptors_allow_with_a_warning() {
        let fitted = fit(1024, 2, 10_000, 10_000);
        let used = fitted.tcp_connections as u64 + RESERVED + 2 * PER_FILE;
        assert!(used <= 1024, "{fitted:?} needs {used} descriptors");
        assert!(fitted.max_connections <= fitted.tcp_connections);
        assert!(fitted.lowered);
        let warning = fitted.warning.unwrap();
        assert!(warning.contains("ulimit -n"), "{warning}");
        // A limit that fits alone is kept: 10 000 WebSockets fit in 20 000 descriptors, even
        // though 10 000 more held polls would not fit beside them.
        let fitted = fit(20_000, 1, 10_000, 10_000);
        assert!(!fitted.lowered, "sharing is a note, not a warning");
        assert_eq!(fitted.max_connections, 10_000);
        assert_eq!(fitted.max_polls, 10_000);
        assert!(fitted.tcp_connections as u64 + RESERVED + PER_FILE <= 20_000);
        // A small limit is kept as it is.
        let fitted = fit(256, 2, 20, 10_000);
        assert_eq!(fitted.max_connections, 20);
        // Even an absurdly low limit leaves every kind a place.
        let tiny = fit(10, 100, 5, 5);
        assert!(tiny.max_connections >= 1 && tiny.max_polls >= 1);
    }
}
