//! blackbox_exporter modules: its own `blackbox.yml` format (`probe.modules_file`), and the
//! netcheck check each module runs. Every key is either mapped onto a check option or an
//! expectation, or refused when the file is loaded, naming the module and the key: a module
//! that would silently probe something else than blackbox_exporter does is worse than none.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use netcheck_proto::check::{
    CheckSpec, DnsOptions, DnsProtocol, HttpMethod, HttpOptions, IpVersion, PingOptions,
    RecordType, TcpOptions,
};
use netcheck_proto::expect::{DnsExpect, HttpExpect};

/// Keys a module section may hold that netcheck does not know, kept to be named in the error.
type Rest = BTreeMap<String, serde_yaml_ng::Value>;

#[derive(Debug, Clone, Deserialize)]
struct File {
    modules: BTreeMap<String, Module>,
    #[serde(flatten)]
    rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Module {
    pub prober: String,
    #[serde(default, with = "duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpModule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<AddressModule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<AddressModule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsModule>,
    #[serde(flatten, skip_serializing)]
    rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpModule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub valid_status_codes: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub valid_http_versions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fail_if_ssl: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fail_if_not_ssl: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fail_if_body_matches_regexp: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fail_if_body_not_matches_regexp: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fail_if_header_matches: Vec<HeaderMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_ip_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_protocol_fallback: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(flatten, skip_serializing)]
    rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_missing: bool,
    #[serde(flatten, skip_serializing)]
    rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TlsConfig {
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(flatten, skip_serializing)]
    rest: Rest,
}

/// The `tcp` and `icmp` sections: the keys netcheck takes of them are the same two.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AddressModule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_ip_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_protocol_fallback: Option<bool>,
    #[serde(flatten, skip_serializing)]
    rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DnsModule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_protocol: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub valid_rcodes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_ip_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_protocol_fallback: Option<bool>,
    #[serde(flatten, skip_serializing)]
    rest: Rest,
}

/// Prometheus durations (`5s`, `1m30s`, `500ms`).
mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("timeout {text:?}: {e}")))
    }
}

/// The modules a server offers, by name.
#[derive(Debug, Clone)]
pub struct Modules(BTreeMap<String, Module>);

/// blackbox_exporter 0.23's default modules (and its `dns_udp` example, asking
/// `example.com` A): what `/probe` offers without a modules file.
const BUILT_IN: &str = r#"
modules:
  http_2xx:
    prober: http
  http_post_2xx:
    prober: http
    http:
      method: POST
  tcp_connect:
    prober: tcp
  icmp:
    prober: icmp
  dns_udp:
    prober: dns
    dns:
      query_name: example.com
      query_type: A
"#;

impl Modules {
    pub fn built_in() -> Self {
        Self::parse(BUILT_IN).expect("the built-in modules are valid")
    }

