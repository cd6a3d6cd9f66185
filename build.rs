//! Link options for the `netcheck` binary.
//!
//! `NETCHECK_PACK_RELOCS=1` packs the binary's relative relocations (DT_RELR,
//! `-z pack-relative-relocs`): the dynamic loader reads every relocation when a process
//! starts, and with the classic format that is ~0.85 MB of the binary kept mapped in every
//! process for nothing (docs/benchmarks.md, agent memory). The packed table is a few KB, but
//! the binary then needs glibc 2.36 or newer, so only builds for a known runtime set it (the
//! container image, on Debian bookworm); a portable build runs on glibc 2.34.
///
/// The web UI in `frontend/dist` is embedded (rust-embed) in release builds: a build made before
/// the UI was built must be redone once it is, so the folder is watched (a missing folder makes
/// cargo rerun this script on every build until it exists).
fn main() {
    println!("cargo:rerun-if-env-changed=NETCHECK_PACK_RELOCS");
    println!("cargo:rerun-if-changed=frontend/dist");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("NETCHECK_PACK_RELOCS").is_some_and(|v| v == "1") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
