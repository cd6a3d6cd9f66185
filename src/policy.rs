//! Target policy: which addresses checks may reach. Loopback, private, link-local, CGNAT,
//! multicast, documentation and other special-purpose ranges (IANA registries, IPv4 and
//! IPv6, with IPv4-mapped, NAT64, 6to4 and Teredo forms unwrapped) are refused unless an
//! operator allows a network explicitly. The server applies it to literal targets; the agent
//! applies it again to every address it resolves or connects to (DNS-rebinding defence).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub address: IpAddr,
    pub range: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a {} address, which checks may not target",
            self.address, self.range
        )
    }
}

const V4_RANGES: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\""),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "AS112"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
];

const V6_RANGES: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignment"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    if ip == Ipv4Addr::BROADCAST {
        return Some("broadcast");
    }
    V4_RANGES.iter().find_map(|(net, name)| {
        let net: ipnet::Ipv4Net = net.parse().expect("valid range");
        net.contains(&ip).then_some(*name)
    })
}

/// The IPv4 address an IPv6 address carries, for forms that reach IPv4 hosts.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15])); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15])); // local NAT64 64:ff9b:1::/48
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])); // 6to4
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: client address is the last 32 bits inverted.
        return Some(Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]));
    }
    None
}

/// Name of the special-purpose range `ip` falls in, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                if let Some(r) = v4_range(v4) {
                    return Some(r);
                }
            }
            V6_RANGES.iter().find_map(|(net, name)| {
                let net: ipnet::Ipv6Net = net.parse().expect("valid range");
                net.contains(&v6).then_some(*name)
            })
        }
    }
}

/// Cloud platforms' host endpoints that sit in public address space (Azure's WireServer and
/// DNS/DHCP relay); the others (169.254.169.254, fd00:ec2::254, 100.100.100.200…) are in
/// special-purpose ranges already.
pub const CLOUD_ENDPOINTS: [&str; 1] = ["168.63.129.16"];

/// The policy in force: refuse special-purpose ranges except the allowed networks, and the
/// agent's own addresses except those an allowed network names exactly.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allowed: Vec<IpNet>,
    /// The host's own addresses (interfaces, the public address the server saw, cloud
    /// platform endpoints): empty on the server.
    pub own: Vec<IpAddr>,
}

impl Policy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self {
            allowed,
            own: Vec::new(),
        }
    }

    /// This policy, also refusing `own` addresses (loopback ones are left to the ranges:
    /// allowing 127.0.0.0/8 means what it says).
    pub fn with_own(mut self, own: impl IntoIterator<Item = IpAddr>) -> Self {
        self.own = own.into_iter().filter(|ip| !ip.is_loopback()).collect();
        self.own.sort();
        self.own.dedup();
        self
    }

    /// Parses the allowed networks as handed to agents (bad entries are ignored).
    pub fn from_strings(allowed: &[String]) -> Self {
        Self::new(allowed.iter().filter_map(|s| s.parse().ok()).collect())
    }

    /// The server's policy narrowed by an agent's own `--allowed-networks`: only what both
    /// allow (each pair of overlapping networks contributes the smaller). `None` keeps it.
    pub fn narrowed(server: Policy, agent: Option<&[IpNet]>) -> Policy {
        let Some(agent) = agent else {
            return server;
        };
        let mut allowed = Vec::new();
        for s in &server.allowed {
            for a in agent {
                if s.contains(a) {
                    allowed.push(*a);
                } else if a.contains(s) {
                    allowed.push(*s);
                }
            }
        }
        allowed.sort();
        allowed.dedup();
        Policy {
            allowed,
            own: server.own,
        }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let named = |ip: IpAddr| {
            self.allowed
                .iter()
                .any(|n| n.prefix_len() == n.max_prefix_len() && n.addr() == ip)
        };
        if self.own.contains(&ip) && !named(ip) {
            return Err(Refused {
                address: ip,
                range: "this agent's own addresses",
            });
        }
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match special_range(ip) {
            Some(range) => Err(Refused { address: ip, range }),
            None => Ok(()),
        }
    }

    /// Checks a target host as typed by a user: IP literals in any spelling are classified;
    /// `localhost` names are refused (they never leave the agent). Other names are resolved
    /// and checked by the agent.
    pub fn check_host(&self, host: &str) -> Result<(), String> {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(ip) = parse_ip_loose(&h) {
            return self.check(ip).map_err(|r| r.to_string());
        }
        if h == "localhost" || h.ends_with(".localhost") {
            let loopback_allowed = self.check(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_ok();
            if !loopback_allowed {
                return Err(format!(
                    "{host} names this machine (loopback), which checks may not target"
                ));
            }
        }
        Ok(())
    }
}

