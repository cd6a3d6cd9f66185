//! Check results (agents → server): the status, the error, and each type's facts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::expect::Assertion;
use super::trace::{MtrResult, TracerouteResult};

/// How one agent's part of a check ended (or that it is still awaited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// The probe reached the target.
    Ok,
    /// The probe ran and the target failed (refused, unreachable, bad status…).
    Failed,
    /// The agent never answered in time.
    Timeout,
    /// The agent was offline.
    Offline,
    /// Still waiting for the agent.
    Pending,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Ok => "ok",
            ResultStatus::Failed => "failed",
            ResultStatus::Timeout => "timeout",
            ResultStatus::Offline => "offline",
            ResultStatus::Pending => "pending",
        }
    }
}

/// Why a probe failed: a closed set, so clients can map every code to words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeErrorCode {
    /// No answer within the probe's time.
    Timeout,
    /// The target refused the connection (nothing listens on that port).
    Refused,
    /// No route to the host or network.
    Unreachable,
    /// Connecting failed for another reason.
    ConnectFailed,
    /// The name could not be resolved.
    Dns,
    /// The resolver answered with an error code (NXDOMAIN, SERVFAIL…).
    DnsRcode,
    /// The TLS handshake failed.
    Tls,
    /// The HTTP exchange failed.
    Http,
    /// The server answered 4xx or 5xx (without accepted statuses in `expect.status`).
    HttpStatus,
    /// More than 10 redirects.
    TooManyRedirects,
    /// A redirect that cannot be followed.
    BadRedirect,
    /// The target is not what the check type takes (not an http(s) URL, say).
    InvalidTarget,
    /// The request could not be built from the options.
    InvalidRequest,
    /// The target, or an address it resolves to, is in a range the agent refuses.
    TargetRefused,
    /// The trace could not run.
    TraceFailed,
    /// A trace that did not reach its target.
    NotReached,
    /// The agent cannot send ICMP (it needs root or CAP_NET_RAW).
    IcmpUnavailable,
    /// The probe worked and an expectation was not met.
    ExpectationFailed,
    /// The expectations could not be evaluated within the probe's time.
    ExpectationUnevaluable,
    /// The result was too large to report.
    ResultTooLarge,
    /// The agent cannot run this probe.
    Unsupported,
    /// The agent was offline when the check was created.
    AgentOffline,
    /// The agent did not answer in time.
    AgentTimeout,
    /// The agent was past its capacity: it could not start the probe in time, so it was not
    /// asked (or it answered at once instead of letting the deadline pass).
    AgentBusy,
    /// A code this server does not know (sent by a newer agent); the message says more.
    #[serde(other)]
    Unknown,
}

