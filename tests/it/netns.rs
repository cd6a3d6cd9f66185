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

impl NetNs {
    /// Creates a namespace reachable from the root namespace.
    pub fn new() -> NetNs {
        let dir = PathBuf::from("/tmp/netcheck-netns");
        std::fs::create_dir_all(&dir).unwrap();
        // Claim a free slot across concurrently running test processes.
        let slot = (1..250u32)
            .find(|n| {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(dir.join(n.to_string()))
                    .is_ok()
            })
            .expect("a free network slot");
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
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
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
