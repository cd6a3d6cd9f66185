//! A standalone agent's memory: once idle, it gives back the heap a burst made it allocate
//! and the code pages start-up or the burst mapped. Measured in `docs/benchmarks.md`
//! (issue 33).
//!
//! The crate's one exception to `unsafe_code = "deny"`: three libc calls with no safe wrapper
//! (`mallopt`, `malloc_trim`, `madvise`).
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

/// Returns freed heap memory to the kernel and lets go of code pages (called when the agent
/// has gone idle: after start, and after work).
pub fn give_back() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim walks the allocator's own free lists under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
    drop_code_pages();
}

/// Unmaps this process's pages of the binary's code (its `r-xp` mappings), so that what
/// start-up or a burst ran and idling does not stops counting against the agent: most of an
/// idle agent's RSS was code mapped once and never run again (docs/benchmarks.md). The pages
/// stay in the page cache; code that runs again is mapped back by a minor fault. Only the
/// executable mappings: they are never written (no text relocations), so dropping them loses
/// nothing, unlike the relocated read-only data beside them.
fn drop_code_pages() {
    #[cfg(target_os = "linux")]
    {
        let (Ok(exe), Ok(maps)) = (
            std::fs::read_link("/proc/self/exe"),
            std::fs::read_to_string("/proc/self/maps"),
        ) else {
            return;
        };
        for (start, end) in code_mappings(&maps, &exe.to_string_lossy()) {
            // SAFETY: the range is a whole mapping of the binary's code, private, never
            // written: MADV_DONTNEED only removes its page-table entries, and the next fetch
            // of an instruction there faults the same bytes back in from the file.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

/// The address ranges of `exe`'s executable mappings in a `/proc/<pid>/maps` text.
fn code_mappings(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(6, ' ');
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?.trim_start();
            if perms != "r-xp" || path != exe {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_binarys_executable_mappings_are_taken() {
        let maps = "\
55d0c0000000-55d0c0800000 r--p 00000000 fe:01 1234                       /usr/bin/netcheck
55d0c0800000-55d0c1a00000 r-xp 00800000 fe:01 1234                       /usr/bin/netcheck
55d0c1a00000-55d0c1b00000 r--p 01a00000 fe:01 1234                       /usr/bin/netcheck
7f0000000000-7f0000100000 r-xp 00000000 fe:01 99                         /usr/lib/libc.so.6
7f0000200000-7f0000300000 rw-p 00000000 00:00 0 
7f0000400000-7f0000500000 r-xp 00000000 fe:01 77                         /tmp/net check (deleted)";
        assert_eq!(
            code_mappings(maps, "/usr/bin/netcheck"),
            vec![(0x55d0c0800000, 0x55d0c1a00000)]
        );
        assert_eq!(
            code_mappings(maps, "/tmp/net check (deleted)"),
            vec![(0x7f0000400000, 0x7f0000500000)]
        );
    }

    /// KiB of this process's code resident, from the `Rss:` of its code mappings in smaps.
    fn code_resident_kib() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut in_code = false;
        let mut kib = 0;
        for line in smaps.lines() {
            if line.contains('-') && line.split(' ').nth(1).is_some_and(|p| p.len() == 4) {
                in_code = !code_mappings(line, &exe).is_empty();
            } else if let Some(v) = line.strip_prefix("Rss:").filter(|_| in_code) {
                kib += v.trim().trim_end_matches(" kB").parse::<u64>().unwrap();
            }
        }
        kib
    }

    #[test]
    fn dropping_code_pages_shrinks_rss_and_the_code_runs_on() {
        let before = code_resident_kib();
        drop_code_pages();
        let after = code_resident_kib();
        assert!(before > 0, "the test binary's code is resident");
        // Reaching this line ran code whose pages were just dropped: it was faulted back in.
        assert!(
            after < before,
            "code resident: {before} KiB before, {after} KiB after"
        );
    }
}
