//! Check requests (server → agents through the broker): each type's options. The results
//! agents send back are in `result`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::expect::{DnsExpect, HttpExpect, PingExpect, TcpExpect};
use super::fields::{failing_field, without_position};
use super::limits;
use super::trace::TRACE_PACE_WAIT_MS;
use super::trace::{MtrOptions, TracerouteOptions, TRACE_QUERIES};

/// What a check runs: the probe and so the shape of its options and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckType {
    Ping,
    Tcp,
    Http,
    Dns,
    Traceroute,
    Mtr,
}

/// Checks and monitors are stored with their type as text.
impl std::str::FromStr for CheckType {
    type Err = serde_json::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.into()))
    }
}

impl CheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Ping => "ping",
            CheckType::Tcp => "tcp",
            CheckType::Http => "http",
            CheckType::Dns => "dns",
            CheckType::Traceroute => "traceroute",
            CheckType::Mtr => "mtr",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum IpVersion {
    #[serde(rename = "4")]
    V4,
    #[serde(rename = "6")]
    V6,
}

/// Accepts `4`, `6`, `"4"` or `"6"`.
pub mod ip_version_serde {
    use super::IpVersion;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<IpVersion>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(IpVersion::V4) => s.serialize_u8(4),
            Some(IpVersion::V6) => s.serialize_u8(6),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpVersion>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u8),
            S(String),
        }
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::N(4)) => Ok(Some(IpVersion::V4)),
            Some(Raw::N(6)) => Ok(Some(IpVersion::V6)),
            Some(Raw::S(s)) if s == "4" => Ok(Some(IpVersion::V4)),
            Some(Raw::S(s)) if s == "6" => Ok(Some(IpVersion::V6)),
            Some(_) => Err(serde::de::Error::custom("ip_version must be 4 or 6")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PingOptions {
    /// Echo requests to send.
    pub count: u8,
    /// Milliseconds between requests.
    pub interval_ms: u32,
    /// Milliseconds to wait for each reply.
    pub timeout_ms: u32,
    #[serde(with = "ip_version_serde", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u8>)]
    pub ip_version: Option<IpVersion>,
    /// What the result must show to be `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<PingExpect>,
}

impl Default for PingOptions {
    fn default() -> Self {
        Self {
            count: limits::PING_COUNT.default_u8(),
            interval_ms: limits::PING_INTERVAL_MS.default_u32(),
            timeout_ms: limits::PING_TIMEOUT_MS.default_u32(),
            ip_version: None,
            expect: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpOptions {
    pub port: u16,
    /// Milliseconds to wait for the connection.
    #[serde(default = "default_tcp_timeout")]
    pub timeout_ms: u32,
    #[serde(
        default,
        with = "ip_version_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u8>)]
    pub ip_version: Option<IpVersion>,
    /// What the result must show to be `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<TcpExpect>,
}

fn default_tcp_timeout() -> u32 {
    limits::TCP_TIMEOUT_MS.default_u32()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Options,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub const ALL: [HttpMethod; 7] = [
        HttpMethod::Get,
        HttpMethod::Head,
        HttpMethod::Options,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// Largest request body an http check sends.
pub const MAX_HTTP_BODY: usize = 16 * 1024;

/// The HTTP version a check speaks. Unset: whatever the server offers over TLS (ALPN), 1.1
/// in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum HttpVersion {
    #[serde(rename = "http1.1")]
    Http11,
    /// HTTP/2: negotiated by ALPN over TLS, with prior knowledge (h2c) in clear.
    #[serde(rename = "http2")]
    Http2,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpOptions {
    pub method: HttpMethod,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// The request body (at most 16 KiB), sent as it is; set `Content-Type` in `headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 16384)]
    pub body: Option<String>,
    /// Speak only this HTTP version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<HttpVersion>,
    pub follow_redirects: bool,
    /// Milliseconds for the whole exchange.
    pub timeout_ms: u32,
    #[serde(with = "ip_version_serde", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u8>)]
    pub ip_version: Option<IpVersion>,
    /// Verify the server certificate (when false, certificate facts are still reported).
    pub verify_tls: bool,
    /// What the result must show to be `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<HttpExpect>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            method: HttpMethod::Get,
            headers: BTreeMap::new(),
            body: None,
            version: None,
            follow_redirects: false,
            timeout_ms: limits::HTTP_TIMEOUT_MS.default_u32(),
            ip_version: None,
            verify_tls: true,
            expect: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    #[default]
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Txt,
    Soa,
    Ptr,
    Srv,
    Caa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum DnsProtocol {
    #[default]
    Udp,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DnsOptions {
    pub record_type: RecordType,
    /// `ip` or `ip:port`; unset: the agent's system resolver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    pub protocol: DnsProtocol,
    /// Milliseconds to wait for the answer.
    pub timeout_ms: u32,
    /// What the result must show to be `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<DnsExpect>,
}

impl Default for DnsOptions {
    fn default() -> Self {
        Self {
            record_type: RecordType::A,
            resolver: None,
            protocol: DnsProtocol::Udp,
            timeout_ms: limits::DNS_TIMEOUT_MS.default_u32(),
            expect: None,
        }
    }
}

/// What to run: the check's `type` and that type's `options`, two fields of the enclosing
/// object. In a request `options` may be left out (the type's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type", content = "options", rename_all = "snake_case")]
pub enum CheckSpec {
    Ping(PingOptions),
    Tcp(TcpOptions),
    Http(HttpOptions),
    Dns(DnsOptions),
    Traceroute(TracerouteOptions),
    Mtr(MtrOptions),
}

/// Why a `type` or `options` could not be read: the field (`type`, `options.count`) and what
/// is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

/// Serde errors carry only text: a [`SpecError`] travels inside one as
/// `"{SPEC_ERROR}{field}\u{1f}{message}"`, so that the API can answer with the field's name.
pub const SPEC_ERROR: &str = "\u{1e}check spec\u{1e}";

impl SpecError {
    /// The field and message of a serde error made from a [`SpecError`], if it was one.
    pub fn from_serde_message(msg: &str) -> Option<SpecError> {
        let rest = &msg[msg.find(SPEC_ERROR)? + SPEC_ERROR.len()..];
        let (field, message) = rest.split_once('\u{1f}')?;
        Some(SpecError {
            field: field.to_string(),
            message: without_position(message).to_string(),
        })
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SPEC_ERROR}{}\u{1f}{}", self.field, self.message)
    }
}

impl CheckSpec {
    /// The spec of a check of this type with these options (`null` or `{}`: the defaults).
    pub fn from_parts(
        check_type: CheckType,
        options: &serde_json::Value,
    ) -> Result<Self, SpecError> {
        fn read<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, SpecError> {
            let empty = serde_json::Value::Object(Default::default());
            let v = if v.is_null() { &empty } else { v };
            serde_path_to_error::deserialize(v).map_err(|e| {
                let message = e.inner().to_string();
                let field = match failing_field(&e.path().to_string(), &message).as_str() {
                    "" => "options".into(),
                    f => format!("options.{f}"),
                };
                SpecError { field, message }
            })
        }
        Ok(match check_type {
            CheckType::Ping => CheckSpec::Ping(read(options)?),
            CheckType::Tcp => CheckSpec::Tcp(read(options)?),
            CheckType::Http => CheckSpec::Http(read(options)?),
            CheckType::Dns => CheckSpec::Dns(read(options)?),
            CheckType::Traceroute => CheckSpec::Traceroute(read(options)?),
            CheckType::Mtr => CheckSpec::Mtr(read(options)?),
        })
    }

    /// The options alone, as JSON (the `options` column, the CLI's settings line).
    pub fn options_json(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            CheckSpec::Ping(o) => serde_json::to_value(o),
            CheckSpec::Tcp(o) => serde_json::to_value(o),
            CheckSpec::Http(o) => serde_json::to_value(o),
            CheckSpec::Dns(o) => serde_json::to_value(o),
            CheckSpec::Traceroute(o) => serde_json::to_value(o),
            CheckSpec::Mtr(o) => serde_json::to_value(o),
        }
    }
}

impl<'de> Deserialize<'de> for CheckSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Parts {
            #[serde(rename = "type")]
            check_type: serde_json::Value,
            #[serde(default)]
            options: serde_json::Value,
        }
        let parts = Parts::deserialize(d)?;
        let check_type: CheckType = serde_json::from_value(parts.check_type).map_err(|e| {
            serde::de::Error::custom(SpecError {
                field: "type".into(),
                message: e.to_string(),
            })
        })?;
        CheckSpec::from_parts(check_type, &parts.options).map_err(serde::de::Error::custom)
    }
}

impl CheckSpec {
    pub fn check_type(&self) -> CheckType {
        match self {
            CheckSpec::Ping(_) => CheckType::Ping,
            CheckSpec::Tcp(_) => CheckType::Tcp,
            CheckSpec::Http(_) => CheckType::Http,
            CheckSpec::Dns(_) => CheckType::Dns,
            CheckSpec::Traceroute(_) => CheckType::Traceroute,
            CheckSpec::Mtr(_) => CheckType::Mtr,
        }
    }

    /// Longest time a probe may take on the agent, in milliseconds.
    pub fn budget_ms(&self) -> u64 {
        match self {
            CheckSpec::Ping(o) => {
                o.interval_ms as u64 * (o.count.max(1) as u64 - 1) + o.timeout_ms as u64
            }
            CheckSpec::Tcp(o) => o.timeout_ms as u64,
            CheckSpec::Http(o) => o.timeout_ms as u64,
            CheckSpec::Dns(o) => o.timeout_ms as u64,
            // A traceroute's queries may wait for the agent's pacer and queue for tracer slots.
            CheckSpec::Traceroute(o) => {
                TRACE_QUERIES as u64 * o.timeout_ms as u64 + TRACE_PACE_WAIT_MS + 1000
            }
            // mtr's rounds start `interval_ms` apart; one lasts longer only while the target
            // is silent, up to `timeout_ms`.
            CheckSpec::Mtr(o) => {
                o.packets.max(1) as u64 * o.interval_ms.max(o.timeout_ms) as u64 + 1000
            }
        }
    }
}

/// A check request as published to agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub protocol_version: u32,
    pub check_id: Uuid,
    pub target: String,
    #[serde(flatten)]
    pub spec: CheckSpec,
    /// Do not start the probe after this instant (the agent was offline or backlogged).
    pub expires_at: DateTime<Utc>,
    /// Agents asked to run it; others that receive it through the fanout ignore it.
    /// (The target policy is not here: agents take it from their registration answer, so a
    /// message forged on the broker cannot widen it. Older servers sent `allowed_networks`;
    /// it is ignored.)
    pub agents: Vec<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{ResultData, TcpResult};

    #[test]
    fn request_round_trips_with_flattened_spec() {
        let req = CheckRequest {
            protocol_version: 1,
            check_id: Uuid::nil(),
            target: "example.com".into(),
            spec: CheckSpec::Tcp(TcpOptions {
                port: 443,
                timeout_ms: 1000,
                ip_version: Some(IpVersion::V6),
                expect: None,
            }),
            expires_at: Utc::now(),
            agents: vec![Uuid::nil()],
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["type"], "tcp");
        assert_eq!(json["options"]["port"], 443);
        assert_eq!(json["options"]["ip_version"], 6);
        let back: CheckRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn result_data_is_tagged_by_type() {
        let data = ResultData::Tcp(TcpResult {
            resolved_address: Some("192.0.2.1".into()),
            port: 80,
            connected: true,
            connect_ms: Some(1.5),
            assertions: Vec::new(),
        });
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(json["type"], "tcp");
        assert_eq!(serde_json::from_value::<ResultData>(json).unwrap(), data);
    }

    #[test]
    fn ping_budget_covers_all_requests() {
        let spec = CheckSpec::Ping(PingOptions {
            count: 3,
            interval_ms: 500,
            timeout_ms: 2000,
            ip_version: None,
            expect: None,
        });
        assert_eq!(spec.budget_ms(), 3000);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::result::{CheckResult, ResultData, ResultStatus, TcpResult};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever bytes arrive from the broker, decoding fails cleanly or yields a value.
        #[test]
        fn arbitrary_messages_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<CheckRequest>(&bytes);
            let _ = serde_json::from_slice::<CheckResult>(&bytes);
        }

        /// Mutated JSON of a real result (truncated, or a byte flipped) never panics the decoder.
        #[test]
        fn mutated_results_decode_without_panicking(cut in 0usize..400, flip in 0usize..400, byte in any::<u8>()) {
            let r = CheckResult {
                protocol_version: 1,
                check_id: Uuid::nil(),
                agent_id: Uuid::nil(),
                status: ResultStatus::Ok,
                error: None,
                started_at: chrono::Utc::now(),
                duration_ms: 1.0,
                data: Some(ResultData::Tcp(TcpResult { resolved_address: Some("192.0.2.1".into()), port: 80, connected: true, connect_ms: Some(1.0), assertions: Vec::new() })),
            };
            let mut json = serde_json::to_vec(&r).unwrap();
            if flip < json.len() { json[flip] = byte; }
            json.truncate(cut.min(json.len()));
            let _ = serde_json::from_slice::<CheckResult>(&json);
        }
    }
}