impl ProbeErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeErrorCode::Timeout => "timeout",
            ProbeErrorCode::Refused => "refused",
            ProbeErrorCode::Unreachable => "unreachable",
            ProbeErrorCode::ConnectFailed => "connect_failed",
            ProbeErrorCode::Dns => "dns",
            ProbeErrorCode::DnsRcode => "dns_rcode",
            ProbeErrorCode::Tls => "tls",
            ProbeErrorCode::Http => "http",
            ProbeErrorCode::HttpStatus => "http_status",
            ProbeErrorCode::TooManyRedirects => "too_many_redirects",
            ProbeErrorCode::BadRedirect => "bad_redirect",
            ProbeErrorCode::InvalidTarget => "invalid_target",
            ProbeErrorCode::InvalidRequest => "invalid_request",
            ProbeErrorCode::TargetRefused => "target_refused",
            ProbeErrorCode::TraceFailed => "trace_failed",
            ProbeErrorCode::NotReached => "not_reached",
            ProbeErrorCode::IcmpUnavailable => "icmp_unavailable",
            ProbeErrorCode::ExpectationFailed => "expectation_failed",
            ProbeErrorCode::ExpectationUnevaluable => "expectation_unevaluable",
            ProbeErrorCode::ResultTooLarge => "result_too_large",
            ProbeErrorCode::Unsupported => "unsupported",
            ProbeErrorCode::AgentOffline => "agent_offline",
            ProbeErrorCode::AgentTimeout => "agent_timeout",
            ProbeErrorCode::AgentBusy => "agent_busy",
            ProbeErrorCode::Unknown => "unknown",
        }
    }

    /// A few words for people (notifications, status pages).
    pub fn phrase(self) -> &'static str {
        match self {
            ProbeErrorCode::Timeout => "timed out",
            ProbeErrorCode::Refused => "connection refused",
            ProbeErrorCode::Unreachable => "host unreachable",
            ProbeErrorCode::ConnectFailed => "connection failed",
            ProbeErrorCode::Dns => "name not resolved",
            ProbeErrorCode::DnsRcode => "DNS error answer",
            ProbeErrorCode::Tls => "TLS handshake failed",
            ProbeErrorCode::Http => "HTTP exchange failed",
            ProbeErrorCode::HttpStatus => "HTTP error status",
            ProbeErrorCode::TooManyRedirects => "too many redirects",
            ProbeErrorCode::BadRedirect => "bad redirect",
            ProbeErrorCode::InvalidTarget => "invalid target",
            ProbeErrorCode::InvalidRequest => "invalid request",
            ProbeErrorCode::TargetRefused => "target refused by policy",
            ProbeErrorCode::TraceFailed => "trace failed",
            ProbeErrorCode::NotReached => "target not reached",
            ProbeErrorCode::IcmpUnavailable => "ICMP unavailable on the agent",
            ProbeErrorCode::ExpectationFailed => "expectation not met",
            ProbeErrorCode::ExpectationUnevaluable => "expectation not evaluable in time",
            ProbeErrorCode::ResultTooLarge => "result too large",
            ProbeErrorCode::Unsupported => "probe unsupported on the agent",
            ProbeErrorCode::AgentOffline => "agent offline",
            ProbeErrorCode::AgentTimeout => "agent did not answer",
            ProbeErrorCode::AgentBusy => "agent busy",
            ProbeErrorCode::Unknown => "failed",
        }
    }
}

impl std::fmt::Display for ProbeErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProbeError {
    pub code: ProbeErrorCode,
    pub message: String,
}

