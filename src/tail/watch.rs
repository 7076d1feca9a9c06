//! A follower thread's wake-ups: a [`Doorbell`] other threads ring (notify's name events, a
//! rotated file pinned for it, stop) and a [`DataWatch`], its own inotify instance watching the
//! files it has open for data written to them.
//!
//! notify's watcher is asked for names only (created, removed, renamed, attributes changed). With
//! data events too, every `write` to any file of a watched directory woke notify's thread, which
//! then woke the follower: two wake-ups per write, for each file of a busy `/var/log`, followed or
//! not (in a burst, notify's thread was a seventh of the server's CPU per line). Instead each
//! follower watches the inodes it reads (the file at its path and the rotated ones it still
//! drains, through `/proc/self/fd`, so the watch is on the very file opened) for `IN_MODIFY`, and
//! takes those events only when it has read everything: while it reads, the kernel merges a
//! burst's events into one, so a follower behind a fast writer wakes once per catch-up.
//!
//! A follower that cannot have its own instance (`fs.inotify.max_user_instances`, 128 by
//! default, is per user) or its own watches (`max_user_watches`) says so once and is woken by a
//! second notify watcher that asks for data events in its directory, as before.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use inotify::{Inotify, WatchDescriptor, WatchMask};

/// An eventfd any thread can ring to wake the follower waiting on it.
#[derive(Debug)]
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    /// A new eventfd (non-blocking, closed on exec).
    pub fn new() -> io::Result<Doorbell> {
        // SAFETY: eventfd takes no pointer; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and nothing else owns it.
        Ok(Doorbell {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Wakes the waiter (at once if it waits, at its next wait if not).
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) already means "rung".
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// Takes every ring so far.
    fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; EAGAIN (not rung) leaves it untouched.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }
}

/// A file the follower has open, as [`DataWatch::sync`] is given it.
pub struct OpenInode<'a> {
    /// Its descriptor.
    pub file: &'a File,
    /// Its generation: (dev, inode) and birth time (a new file may reuse a closed one's inode
    /// within one check, and the kernel dropped that one's watch).
    pub dev: u64,
    pub ino: u64,
    pub born: Option<SystemTime>,
}

/// Share of the user's inotify instances tailcast takes for followers' own watches by default.
const SHARE_OF_USER_INSTANCES: usize = 4;

/// The default `--inotify-instances`: a quarter of `fs.inotify.max_user_instances` (128 where it
/// cannot be read), so that the user's other programs keep most of them.
pub fn default_own_watches() -> usize {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(128);
    limit / SHARE_OF_USER_INSTANCES
}

/// The follower's inotify instance and the watches it holds, one per open inode.
pub struct DataWatch {
    inotify: Inotify,
    watched: Vec<Watched>,
}

struct Watched {
    dev: u64,
    ino: u64,
    born: Option<SystemTime>,
    wd: WatchDescriptor,
    /// Still open at the last sync.
    open: bool,
}

/// What [`DataWatch::sync`] did.
#[derive(Debug, Default)]
pub struct Synced {
    /// A file got its watch: what was written to it before then sent no event, so the follower
    /// must read once more before it waits.
    pub added: bool,
    /// A watch could not be made (the error): this follower's data events must come another way.
    pub failed: Option<io::Error>,
}

impl DataWatch {
    /// A new inotify instance with no watch yet.
    pub fn new() -> io::Result<DataWatch> {
        Ok(DataWatch {
            inotify: Inotify::init()?,
            watched: Vec::new(),
        })
    }

    /// Watches every inode in `open` not watched yet, and stops watching those no longer in it.
    pub fn sync<'a>(&mut self, open: impl Iterator<Item = OpenInode<'a>>) -> Synced {
        let mut synced = Synced::default();
        self.watched.iter_mut().for_each(|w| w.open = false);
        for OpenInode {
            file,
            dev,
            ino,
            born,
        } in open
        {
            if let Some(w) = self
                .watched
                .iter_mut()
                .find(|w| w.dev == dev && w.ino == ino && w.born == born)
            {
                w.open = true;
                continue;
            }
            // The descriptor's /proc link names the inode opened, whatever is at its path now.
            let link = format!("/proc/self/fd/{}", file.as_raw_fd());
            match self.inotify.watches().add(&link, WatchMask::MODIFY) {
                Ok(wd) => {
                    self.watched.push(Watched {
                        dev,
                        ino,
                        born,
                        wd,
                        open: true,
                    });
                    synced.added = true;
                }
                Err(e) => synced.failed = Some(e),
            }
        }
        let mut watches = self.inotify.watches();
        self.watched.retain(|w| {
            if !w.open {
                // Fails only for a watch the kernel dropped itself (its inode is gone).
                let _ = watches.remove(w.wd.clone());
            }
            w.open
        });
        synced
    }

    /// Throws away the events queued (call it before reading: a write after this leaves an
    /// event, so the next wait returns at once). One read: a burst's events are merged into one,
    /// and a writer that never pauses cannot keep the follower here; what does not fit only
    /// makes the next wait return at once.
    fn drain(&mut self) {
        let mut buffer = [0u8; DRAIN_BYTES];
        let _ = self.inotify.read_events(&mut buffer);
    }
}

/// Room for the events one [`DataWatch::drain`] reads: 256 of a file watch's 16-byte events.
const DRAIN_BYTES: usize = 4096;

/// What a follower thread waits on.
pub struct Wakeups {
    /// Rung by other threads; `None` when no eventfd could be made (the wait is then a sleep).
    pub bell: Option<Arc<Doorbell>>,
    /// The follower's own data events; `None` when it has none.
    pub data: Option<DataWatch>,
}

