//! blackbox_exporter 0.23's metric families for one probe run on several agents: the same
//! names, HELP texts, types (every one a gauge) and label names, one sample per agent with
//! its `agent`, `country`, `city` and `asn` labels added.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;

use netcheck_proto::api::agents::Agent;
use netcheck_proto::check::CheckSpec;
use netcheck_proto::result::{CheckResult, ResultData, ResultStatus};

type Labels = Vec<(String, String)>;
/// A family's HELP text and samples.
type Family = (&'static str, Vec<(Labels, f64)>);

/// Families by name (the text comes out sorted by name, as blackbox's registry gathers it).
#[derive(Debug, Default)]
pub struct Families(BTreeMap<&'static str, Family>);

impl Families {
    fn set(&mut self, name: &'static str, labels: &Labels, value: f64) {
        self.phase(name, labels, None, value)
    }

    fn phase(&mut self, name: &'static str, labels: &Labels, phase: Option<&str>, value: f64) {
        let help = help(name);
        let mut labels = labels.clone();
        if let Some(p) = phase {
            labels.insert(0, ("phase".into(), p.into()));
        }
        self.0
            .entry(name)
            .or_insert((help, Vec::new()))
            .1
            .push((labels, value));
    }

    fn info(&mut self, name: &'static str, labels: &Labels, extra: (&str, String)) {
        let mut labels = labels.clone();
        labels.push((extra.0.into(), extra.1));
        self.0
            .entry(name)
            .or_insert((help(name), Vec::new()))
            .1
            .push((labels, 1.0));
    }

    /// The family names, for the debug output and tests.
    pub fn names(&self) -> impl Iterator<Item = &&'static str> {
        self.0.keys()
    }
}

/// blackbox_exporter's HELP texts, exactly (including its "last SSL chain" for the earliest
/// expiry).
fn help(name: &str) -> &'static str {
    match name {
        "probe_success" => "Displays whether or not the probe was a success",
        "probe_duration_seconds" => "Returns how long the probe took to complete in seconds",
        "probe_dns_lookup_time_seconds" => "Returns the time taken for probe dns lookup in seconds",
        "probe_ip_protocol" => "Specifies whether probe ip protocol is IP4 or IP6",
        "probe_ip_addr_hash" => {
            "Specifies the hash of IP address. It's useful to detect if the IP address changes."
        }
        "probe_http_duration_seconds" => {
            "Duration of http request by phase, summed over all redirects"
        }
        "probe_http_content_length" => "Length of http content response",
        "probe_http_uncompressed_body_length" => "Length of uncompressed response body",
        "probe_http_redirects" => "The number of redirects",
        "probe_http_ssl" => "Indicates if SSL was used for the final redirect",
        "probe_http_status_code" => "Response HTTP status code",
        "probe_http_version" => "Returns the version of HTTP of the probe response",
        "probe_failed_due_to_regex" => "Indicates if probe failed due to regex",
        "probe_http_last_modified_timestamp_seconds" => {
            "Returns the Last-Modified HTTP response header in unixtime"
        }
        "probe_ssl_earliest_cert_expiry" => "Returns last SSL chain expiry in unixtime",
        "probe_ssl_last_chain_expiry_timestamp_seconds" => {
            "Returns last SSL chain expiry in timestamp"
        }
        "probe_tls_version_info" => "Returns the TLS version used or NaN when unknown",
        "probe_ssl_last_chain_info" => "Contains SSL leaf certificate information",
        "probe_icmp_duration_seconds" => "Duration of icmp request by phase",
        "probe_icmp_reply_hop_limit" => "Replied packet hop limit (TTL for ipv4)",
        "probe_dns_duration_seconds" => "Duration of DNS request by phase",
        "probe_dns_answer_rrs" => "Returns number of entries in the answer resource record list",
        "probe_dns_authority_rrs" => {
            "Returns number of entries in the authority resource record list"
        }
        "probe_dns_additional_rrs" => {
            "Returns number of entries in the additional resource record list"
        }
        "probe_dns_query_succeeded" => {
            "Displays whether or not the query was executed successfully"
        }
        "probe_dns_serial" => "Returns the serial number of the zone",
        _ => "",
    }
}

/// The labels netcheck adds: where the agent is.
pub fn agent_labels(a: &Agent) -> Labels {
    let loc = a.location.as_ref();
    vec![
        ("agent".into(), a.name.clone()),
        (
            "country".into(),
            loc.and_then(|l| l.country_code.clone()).unwrap_or_default(),
        ),
        (
            "city".into(),
            loc.and_then(|l| l.city.clone()).unwrap_or_default(),
        ),
        (
            "asn".into(),
            loc.and_then(|l| l.asn)
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
    ]
}

/// FNV-1a (32 bits) of the address's bytes: blackbox's `probe_ip_addr_hash`.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ *b as u32).wrapping_mul(0x0100_0193)
    })
}