impl ProbeError {
    pub fn new(code: ProbeErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rtt {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub mdev: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PingReply {
    pub seq: u16,
    pub rtt_ms: f64,
    pub ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PingResult {
    pub resolved_address: Option<String>,
    pub sent: u32,
    pub received: u32,
    pub loss_pct: f64,
    pub rtt_ms: Option<Rtt>,
    pub replies: Vec<PingReply>,
    /// The verdict on each expectation in `options.expect` (empty without expectations).
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TcpResult {
    pub resolved_address: Option<String>,
    pub port: u16,
    pub connected: bool,
    pub connect_ms: Option<f64>,
    /// The verdict on each expectation in `options.expect` (empty without expectations).
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

/// Phases of an HTTP check in milliseconds. They follow one another without overlap, so for a
/// completed check `dns + connect + tls + first_byte + download = total` (each rounded down to
/// the microsecond). With `follow_redirects` each phase is summed over the hops. A phase that
/// did not happen (`dns` for an IP address, `tls` for http) or did not finish is null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct HttpTimings {
    /// Resolving the host name.
    pub dns: Option<f64>,
    /// The TCP handshake.
    pub connect: Option<f64>,
    /// The TLS handshake.
    pub tls: Option<f64>,
    /// Request sent → first byte of the response (the server's think time plus one round trip).
    pub first_byte: Option<f64>,
    /// First byte of the response → the body read (at most 4 MiB are read).
    pub download: Option<f64>,
    /// The whole check, from its start to the last phase's end.
    pub total: Option<f64>,
}

impl HttpTimings {
    /// Adds another hop's phases to these (a redirect followed).
    pub fn add(&mut self, hop: &HttpTimings) {
        fn sum(a: &mut Option<f64>, b: Option<f64>) {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0.0) + b);
            }
        }
        sum(&mut self.dns, hop.dns);
        sum(&mut self.connect, hop.connect);
        sum(&mut self.tls, hop.tls);
        sum(&mut self.first_byte, hop.first_byte);
        sum(&mut self.download, hop.download);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    pub issuer: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    pub days_left: i64,
    /// The earliest expiry among every certificate the server sent (the leaf's when it sent
    /// only that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_not_after: Option<DateTime<Utc>>,
    /// SHA-256 of the server certificate (DER), in lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_sha256: Option<String>,
    /// The certificate's DNS names (subject alternative names), at most 32.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HttpResult {
    pub resolved_address: Option<String>,
    pub status_code: Option<u16>,
    pub http_version: Option<String>,
    /// Response headers, values of one name joined by `, `; each value at most 1 KiB and all
    /// of them at most 16 KiB (see `headers_truncated`).
    pub headers: BTreeMap<String, String>,
    /// Some header values were cut short or left out to stay within those limits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headers_truncated: bool,
    pub body_bytes: Option<u64>,
    pub timings_ms: HttpTimings,
    pub tls: Option<TlsInfo>,
    /// The redirect's target (at most 2 KiB; a longer one ends in `…` and is not followed).
    pub redirect_to: Option<String>,
    /// Redirects followed before this answer (`follow_redirects`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redirects: u32,
    /// The verdict on each expectation in `options.expect` (empty without expectations).
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DnsAnswer {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub ttl: u32,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DnsResult {
    pub resolver: Option<String>,
    pub rcode: Option<String>,
    /// At most 100 answers (see `truncated`).
    pub answers: Vec<DnsAnswer>,
    /// More answers came than are reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Answers left out because their address is in a range the target policy refuses (the
    /// agent's own resolver may know names the public must not learn).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub withheld: u32,
    /// Records in the answer's sections as the resolver sent them (before any was left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_count: Option<u32>,
    /// The verdict on each expectation in `options.expect` (empty without expectations).
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Type-specific facts of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResultData {
    Ping(PingResult),
    Tcp(TcpResult),
    Http(Box<HttpResult>),
    Dns(DnsResult),
    Traceroute(TracerouteResult),
    Mtr(MtrResult),
}

/// A check type's own result, one of [`ResultData`]'s variants: `data.get::<TcpResult>()`.
pub trait ResultKind {
    fn of(data: &ResultData) -> Option<&Self>;
}

macro_rules! result_kind {
    ($($variant:ident => $ty:ty),*) => {$(
        impl ResultKind for $ty {
            fn of(data: &ResultData) -> Option<&Self> {
                match data {
                    ResultData::$variant(r) => {
                        let r: &Self = r;
                        Some(r)
                    }
                    _ => None,
                }
            }
        }
    )*};
}
result_kind!(Ping => PingResult, Tcp => TcpResult, Http => HttpResult, Dns => DnsResult,
    Traceroute => TracerouteResult, Mtr => MtrResult);

impl ResultData {
    /// This check type's result, if it is one (`None` for another type's).
    pub fn get<T: ResultKind>(&self) -> Option<&T> {
        T::of(self)
    }

    /// The verdicts on the expectations.
    pub fn assertions(&self) -> &[Assertion] {
        match self {
            ResultData::Ping(r) => &r.assertions,
            ResultData::Tcp(r) => &r.assertions,
            ResultData::Http(r) => &r.assertions,
            ResultData::Dns(r) => &r.assertions,
            ResultData::Traceroute(r) => &r.assertions,
            ResultData::Mtr(r) => &r.assertions,
        }
    }

    /// Where the verdicts on the expectations go.
    pub fn assertions_mut(&mut self) -> &mut Vec<Assertion> {
        match self {
            ResultData::Ping(r) => &mut r.assertions,
            ResultData::Tcp(r) => &mut r.assertions,
            ResultData::Http(r) => &mut r.assertions,
            ResultData::Dns(r) => &mut r.assertions,
            ResultData::Traceroute(r) => &mut r.assertions,
            ResultData::Mtr(r) => &mut r.assertions,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub protocol_version: u32,
    pub check_id: Uuid,
    pub agent_id: Uuid,
    pub status: ResultStatus,
    pub error: Option<ProbeError>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub data: Option<ResultData>,
}
