//! A standalone agent's heap: it should give back what a burst of checks made it allocate.
//! Measured in `docs/benchmarks.md` (issue 33).
//!
//! The crate's one exception to `unsafe_code = "deny"`: two glibc calls with no safe wrapper
//! (`mallopt`, `malloc_trim`).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

/// Set in a process that is only an agent (not `netcheck run`'s agent beside the server).
static LEAN: AtomicBool = AtomicBool::new(false);

/// Whether this process is only an agent, so it may tune the whole process for one.
pub fn is_lean() -> bool {
    LEAN.load(Ordering::Relaxed)
}

/// Called once, before the runtime starts, in a process that is only an agent.
pub fn lean() {
    LEAN.store(true, Ordering::Relaxed);
    fewer_arenas();
}

/// glibc gives each thread that allocates its own arena (up to eight per core), and memory
/// freed in one arena cannot serve another: after a burst each tokio worker kept its own
/// high-water mark. Two arenas are enough for an agent's few threads.
fn fewer_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the kernel (called when the agent has gone idle after work).
pub fn give_back() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim walks the allocator's own free lists under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
