//! A trace's hops as `traceroute` and `mtr --report` print them.

use serde_json::Value;

/// A trace's hops, one line each: `traceroute`'s `ttl address rtt rtt rtt` (`*` for no
/// answer) or `mtr --report`'s `ttl.|-- address Loss% Snt Last Avg Best Wrst StDev`.
pub fn path_report(kind: &str, r: &Value) -> String {
    let Some(hops) = r["hops"].as_array() else {
        return String::new();
    };
    let mut out = String::new();
    if kind == "mtr" {
        out.push_str(&format!(
            "\n      {:<4}{:<40}{:>6}{:>5}{:>7}{:>7}{:>7}{:>7}",
            "", "HOST", "Loss%", "Snt", "Avg", "Best", "Wrst", "StDev"
        ));
    }
    for h in hops {
        let addr = h["address"].as_str().unwrap_or("???");
        let line = if kind == "mtr" {
            let rtt = &h["rtt_ms"];
            let n = |k: &str| {
                rtt[k]
                    .as_f64()
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_else(|| "-".into())
            };
            format!(
                "{:>3}.|-- {:<40}{:>5.1}%{:>5}{:>7}{:>7}{:>7}{:>7}",
                h["ttl"],
                addr,
                h["loss_pct"].as_f64().unwrap_or(100.0),
                h["sent"],
                n("avg"),
                n("min"),
                n("max"),
                n("stdev")
            )
        } else {
            let rtts: Vec<String> = h["rtt_ms"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_f64())
                        .map(|v| format!("{v:.3} ms"))
                        .collect()
                })
                .unwrap_or_default();
            if h["address"].is_null() {
                format!("{:>3}  * * *", h["ttl"])
            } else {
                format!("{:>3}  {addr}  {}", h["ttl"], rtts.join("  "))
            }
        };
        out.push_str("\n      ");
        out.push_str(&line);
    }
    out
}