    /// The modules of a blackbox.yml file, or why it cannot be used.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("probe.modules_file {}: {e}", path.display()))?;
        Self::parse(&text)
            .map_err(|e| anyhow::anyhow!("probe.modules_file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        refuse("", &file.rest)?;
        for (name, m) in &file.modules {
            m.validate().map_err(|e| format!("module {name:?}: {e}"))?;
        }
        Ok(Self(file.modules))
    }

    pub fn get(&self, name: &str) -> Option<&Module> {
        self.0.get(name)
    }
}

/// Fails naming the first key netcheck does not take (`at` is the section's path).
fn refuse(at: &str, rest: &Rest) -> Result<(), String> {
    match rest.keys().next() {
        None => Ok(()),
        Some(key) => Err(format!(
            "key `{at}{key}` is not one netcheck implements (see docs/prometheus.md for the keys it takes)"
        )),
    }
}

fn ip_protocol(
    at: &str,
    preferred: &Option<String>,
    fallback: Option<bool>,
) -> Result<Option<IpVersion>, String> {
    let preferred = match preferred.as_deref() {
        None | Some("") => None,
        Some("ip4" | "ipv4") => Some(IpVersion::V4),
        Some("ip6" | "ipv6") => Some(IpVersion::V6),
        Some(other) => {
            return Err(format!(
                "{at}.preferred_ip_protocol: {other:?} is neither ip4 nor ip6"
            ))
        }
    };
    // With a fallback (blackbox's default) either family will do; netcheck's agents take
    // the first address their resolver gives. Without one, only the preferred family.
    Ok(if fallback.unwrap_or(true) {
        None
    } else {
        preferred.or(Some(IpVersion::V6))
    })
}

/// Milliseconds a check may take given the time it has, within the type's allowed range:
/// the agent gives up a little before the scrape does, so its answer still arrives.
fn check_timeout(budget: Duration, max_ms: u32) -> u32 {
    let ms = budget.as_millis().saturating_sub(150) as u64;
    ms.clamp(100, max_ms as u64) as u32
}

impl Module {
    fn validate(&self) -> Result<(), String> {
        refuse("", &self.rest)?;
        let sections = [
            ("http", self.http.is_some()),
            ("tcp", self.tcp.is_some()),
            ("icmp", self.icmp.is_some()),
            ("dns", self.dns.is_some()),
        ];
        if !matches!(self.prober.as_str(), "http" | "tcp" | "icmp" | "dns") {
            return Err(format!(
                "prober {:?} is not one netcheck implements (http, tcp, icmp, dns)",
                self.prober
            ));
        }
        if let Some((other, _)) = sections
            .iter()
            .find(|(name, given)| *given && *name != self.prober)
        {
            return Err(format!(
                "a {} prober cannot take a `{other}` section",
                self.prober
            ));
        }
        // Every module must make a valid check: try one on a placeholder target.
        let placeholder = match self.prober.as_str() {
            "http" => "http://192.0.2.1/",
            "tcp" => "192.0.2.1:80",
            _ => "192.0.2.1",
        };
        self.check(placeholder, Duration::from_secs(5)).map(|_| ())
    }

    /// The check this module runs against `target` within `budget`: its target and spec.
    pub fn check(&self, target: &str, budget: Duration) -> Result<(String, CheckSpec), String> {
        let budget = self.timeout.map_or(budget, |t| t.min(budget));
        match self.prober.as_str() {
            "http" => http(self.http.clone().unwrap_or_default(), target, budget),
            "tcp" => {
                let m = self.tcp.clone().unwrap_or_default();
                refuse("tcp.", &m.rest)?;
                let (host, port) = host_port(target, None)?;
                Ok((
                    host,
                    CheckSpec::Tcp(TcpOptions {
                        port,
                        timeout_ms: check_timeout(budget, 30_000),
                        ip_version: ip_protocol(
                            "tcp",
                            &m.preferred_ip_protocol,
                            m.ip_protocol_fallback,
                        )?,
                        expect: None,
                    }),
                ))
            }
            "icmp" => {
                let m = self.icmp.clone().unwrap_or_default();
                refuse("icmp.", &m.rest)?;
                Ok((
                    target.to_string(),
                    CheckSpec::Ping(PingOptions {
                        count: 1,
                        interval_ms: 100,
                        timeout_ms: check_timeout(budget, 10_000),
                        ip_version: ip_protocol(
                            "icmp",
                            &m.preferred_ip_protocol,
                            m.ip_protocol_fallback,
                        )?,
                        expect: None,
                    }),
                ))
            }
            "dns" => dns(self.dns.clone().unwrap_or_default(), target, budget),
            other => Err(format!("prober {other:?} is not implemented")),
        }
    }
}

/// `host:port` (IPv6 in brackets), or a host alone when `default_port` is given.
fn host_port(target: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let bad = || format!("target {target:?} is not host:port");
    if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), p.parse().map_err(|_| bad())?)),
            None if after.is_empty() => Ok((host.to_string(), default_port.ok_or_else(bad)?)),
            None => Err(bad()),
        };
    }
    match target.rsplit_once(':') {
        Some((host, p)) if !host.contains(':') => {
            Ok((host.to_string(), p.parse().map_err(|_| bad())?))
        }
        // A bare IPv6 address, or a host without a port.
        _ => Ok((target.to_string(), default_port.ok_or_else(bad)?)),
    }
}

