//! The one tuning of the C allocator: how much freed memory glibc's malloc keeps for reuse.
//!
//! A follower allocates a batch of about 32-64 KiB per read during a burst, and the history frees
//! the oldest batch as each new one comes in; each WebSocket frame is about as big. With glibc's
//! default trim threshold (128 KiB), a free at the top of an arena hands the pages back to the
//! kernel (`madvise`, `brk`) and the next batch faults them in again, zeroed: a page fault for
//! every 4 KiB of every line read, on the follower's thread and the WebSocket workers'. Keeping up
//! to [`TRIM_THRESHOLD`] free at an arena's top makes that churn reuse the same pages (a burst of
//! 2 000 000 lines: about 3 200-3 600 faults on the follower's thread and 2 400-2 700 on the
//! worker's before, 900-1 300 and 700-800 after).
//!
//! Setting the trim threshold also stops glibc from moving its mmap threshold, which it would
//! otherwise raise after big frees (up to 32 MiB) so that big allocations come from the arena
//! too. [`MMAP_THRESHOLD`] fixes it where lines up to a few MiB (`--max-line-bytes`) and their
//! frames are still served from the arena rather than mapped and faulted in one by one.
//!
//! What is kept is bounded: at most [`TRIM_THRESHOLD`] of free memory at the top of each arena
//! (glibc's own moving threshold may reach 64 MiB), and glibc keeps at most eight arenas per
//! core; only an arena that served a burst holds that much. Nothing here applies to a C library
//! other than glibc.

/// Free memory an arena keeps at its top before giving it back to the kernel: twice
/// [`MMAP_THRESHOLD`], the ratio glibc keeps when it moves the two itself, so that freeing the
/// biggest allocation the arena serves does not trim it (lines of 1 MB cost 25 % more CPU with
/// a quarter of this).
pub const TRIM_THRESHOLD: usize = 2 * MMAP_THRESHOLD;

/// Allocations at least this big are mapped on their own (and unmapped when freed).
pub const MMAP_THRESHOLD: usize = 4 * 1024 * 1024;

/// Sets glibc's trim and mmap thresholds; call once, first thing in `main`, before any thread
/// starts. A no-op on other C libraries and on 32-bit targets (where glibc refuses an mmap
/// threshold over 512 KiB), and when the operator tuned malloc through its environment
/// (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`, `GLIBC_TUNABLES`): theirs wins.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    {
        if tuned_by_environment(|name| std::env::var_os(name)) {
            return;
        }
        // The mmap threshold first: setting the trim threshold fixes both (see the module
        // documentation), so it is set only when the mmap threshold was taken.
        // SAFETY: mallopt only sets a parameter of the allocator, before any thread exists; a
        // value it refuses is reported by its return (0), and glibc keeps its default.
        let mapped =
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
        if mapped == 1 {
            // SAFETY: as above.
            let _ = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) };
        }
    }
}

/// True when the environment (read through `var`) already tunes glibc's malloc.
fn tuned_by_environment(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    var("MALLOC_TRIM_THRESHOLD_").is_some()
        || var("MALLOC_MMAP_THRESHOLD_").is_some()
        || var("GLIBC_TUNABLES").is_some_and(|t| t.to_string_lossy().contains("glibc.malloc."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_malloc_tuning_is_left_alone() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(!tuned_by_environment(env(&[])));
        assert!(!tuned_by_environment(env(&[(
            "GLIBC_TUNABLES",
            "glibc.rtld.nns=2"
        )])));
        assert!(tuned_by_environment(env(&[(
            "MALLOC_TRIM_THRESHOLD_",
            "0"
        )])));
        assert!(tuned_by_environment(env(&[(
            "MALLOC_MMAP_THRESHOLD_",
            "1"
        )])));
        assert!(tuned_by_environment(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.trim_threshold=1"
        )])));
    }
}
