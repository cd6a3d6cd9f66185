//! Expectations (`options.expect`): what a result must show to count as `ok`, per check type,
//! and the verdict on each (`assertions`). The agent judges (it holds the response body); the
//! server validates expectations before a check is sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most of a response body that expectations look at.
pub const MAX_JUDGED_BODY: usize = 1024 * 1024;
/// Compiled-size cap of an expectation's regular expression (the server refuses larger ones):
/// matching time grows with it, and a 1 024-character pattern rarely needs more.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Cache of the lazy DFA of one match; a pattern that outgrows it falls back to the slower
/// NFA, which the judge's deadline bounds.
pub const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// HTTP expectations. Without `status`, a 2xx or 3xx answer is ok and a 4xx/5xx fails with
/// code `http_status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// Accepted status codes or classes, e.g. `["2xx", "301"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<String>>,
    /// Text the first 1 MiB of the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A regular expression (RE2 syntax: linear time, no backtracking) the first 1 MiB of the
    /// body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// Response headers (name, any letter case) whose value must match a regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<BTreeMap<String, String>>,
    /// The certificate must stay valid at least this many more days (https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_min_days: Option<i64>,
    /// The whole exchange must take at most this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_ms: Option<f64>,
    /// A regular expression the first 1 MiB of the body must not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_not_regex: Option<String>,
    /// Response headers whose value must not match a regular expression (a missing header
    /// passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_not: Option<BTreeMap<String, String>>,
    /// Whether the final answer must (`true`) or must not (`false`) come over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// Accepted HTTP versions of the answer, e.g. `["HTTP/1.1", "HTTP/2.0"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<String>>,
}

/// HTTP versions as results name them (`http_version`).
pub const HTTP_VERSIONS: [&str; 4] = ["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"];

impl HttpExpect {
    /// Whether the body has to be kept (its first 1 MiB) for judging.
    pub fn needs_body(&self) -> bool {
        self.body_contains.is_some() || self.body_regex.is_some() || self.body_not_regex.is_some()
    }

    /// Whether judging matches regular expressions (and so runs off the async runtime).
    pub fn has_regex(&self) -> bool {
        self.body_regex.is_some()
            || self.body_not_regex.is_some()
            || self.header.is_some()
            || self.header_not.is_some()
    }
}

/// Traceroute and MTR expectations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceExpect {
    /// Whether the target must (`true`) or must not (`false`) answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<bool>,
}

/// Ping expectations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PingExpect {
    /// Highest acceptable packet loss, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_loss_pct: Option<f64>,
    /// Highest acceptable average round trip, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_avg_rtt_ms: Option<f64>,
}

/// TCP expectations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpExpect {
    /// Slowest acceptable connect, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connect_ms: Option<f64>,
}

/// DNS expectations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsExpect {
    /// The response code the answer must carry, e.g. `NOERROR` or `NXDOMAIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// Text one of the answers' values must contain (any letter case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_contains: Option<String>,
    /// Fewest acceptable answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_answers: Option<u32>,
}

/// The verdict on one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Assertion {
    /// The expectation, e.g. `status`, `body_regex`, `header.content-type`, `max_loss_pct`.
    pub name: String,
    pub ok: bool,
    /// What was expected and what was seen, for people.
    pub detail: String,
}

impl Assertion {
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }
}

/// Whether an HTTP status matches one accepted entry (`"2xx"` or `"301"`).
pub fn status_matches(code: u16, entry: &str) -> bool {
    let e = entry.trim().to_ascii_lowercase();
    match e.strip_suffix("xx") {
        Some(class) => class.parse::<u16>().is_ok_and(|c| code / 100 == c),
        None => e.parse::<u16>().is_ok_and(|c| c == code),
    }
}

/// Whether an accepted-status entry is well formed (`1xx`–`5xx` or `100`–`599`).
pub fn valid_status_entry(entry: &str) -> bool {
    let e = entry.trim().to_ascii_lowercase();
    match e.strip_suffix("xx") {
        Some(class) => matches!(class, "1" | "2" | "3" | "4" | "5"),
        None => e.len() == 3 && e.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_match_codes_and_classes() {
        assert!(status_matches(204, "2xx"));
        assert!(status_matches(301, "301"));
        assert!(!status_matches(302, "301"));
        assert!(!status_matches(404, "2XX") && status_matches(404, "4XX"));
        for ok in ["2xx", "5XX", "200", "599"] {
            assert!(valid_status_entry(ok), "{ok}");
        }
        for bad in ["6xx", "xx", "20", "600", "2x", "abc", "099"] {
            assert!(!valid_status_entry(bad), "{bad}");
        }
    }
}