fn secs(ms: Option<f64>) -> f64 {
    ms.unwrap_or(0.0) / 1000.0
}

/// The address facts every resolving prober reports.
fn address(f: &mut Families, labels: &Labels, resolved: Option<&str>, lookup_ms: Option<f64>) {
    let ip: Option<std::net::IpAddr> = resolved.and_then(|a| a.parse().ok());
    f.set("probe_dns_lookup_time_seconds", labels, secs(lookup_ms));
    let (family, hash) = match ip {
        Some(std::net::IpAddr::V4(v4)) => (4.0, fnv1a32(&v4.octets()) as f64),
        Some(std::net::IpAddr::V6(v6)) => (6.0, fnv1a32(&v6.octets()) as f64),
        None => (0.0, 0.0),
    };
    f.set("probe_ip_protocol", labels, family);
    if ip.is_some() {
        f.set("probe_ip_addr_hash", labels, hash);
    }
}

/// Adds one agent's samples. `answer` is `None` when the agent did not answer in time;
/// `waited` is how long the scrape waited for it (seconds).
pub fn add(
    f: &mut Families,
    agent: &Agent,
    spec: &CheckSpec,
    answer: Option<&CheckResult>,
    waited: f64,
) {
    let labels = agent_labels(agent);
    let ok = answer.is_some_and(|r| r.status == ResultStatus::Ok);
    f.set("probe_success", &labels, if ok { 1.0 } else { 0.0 });
    let duration = answer.map_or(waited, |r| r.duration_ms / 1000.0);
    f.set("probe_duration_seconds", &labels, duration);
    let Some(r) = answer else { return };
    match (spec, r.data.as_ref()) {
        (CheckSpec::Http(o), data) => {
            let h = match data {
                Some(ResultData::Http(h)) => Some(h.as_ref()),
                _ => None,
            };
            address(
                f,
                &labels,
                h.and_then(|h| h.resolved_address.as_deref()),
                h.and_then(|h| h.timings_ms.dns),
            );
            let t = h.map(|h| h.timings_ms.clone()).unwrap_or_default();
            for (phase, ms) in [
                ("connect", t.connect),
                ("processing", t.first_byte),
                ("resolve", t.dns),
                ("tls", t.tls),
                ("transfer", t.download),
            ] {
                f.phase(
                    "probe_http_duration_seconds",
                    &labels,
                    Some(phase),
                    secs(ms),
                );
            }
            let header = |name: &str| h.and_then(|h| h.headers.get(name));
            // -1: an answer without a length (Go's ContentLength); 0: no answer at all.
            let answered = h.is_some_and(|h| h.status_code.is_some());
            let length = header("content-length")
                .and_then(|v| v.split(',').next()?.trim().parse::<f64>().ok())
                .unwrap_or(if answered { -1.0 } else { 0.0 });
            f.set("probe_http_content_length", &labels, length);
            f.set(
                "probe_http_uncompressed_body_length",
                &labels,
                h.and_then(|h| h.body_bytes).unwrap_or(0) as f64,
            );
            f.set(
                "probe_http_redirects",
                &labels,
                h.map_or(0, |h| h.redirects) as f64,
            );
            let tls = h.and_then(|h| h.tls.as_ref());
            f.set("probe_http_ssl", &labels, tls.map_or(0.0, |_| 1.0));
            f.set(
                "probe_http_status_code",
                &labels,
                h.and_then(|h| h.status_code).unwrap_or(0) as f64,
            );
            let version = h
                .and_then(|h| h.http_version.as_deref())
                .and_then(|v| v.strip_prefix("HTTP/")?.parse::<f64>().ok())
                .unwrap_or(0.0);
            f.set("probe_http_version", &labels, version);
            // As blackbox: the patterns are looked at only once the status was accepted.
            let regex_failed = h.is_some_and(|h| {
                let status_ok = h.assertions.iter().all(|a| a.name != "status" || a.ok);
                status_ok
                    && h.assertions.iter().any(|a| {
                        !a.ok
                            && (a.name.starts_with("body_regex")
                                || a.name.starts_with("body_not_regex")
                                || a.name.starts_with("header"))
                    })
            });
            f.set(
                "probe_failed_due_to_regex",
                &labels,
                if regex_failed { 1.0 } else { 0.0 },
            );
            if let Some(modified) =
                header("last-modified").and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            {
                f.set(
                    "probe_http_last_modified_timestamp_seconds",
                    &labels,
                    modified.timestamp() as f64,
                );
            }
            if let Some(tls) = tls {
                let earliest = tls.chain_not_after.unwrap_or(tls.not_after).timestamp() as f64;
                f.set("probe_ssl_earliest_cert_expiry", &labels, earliest);
                // blackbox's value when no chain was verified (Go's zero time).
                let last_chain = if o.verify_tls {
                    earliest
                } else {
                    -62135596800.0
                };
                f.set(
                    "probe_ssl_last_chain_expiry_timestamp_seconds",
                    &labels,
                    last_chain,
                );
                let version = match tls.version.as_str() {
                    "TLSv1.3" => "TLS 1.3",
                    "TLSv1.2" => "TLS 1.2",
                    "TLSv1.1" => "TLS 1.1",
                    "TLSv1.0" => "TLS 1.0",
                    _ => "unknown",
                };
                f.info(
                    "probe_tls_version_info",
                    &labels,
                    ("version", version.into()),
                );
                // blackbox 0.23's labels of the leaf certificate (no serial number before 0.26).
                let mut leaf = labels.clone();
                leaf.extend([
                    (
                        "fingerprint_sha256".to_string(),
                        tls.fingerprint_sha256.clone().unwrap_or_default(),
                    ),
                    ("subject".to_string(), tls.subject.clone()),
                    ("issuer".to_string(), tls.issuer.clone()),
                    ("subjectalternative".to_string(), tls.dns_names.join(",")),
                ]);
                f.set("probe_ssl_last_chain_info", &leaf, 1.0);
            }
        }
        (CheckSpec::Tcp(_), data) => {
            let t = match data {
                Some(ResultData::Tcp(t)) => Some(t),
                _ => None,
            };
            address(
                f,
                &labels,
                t.and_then(|t| t.resolved_address.as_deref()),
                None,
            );
            f.set("probe_failed_due_to_regex", &labels, 0.0);
        }
        (CheckSpec::Ping(_), data) => {
            let p = match data {
                Some(ResultData::Ping(p)) => Some(p),
                _ => None,
            };
            address(
                f,
                &labels,
                p.and_then(|p| p.resolved_address.as_deref()),
                None,
            );
            let reply = p.and_then(|p| p.replies.first());
            for (phase, value) in [
                ("resolve", 0.0),
                ("rtt", secs(reply.map(|r| r.rtt_ms))),
                ("setup", 0.0),
            ] {
                f.phase("probe_icmp_duration_seconds", &labels, Some(phase), value);
            }
            if let Some(ttl) = reply.and_then(|r| r.ttl) {
                f.set("probe_icmp_reply_hop_limit", &labels, ttl as f64);
            }
        }
        (CheckSpec::Dns(o), data) => {
            let d = match data {
                Some(ResultData::Dns(d)) => Some(d),
                _ => None,
            };
            // The server is given as an address (`resolver`), so there is no lookup.
            let server = o
                .resolver
                .as_deref()
                .and_then(|s| s.parse::<std::net::SocketAddr>().ok())
                .map(|a| a.ip().to_string());
            address(f, &labels, server.as_deref(), Some(0.0));
            let answered = d.is_some_and(|d| d.rcode.is_some());
            for (phase, value) in [
                ("connect", 0.0),
                ("request", if answered { duration } else { 0.0 }),
                ("resolve", 0.0),
            ] {
                f.phase("probe_dns_duration_seconds", &labels, Some(phase), value);
            }
            let count = |n: Option<u32>| n.unwrap_or(0) as f64;
            f.set(
                "probe_dns_answer_rrs",
                &labels,
                count(d.map(|d| d.answer_count.unwrap_or(d.answers.len() as u32))),
            );
            f.set(
                "probe_dns_authority_rrs",
                &labels,
                count(d.and_then(|d| d.authority_count)),
            );
            f.set(
                "probe_dns_additional_rrs",
                &labels,
                count(d.and_then(|d| d.additional_count)),
            );
            f.set(
                "probe_dns_query_succeeded",
                &labels,
                if answered { 1.0 } else { 0.0 },
            );
            let serial = d.and_then(|d| {
                d.answers
                    .iter()
                    .find(|a| a.record_type == "SOA")
                    .and_then(|a| a.value.split_whitespace().nth(2)?.parse::<f64>().ok())
            });
            if let Some(serial) = serial {
                f.set("probe_dns_serial", &labels, serial);
            }
        }
        _ => {}
    }
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, (help, samples)) in &self.0 {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (labels, value) in samples {
                let gauge = prometheus_client::metrics::gauge::ConstGauge::new(*value);
                gauge.encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

/// The text exposition (format 0.0.4) of these families.
pub fn render(families: Families) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(families));
    let mut out = String::new();
    prometheus_client::encoding::text::encode_registry(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_blackbox() {
        // The published FNV-1a test vectors.
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    }

    #[test]
    fn help_has_no_added_period_and_families_are_sorted() {
        let mut f = Families::default();
        let labels = vec![("agent".to_string(), "a1".to_string())];
        f.set("probe_success", &labels, 1.0);
        f.set("probe_duration_seconds", &labels, 0.25);
        let text = render(f);
        let duration = text.find("probe_duration_seconds").unwrap();
        let success = text.find("probe_success").unwrap();
        assert!(duration < success, "{text}");
        assert!(
            text.contains("# HELP probe_success Displays whether or not the probe was a success\n")
        );
        assert!(text.contains("probe_success{agent=\"a1\"} 1"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }
}
