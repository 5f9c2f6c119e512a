//! The process's memory, kept flat over a long drain.
//!
//! Every job passes through a few buffers of 100–400 KB (its bundle, its zip). glibc's malloc
//! serves blocks that large with `mmap` at first, but raises its threshold each time one is
//! freed, after which they come from the heap arenas, one per thread that ever allocated, and
//! fragment them: RSS crept from 9 MB to 29 MB over a 1,000-job drain (`benches/queue.rs`). A
//! fixed threshold keeps such buffers in `mmap` (returned whole when freed), and two arenas
//! bound what the upload workers' threads can hold.

/// Fixes glibc's mmap threshold at 64 KiB and caps its arenas at two. A no-op elsewhere.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands freed heap pages back to the kernel (glibc keeps them otherwise).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
