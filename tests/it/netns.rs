//! Test hosts in network namespaces: a veth link from the root namespace to a namespace
//! with its own address, optional nftables rules inside it (loss, blackholes), removed on
//! drop even when the test fails.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Command;

/// Every namespace the tests create lives in 10.213.<slot>.0/30.
pub const NETNS_RANGE: &str = "10.213.0.0/16";

pub struct NetNs {
    pub name: String,
    host_if: String,
    claim: PathBuf,
    /// Address of the namespace's end of the link.
    pub addr: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Claims a free slot (10.213.<slot>.0/24) across concurrently running test processes.
fn claim_slot() -> (u32, PathBuf) {
    let dir = PathBuf::from("/tmp/netcheck-netns");
    std::fs::create_dir_all(&dir).unwrap();
    let slot = (1..250u32)
        .find(|n| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(n.to_string()))
                .is_ok()
        })
        .expect("a free network slot");
    (slot, dir.join(slot.to_string()))
}

impl NetNs {
    /// Creates a namespace reachable from the root namespace.
    pub fn new() -> NetNs {
        let (slot, _) = claim_slot();
        let dir = PathBuf::from("/tmp/netcheck-netns");
        let ns = NetNs {
            name: format!("nc-t{slot}"),
            host_if: format!("nch{slot}"),
            claim: dir.join(slot.to_string()),
            addr: format!("10.213.{slot}.2"),
        };
        // A leftover of a crashed run with the same slot.
        let _ = run(&["ip", "netns", "del", &ns.name]);
        let _ = run(&["ip", "link", "del", &ns.host_if]);
        let peer = format!("ncp{slot}");
        let host_addr = format!("10.213.{slot}.1/30");
        let ns_addr = format!("{}/30", ns.addr);
        for cmd in [
            vec!["ip", "netns", "add", &ns.name],
            vec![
                "ip",
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ],
            vec!["ip", "link", "set", &peer, "netns", &ns.name],
            vec!["ip", "addr", "add", &host_addr, "dev", &ns.host_if],
            vec!["ip", "link", "set", &ns.host_if, "up"],
            vec!["ip", "-n", &ns.name, "addr", "add", &ns_addr, "dev", &peer],
            vec!["ip", "-n", &ns.name, "link", "set", &peer, "up"],
            vec!["ip", "-n", &ns.name, "link", "set", "lo", "up"],
        ] {
            run(&cmd).unwrap();
        }
        ns
    }

    /// Runs an nftables script inside the namespace.
    pub fn nft(&self, script: &str) {
        nft_in(&self.name, script);
    }

    pub fn sysctl(&self, kv: &str) {
        run(&["ip", "netns", "exec", &self.name, "sysctl", "-qw", kv]).unwrap();
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
        let _ = run(&["ip", "link", "del", &self.host_if]);
        let _ = std::fs::remove_file(&self.claim);
    }
}

/// A path for traces: root namespace (the agent) → router 1 → router 2 → target, each link a
/// /30 of 10.213.<slot>.0/24 (root .1 – r1 .2, r1 .5 – r2 .6, r2 .9 – target .10), with IPv6
/// alongside (fd13:<slot>:N::/64). Routers forward and answer with time exceeded.
pub struct Chain {
    pub r1: Hop,
    pub r2: Hop,
    pub target: Hop,
    slot: u32,
    claim: PathBuf,
}

/// One namespace of a chain and the address the agent sees it by.
pub struct Hop {
    pub name: String,
    pub addr: String,
    pub addr6: String,
}

impl Hop {
    pub fn nft(&self, script: &str) {
        nft_in(&self.name, script);
    }
}

fn nft_in(ns: &str, script: &str) {
    nft_with(
        Command::new("ip").args(["netns", "exec", ns, "nft", "-f", "-"]),
        script,
    );
}

/// Runs an nftables script in the root namespace (a test removes what it adds).
pub fn nft_root(script: &str) {
    nft_with(Command::new("nft").args(["-f", "-"]), script);
}

