//! `netcheck monitors` and `netcheck monitor add|pause|resume|delete`: monitors from a terminal.

use std::io::IsTerminal;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{CheckKind, Client, ClientArgs, Paint, SelectionArgs};

#[derive(Debug, Subcommand, Clone)]
pub enum MonitorCommand {
    /// Create a monitor: the check as for `netcheck check`, run every --interval seconds.
    Add(Box<MonitorAddArgs>),
    /// Pause a monitor (no runs until resumed).
    Pause(MonitorRef),
    /// Resume a paused monitor (it runs at once).
    Resume(MonitorRef),
    /// Delete a monitor (its runs stay in the history).
    Delete(MonitorRef),
}

#[derive(Debug, Args, Clone)]
pub struct MonitorRef {
    pub id: uuid::Uuid,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args, Clone)]
pub struct MonitorAddArgs {
    /// The monitor's name (give it before the check type).
    #[arg(long)]
    pub name: String,
    /// Seconds between runs (10-86400).
    #[arg(long = "interval", default_value_t = 60, global = true)]
    pub interval_secs: u32,
    /// Down when at least this many agents fail …
    #[arg(long, default_value_t = 1, global = true)]
    pub min_failing_agents: u32,
    /// … in this many runs in a row.
    #[arg(long, default_value_t = 2, global = true)]
    pub for_runs: u32,
    /// A URL to POST `down`/`up` events to (repeat for more).
    #[arg(long = "webhook", value_name = "URL", global = true)]
    pub webhooks: Vec<String>,
    #[command(subcommand)]
    pub kind: CheckKind,
    #[command(flatten)]
    pub agents: SelectionArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `netcheck monitors`: every monitor the key may see, with its state.
pub async fn list(args: ClientArgs) -> anyhow::Result<()> {
    let client = Client::new(&args)?;
    let mut monitors: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/monitors?limit=200", client.base);
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page: Value = client.call(client.http.get(url)).await?.json().await?;
        monitors.extend(page["monitors"].as_array().cloned().unwrap_or_default());
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&monitors)?);
        return Ok(());
    }
    let paint = Paint(std::io::stdout().is_terminal());
    println!(
        "{:<36}  {:<8} {:<24} {:>7}  {:<25} CHECK",
        "ID", "STATE", "NAME", "EVERY", "LAST RUN"
    );
    for m in monitors {
        let state = m["state"].as_str().unwrap_or("?");
        let painted = match state {
            "up" => paint.status("ok").replace("ok      ", "up      "),
            "down" => paint.status("failed").replace("failed  ", "down    "),
            other => paint.status(other),
        };
        println!(
            "{:<36}  {} {:<24} {:>6}s  {:<25} {} {}",
            m["id"].as_str().unwrap_or("?"),
            painted,
            m["name"].as_str().unwrap_or("?"),
            m["interval_secs"],
            m["last_run_at"].as_str().unwrap_or("never"),
            m["check"]["type"].as_str().unwrap_or("?").to_uppercase(),
            m["check"]["target"].as_str().unwrap_or("?"),
        );
    }
    Ok(())
}

/// `netcheck monitor …`.
pub async fn run(command: MonitorCommand) -> anyhow::Result<()> {
    match command {
        MonitorCommand::Add(a) => {
            let client = Client::new(&a.client)?;
            let (kind, target, options) = a.kind.definition()?;
            let mut body = json!({
                "name": a.name,
                "check": {"type": kind, "target": target, "options": options},
                "interval_secs": a.interval_secs,
                "alert": {"min_failing_agents": a.min_failing_agents, "for_runs": a.for_runs},
                "notify": a.webhooks.iter().map(|w| json!({"webhook": w})).collect::<Vec<_>>(),
            });
            a.agents.add_to(&mut body)?;
            let created: Value = client
                .call(
                    client
                        .http
                        .post(format!("{}/api/v1/monitors", client.base))
                        .json(&body),
                )
                .await?
                .json()
                .await?;
            if a.client.json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                let id = created["monitor"]["id"].as_str().unwrap_or("?");
                println!("monitor {id} created — {}/monitors/{id}", client.base);
                if !a.webhooks.is_empty() {
                    println!(
                        "webhook secret (shown only now): {}",
                        created["webhook_secret"].as_str().unwrap_or("?")
                    );
                }
            }
            Ok(())
        }
        MonitorCommand::Pause(r) => set_paused(r, true).await,
        MonitorCommand::Resume(r) => set_paused(r, false).await,
        MonitorCommand::Delete(r) => {
            let client = Client::new(&r.client)?;
            client
                .call(
                    client
                        .http
                        .delete(format!("{}/api/v1/monitors/{}", client.base, r.id)),
                )
                .await?;
            println!("monitor {} deleted", r.id);
            Ok(())
        }
    }
}

async fn set_paused(r: MonitorRef, paused: bool) -> anyhow::Result<()> {
    let client = Client::new(&r.client)?;
    let m: Value = client
        .call(
            client
                .http
                .patch(format!("{}/api/v1/monitors/{}", client.base, r.id))
                .json(&json!({ "paused": paused })),
        )
        .await?
        .json()
        .await?;
    println!("monitor {} is {}", r.id, m["state"].as_str().unwrap_or("?"));
    Ok(())
}