/// Parses an IP address in every spelling resolvers accept: dotted quad, IPv6 (optionally in
/// brackets or with a zone), and the inet_aton forms `2130706433`, `0x7f.1`, `0177.0.0.1`,
/// `127.1`.
pub fn parse_ip_loose(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let no_zone = inner.split('%').next().unwrap_or(inner);
    if let Ok(ip) = no_zone.parse::<IpAddr>() {
        return Some(ip);
    }
    parse_inet_aton(s).map(IpAddr::V4)
}

fn parse_part(p: &str) -> Option<u64> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() {
        return (radix == 16).then_some(0);
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|v| *v <= u32::MAX as u64)
}

fn parse_inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = s.split('.').map(parse_part).collect::<Option<_>>()?;
    let value = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a <= 0xff && *b <= 0xff_ffff => (a << 24) | b,
        [a, b, c] if *a <= 0xff && *b <= 0xff && *c <= 0xffff => (a << 24) | (b << 16) | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|v| **v <= 0xff) => {
            (a << 24) | (b << 16) | (c << 8) | d
        }
        _ => return None,
    };
    Some(Ipv4Addr::from(value as u32))
}

#[cfg(test)]
mod narrowing_tests {
    use super::*;

    #[test]
    fn an_agent_can_only_narrow_the_servers_policy() {
        let nets = |v: &[&str]| v.iter().map(|s| s.parse().unwrap()).collect::<Vec<IpNet>>();
        let server = Policy::new(nets(&["10.0.0.0/8", "192.168.1.0/24"]));
        assert_eq!(
            Policy::narrowed(server.clone(), None).allowed,
            server.allowed
        );
        let agent = nets(&["10.1.0.0/16", "192.168.0.0/16", "172.16.0.0/12"]);
        let narrowed = Policy::narrowed(server, Some(&agent));
        assert_eq!(narrowed.allowed, nets(&["10.1.0.0/16", "192.168.1.0/24"]));
        assert!(narrowed.check("10.2.0.1".parse().unwrap()).is_err());
        assert!(
            narrowed.check("172.16.0.1".parse().unwrap()).is_err(),
            "not the server's"
        );
        assert!(narrowed.check("10.1.2.3".parse().unwrap()).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        Policy::default().check_host(s).is_err()
    }

    #[test]
    fn the_ssrf_table_is_refused() {
        for t in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f.1",
            "0x7f000001",
            "0177.0.0.1",
            "017700000001",
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "0.0.0.0",
            "0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.7",
            "198.18.0.1",
            "::1",
            "[::1]",
            "::",
            "::ffff:127.0.0.1",
            "[::ffff:7f00:1]",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "fe80::1",
            "fe80::1%eth0",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "fec0::1",
        ] {
            assert!(refused(t), "{t} must be refused");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        for t in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "example.com",
            "93.184.216.34",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(t), "{t} must pass");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_their_range() {
        let p = Policy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        assert!(p.check_host("127.0.0.1").is_ok());
        assert!(p.check_host("2130706433").is_ok());
        assert!(p.check_host("localhost").is_ok());
        assert!(
            p.check_host("::ffff:127.0.0.1").is_ok(),
            "mapped form follows its IPv4 address"
        );
        assert!(p.check_host("fd00::5").is_ok());
        assert!(p.check_host("10.0.0.1").is_err());
        assert!(p.check_host("::1").is_err());
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(parse_ip_loose("127.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            parse_ip_loose("0x7f.0.0.1"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            parse_ip_loose("10.0.258"),
            Some("10.0.1.2".parse().unwrap())
        );
        assert_eq!(
            parse_ip_loose("4294967295"),
            Some("255.255.255.255".parse().unwrap())
        );
        assert_eq!(parse_ip_loose("4294967296"), None);
        assert_eq!(parse_ip_loose("1.2.3.256"), None);
        assert_eq!(parse_ip_loose("08.0.0.1"), None, "8 is not an octal digit");
        assert_eq!(parse_ip_loose("example.com"), None);
        assert_eq!(parse_ip_loose("1e100"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any text a user can type is classified without panicking.
        #[test]
        fn arbitrary_hosts_never_panic(host in "\\PC{0,80}") {
            let _ = parse_ip_loose(&host);
            let _ = Policy::default().check_host(&host);
        }

        /// Every address in a refused range is refused in every spelling: dotted, decimal,
        /// hex, IPv4-mapped IPv6.
        #[test]
        fn refused_v4_addresses_are_refused_in_every_spelling(a in any::<u32>()) {
            let ip = Ipv4Addr::from(a);
            let p = Policy::default();
            let refused = p.check(IpAddr::V4(ip)).is_err();
            prop_assert_eq!(p.check_host(&a.to_string()).is_err(), refused);
            prop_assert_eq!(p.check_host(&format!("0x{a:x}")).is_err(), refused);
            prop_assert_eq!(p.check_host(&format!("::ffff:{ip}")).is_err(), refused);
            prop_assert_eq!(p.check_host(&ip.to_string()).is_err(), refused);
        }

        /// NAT64 and 6to4 forms inherit the verdict of the IPv4 address they carry.
        #[test]
        fn embedded_v4_forms_follow_their_v4_address(a in any::<u32>()) {
            let ip = Ipv4Addr::from(a);
            let o = ip.octets();
            let p = Policy::default();
            if p.check(IpAddr::V4(ip)).is_err() {
                let nat64: Ipv6Addr = format!("64:ff9b::{:x}{:02x}:{:x}{:02x}", o[0], o[1], o[2], o[3]).parse().unwrap();
                prop_assert!(p.check(IpAddr::V6(nat64)).is_err());
                let six_to_four: Ipv6Addr = format!("2002:{:x}{:02x}:{:x}{:02x}::1", o[0], o[1], o[2], o[3]).parse().unwrap();
                prop_assert!(p.check(IpAddr::V6(six_to_four)).is_err());
            }
        }
    }
}

/// The address a reverse (`PTR`) lookup asks about: an IP target, or an `in-addr.arpa` /
/// `ip6.arpa` name. Such a lookup never contacts the address, but what a resolver says of an
/// internal one is internal too, so it passes the same policy.
pub fn reverse_lookup_address(target: &str) -> Option<IpAddr> {
    parse_ip_loose(target).or_else(|| {
        let mut name = hickory_proto::rr::Name::from_ascii(target).ok()?;
        name.set_fqdn(true);
        name.parse_arpa_name().ok().map(|net| net.addr())
    })
}

#[cfg(test)]
mod reverse_tests {
    use super::reverse_lookup_address;

    #[test]
    fn reverse_lookups_name_their_address() {
        for t in [
            "10.0.0.1",
            "1.0.0.10.in-addr.arpa",
            "1.0.0.10.in-addr.arpa.",
        ] {
            assert_eq!(
                reverse_lookup_address(t),
                Some("10.0.0.1".parse().unwrap()),
                "{t}"
            );
        }
        assert_eq!(reverse_lookup_address("example.com"), None);
    }
}

/// The host's own non-loopback interface addresses (empty when they cannot be read).
pub fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let sa = a.address?;
            sa.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .filter(|ip| !ip.is_loopback())
        .collect()
}

#[cfg(test)]
mod own_tests {
    use super::*;

    #[test]
    fn own_addresses_are_refused_unless_named_exactly() {
        let own: IpAddr = "10.213.9.1".parse().unwrap();
        let public: IpAddr = "203.0.113.77".parse().unwrap();
        let p = Policy::new(vec!["10.213.0.0/16".parse().unwrap()]).with_own([
            own,
            public,
            "127.0.0.1".parse().unwrap(),
        ]);
        assert!(
            p.check(own).is_err(),
            "a wide allowed network is not enough"
        );
        assert!(p.check(public).is_err());
        assert!(p.check("10.213.9.2".parse().unwrap()).is_ok());
        assert!(
            p.check("127.0.0.1".parse().unwrap()).is_err(),
            "loopback: by its range"
        );
        let named = Policy::new(vec!["10.213.9.1/32".parse().unwrap()]).with_own([own]);
        assert!(named.check(own).is_ok());
        assert!(!interface_addresses().iter().any(|ip| ip.is_loopback()));
    }
}