fn http(m: HttpModule, target: &str, budget: Duration) -> Result<(String, CheckSpec), String> {
    refuse("http.", &m.rest)?;
    let tls = m.tls_config.clone().unwrap_or_default();
    refuse("http.tls_config.", &tls.rest)?;
    for h in m
        .fail_if_header_matches
        .iter()
        .chain(&m.fail_if_header_not_matches)
    {
        refuse("http.fail_if_header_matches[].", &h.rest)?;
    }
    if m.fail_if_header_not_matches.iter().any(|h| h.allow_missing) {
        return Err(
            "http.fail_if_header_not_matches: allow_missing is not one netcheck implements".into(),
        );
    }
    let method = match m.method.as_deref() {
        None | Some("") => HttpMethod::Get,
        Some(name) => HttpMethod::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("http.method: {name:?} is not one netcheck sends"))?,
    };
    let one = |list: &[String], key: &str| -> Result<Option<String>, String> {
        match list {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            // Any of several patterns matching is one pattern of alternatives.
            many if key == "fail_if_body_matches_regexp" => Ok(Some(
                many.iter()
                    .map(|p| format!("(?:{p})"))
                    .collect::<Vec<_>>()
                    .join("|"),
            )),
            _ => Err(format!(
                "http.{key}: netcheck takes one pattern here (every one must match; join them into one)"
            )),
        }
    };
    let per_header = |list: &[HeaderMatch], key: &str| -> Result<_, String> {
        let mut map = BTreeMap::new();
        for h in list {
            if map.insert(h.header.clone(), h.regexp.clone()).is_some() {
                return Err(format!("http.{key}: one pattern per header ({})", h.header));
            }
        }
        Ok((!map.is_empty()).then_some(map))
    };
    let mut header = per_header(&m.fail_if_header_not_matches, "fail_if_header_not_matches")?;
    // blackbox fails a missing header in fail_if_header_matches too, unless allow_missing:
    // presence is a pattern that matches anything.
    for h in m.fail_if_header_matches.iter().filter(|h| !h.allow_missing) {
        header
            .get_or_insert_with(BTreeMap::new)
            .entry(h.header.clone())
            .or_insert_with(|| ".*".into());
    }
    let expect = HttpExpect {
        status: Some(if m.valid_status_codes.is_empty() {
            vec!["2xx".into()]
        } else {
            m.valid_status_codes.iter().map(u16::to_string).collect()
        }),
        body_regex: one(
            &m.fail_if_body_not_matches_regexp,
            "fail_if_body_not_matches_regexp",
        )?,
        body_not_regex: one(
            &m.fail_if_body_matches_regexp,
            "fail_if_body_matches_regexp",
        )?,
        header,
        header_not: per_header(&m.fail_if_header_matches, "fail_if_header_matches")?,
        tls: match (m.fail_if_ssl, m.fail_if_not_ssl) {
            (true, true) => return Err("http: fail_if_ssl and fail_if_not_ssl together".into()),
            (true, false) => Some(false),
            (false, true) => Some(true),
            (false, false) => None,
        },
        versions: (!m.valid_http_versions.is_empty()).then(|| {
            m.valid_http_versions
                .iter()
                // blackbox also writes HTTP/2 for HTTP/2.0.
                .map(|v| {
                    if v == "HTTP/2" {
                        "HTTP/2.0".into()
                    } else {
                        v.clone()
                    }
                })
                .collect()
        }),
        ..Default::default()
    };
    let url = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        format!("http://{target}")
    };
    Ok((
        url,
        CheckSpec::Http(HttpOptions {
            method,
            headers: m.headers.clone(),
            body: m.body.clone(),
            version: None,
            follow_redirects: m
                .follow_redirects
                .unwrap_or(!m.no_follow_redirects.unwrap_or(false)),
            timeout_ms: check_timeout(budget, 60_000),
            ip_version: ip_protocol("http", &m.preferred_ip_protocol, m.ip_protocol_fallback)?,
            verify_tls: !tls.insecure_skip_verify,
            expect: Some(expect),
        }),
    ))
}

