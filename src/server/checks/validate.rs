//! The rules a check's target and options must meet, or a 422 that names the field.

use netcheck_proto::expect::{
    valid_status_entry, DnsExpect, HttpExpect, PingExpect, TcpExpect, HTTP_VERSIONS,
    REGEX_SIZE_LIMIT,
};

use crate::policy::{parse_ip_loose, Policy};
use crate::server::error::{ApiError, ApiResult};
use netcheck_proto::check::{CheckSpec, RecordType, MAX_HTTP_BODY};
use netcheck_proto::limits::*;

/// A limit an expectation sets, if given: a finite number within `bounds`.
fn limit(field: &str, v: Option<f64>, bounds: Limit) -> ApiResult<()> {
    match v {
        Some(x) => within(field, x, bounds),
        None => Ok(()),
    }
}

fn within(field: &str, v: f64, bounds: Limit) -> ApiResult<()> {
    if bounds.contains(v) {
        return Ok(());
    }
    Err(ApiError::invalid_field(
        field,
        format!("{field} must be between {} and {}", bounds.min, bounds.max),
    ))
}

fn text(field: &str, v: &Option<String>) -> ApiResult<()> {
    match v {
        Some(t) if t.is_empty() || t.chars().count() > 1024 => Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1-1024 characters"),
        )),
        _ => Ok(()),
    }
}

/// A regular expression an expectation gives: RE2 syntax (no look-around, no
/// backreferences), so matching stays linear in the body's length.
fn pattern(field: &str, p: &str) -> ApiResult<()> {
    if p.is_empty() || p.chars().count() > 1024 {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1-1024 characters"),
        ));
    }
    regex::RegexBuilder::new(p)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| {
            ApiError::invalid_field(field, format!("{field}: invalid regular expression: {e}"))
        })
}

const RCODES: [&str; 10] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH",
];

fn expect_ping(e: &Option<PingExpect>) -> ApiResult<()> {
    let Some(e) = e else { return Ok(()) };
    limit(
        "options.expect.max_loss_pct",
        e.max_loss_pct,
        EXPECT_LOSS_PCT,
    )?;
    limit(
        "options.expect.max_avg_rtt_ms",
        e.max_avg_rtt_ms,
        EXPECT_RTT_MS,
    )
}

fn expect_tcp(e: &Option<TcpExpect>) -> ApiResult<()> {
    let Some(e) = e else { return Ok(()) };
    limit(
        "options.expect.max_connect_ms",
        e.max_connect_ms,
        EXPECT_CONNECT_MS,
    )
}

fn expect_http(e: &Option<HttpExpect>) -> ApiResult<()> {
    let Some(e) = e else { return Ok(()) };
    if let Some(status) = &e.status {
        if status.is_empty() || status.len() > 32 {
            return Err(ApiError::invalid_field(
                "options.expect.status",
                "give 1 to 32 statuses, e.g. [\"2xx\", \"301\"]",
            ));
        }
        for (i, s) in status.iter().enumerate() {
            if !valid_status_entry(s) {
                return Err(ApiError::invalid_field(
                    &format!("options.expect.status[{i}]"),
                    format!("'{s}' is neither a status code (100-599) nor a class (1xx-5xx)"),
                ));
            }
        }
    }
    text("options.expect.body_contains", &e.body_contains)?;
    for (field, p) in [
        ("options.expect.body_regex", &e.body_regex),
        ("options.expect.body_not_regex", &e.body_not_regex),
    ] {
        if let Some(p) = p {
            pattern(field, p)?;
        }
    }
    if let Some(versions) = &e.versions {
        if versions.is_empty()
            || versions
                .iter()
                .any(|v| !HTTP_VERSIONS.contains(&v.as_str()))
        {
            return Err(ApiError::invalid_field(
                "options.expect.versions",
                format!("give one or more of {}", HTTP_VERSIONS.join(", ")),
            ));
        }
    }
    for (which, headers) in [("header", &e.header), ("header_not", &e.header_not)] {
        let Some(headers) = headers else { continue };
        if headers.len() > 32 {
            return Err(ApiError::invalid_field(
                &format!("options.expect.{which}"),
                "at most 32 headers",
            ));
        }
        for (name, p) in headers {
            let field = format!("options.expect.{which}.{name}");
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ApiError::invalid_field(
                    &field,
                    format!("'{name}' is not a header name"),
                ));
            }
            pattern(&field, p)?;
        }
    }
    limit(
        "options.expect.cert_min_days",
        e.cert_min_days.map(|d| d as f64),
        EXPECT_CERT_MIN_DAYS,
    )?;
    limit(
        "options.expect.max_total_ms",
        e.max_total_ms,
        EXPECT_TOTAL_MS,
    )
}

fn expect_dns(e: &Option<DnsExpect>) -> ApiResult<()> {
    let Some(e) = e else { return Ok(()) };
    if let Some(r) = &e.rcode {
        if !RCODES.iter().any(|c| c.eq_ignore_ascii_case(r)) {
            return Err(ApiError::invalid_field(
                "options.expect.rcode",
                format!("rcode must be one of {}", RCODES.join(", ")),
            ));
        }
    }
    text("options.expect.answer_contains", &e.answer_contains)?;
    limit(
        "options.expect.min_answers",
        e.min_answers.map(f64::from),
        EXPECT_MIN_ANSWERS,
    )
}