fn nft_with(command: &mut Command, script: &str) {
    let out = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Chain {
    /// The addresses a trace to the target should list, TTL by TTL (IPv4).
    pub fn path(&self) -> Vec<Option<String>> {
        [&self.r1, &self.r2, &self.target]
            .map(|h| Some(h.addr.clone()))
            .to_vec()
    }

    /// The same path over IPv6.
    pub fn path6(&self) -> Vec<Option<String>> {
        [&self.r1, &self.r2, &self.target]
            .map(|h| Some(h.addr6.clone()))
            .to_vec()
    }

    /// Waits as a person's second run would, until the routers' ICMP limiters have refilled
    /// their burst (6 answers at one a second) after a run spent it.
    pub async fn let_routers_refill() {
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    }

    pub fn new() -> Chain {
        let (slot, claim) = claim_slot();
        let ns = |n: &str| format!("nc-c{slot}{n}");
        let v4 = |last: u8| format!("10.213.{slot}.{last}");
        let v6 = |net: u8, last: u8| format!("fd13:{slot:x}:{net}::{last}");
        let chain = Chain {
            r1: Hop {
                name: ns("a"),
                addr: v4(2),
                addr6: v6(1, 2),
            },
            r2: Hop {
                name: ns("b"),
                addr: v4(6),
                addr6: v6(2, 2),
            },
            target: Hop {
                name: ns("t"),
                addr: v4(10),
                addr6: v6(3, 2),
            },
            slot,
            claim,
        };
        chain.teardown();
        let (r1, r2, t) = (&chain.r1.name, &chain.r2.name, &chain.target.name);
        let l = |n: &str| format!("ncc{slot}{n}");
        let mut cmds: Vec<Vec<String>> = Vec::new();
        let mut c = |args: &[&str]| cmds.push(args.iter().map(|a| a.to_string()).collect());
        for n in [r1, r2, t] {
            c(&["ip", "netns", "add", n]);
            c(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        // Three links, each a veth pair with a /30 and a /64: (namespace or root, interface,
        // last IPv4 octet) at both ends, and the IPv6 network number.
        let links = [
            (None, l("a"), 1u8, Some(r1), l("b"), 2u8, 1u8),
            (Some(r1), l("c"), 5, Some(r2), l("d"), 6, 2),
            (Some(r2), l("e"), 9, Some(t), l("f"), 10, 3),
        ];
        for (ns_a, if_a, a4, ns_b, if_b, b4, net6) in &links {
            let peer_ns = ns_b.map(|n| vec!["netns", n.as_str()]).unwrap_or_default();
            let mut add = vec!["ip", "link", "add", if_a.as_str()];
            if let Some(n) = ns_a {
                add.extend(["netns", n.as_str()]);
            }
            add.extend(["type", "veth", "peer", "name", if_b.as_str()]);
            add.extend(peer_ns);
            c(&add);
            for (ns, ifc, v4last, v6last) in [(ns_a, if_a, *a4, 1u8), (ns_b, if_b, *b4, 2u8)] {
                let mut ip = vec!["ip"];
                if let Some(n) = ns {
                    ip.extend(["-n", n.as_str()]);
                }
                let (v4a, v6a) = (
                    format!("{}/30", v4(v4last)),
                    format!("{}/64", v6(*net6, v6last)),
                );
                for rest in [
                    vec!["addr", "add", &v4a, "dev", ifc],
                    vec!["-6", "addr", "add", &v6a, "dev", ifc, "nodad"],
                    vec!["link", "set", ifc, "up"],
                ] {
                    c(&[ip.as_slice(), rest.as_slice()].concat());
                }
            }
        }
        // Routes: the root reaches the far links through r1; each hop routes back.
        for route in [
            format!("ip route add 10.213.{slot}.4/30 via {}", v4(2)),
            format!("ip route add 10.213.{slot}.8/30 via {}", v4(2)),
            format!("ip -6 route add fd13:{slot:x}:2::/64 via {}", v6(1, 2)),
            format!("ip -6 route add fd13:{slot:x}:3::/64 via {}", v6(1, 2)),
            format!("ip -n {r1} route add 10.213.{slot}.8/30 via {}", v4(6)),
            format!(
                "ip -n {r1} -6 route add fd13:{slot:x}:3::/64 via {}",
                v6(2, 2)
            ),
            format!("ip -n {r2} route add default via {}", v4(5)),
            format!("ip -n {r2} -6 route add default via {}", v6(2, 1)),
            format!("ip -n {t} route add default via {}", v4(9)),
            format!("ip -n {t} -6 route add default via {}", v6(3, 1)),
        ] {
            c(&route.split_whitespace().collect::<Vec<_>>());
        }
        // Routers forward. Their ICMP rate limits stay Linux's defaults (a burst of 6, then
        // one a second per source), as real routers' do.
        for n in [r1, r2] {
            for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
                c(&["ip", "netns", "exec", n, "sysctl", "-qw", key]);
            }
        }
        for cmd in cmds {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            run(&args).unwrap();
        }
        chain
    }

    fn teardown(&self) {
        for n in [&self.r1.name, &self.r2.name, &self.target.name] {
            let _ = run(&["ip", "netns", "del", n]);
        }
        let _ = run(&["ip", "link", "del", &format!("ncc{}a", self.slot)]);
        let _ = run(&["ip", "route", "del", &format!("10.213.{}.4/30", self.slot)]);
        let _ = run(&["ip", "route", "del", &format!("10.213.{}.8/30", self.slot)]);
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.teardown();
        let _ = std::fs::remove_file(&self.claim);
    }
}