fn dns(m: DnsModule, target: &str, budget: Duration) -> Result<(String, CheckSpec), String> {
    refuse("dns.", &m.rest)?;
    let name = m
        .query_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("query name must be set for DNS module")?;
    let record_type = match m.query_type.as_deref() {
        None | Some("") | Some("ANY") => {
            return Err(
                "dns.query_type: name a record type (netcheck does not ask ANY, which most servers refuse)".into(),
            )
        }
        Some(t) => serde_json::from_value::<RecordType>(serde_json::json!(t.to_uppercase()))
            .map_err(|_| format!("dns.query_type: {t:?} is not one netcheck asks"))?,
    };
    let protocol = match m.transport_protocol.as_deref() {
        None | Some("") | Some("udp") => DnsProtocol::Udp,
        Some("tcp") => DnsProtocol::Tcp,
        Some(other) => {
            return Err(format!(
                "dns.transport_protocol: {other:?} is not udp or tcp"
            ))
        }
    };
    let rcode = match m.valid_rcodes.as_slice() {
        [] => "NOERROR".to_string(),
        [one] => one.to_uppercase(),
        _ => return Err("dns.valid_rcodes: netcheck takes one response code here".into()),
    };
    // ip_protocol applies to reaching the server; a server given as an address has its family.
    ip_protocol("dns", &m.preferred_ip_protocol, m.ip_protocol_fallback)?;
    let (server, port) = host_port(target, Some(53))?;
    let resolver = if server.contains(':') {
        format!("[{server}]:{port}")
    } else {
        format!("{server}:{port}")
    };
    Ok((
        name,
        CheckSpec::Dns(DnsOptions {
            record_type,
            resolver: Some(resolver),
            protocol,
            timeout_ms: check_timeout(budget, 30_000),
            expect: Some(DnsExpect {
                rcode: Some(rcode),
                ..Default::default()
            }),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_modules_make_checks() {
        let m = Modules::built_in();
        for name in [
            "http_2xx",
            "http_post_2xx",
            "tcp_connect",
            "icmp",
            "dns_udp",
        ] {
            assert!(m.get(name).is_some(), "{name}");
        }
        let (t, spec) = m
            .get("tcp_connect")
            .unwrap()
            .check("[::1]:8080", Duration::from_secs(3))
            .unwrap();
        assert_eq!(t, "::1");
        assert!(matches!(
            spec,
            CheckSpec::Tcp(TcpOptions {
                port: 8080,
                timeout_ms: 2850,
                ..
            })
        ));
        let (t, spec) = m
            .get("dns_udp")
            .unwrap()
            .check("127.0.0.1:5353", Duration::from_secs(3))
            .unwrap();
        assert_eq!(t, "example.com");
        match spec {
            CheckSpec::Dns(o) => assert_eq!(o.resolver.as_deref(), Some("127.0.0.1:5353")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_and_unimplemented_keys_are_named() {
        let err = Modules::parse("modules:\n  web:\n    prober: http\n    http:\n      bogus: 1\n")
            .unwrap_err();
        assert!(
            err.contains("\"web\"") && err.contains("http.bogus"),
            "{err}"
        );
        let err = Modules::parse("modules:\n  g:\n    prober: grpc\n").unwrap_err();
        assert!(err.contains("grpc"), "{err}");
        let err = Modules::parse("modules:\n  d:\n    prober: dns\n    dns: {}\n").unwrap_err();
        assert!(err.contains("query name must be set"), "{err}");
    }
}
