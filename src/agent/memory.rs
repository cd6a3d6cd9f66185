//! A standalone agent's heap: it should give back what a burst of checks made it allocate.
//! Measured in `docs/benchmarks.md` (issue 33).
//!
//! The crate's one exception to `unsafe_code = "deny"`: two glibc calls with no safe wrapper
//! (`mallopt`, `malloc_trim`).
#![allow(unsafe_code)]

/// Whether an agent has its process to itself (`netcheck agent`) or shares it with the server
/// (`netcheck run`): only the first may tune and trim the whole process's heap for an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    AgentOnly,
    Shared,
}

/// glibc gives each thread that allocates its own arena (up to eight per core), and memory
/// freed in one arena cannot serve another: after a burst each tokio worker kept its own
/// high-water mark. Two arenas are enough for an agent's few threads. Called once, before
/// the runtime starts, in a process that is only an agent.
pub fn fewer_arenas() {
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
