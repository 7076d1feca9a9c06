//! The allocator tuning of `tailcast::malloc`, in a process of its own: glibc moves its
//! thresholds as memory is freed, so the tests of other binaries must not have run here first.

#![cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]

/// Minor page faults of the calling thread so far.
fn thread_faults() -> i64 {
    // SAFETY: getrusage writes one rusage; all zeroes is a valid one to start from.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live rusage for the call to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    usage.ru_minflt
}

/// Allocates `bytes`, writes every page, and frees it.
fn touch_and_free(bytes: usize) {
    let mut block: Vec<u8> = Vec::with_capacity(bytes);
    block.resize(bytes, 1);
    std::hint::black_box(&block);
}

#[test]
fn a_freed_batch_sized_block_is_reused_without_faulting_its_pages_in_again() {
    // What a burst does: a block is freed as the next one like it is allocated. 1 MiB: glibc's
    // default (a 128 KiB mmap threshold in a fresh process) maps it on its own and unmaps it at
    // free, and gives freed pages back once 2x its moving threshold is free at the top, so
    // pages are faulted in again (256 faults in these rounds with the tuning taken out).
    const BLOCK: usize = 1 << 20;
    tailcast::malloc::keep_freed_memory();
    touch_and_free(BLOCK);
    let before = thread_faults();
    for _ in 0..8 {
        touch_and_free(BLOCK);
    }
    let faults = thread_faults() - before;
    // One round is 256 pages; a few stray faults are allowed.
    assert!(
        faults < 64,
        "{faults} page faults for 8 rounds of a 1 MiB block: freed memory went back to the kernel"
    );
}
