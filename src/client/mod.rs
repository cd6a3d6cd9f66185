//! `netcheck check …` and `netcheck agents`: a terminal client of the HTTP API, for people
//! and scripts. Results print live, one line per agent, as they arrive.

pub mod monitors;
mod options;
pub mod sse;

pub use options::{CheckKind, DnsArgs, HttpArgs, PingArgs, SelectionArgs, TcpArgs};

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Base URL of the netcheck server.
    #[arg(long, env = "NETCHECK_SERVER_URL", global = true)]
    pub server: Option<String>,
    /// Personal API key (create one with POST /api/v1/auth/api-keys).
    #[arg(long, env = "NETCHECK_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Client settings file with `server` and `api_key` (default ~/.config/netcheck/client.toml).
    #[arg(long, env = "NETCHECK_CLIENT_CONFIG", global = true)]
    pub client_config: Option<PathBuf>,
    /// PEM file of a private CA that signed the server's https certificate.
    #[arg(long, env = "NETCHECK_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub kind: CheckKind,
    #[command(flatten)]
    pub agents: SelectionArgs,
    /// Make a share link (30 days, no login needed) once the check finished, and print it.
    #[arg(long, global = true)]
    pub share: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Which agents run a check (or a monitor's runs).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    api_key: Option<String>,
}

pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    key: String,
}

impl Client {
    pub(crate) fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let path = args.client_config.clone().or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/netcheck/client.toml"))
        });
        let file: FileConfig = match path {
            Some(p) if p.exists() => toml::from_str(&std::fs::read_to_string(&p)?)
                .with_context(|| format!("reading {}", p.display()))?,
            _ => FileConfig::default(),
        };
        let base = args
            .server
            .clone()
            .or(file.server)
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let Some(key) = args.api_key.clone().or(file.api_key) else {
            bail!("no API key: pass --api-key, set NETCHECK_API_KEY, or put api_key in ~/.config/netcheck/client.toml");
        };
        let http = crate::tls::trust_ca_file(reqwest::Client::builder(), args.ca_file.as_deref())?
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
        })
    }

    pub(crate) async fn call(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let resp = req
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            let msg = body["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            bail!("{status}: {msg}");
        }
        Ok(resp)
    }
}

pub(crate) struct Paint(pub(crate) bool);

impl Paint {
    pub(crate) fn status(&self, s: &str) -> String {
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

/// Runs a check and prints results live. Returns the process exit code: 0 when at least one
/// agent succeeded, 1 when the check failed everywhere.
/// A check's settings in a few words, as the UI shows them: "port 8080", "3 packets",
/// "MX via 1.1.1.1", so two checks of one target read differently.
pub fn settings_line(kind: &str, options: &Value) -> String {
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

pub async fn run_check(args: CheckArgs) -> anyhow::Result<u8> {
    let client = Client::new(&args.client)?;
    let (kind, target, options) = args.kind.definition()?;
    let mut body = json!({ "type": kind, "target": target, "options": options.clone() });
    args.agents.add_to(&mut body)?;
    let created: Value = client
        .call(
            client
                .http
                .post(format!("{}/api/v1/checks", client.base))
                .json(&body),
        )
        .await?
        .json()
        .await?;
    let id = created["id"]
        .as_str()
        .context("no check id in the answer")?
        .to_string();
    let paint = Paint(std::io::stdout().is_terminal() && !args.client.json);
    if !args.client.json {
        let settings = settings_line(kind, &options);
        println!(
            "{} {target}{} on {} agent(s) — {}/checks/{id}",
            kind.to_uppercase(),
            if settings.is_empty() {
                String::new()
            } else {
                format!(" ({settings})")
            },
            created["agents"],
            client.base
        );
    }
    let mut resp = client
        .call(
            client
                .http
                .get(format!("{}/api/v1/checks/{id}/events", client.base)),
        )
        .await?;
    let mut decoder = sse::Decoder::default();
    'outer: while let Some(chunk) = resp.chunk().await? {
        for event in decoder.push(&chunk) {
            match event.name.as_str() {
                "result" if !args.client.json => {
                    let r: Value = serde_json::from_str(&event.data)?;
                    let name = r["agent"]["name"].as_str().unwrap_or("?");
                    println!(
                        "  {name:<20} {} {}",
                        paint.status(r["status"].as_str().unwrap_or("?")),
                        describe(kind, &r)
                    );
                }
                "finished" => break 'outer,
                _ => {}
            }
        }
    }
    let check: Value = client
        .call(
            client
                .http
                .get(format!("{}/api/v1/checks/{id}", client.base)),
        )
        .await?
        .json()
        .await?;
    if args.client.json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    }
    if args.share {
        let link: Value = client
            .call(
                client
                    .http
                    .post(format!("{}/api/v1/checks/{id}/share", client.base))
                    .json(&json!({})),
            )
            .await?
            .json()
            .await?;
        let url = link["url"].as_str().unwrap_or_default();
        // With --json, stdout holds only the JSON document.
        if args.client.json {
            eprintln!("shared: {url}");
        } else {
            println!("shared: {url}");
        }
    }
    let any_ok = check["results"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["status"] == "ok"));
    Ok(if any_ok { 0 } else { 1 })
}

/// `netcheck agents`: the agents and their status.
pub async fn list_agents(args: ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(&args)?;
    let agents: Vec<Value> = client
        .call(client.http.get(format!("{}/api/v1/agents", client.base)))
        .await?
        .json()
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&agents)?);
        return Ok(());
    }
    let paint = Paint(std::io::stdout().is_terminal());
    println!(
        "{:<20} {:<8} {:<14} {:<3} {:<16} {:<28} {:<25} LABELS",
        "NAME", "STATUS", "REGION", "CC", "CITY", "NETWORK", "LAST SEEN"
    );
    let text = |v: &Value| v.as_str().unwrap_or("—").to_string();
    for a in agents {
        let status = a["status"].as_str().unwrap_or("?");
        let loc = &a["location"];
        let network = match (loc["asn"].as_u64(), loc["network"].as_str()) {
            (Some(asn), Some(name)) => format!("AS{asn} {name}"),
            (Some(asn), None) => format!("AS{asn}"),
            (None, Some(name)) => name.to_string(),
            (None, None) => "—".into(),
        };
        let labels = a["labels"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        println!(
            "{:<20} {} {:<14} {:<3} {:<16} {:<28} {:<25} {}",
            text(&a["name"]),
            paint
                .status(if status == "online" { "ok" } else { status })
                .replace("ok      ", "online  "),
            text(&a["region"]),
            text(&loc["country_code"]),
            text(&loc["city"]),
            network.chars().take(28).collect::<String>(),
            a["last_seen_at"].as_str().unwrap_or("never"),
            if labels.is_empty() { "—" } else { &labels },
        );
    }
    Ok(())
}
