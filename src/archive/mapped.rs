//! Read-only memory maps of plain generations for searches, safe against the file shrinking
//! under them.
//!
//! Searching a mapped file skips the copy from the page cache a `read` makes (the difference
//! between tailcast and ripgrep on a literal search of a big file). But a file truncated while it
//! is mapped (logrotate's `copytruncate` does exactly that to the current file) turns the next
//! access past its new end into a `SIGBUS`, which would end the server. This module owns that
//! risk: every map it makes is registered in a fixed, lock-free table a signal handler can read;
//! its `SIGBUS` handler, for a fault inside a registered map, notes where the map lost its file
//! and puts zero pages over the rest of the map, so the access is retried and reads zeros; the
//! searcher then sees [`MappedFile::lost_from`] and reports the loss instead of the zeros. A
//! `SIGBUS` anywhere else ends the process as it would have without this module.
//!
//! A map also keeps its resident size bounded: [`MappedFile::release_before`] gives back the
//! pages a scan has passed (they count in the process's RSS while mapped).

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Once, OnceLock};

/// Maps registered at once; a search that finds none free reads its file instead.
const SLOTS: usize = 64;

/// A slot's state is `generation << 2 | status`: the generation changes at every claim, so the
/// signal handler can tell a slot that was released and claimed again while it read it.
const FREE: usize = 0;
const CLAIMED: usize = 1;
const LIVE: usize = 2;
const STATUS: usize = 3;

/// `lost_from` of a map that has its whole file.
const NOT_LOST: usize = usize::MAX;

/// Bytes kept mapped behind the scan's position, for the lines of context before a hit.
const KEEP_BEHIND: usize = 4 << 20;

/// Pages are given back in runs of at least this many bytes (one `madvise` each).
const RELEASE_STEP: usize = 8 << 20;

/// One registered map, as the signal handler reads it: atomics only.
struct Slot {
    state: AtomicUsize,
    /// First byte of the map (page-aligned).
    start: AtomicUsize,
    /// End of its last page.
    end: AtomicUsize,
    /// Offset, from `start`, of the first page the file no longer backs (`NOT_LOST`: none).
    lost_from: AtomicUsize,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: AtomicUsize::new(FREE),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            lost_from: AtomicUsize::new(NOT_LOST),
        }
    }
}

static REGISTRY: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// The page size, known once the handler is installed.
static PAGE: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The `SIGBUS` action before ours, put back for a fault that is not in one of our maps.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the `SIGBUS` handler (once per process); false when it could not be.
fn install_handler() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page <= 0 || !(page as usize).is_power_of_two() {
            return;
        }
        PAGE.store(page as usize, SeqCst);
        // SAFETY: sigaction is plain data; all-zero is a valid value (SIG_DFL, empty mask), and
        // sigaction only writes the current action into `previous`.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            return;
        }
        // Set before ours is installed, so the handler always finds it.
        let _ = PREVIOUS.set(previous);
        // SAFETY: as above; the handler is an `extern "C"` function with the SA_SIGINFO
        // signature, and the mask is initialised by sigemptyset before use.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            action.sa_sigaction = handler as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0
        };
        INSTALLED.store(installed, SeqCst);
    });
    INSTALLED.load(SeqCst)
}

/// The `SIGBUS` handler. Async-signal-safe: atomic loads and stores, `mmap`, `sigaction` and
/// `raise` (each a system call, no lock, no allocation), errno kept as it was.
extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler, and errno's location
    // is this thread's.
    let (errno, saved, code, addr) = unsafe {
        let errno = libc::__errno_location();
        (errno, *errno, (*info).si_code, (*info).si_addr() as usize)
    };
    // A positive code is a fault the kernel raised (a user's `kill -BUS` has a code <= 0).
    if code > 0 && repair(addr) {
        // SAFETY: errno's location is this thread's.
        unsafe { *errno = saved };
        return;
    }
    // Not ours: the action from before ours, so the fault repeats (or the signal comes again)
    // and does what it would have done without us, ending the process by default.
    // SAFETY: sigaction with a valid action (the saved one, or all-zero: SIG_DFL); raise only
    // sends a signal to this thread. Neither takes a lock or allocates.
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        let previous = PREVIOUS.get().unwrap_or(&default);
        libc::sigaction(signal, previous, std::ptr::null_mut());
        if code <= 0 {
            libc::raise(signal);
        }
        *errno = saved;
    }
}

