//! How the terminal client prints a result: a status word (coloured on a terminal), one line of
//! facts, and a check's settings in a few words.

use serde_json::Value;

use netcheck_proto::check::{CheckSpec, IpVersion};
use netcheck_proto::trace::TraceProtocol;

pub use super::hops::path_report;

pub struct Paint(pub bool);

impl Paint {
    pub fn status(&self, s: &str) -> String {
        let code = match s {
            "ok" => "32",
            "failed" => "31",
            "timeout" => "33",
            _ => "90",
        };
        if self.0 {
            format!("\x1b[{code}m{s:<8}\x1b[0m")
        } else {
            format!("{s:<8}")
        }
    }
}

fn f(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{x:.2} ms"))
        .unwrap_or_else(|| "—".into())
}

/// One line of facts for a result.
pub fn describe(kind: &str, r: &Value) -> String {
    let facts = match kind {
        "ping" => format!(
            "{}/{} replies, loss {:.0}%, rtt min/avg/max {}/{}/{}",
            r["received"],
            r["sent"],
            r["loss_pct"].as_f64().unwrap_or(100.0),
            f(&r["rtt_ms"]["min"]),
            f(&r["rtt_ms"]["avg"]),
            f(&r["rtt_ms"]["max"])
        ),
        "tcp" if r["connected"] == true => format!("connected in {}", f(&r["connect_ms"])),
        "http" if r["status_code"].is_u64() => format!(
            "HTTP {} {} total {}{}",
            r["status_code"],
            r["http_version"].as_str().unwrap_or(""),
            f(&r["timings_ms"]["total"]),
            r["tls"]["days_left"]
                .as_i64()
                .map(|d| format!(", cert {d} days left"))
                .unwrap_or_default()
        ),
        "dns" => format!(
            "{} {}",
            r["rcode"].as_str().unwrap_or("no answer"),
            r["answers"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|x| x["value"].as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        "traceroute" | "mtr" => format!(
            "{} in {} hops{}",
            if r["reached"] == true {
                "reached"
            } else {
                "not reached"
            },
            r["hops"].as_array().map(|h| h.len()).unwrap_or(0),
            path_report(kind, r)
        ),
        _ => String::new(),
    };
    match r["error"]["message"].as_str() {
        Some(e) if facts.is_empty() => e.to_string(),
        Some(e) => format!("{facts} ({e})"),
        None => facts,
    }
}

/// A check's settings in a few words, as the UI shows them: "port 8080", "3 packets",
/// "MX via 1.1.1.1", so two checks of one target read differently.
pub fn settings_line(spec: &CheckSpec) -> String {
    let trace = |out: &mut Vec<String>, protocol: TraceProtocol, port: Option<u16>, hops: u8| {
        out.push(match port {
            Some(p) => format!("{} port {p}", protocol.as_str()),
            None => protocol.as_str().to_string(),
        });
        out.push(format!("max {hops} hops"));
    };
    let mut out = Vec::new();
    let (ip_version, expect) = match spec {
        CheckSpec::Ping(o) => {
            let n = o.count;
            out.push(format!("{n} packet{}", if n == 1 { "" } else { "s" }));
            (o.ip_version, field_names(&o.expect))
        }
        CheckSpec::Tcp(o) => {
            out.push(format!("port {}", o.port));
            (o.ip_version, field_names(&o.expect))
        }
        CheckSpec::Http(o) => {
            out.push(o.method.as_str().to_string());
            (o.ip_version, field_names(&o.expect))
        }
        CheckSpec::Dns(o) => {
            out.push(format!(
                "{} via {}",
                serde_json::to_value(o.record_type)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                o.resolver.as_deref().unwrap_or("the system resolver")
            ));
            (None, field_names(&o.expect))
        }
        CheckSpec::Traceroute(o) => {
            trace(&mut out, o.protocol, o.port, o.max_hops);
            (o.ip_version, field_names(&o.expect))
        }
        CheckSpec::Mtr(o) => {
            trace(&mut out, o.protocol, o.port, o.max_hops);
            out.push(format!("{} packets per hop", o.packets));
            out.push(format!("{} s apart", o.interval_ms as f64 / 1000.0));
            (o.ip_version, field_names(&o.expect))
        }
    };
    if let Some(v) = ip_version {
        out.push(match v {
            IpVersion::V4 => "IPv4".to_string(),
            IpVersion::V6 => "IPv6".to_string(),
        });
    }
    if !expect.is_empty() {
        out.push(format!("expects {}", expect.join(", ")));
    }
    out.join(" · ")
}

/// The names of the fields set in an expectation, as the API spells them (its serde names;
/// unset ones are left out when serialised).
fn field_names<T: serde::Serialize>(expect: &Option<T>) -> Vec<String> {
    match expect.as_ref().map(serde_json::to_value) {
        Some(Ok(Value::Object(fields))) => fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcheck_proto::check::{DnsOptions, PingOptions, RecordType};
    use netcheck_proto::expect::PingExpect;
    use netcheck_proto::trace::MtrOptions;

    #[test]
    fn settings_line_names_what_tells_checks_apart() {
        let ping = CheckSpec::Ping(PingOptions {
            count: 1,
            ip_version: Some(IpVersion::V6),
            expect: Some(PingExpect {
                max_loss_pct: Some(10.0),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            settings_line(&ping),
            "1 packet · IPv6 · expects max_loss_pct"
        );
        let dns = CheckSpec::Dns(DnsOptions {
            record_type: RecordType::Mx,
            resolver: Some("1.1.1.1".into()),
            ..Default::default()
        });
        assert_eq!(settings_line(&dns), "MX via 1.1.1.1");
        let mtr = CheckSpec::Mtr(MtrOptions {
            protocol: TraceProtocol::Tcp,
            port: Some(443),
            max_hops: 20,
            packets: 5,
            interval_ms: 500,
            ..Default::default()
        });
        assert_eq!(
            settings_line(&mtr),
            "tcp port 443 · max 20 hops · 5 packets per hop · 0.5 s apart"
        );
    }
}
