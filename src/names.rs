//! Words for name-resolution failures, shared by the agent's probes and the server's lookup.

/// Why a name did not resolve, in words (hickory's own text shows its query structs).
pub fn resolve_failure(host: &str, e: &hickory_resolver::net::NetError) -> String {
    use hickory_resolver::net::NetError;
    if e.is_nx_domain() {
        format!("{host} does not exist (the DNS answered NXDOMAIN)")
    } else if e.is_no_records_found() {
        format!("{host} has no address records")
    } else if matches!(e, NetError::Timeout) {
        format!("could not resolve {host}: the DNS server did not answer in time")
    } else {
        format!("could not resolve {host}: {e}")
    }
}