impl Wakeups {
    /// Waits until the bell rings, a watched file is written, or `timeout` passes; then takes
    /// the rings and events that woke it.
    pub fn wait(&mut self, timeout: Duration) {
        let mut fds = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; 2];
        if let Some(bell) = &self.bell {
            fds[0].fd = bell.fd.as_raw_fd();
        }
        if let Some(data) = &self.data {
            fds[1].fd = data.inotify.as_raw_fd();
        }
        // To the microsecond, not poll's millisecond: a coalescing hold ends when it is due, not
        // up to a millisecond later (which every line it holds would wait too).
        // SAFETY: a timespec is plain integers (and, on some targets, padding): all zeroes is one.
        let mut span: libc::timespec = unsafe { std::mem::zeroed() };
        span.tv_sec = timeout.as_secs().min(i32::MAX as u64) as libc::time_t;
        span.tv_nsec = timeout.subsec_nanos() as _;
        // SAFETY: `fds` is a live array of two pollfds (a negative fd is ignored by ppoll),
        // `span` a valid timespec, and a null signal mask leaves the thread's as it is.
        let ready = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &span,
                std::ptr::null(),
            )
        };
        // Only what ppoll found readable is read: a wake costs one read, not one per descriptor.
        let readable = |fd: &libc::pollfd| ready > 0 && fd.revents != 0;
        if let Some(bell) = &self.bell {
            if readable(&fds[0]) {
                bell.clear();
            }
        }
        if let Some(data) = &mut self.data {
            if readable(&fds[1]) {
                data.drain();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    use std::time::Instant;

    /// A file being written, and a descriptor reading it.
    struct Written {
        _dir: tempfile::TempDir,
        writer: File,
        reader: File,
    }

    impl Written {
        fn open(&self) -> OpenInode<'_> {
            let meta = self.reader.metadata().unwrap();
            OpenInode {
                file: &self.reader,
                dev: meta.dev(),
                ino: meta.ino(),
                born: meta.created().ok(),
            }
        }
    }

    fn a_file() -> Written {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let writer = File::create(&path).unwrap();
        let reader = File::open(&path).unwrap();
        Written {
            _dir: dir,
            writer,
            reader,
        }
    }

    /// Waits `timeout` and says whether something ended the wait first.
    fn woken_within(wakeups: &mut Wakeups, timeout: Duration) -> bool {
        let started = Instant::now();
        wakeups.wait(timeout);
        started.elapsed() < timeout.mul_f64(0.75)
    }

    /// Something wakes the wait (within a deadline far beyond it).
    fn assert_woken(wakeups: &mut Wakeups, what: &str) {
        assert!(
            woken_within(wakeups, Duration::from_secs(10)),
            "{what} did not wake it"
        );
    }

    /// Nothing wakes the wait for 200 ms.
    fn assert_quiet(wakeups: &mut Wakeups, what: &str) {
        assert!(
            !woken_within(wakeups, Duration::from_millis(200)),
            "{what} woke it"
        );
    }

    #[test]
    fn a_write_to_a_watched_file_ends_the_wait_and_a_burst_leaves_one_wake() {
        let mut file = a_file();
        let mut wakeups = Wakeups {
            bell: None,
            data: Some(DataWatch::new().unwrap()),
        };
        let data = wakeups.data.as_mut().unwrap();
        let synced = data.sync([file.open()].into_iter());
        assert!(synced.added && synced.failed.is_none(), "{synced:?}");
        // The same file again: nothing to add.
        assert!(!data.sync([file.open()].into_iter()).added);

        // More writes than one drain has room for unmerged events: one wait takes them only
        // because the kernel merged them.
        for _ in 0..4 * DRAIN_BYTES / 16 {
            file.writer.write_all(b"line\n").unwrap();
        }
        assert_woken(&mut wakeups, "the writes");
        assert_quiet(&mut wakeups, "an event left over");
    }

    #[test]
    fn a_closed_file_loses_its_watch_and_the_bell_wakes_the_wait() {
        let mut file = a_file();
        let bell = Arc::new(Doorbell::new().unwrap());
        let mut wakeups = Wakeups {
            bell: Some(bell.clone()),
            data: Some(DataWatch::new().unwrap()),
        };
        let data = wakeups.data.as_mut().unwrap();
        assert!(data.sync([file.open()].into_iter()).added);
        assert!(!data.sync(std::iter::empty()).added);
        assert!(data.watched.is_empty());
        // The removal itself queues one event (IN_IGNORED): taken here.
        wakeups.wait(Duration::ZERO);
        file.writer.write_all(b"line\n").unwrap();
        assert_quiet(&mut wakeups, "a write to an unwatched file");

        // Rung before the wait: the ring is kept until then.
        bell.ring();
        assert_woken(&mut wakeups, "the bell");
        // Taken by that wait.
        assert_quiet(&mut wakeups, "a ring left over");
    }

    #[test]
    fn a_wait_ends_when_its_timeout_is_due_to_the_microsecond() {
        // A coalescing hold of 3 ms is a wait of less than a millisecond as often as not: rounded
        // up to poll's milliseconds, each such wait would last at least 1 ms.
        let mut wakeups = Wakeups {
            bell: Some(Arc::new(Doorbell::new().unwrap())),
            data: Some(DataWatch::new().unwrap()),
        };
        let timeout = Duration::from_micros(200);
        let mut waited: Vec<Duration> = (0..21)
            .map(|_| {
                let started = Instant::now();
                wakeups.wait(timeout);
                started.elapsed()
            })
            .collect();
        waited.sort();
        assert!(waited[0] >= timeout, "returned early: {waited:?}");
        // Rounded up, every wait would last 1 ms or more: a quarter of them under that is enough,
        // so a machine busy with other work now and then does not decide.
        assert!(waited[5] < Duration::from_millis(1), "{waited:?}");
    }
}
