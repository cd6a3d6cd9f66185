//! What an agent keeps to itself: its own addresses are not targets, and its own resolver's
//! internal answers are not shown.

use netcheck_proto::api::checks::CreateCheck;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::{DnsResult, ResultStatus};
use serde_json::json;

use crate::netns::{nft_root, NetNs};
use crate::rig::{data, error_code_of, only, rig_with};
use crate::targets;

#[tokio::test]
async fn the_agents_own_resolver_does_not_leak_internal_addresses() {
    let dns = targets::dns_server().await;
    // The agent's resolver (its `--resolver`, or the system's) knows an internal name.
    let rig = rig_with(&["--resolver", &dns.to_string()], |_| {}).await;
    let (check, _) = rig
        .run(CreateCheck::from_options(CheckType::Dns, "rebind.test", json!({})).unwrap())
        .await;
    let r = only(&check);
    let d: DnsResult = data(r);
    assert_eq!(d.rcode.as_deref(), Some("NOERROR"), "{r:?}");
    assert!(d.answers.is_empty(), "{r:?}");
    assert_eq!(d.withheld, 1, "{r:?}");
    // Asking a resolver by name is the user's choice of a public one: answers are shown.
    let (check, _) = rig
        .run(
            CreateCheck::from_options(
                CheckType::Dns,
                "rebind.test",
                json!({"resolver": dns.to_string()}),
            )
            .unwrap(),
        )
        .await;
    let d: DnsResult = data(only(&check));
    assert_eq!(d.answers.len(), 1);
    assert_eq!(d.withheld, 0);
}

#[tokio::test]
async fn an_agent_refuses_its_own_interface_address() {
    // The veth's root end is one of the agent host's own interfaces (10.213.<slot>.1), inside
    // the networks the rig allows: allowed as a range, but not named, so still refused.
    let ns = NetNs::new();
    let own = format!("{}.1", ns.addr.rsplit_once('.').unwrap().0);
    let rig = rig_with(&[], |_| {}).await;
    let table = format!("ncown{}", std::process::id());
    let rules = format!(
        "table inet {table} {{\n chain in {{\n type filter hook input priority 0;\n \
         ip daddr {own} tcp dport 9 counter\n }}\n}}\n"
    );
    nft_root(&rules);
    let (check, _) = rig
        .run(CreateCheck::from_options(CheckType::Tcp, own.clone(), json!({"port": 9})).unwrap())
        .await;
    let r = only(&check);
    let counted = std::process::Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    let _ = std::process::Command::new("nft")
        .args(["delete", "table", "inet", &table])
        .status();
    assert_eq!(r.status, ResultStatus::Failed, "{r:?}");
    assert_eq!(error_code_of(r), Some("target_refused"), "{r:?}");
    assert!(r.error.as_ref().unwrap().message.contains("own"), "{r:?}");
    let listing = String::from_utf8_lossy(&counted.stdout);
    assert!(
        listing.contains("packets 0 "),
        "no packet was sent: {listing}"
    );
    // The namespace's end of the link is not the agent's: it is reached.
    let (check, _) = rig
        .run(
            CreateCheck::from_options(CheckType::Tcp, ns.addr.clone(), json!({"port": 9})).unwrap(),
        )
        .await;
    assert_ne!(
        error_code_of(only(&check)),
        Some("target_refused"),
        "{check:?}"
    );
}
