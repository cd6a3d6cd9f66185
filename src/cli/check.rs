//! `netcheck check …`: creates a check and prints each agent's result as it arrives.

use std::io::IsTerminal;

use super::report::{describe, settings_line, Paint};
use super::{connect, CheckArgs};
use netcheck_proto::api::checks::{CheckEvent, CreateCheck};
use netcheck_proto::api::share::ShareRequest;
use netcheck_proto::result::ResultStatus;

/// Runs a check and prints results live. Returns the process exit code: 0 when at least one
/// agent succeeded, 1 when the check failed everywhere.
pub async fn run_check(args: CheckArgs) -> anyhow::Result<u8> {
    let api = connect(&args.client)?;
    let (spec, target) = args.kind.definition()?;
    let kind = spec.check_type();
    let settings = settings_line(&spec);
    let body = CreateCheck {
        selection: args.agents.selection(),
        ..CreateCheck::of(spec, target.clone())
    };
    let created = api.create_check(&body).await?;
    let id = created.id;
    let json = args.client.json;
    let paint = Paint(std::io::stdout().is_terminal() && !json);
    if !json {
        println!(
            "{} {target}{} on {} agent(s) — {}/checks/{id}",
            kind.as_str().to_uppercase(),
            if settings.is_empty() {
                String::new()
            } else {
                format!(" ({settings})")
            },
            created.agents,
            api.base()
        );
    }
    let mut events = api.check_events(id).await?;
    while let Some(event) = events.next().await? {
        match event {
            CheckEvent::Result(r) if !json => {
                let facts = describe(kind.as_str(), &serde_json::to_value(&r)?);
                println!(
                    "  {:<20} {} {facts}",
                    r.agent.name,
                    paint.status(r.status.as_str()),
                );
            }
            CheckEvent::Result(_) => {}
            CheckEvent::Finished(_) => break,
        }
    }
    let check = api.check(id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    }
    if args.share {
        let link = api.share(id, &ShareRequest::default()).await?;
        // With --json, stdout holds only the JSON document.
        if json {
            eprintln!("shared: {}", link.url);
        } else {
            println!("shared: {}", link.url);
        }
    }
    let any_ok = check.results.iter().any(|r| r.status == ResultStatus::Ok);
    Ok(if any_ok { 0 } else { 1 })
}
