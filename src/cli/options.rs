//! The command line's check options (one flag per API option, expectations included) and
//! agent selection, shared by `netcheck check` and `netcheck monitor add`.

use clap::{Args, Subcommand};
use serde_json::json;

use netcheck_proto::api::{AgentSelection, LocationFilter};
use netcheck_proto::check::{
    CheckSpec, DnsOptions, DnsProtocol, HttpMethod, HttpOptions, HttpVersion, IpVersion,
    PingOptions, TcpOptions,
};
use netcheck_proto::expect::{DnsExpect, HttpExpect, PingExpect, TcpExpect, TraceExpect};
use netcheck_proto::limits::*;
use netcheck_proto::trace::{MtrOptions, TraceProtocol, TracerouteOptions};

/// A flag's parser for a small integer option: clap refuses what the API would.
fn small(l: Limit) -> clap::builder::RangedI64ValueParser<u8> {
    clap::value_parser!(u8).range(l.min as i64..=l.max as i64)
}

/// A flag's parser for a millisecond option.
fn ms(l: Limit) -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(l.min as i64..=l.max as i64)
}

#[derive(Debug, Subcommand, Clone)]
pub enum CheckKind {
    /// ICMP echo.
    Ping(PingArgs),
    /// TCP connect.
    Tcp(TcpArgs),
    /// HTTP(S) request.
    Http(HttpArgs),
    /// DNS query.
    Dns(DnsArgs),
    /// The path to the target, hop by hop.
    Traceroute(TraceArgs),
    /// The path with loss and round-trip statistics per hop (printed like `mtr --report`).
    Mtr(MtrArgs),
}

fn trace_protocol(s: &str) -> Result<TraceProtocol, String> {
    match s {
        "icmp" => Ok(TraceProtocol::Icmp),
        "udp" => Ok(TraceProtocol::Udp),
        "tcp" => Ok(TraceProtocol::Tcp),
        _ => Err("icmp, udp or tcp".into()),
    }
}

#[derive(Debug, Args, Clone)]
pub struct TraceArgs {
    pub target: String,
    /// icmp (echo), udp (the target's port-unreachable ends the trace) or tcp (SYN).
    #[arg(long, default_value = "icmp", value_parser = trace_protocol)]
    pub protocol: TraceProtocol,
    /// Destination port for udp (default 33434 and up) and tcp (default 80).
    #[arg(long)]
    pub port: Option<u16>,
    /// Highest TTL tried.
    #[arg(long, default_value_t = TRACE_MAX_HOPS.default_u8(), value_parser = small(TRACE_MAX_HOPS))]
    pub max_hops: u8,
    /// Milliseconds to wait for the answers of one round.
    #[arg(long, default_value_t = TRACE_TIMEOUT_MS.default_u32(), value_parser = ms(TRACE_TIMEOUT_MS))]
    pub timeout_ms: u32,
    /// Use only IPv4 or only IPv6.
    #[arg(long, value_name = "4|6", value_parser = ip_version_arg)]
    pub ip_version: Option<u8>,
    /// Fail unless the target answers (true) or unless it does not (false).
    #[arg(long)]
    pub expect_reached: Option<bool>,
}