/// For a fault at `addr` inside a registered map: notes the loss and maps zero pages over the
/// rest of the map. False when `addr` is in none (or the zero pages cannot be mapped).
fn repair(addr: usize) -> bool {
    let page = PAGE.load(SeqCst);
    for slot in &REGISTRY {
        let state = slot.state.load(SeqCst);
        if state & STATUS != LIVE {
            continue;
        }
        let (start, end) = (slot.start.load(SeqCst), slot.end.load(SeqCst));
        if slot.state.load(SeqCst) != state || addr < start || addr >= end {
            continue;
        }
        let lost = addr & !(page - 1);
        slot.lost_from.fetch_min(lost - start, SeqCst);
        // Everything from the faulting page on, in one call: bytes past a truncation are gone
        // anyway, and one signal per page would be one per 4 KiB of what is left.
        // SAFETY: [lost, end) lies inside a live map this module made (read-only, registered
        // until before its munmap), so MAP_FIXED replaces only pages of that map, with zeros,
        // read-only: its owner reads zeros where the file is gone. `&[u8]`s over the map see
        // zeros instead of bytes the file no longer has (which they could not read anyway).
        let zeros = unsafe {
            libc::mmap(
                lost as *mut libc::c_void,
                end - lost,
                libc::PROT_READ,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        return zeros != libc::MAP_FAILED;
    }
    false
}

/// Claims a slot for [start, end); `None` when all are taken.
fn register(start: usize, end: usize) -> Option<usize> {
    for (ix, slot) in REGISTRY.iter().enumerate() {
        let state = slot.state.load(SeqCst);
        if state & STATUS != FREE {
            continue;
        }
        let generation = (state >> 2).wrapping_add(1);
        let claimed = generation << 2 | CLAIMED;
        if slot
            .state
            .compare_exchange(state, claimed, SeqCst, SeqCst)
            .is_ok()
        {
            slot.start.store(start, SeqCst);
            slot.end.store(end, SeqCst);
            slot.lost_from.store(NOT_LOST, SeqCst);
            slot.state.store(generation << 2 | LIVE, SeqCst);
            return Some(ix);
        }
    }
    None
}

fn unregister(ix: usize) {
    let slot = &REGISTRY[ix];
    let generation = slot.state.load(SeqCst) >> 2;
    slot.state.store(generation << 2 | FREE, SeqCst);
}

/// A read-only map of the first bytes of a file, registered with the `SIGBUS` handler.
///
/// Used by one thread (a search): the pages given back are tracked in a `Cell`.
pub struct MappedFile {
    slot: usize,
    released_to: Cell<usize>,
    /// Dropped after `Drop::drop` has unregistered the slot: the handler never sees a map that
    /// is being unmapped.
    map: memmap2::Mmap,
}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("len", &self.map.len())
            .field("lost_from", &self.lost_from())
            .finish()
    }
}

impl MappedFile {
    /// Maps the first `len` bytes of `file` (which must have them: `len` is what the caller
    /// checked). `None` when no map can be registered (every slot taken, or no handler): the
    /// caller reads the file instead.
    pub fn map(file: &File, len: usize) -> io::Result<Option<MappedFile>> {
        if len == 0 || !install_handler() {
            return Ok(None);
        }
        let page = PAGE.load(SeqCst);
        // SAFETY: a read-only shared map of a regular file. Its bytes may change under the
        // slices made of it if the file is written meanwhile (the same as what a `read` would
        // return at different times: a log only grows, and nothing here relies on two reads of
        // a byte agreeing); a truncation is caught by the registered SIGBUS handler, which maps
        // zeros instead. The map is registered before any of its bytes is read.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
        let start = map.as_ptr() as usize;
        let end = (start + len).next_multiple_of(page);
        let Some(slot) = register(start, end) else {
            return Ok(None);
        };
        Ok(Some(MappedFile {
            slot,
            released_to: Cell::new(0),
            map,
        }))
    }