/// The options `traceroute` and `mtr` share.
fn trace_common(port: Option<u16>, max_hops: u8, timeout_ms: u32) -> ApiResult<()> {
    if let Some(p) = port {
        within("options.port", p.into(), PORT)?;
    }
    within("options.max_hops", max_hops.into(), TRACE_MAX_HOPS)?;
    within("options.timeout_ms", timeout_ms.into(), TRACE_TIMEOUT_MS)
}

/// A host name or IP literal as typed for ping and tcp targets.
fn validate_host(host: &str) -> ApiResult<()> {
    let h = host.trim_end_matches('.');
    let bad = || ApiError::invalid_field("target", "target must be a host name or an IP address");
    if h.is_empty() || h.len() > 253 {
        return Err(bad());
    }
    let inner = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    if parse_ip_loose(inner).is_some() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
    };
    if !h.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(())
}

fn forbidden(msg: String) -> ApiError {
    ApiError::forbidden_target("target", msg)
}

/// Checks a check's target and options (ranges, expectations, the target policy); the
/// normalised target.
pub fn check(target: &str, spec: &CheckSpec, policy: &Policy) -> ApiResult<String> {
    let target = target.trim().to_string();
    if target.is_empty() {
        return Err(ApiError::invalid_field("target", "target is required"));
    }
    match spec {
        CheckSpec::Ping(o) => {
            within("options.count", o.count.into(), PING_COUNT)?;
            within(
                "options.interval_ms",
                o.interval_ms.into(),
                PING_INTERVAL_MS,
            )?;
            within("options.timeout_ms", o.timeout_ms.into(), PING_TIMEOUT_MS)?;
            expect_ping(&o.expect)?;
            validate_host(&target)?;
            policy.check_host(&target).map_err(forbidden)?;
        }
        CheckSpec::Tcp(o) => {
            within("options.port", o.port.into(), PORT)?;
            within("options.timeout_ms", o.timeout_ms.into(), TCP_TIMEOUT_MS)?;
            expect_tcp(&o.expect)?;
            validate_host(&target)?;
            policy.check_host(&target).map_err(forbidden)?;
        }
        CheckSpec::Http(o) => {
            within("options.timeout_ms", o.timeout_ms.into(), HTTP_TIMEOUT_MS)?;
            if o.headers.len() > 32 {
                return Err(ApiError::invalid_field(
                    "options.headers",
                    "at most 32 headers",
                ));
            }
            for (k, v) in &o.headers {
                if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || hyper::header::HeaderValue::from_str(v).is_err()
                {
                    return Err(ApiError::invalid_field(
                        "options.headers",
                        format!("invalid header '{k}'"),
                    ));
                }
            }
            if o.body.as_ref().is_some_and(|b| b.len() > MAX_HTTP_BODY) {
                return Err(ApiError::invalid_field(
                    "options.body",
                    format!("the body is at most {} KiB", MAX_HTTP_BODY / 1024),
                ));
            }
            let url = reqwest::Url::parse(&target).map_err(|e| {
                ApiError::invalid_field("target", format!("target must be an http(s) URL: {e}"))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ApiError::invalid_field(
                    "target",
                    "target must start with http:// or https://",
                ));
            }
            let host = url
                .host_str()
                .ok_or_else(|| ApiError::invalid_field("target", "the URL has no host"))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(ApiError::invalid_field(
                    "target",
                    "credentials in the URL are not allowed",
                ));
            }
            expect_http(&o.expect)?;
            policy.check_host(host).map_err(forbidden)?;
        }
        CheckSpec::Dns(o) => {
            within("options.timeout_ms", o.timeout_ms.into(), DNS_TIMEOUT_MS)?;
            expect_dns(&o.expect)?;
            let reverse = (o.record_type == RecordType::Ptr)
                .then(|| crate::policy::reverse_lookup_address(&target))
                .flatten();
            match reverse {
                Some(ip) => policy.check(ip).map_err(|r| forbidden(r.to_string()))?,
                None => validate_host(&target)?,
            }
            if let Some(r) = &o.resolver {
                let sa = r
                    .parse::<std::net::SocketAddr>()
                    .ok()
                    .or_else(|| parse_ip_loose(r).map(|ip| std::net::SocketAddr::new(ip, 53)));
                let sa = sa.ok_or_else(|| {
                    ApiError::invalid_field("options.resolver", "resolver must be ip or ip:port")
                })?;
                policy
                    .check(sa.ip())
                    .map_err(|r| ApiError::forbidden_target("options.resolver", r.to_string()))?;
            }
        }
        CheckSpec::Traceroute(o) => {
            trace_common(o.port, o.max_hops, o.timeout_ms)?;
            validate_host(&target)?;
            policy.check_host(&target).map_err(forbidden)?;
        }
        CheckSpec::Mtr(o) => {
            trace_common(o.port, o.max_hops, o.timeout_ms)?;
            within("options.packets", o.packets.into(), MTR_PACKETS)?;
            within("options.interval_ms", o.interval_ms.into(), MTR_INTERVAL)?;
            validate_host(&target)?;
            policy.check_host(&target).map_err(forbidden)?;
        }
    }
    Ok(target)
}
