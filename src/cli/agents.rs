//! `netcheck agents`: the agents and their status.

use std::io::IsTerminal;

use super::report::Paint;
use super::{connect, ClientArgs};
use netcheck_proto::api::agents::AgentStatus;

pub async fn list_agents(args: ClientArgs) -> anyhow::Result<()> {
    let agents = connect(&args)?.agents().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&agents)?);
        return Ok(());
    }
    let paint = Paint(std::io::stdout().is_terminal());
    println!(
        "{:<20} {:<8} {:<14} {:<3} {:<16} {:<28} {:<25} LABELS",
        "NAME", "STATUS", "REGION", "CC", "CITY", "NETWORK", "LAST SEEN"
    );
    let text = |v: Option<&String>| v.map_or("—".to_string(), Clone::clone);
    for a in agents {
        let loc = a.location.as_ref();
        let network = match (
            loc.and_then(|l| l.asn),
            loc.and_then(|l| l.network.as_ref()),
        ) {
            (Some(asn), Some(name)) => format!("AS{asn} {name}"),
            (Some(asn), None) => format!("AS{asn}"),
            (None, Some(name)) => name.clone(),
            (None, None) => "—".into(),
        };
        let status = match a.status {
            AgentStatus::Online => paint.status("ok").replace("ok      ", "online  "),
            AgentStatus::Offline => paint.status("offline"),
            AgentStatus::Pending => paint.status("pending"),
        };
        let labels = a.labels.join(",");
        println!(
            "{:<20} {status} {:<14} {:<3} {:<16} {:<28} {:<25} {}",
            a.name,
            text(a.region.as_ref()),
            text(loc.and_then(|l| l.country_code.as_ref())),
            text(loc.and_then(|l| l.city.as_ref())),
            network.chars().take(28).collect::<String>(),
            a.last_seen_at
                .map_or("never".to_string(), |t| t.to_rfc3339()),
            if labels.is_empty() { "—" } else { &labels },
        );
    }
    Ok(())
}