    /// The mapped bytes (zeros from [`MappedFile::lost_from`] on, if the file shrank).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The offset of the first page the file no longer had when it was read (page-aligned;
    /// the bytes from there on read as zeros), if the file shrank while it was mapped.
    pub fn lost_from(&self) -> Option<usize> {
        let lost = REGISTRY[self.slot].lost_from.load(SeqCst);
        (lost != NOT_LOST).then_some(lost)
    }

    /// Gives back the pages more than [`KEEP_BEHIND`] bytes before `offset` (a scan's
    /// position), a run of at least [`RELEASE_STEP`] bytes at a time. The bytes stay readable:
    /// a later access maps the page again from the page cache.
    pub fn release_before(&self, offset: usize) {
        let page = PAGE.load(SeqCst);
        let target = offset.min(self.map.len()).saturating_sub(KEEP_BEHIND) & !(page - 1);
        let from = self.released_to.get();
        if target < from.saturating_add(RELEASE_STEP) {
            return;
        }
        // SAFETY: [from, target) lies inside the map and is page-aligned. MADV_DONTNEED on a
        // read-only shared file map (or on the zero pages the handler put there, private and
        // never written) only drops page-table entries: the next access maps the same bytes
        // again (from the page cache, or zeros), so no slice over the map sees a change.
        let released = unsafe {
            libc::madvise(
                self.map.as_ptr().add(from) as *mut libc::c_void,
                target - from,
                libc::MADV_DONTNEED,
            )
        };
        if released == 0 {
            self.released_to.set(target);
        }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // Before `map` is dropped (unmapped): see the field's comment.
        unregister(self.slot);
    }
}

