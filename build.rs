//! Link options for the `netcheck` binary.
//!
//! `NETCHECK_PACK_RELOCS=1` packs the binary's relative relocations (DT_RELR,
//! `-z pack-relative-relocs`): the dynamic loader reads every relocation when a process
//! starts, and with the classic format that is ~0.85 MB of the binary kept mapped in every
//! process for nothing (docs/benchmarks.md, agent memory). The packed table is a few KB, but
//! the binary then needs glibc 2.36 or newer, so only builds for a known runtime set it (the
//! container image, on Debian bookworm); a portable build runs on glibc 2.34.
fn main() {
    println!("cargo:rerun-if-env-changed=NETCHECK_PACK_RELOCS");
    if std::env::var_os("NETCHECK_PACK_RELOCS").is_some_and(|v| v == "1") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
