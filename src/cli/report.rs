//! How the terminal client prints a result: a status word (coloured on a terminal), one line of
//! facts, and a check's settings in a few words.

use serde_json::Value;

use netcheck_proto::check::CheckSpec;

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
    let kind = spec.check_type().as_str();
    let options = &spec.options_json().unwrap_or_default();
    let mut out = Vec::new();
    match kind {
        "ping" => {
            if let Some(n) = options["count"].as_u64() {
                out.push(format!("{n} packet{}", if n == 1 { "" } else { "s" }));
            }
        }
        "tcp" => {
            if let Some(p) = options["port"].as_u64() {
                out.push(format!("port {p}"));
            }
        }
        "http" => out.push(options["method"].as_str().unwrap_or("GET").to_string()),
        "dns" => out.push(format!(
            "{} via {}",
            options["record_type"].as_str().unwrap_or("A"),
            options["resolver"]
                .as_str()
                .unwrap_or("the system resolver")
        )),
        "traceroute" | "mtr" => {
            let protocol = options["protocol"].as_str().unwrap_or("icmp");
            out.push(match options["port"].as_u64() {
                Some(p) => format!("{protocol} port {p}"),
                None => protocol.to_string(),
            });
            if let Some(n) = options["max_hops"].as_u64() {
                out.push(format!("max {n} hops"));
            }
            if let Some(n) = options["packets"].as_u64() {
                out.push(format!("{n} packets per hop"));
            }
            if let Some(ms) = options["interval_ms"].as_u64() {
                out.push(format!("{} s apart", ms as f64 / 1000.0));
            }
        }
        _ => {}
    }
    if let Some(v) = options["ip_version"].as_u64() {
        out.push(format!("IPv{v}"));
    }
    if let Some(expect) = options["expect"].as_object().filter(|e| !e.is_empty()) {
        let keys: Vec<&str> = expect.keys().map(String::as_str).collect();
        out.push(format!("expects {}", keys.join(", ")));
    }
    out.join(" · ")
}