/// Tests that take slots hold this, so one that takes them all does not make another's map
/// fall back.
#[cfg(test)]
pub(crate) static SLOTS_IN_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;

    fn slots() -> std::sync::MutexGuard<'static, ()> {
        SLOTS_IN_TESTS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live_slots() -> usize {
        REGISTRY
            .iter()
            .filter(|s| s.state.load(SeqCst) & STATUS == LIVE)
            .count()
    }

    /// A file of `len` bytes, none of them zero: byte `i` is `b'a' + i % 26` (a newline every
    /// 100 bytes).
    fn patterned(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let bytes: Vec<u8> = (0..len)
            .map(|i| {
                if i % 100 == 99 {
                    b'\n'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        file.flush().unwrap();
        (file, bytes)
    }

    /// A map of the first `len` bytes of `file`, in a free slot.
    fn map_whole(file: &tempfile::NamedTempFile, len: usize) -> MappedFile {
        MappedFile::map(file.as_file(), len)
            .unwrap()
            .expect("a slot is free")
    }

    fn read(map: &MappedFile, at: usize) -> u8 {
        // Volatile: the read is the test, it must happen where it is written.
        // SAFETY: `at` is inside the map.
        unsafe { std::ptr::read_volatile(map.bytes().as_ptr().add(at)) }
    }

    #[test]
    fn a_file_truncated_under_its_map_reads_zeros_past_its_end_and_the_process_lives() {
        let _slots = slots();
        let (file, bytes) = patterned(8 << 20);
        let map = map_whole(&file, bytes.len());
        assert_eq!(read(&map, 1 << 20), bytes[1 << 20]);
        assert_eq!(map.lost_from(), None);
        file.as_file().set_len(4096).unwrap();
        assert_eq!(read(&map, 1 << 20), 0, "past the new end: zeros");
        assert_eq!(map.lost_from(), Some(1 << 20));
        assert_eq!(read(&map, bytes.len() - 1), 0, "the last byte too");
        // A fault nearer the start moves the loss back to its page.
        assert_eq!(read(&map, 5000), 0);
        assert_eq!(map.lost_from(), Some(4096));
        assert_eq!(
            &map.bytes()[..4096],
            &bytes[..4096],
            "what is left is intact"
        );
        assert!(map.bytes()[4096..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_dropped_map_frees_its_slot() {
        let _slots = slots();
        let (file, bytes) = patterned(1 << 20);
        let before = live_slots();
        let map = map_whole(&file, bytes.len());
        assert_eq!(live_slots(), before + 1);
        assert_eq!(map.bytes(), &bytes[..]);
        drop(map);
        assert_eq!(live_slots(), before);
    }

    #[test]
    fn with_every_slot_taken_a_file_is_not_mapped_until_one_is_free() {
        let _slots = slots();
        let (file, bytes) = patterned(1 << 20);
        // Ranges no access can fault in (the first page is never mapped).
        let mut taken = Vec::new();
        while let Some(ix) = register(1, 2) {
            taken.push(ix);
        }
        assert_eq!(live_slots(), SLOTS);
        assert!(MappedFile::map(file.as_file(), bytes.len())
            .unwrap()
            .is_none());
        unregister(taken.pop().unwrap());
        let map = map_whole(&file, bytes.len());
        assert_eq!(map.bytes(), &bytes[..]);
        drop(map);
        for ix in taken {
            unregister(ix);
        }
    }

    #[test]
    fn pages_given_back_read_the_same_bytes() {
        let _slots = slots();
        let (file, bytes) = patterned(32 << 20);
        let map = map_whole(&file, bytes.len());
        assert_eq!(map.bytes(), &bytes[..]);
        map.release_before(1 << 20);
        assert_eq!(
            map.released_to.get(),
            0,
            "less than a step: nothing given back"
        );
        map.release_before(20 << 20);
        assert_eq!(map.released_to.get(), 16 << 20);
        map.release_before(usize::MAX);
        assert_eq!(map.released_to.get(), 28 << 20);
        assert_eq!(map.bytes(), &bytes[..], "read again from the page cache");
        assert_eq!(map.lost_from(), None);
    }

    const CHILD: &str = "TAILCAST_TEST_UNREGISTERED_SIGBUS";

    #[test]
    fn a_sigbus_outside_every_registered_map_still_ends_the_process() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "archive::mapped::tests::unregistered_sigbus_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&status.stdout).into_owned()
            + &String::from_utf8_lossy(&status.stderr);
        assert!(said.contains("handler installed"), "the child ran: {said}");
        assert_eq!(
            status.status.signal(),
            Some(libc::SIGBUS),
            "{:?}: {said}",
            status.status
        );
    }

    /// Run by the test above in a child process: with the handler installed (a registered map
    /// exists), a fault in a map that is not registered.
    #[test]
    fn unregistered_sigbus_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        // SAFETY: setrlimit with a valid struct; no core file for the death that is expected.
        unsafe {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
        }
        let (registered_file, bytes) = patterned(1 << 20);
        let registered = MappedFile::map(registered_file.as_file(), bytes.len())
            .unwrap()
            .expect("a slot is free");
        assert!(INSTALLED.load(SeqCst));
        println!("handler installed");
        let (file, bytes) = patterned(8 << 20);
        // SAFETY: a map made to fault: the test is that the fault ends the process.
        let unregistered = unsafe {
            memmap2::MmapOptions::new()
                .len(bytes.len())
                .map(file.as_file())
        }
        .unwrap();
        file.as_file().set_len(4096).unwrap();
        // SAFETY: inside the map; past the file's end, so this raises SIGBUS.
        let byte = unsafe { std::ptr::read_volatile(unregistered.as_ptr().add(1 << 20)) };
        println!("survived a SIGBUS outside every map: read {byte}");
        drop(registered);
    }
}
