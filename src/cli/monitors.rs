//! `netcheck monitors` and `netcheck monitor add|pause|resume|delete`: monitors from a terminal.

use std::io::IsTerminal;

use super::report::Paint;
use super::{connect, CheckKind, ClientArgs, SelectionArgs};
use clap::{Args, Subcommand};
use netcheck_proto::api::monitors::{
    AlertRule, CreateMonitor, MonitorCheck, MonitorQuery, MonitorState, Notify, UpdateMonitor,
};

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
    /// Another channel, `kind=value` (repeat for more): `slack=URL`, `discord=URL`,
    /// `teams=URL`, `ntfy=TOPIC_URL`, `pagerduty=ROUTING_KEY`, `email=ADDR[,ADDR…]`,
    /// `telegram=BOT_TOKEN,CHAT_ID`.
    #[arg(long = "notify", value_name = "KIND=VALUE", value_parser = parse_channel, global = true)]
    pub channels: Vec<Notify>,
    #[command(subcommand)]
    pub kind: CheckKind,
    #[command(flatten)]
    pub agents: SelectionArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `netcheck monitors`: every monitor the key may see, with its state.
pub async fn list(args: ClientArgs) -> anyhow::Result<()> {
    let api = connect(&args)?;
    let mut monitors = Vec::new();
    let mut query = MonitorQuery {
        limit: Some(200),
        ..MonitorQuery::default()
    };
    loop {
        let page = api.monitors(&query).await?;
        monitors.extend(page.monitors);
        match page.next_after {
            Some(next) => query.after = Some(next),
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
        let painted = match m.state {
            MonitorState::Up => paint.status("ok").replace("ok      ", "up      "),
            MonitorState::Down => paint.status("failed").replace("failed  ", "down    "),
            other => paint.status(other.as_str()),
        };
        println!(
            "{:<36}  {painted} {:<24} {:>6}s  {:<25} {} {}",
            m.id,
            m.name,
            m.interval_secs,
            match (m.delayed_since, m.last_run_at) {
                // Runs held back past capacity: say so where the last run would be.
                (Some(_), _) => "delayed (overloaded)".to_string(),
                (None, Some(t)) => t.to_rfc3339(),
                (None, None) => "never".to_string(),
            },
            m.check.spec.check_type().as_str().to_uppercase(),
            m.check.target,
        );
    }
    Ok(())
}

/// `netcheck monitor …`.
pub async fn run(command: MonitorCommand) -> anyhow::Result<()> {
    match command {
        MonitorCommand::Add(a) => {
            let api = connect(&a.client)?;
            let (spec, target) = a.kind.definition()?;
            let body = CreateMonitor {
                name: a.name.clone(),
                check: MonitorCheck::new(spec, target),
                selection: a.agents.selection(),
                interval_secs: Some(a.interval_secs),
                alert: Some(AlertRule {
                    min_failing_agents: a.min_failing_agents,
                    for_runs: a.for_runs,
                }),
                notify: a
                    .webhooks
                    .iter()
                    .map(|w| Notify::Webhook(w.clone()))
                    .chain(a.channels.iter().cloned())
                    .collect(),
                paused: false,
                unknown: Default::default(),
            };
            let created = api.create_monitor(&body).await?;
            if a.client.json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                let id = created.monitor.id;
                println!("monitor {id} created — {}/monitors/{id}", api.base());
                if !a.webhooks.is_empty() {
                    let secret = created.webhook_secret;
                    println!("webhook secret (shown only now): {secret}");
                }
            }
            Ok(())
        }
        MonitorCommand::Pause(r) => set_paused(r, true).await,
        MonitorCommand::Resume(r) => set_paused(r, false).await,
        MonitorCommand::Delete(r) => {
            connect(&r.client)?.delete_monitor(r.id).await?;
            println!("monitor {} deleted", r.id);
            Ok(())
        }
    }
}

async fn set_paused(r: MonitorRef, paused: bool) -> anyhow::Result<()> {
    let body = UpdateMonitor {
        paused: Some(paused),
        ..UpdateMonitor::default()
    };
    let m = connect(&r.client)?.update_monitor(r.id, &body).await?;
    println!("monitor {} is {}", r.id, m.state.as_str());
    Ok(())
}

/// `--notify kind=value` → a channel.
pub fn parse_channel(s: &str) -> Result<Notify, String> {
    use netcheck_proto::api::monitors::{EmailTarget, PagerDutyTarget, TelegramTarget};
    let (kind, value) = s
        .split_once('=')
        .ok_or("expected kind=value, e.g. slack=https://hooks.slack.com/services/…")?;
    let value = value.to_string();
    Ok(match kind {
        "webhook" => Notify::Webhook(value),
        "slack" => Notify::Slack(value),
        "discord" => Notify::Discord(value),
        "teams" => Notify::Teams(value),
        "ntfy" => Notify::Ntfy(value),
        "pagerduty" => Notify::Pagerduty(PagerDutyTarget { routing_key: value }),
        "email" => Notify::Email(EmailTarget {
            to: value.split(',').map(|a| a.trim().to_string()).collect(),
        }),
        "telegram" => {
            let (bot_token, chat_id) = value.split_once(',').ok_or("telegram=BOT_TOKEN,CHAT_ID")?;
            Notify::Telegram(TelegramTarget {
                bot_token: bot_token.into(),
                chat_id: chat_id.into(),
            })
        }
        other => return Err(format!("unknown channel kind {other:?}")),
    })
}