impl TraceArgs {
    fn options(&self) -> TracerouteOptions {
        TracerouteOptions {
            protocol: self.protocol,
            port: self.port,
            max_hops: self.max_hops,
            timeout_ms: self.timeout_ms,
            ip_version: ip_version(self.ip_version),
            expect: some_if(TraceExpect {
                reached: self.expect_reached,
            }),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct MtrArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Probes per hop.
    #[arg(long, default_value_t = MTR_PACKETS.default_u8(), value_parser = small(MTR_PACKETS))]
    pub packets: u8,
    /// Milliseconds between rounds, as mtr's -i; routers answer about one a second.
    #[arg(long, default_value_t = MTR_INTERVAL.default_u32(), value_parser = ms(MTR_INTERVAL))]
    pub interval_ms: u32,
}

impl MtrArgs {
    fn options(&self) -> MtrOptions {
        let t = self.trace.options();
        MtrOptions {
            protocol: t.protocol,
            port: t.port,
            max_hops: t.max_hops,
            timeout_ms: t.timeout_ms,
            packets: self.packets,
            interval_ms: self.interval_ms,
            ip_version: t.ip_version,
            expect: t.expect,
        }
    }
}

fn ip_version_arg(s: &str) -> Result<u8, String> {
    match s {
        "4" => Ok(4),
        "6" => Ok(6),
        _ => Err("4 or 6".into()),
    }
}

fn ip_version(v: Option<u8>) -> Option<IpVersion> {
    match v {
        Some(4) => Some(IpVersion::V4),
        Some(6) => Some(IpVersion::V6),
        _ => None,
    }
}

/// `Some(x)` when any expectation is given.
fn some_if<T: Default + PartialEq>(x: T) -> Option<T> {
    (x != T::default()).then_some(x)
}

#[derive(Debug, Args, Clone)]
pub struct PingArgs {
    pub target: String,
    /// Echo requests to send.
    #[arg(long, default_value_t = PING_COUNT.default_u8(), value_parser = small(PING_COUNT))]
    pub count: u8,
    /// Milliseconds between requests.
    #[arg(long, default_value_t = PING_INTERVAL_MS.default_u32(), value_parser = ms(PING_INTERVAL_MS))]
    pub interval_ms: u32,
    /// Milliseconds to wait for each reply.
    #[arg(long, default_value_t = PING_TIMEOUT_MS.default_u32(), value_parser = ms(PING_TIMEOUT_MS))]
    pub timeout_ms: u32,
    /// Use only IPv4 or only IPv6.
    #[arg(long, value_name = "4|6", value_parser = ip_version_arg)]
    pub ip_version: Option<u8>,
    /// Fail when more than this percentage of packets is lost.
    #[arg(long)]
    pub expect_max_loss_pct: Option<f64>,
    /// Fail when the average round trip is slower (ms).
    #[arg(long)]
    pub expect_max_avg_rtt_ms: Option<f64>,
}

impl PingArgs {
    fn options(&self) -> PingOptions {
        PingOptions {
            count: self.count,
            interval_ms: self.interval_ms,
            timeout_ms: self.timeout_ms,
            ip_version: ip_version(self.ip_version),
            expect: some_if(PingExpect {
                max_loss_pct: self.expect_max_loss_pct,
                max_avg_rtt_ms: self.expect_max_avg_rtt_ms,
            }),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct TcpArgs {
    pub target: String,
    #[arg(long)]
    pub port: u16,
    /// Milliseconds to wait for the connection.
    #[arg(long, default_value_t = TCP_TIMEOUT_MS.default_u32(), value_parser = ms(TCP_TIMEOUT_MS))]
    pub timeout_ms: u32,
    /// Use only IPv4 or only IPv6.
    #[arg(long, value_name = "4|6", value_parser = ip_version_arg)]
    pub ip_version: Option<u8>,
    /// Fail when connecting takes longer (ms).
    #[arg(long)]
    pub expect_max_connect_ms: Option<f64>,
}

impl TcpArgs {
    fn options(&self) -> TcpOptions {
        TcpOptions {
            port: self.port,
            timeout_ms: self.timeout_ms,
            ip_version: ip_version(self.ip_version),
            expect: some_if(TcpExpect {
                max_connect_ms: self.expect_max_connect_ms,
            }),
        }
    }
}

/// `NAME: value` (a request header) or `NAME=regex` (an expected header).
fn pair(s: &str, sep: char) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(sep)
        .ok_or_else(|| format!("expected NAME{sep}VALUE, got '{s}'"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[derive(Debug, Args, Clone)]
pub struct HttpArgs {
    pub url: String,
    #[arg(long, default_value = "GET", value_parser = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"], ignore_case = true)]
    pub method: String,
    /// A request header, `NAME: value` (repeat for more).
    #[arg(long = "header", visible_alias = "headers", value_name = "NAME: VALUE", value_parser = |s: &str| pair(s, ':'))]
    pub headers: Vec<(String, String)>,
    /// The request body (at most 16 KiB); set its `Content-Type` with `--header`.
    #[arg(long)]
    pub body: Option<String>,
    /// Speak only this HTTP version (default: what the server offers over TLS, 1.1 in clear).
    #[arg(long = "http-version", visible_alias = "version", value_name = "http1.1|http2", value_parser = ["http1.1", "http2"])]
    pub version: Option<String>,
    /// Follow redirects (up to 10).
    #[arg(long)]
    pub follow_redirects: bool,
    /// Milliseconds for the whole exchange.
    #[arg(long, default_value_t = HTTP_TIMEOUT_MS.default_u32(), value_parser = ms(HTTP_TIMEOUT_MS))]
    pub timeout_ms: u32,
    /// Use only IPv4 or only IPv6.
    #[arg(long, value_name = "4|6", value_parser = ip_version_arg)]
    pub ip_version: Option<u8>,
    /// Verify the server's certificate (`--verify-tls false` reports it without judging it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub verify_tls: bool,
    /// Accepted status codes or classes, e.g. `2xx`, `301` (repeat or separate with commas).
    /// Without it, 2xx and 3xx are ok and 4xx/5xx fail.
    #[arg(long, value_delimiter = ',')]
    pub expect_status: Vec<String>,
    /// Text the body (its first 1 MiB) must contain.
    #[arg(long)]
    pub expect_body_contains: Option<String>,
    /// A regular expression the body (its first 1 MiB) must match.
    #[arg(long)]
    pub expect_body_regex: Option<String>,
    /// A response header that must match a regular expression, `NAME=regex` (repeat for more).
    #[arg(long, value_name = "NAME=REGEX", value_parser = |s: &str| pair(s, '='))]
    pub expect_header: Vec<(String, String)>,
    /// Fail when the certificate expires in fewer days.
    #[arg(long)]
    pub expect_cert_min_days: Option<i64>,
    /// Fail when the exchange takes longer (ms).
    #[arg(long)]
    pub expect_max_total_ms: Option<f64>,
    /// A regular expression the body (its first 1 MiB) must not match.
    #[arg(long)]
    pub expect_body_not_regex: Option<String>,
    /// A response header that must not match a regular expression, `NAME=regex` (a missing
    /// header passes; repeat for more).
    #[arg(long, value_name = "NAME=REGEX", value_parser = |s: &str| pair(s, '='))]
    pub expect_header_not: Vec<(String, String)>,
    /// The final answer must come over TLS (`true`) or in clear (`false`).
    #[arg(long)]
    pub expect_tls: Option<bool>,
    /// Accepted HTTP versions, e.g. `HTTP/1.1,HTTP/2.0`.
    #[arg(long, value_delimiter = ',')]
    pub expect_versions: Vec<String>,
}

impl HttpArgs {
    fn options(&self) -> HttpOptions {
        HttpOptions {
            method: HttpMethod::ALL
                .into_iter()
                .find(|m| m.as_str().eq_ignore_ascii_case(&self.method))
                .unwrap_or_default(),
            headers: self.headers.iter().cloned().collect(),
            body: self.body.clone(),
            version: match self.version.as_deref() {
                Some("http2") => Some(HttpVersion::Http2),
                Some(_) => Some(HttpVersion::Http11),
                None => None,
            },
            follow_redirects: self.follow_redirects,
            timeout_ms: self.timeout_ms,
            ip_version: ip_version(self.ip_version),
            verify_tls: self.verify_tls,
            expect: some_if(HttpExpect {
                status: (!self.expect_status.is_empty()).then(|| self.expect_status.clone()),
                body_contains: self.expect_body_contains.clone(),
                body_regex: self.expect_body_regex.clone(),
                header: (!self.expect_header.is_empty())
                    .then(|| self.expect_header.iter().cloned().collect()),
                cert_min_days: self.expect_cert_min_days,
                max_total_ms: self.expect_max_total_ms,
                body_not_regex: self.expect_body_not_regex.clone(),
                header_not: (!self.expect_header_not.is_empty())
                    .then(|| self.expect_header_not.iter().cloned().collect()),
                tls: self.expect_tls,
                versions: (!self.expect_versions.is_empty()).then(|| self.expect_versions.clone()),
            }),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct DnsArgs {
    pub name: String,
    /// A, AAAA, CNAME, MX, NS, TXT, SOA, PTR, SRV or CAA.
    #[arg(long = "type", visible_alias = "record-type", default_value = "A")]
    pub record_type: String,
    /// ip or ip:port; default: each agent's system resolver.
    #[arg(long)]
    pub resolver: Option<String>,
    /// udp or tcp.
    #[arg(long, default_value = "udp", value_parser = ["udp", "tcp"])]
    pub protocol: String,
    /// Milliseconds to wait for the answer.
    #[arg(long, default_value_t = DNS_TIMEOUT_MS.default_u32(), value_parser = ms(DNS_TIMEOUT_MS))]
    pub timeout_ms: u32,
    /// The response code the answer must carry, e.g. NOERROR or NXDOMAIN.
    #[arg(long)]
    pub expect_rcode: Option<String>,
    /// Text one of the answers must contain.
    #[arg(long)]
    pub expect_answer_contains: Option<String>,
    /// Fewest acceptable answers.
    #[arg(long)]
    pub expect_min_answers: Option<u32>,
}

impl DnsArgs {
    fn options(&self) -> anyhow::Result<DnsOptions> {
        Ok(DnsOptions {
            record_type: serde_json::from_value(json!(self.record_type.to_uppercase()))
                .map_err(|_| anyhow::anyhow!("unknown record type '{}'", self.record_type))?,
            resolver: self.resolver.clone(),
            protocol: if self.protocol == "tcp" {
                DnsProtocol::Tcp
            } else {
                DnsProtocol::Udp
            },
            timeout_ms: self.timeout_ms,
            expect: some_if(DnsExpect {
                rcode: self.expect_rcode.clone(),
                answer_contains: self.expect_answer_contains.clone(),
                min_answers: self.expect_min_answers,
            }),
        })
    }
}

#[derive(Debug, Args, Clone)]
pub struct SelectionArgs {
    /// Run only on this agent (name or id; repeat for more). Default: every online agent.
    #[arg(long = "agent", value_name = "NAME|ID", global = true)]
    pub agents: Vec<String>,
    /// Run from agents in a place, network or with a label: `key:value` pairs joined by commas
    /// (keys country, region, city, asn, label, limit), e.g. `country:DE`, `label:dc1`,
    /// `asn:3320,limit:2`. Repeat for more places.
    #[arg(long = "from", value_name = "PLACE", global = true)]
    pub from: Vec<LocationFilter>,
    /// Run on the agents of an earlier check.
    #[arg(long = "same-as", value_name = "CHECK_ID", global = true)]
    pub same_as: Option<uuid::Uuid>,
    /// At most this many agents, spread over countries and networks. With --from, each place
    /// without its own limit may contribute up to this many.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500), global = true)]
    pub limit: Option<u32>,
}

impl CheckKind {
    /// The check's type, target and options as the API takes them.
    pub fn definition(&self) -> anyhow::Result<(CheckSpec, String)> {
        Ok(match self {
            CheckKind::Ping(a) => (CheckSpec::Ping(a.options()), a.target.clone()),
            CheckKind::Tcp(a) => (CheckSpec::Tcp(a.options()), a.target.clone()),
            CheckKind::Http(a) => (CheckSpec::Http(a.options()), a.url.clone()),
            CheckKind::Dns(a) => (CheckSpec::Dns(a.options()?), a.name.clone()),
            CheckKind::Traceroute(a) => (CheckSpec::Traceroute(a.options()), a.target.clone()),
            CheckKind::Mtr(a) => (CheckSpec::Mtr(a.options()), a.trace.target.clone()),
        })
    }
}

impl SelectionArgs {
    /// The agents asked for on the command line.
    pub fn selection(&self) -> AgentSelection {
        let locations = (!self.from.is_empty()).then(|| {
            self.from
                .iter()
                .cloned()
                .map(|mut l| {
                    // `--from A --from B --limit 3` reads as "up to 3 agents from A or B".
                    l.limit = l.limit.or(self.limit);
                    l
                })
                .collect()
        });
        AgentSelection {
            agents: (!self.agents.is_empty()).then(|| self.agents.clone()),
            locations,
            same_agents_as: self.same_as,
            limit: self.limit,
        }
    }
}
