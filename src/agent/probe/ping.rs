//! ICMP echo probe (surge-ping over raw or datagram sockets), IPv4 and IPv6.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::future::join_all;
use surge_ping::{Client, Config, IcmpPacket, PingIdentifier, PingSequence, SurgeError, ICMP};

use super::{ms, Outcome, Prober};
use crate::policy::Policy;
use crate::proto::check::{PingOptions, PingReply, PingResult, ProbeError, ResultData, Rtt};

/// One ICMP socket per address family, opened on first use and shared by all pings.
pub struct Pinger {
    v4: OnceLock<Result<Client, String>>,
    v6: OnceLock<Result<Client, String>>,
    /// Echo identifiers are handed out in turn, so pings in flight together never share one
    /// (random ones collided: 256 concurrent pings share an identifier with 39 % probability,
    /// and surge-ping refuses the second as an identical request).
    next_ident: AtomicU16,
}

impl Default for Pinger {
    fn default() -> Self {
        Self {
            v4: OnceLock::new(),
            v6: OnceLock::new(),
            // A random start keeps two agents on one host apart (raw sockets see every reply).
            next_ident: AtomicU16::new(rand::random()),
        }
    }
}

/// Receive buffer asked for the shared ICMP socket (the kernel caps it at net.core.rmem_max).
/// Every reply to every ping in flight lands in that one socket, and a raw socket also gets
/// every other ICMP packet of the host: the default (~200 KB) overflowed at ~2 500 replies per
/// second here, and each dropped reply read as a timeout.
const ICMP_RECV_BUFFER: usize = 4 << 20;

fn open(kind: ICMP) -> Result<Client, String> {
    let client = Client::new(&Config::builder().kind(kind).build()).map_err(|e| {
        format!(
            "cannot open an ICMP socket ({e}); ICMP needs root, CAP_NET_RAW, or a \
             net.ipv4.ping_group_range that includes this user's group"
        )
    })?;
    let socket = client.get_socket();
    // SAFETY: the descriptor is the open socket `socket` owns; it outlives this borrow.
    #[allow(unsafe_code)]
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket.get_native_sock()) };
    if let Err(e) = socket2::SockRef::from(&fd).set_recv_buffer_size(ICMP_RECV_BUFFER) {
        tracing::warn!(error = %e, "could not enlarge the ICMP receive buffer");
    }
    Ok(client)
}

impl Pinger {
    fn client(&self, ip: IpAddr) -> Result<&Client, String> {
        let cell = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        cell.get_or_init(|| open(if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 }))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// An identifier no other ping in flight from this agent uses (as long as fewer than
    /// 65 536 are in flight).
    fn ident(&self) -> PingIdentifier {
        PingIdentifier(self.next_ident.fetch_add(1, Ordering::Relaxed))
    }

    pub fn available(&self) -> Result<(), String> {
        self.client(IpAddr::from([127, 0, 0, 1])).map(|_| ())
    }
}

/// min/avg/max and mean deviation, as iputils ping reports them.
pub fn stats(rtts: &[f64]) -> Option<Rtt> {
    if rtts.is_empty() {
        return None;
    }
    let n = rtts.len() as f64;
    let avg = rtts.iter().sum::<f64>() / n;
    let sq = rtts.iter().map(|r| r * r).sum::<f64>() / n;
    Some(Rtt {
        min: rtts.iter().cloned().fold(f64::INFINITY, f64::min),
        avg,
        max: rtts.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        mdev: (sq - avg * avg).max(0.0).sqrt(),
    })
}

pub async fn run(prober: &Prober, target: &str, o: &PingOptions, policy: &Policy) -> Outcome {
    let mut result = PingResult {
        resolved_address: None,
        sent: 0,
        received: 0,
        loss_pct: 100.0,
        rtt_ms: None,
        replies: Vec::new(),
    };
    let ip = match prober.resolve(target, o.ip_version, policy).await {
        Ok((ip, _)) => ip,
        Err(e) => {
            return Outcome {
                data: ResultData::Ping(result),
                error: Some(e),
            }
        }
    };
    result.resolved_address = Some(ip.to_string());
    let client = match prober.pinger.client(ip) {
        Ok(c) => c,
        Err(msg) => {
            return Outcome {
                data: ResultData::Ping(result),
                error: Some(ProbeError::new("icmp_unavailable", msg)),
            }
        }
    };
    let ident = prober.pinger.ident();
    let timeout = Duration::from_millis(o.timeout_ms as u64);
    let payload = [0u8; 56];
    let start = tokio::time::Instant::now();
    let count = o.count.max(1) as u16;
    let pings = (0..count).map(|seq| async move {
        tokio::time::sleep_until(start + Duration::from_millis(o.interval_ms as u64 * seq as u64))
            .await;
        let mut p = client.pinger(ip, ident).await;
        p.timeout(timeout);
        // Our own clock, started before the request is sent: surge-ping starts its clock
        // after `sendto` returns, and a host that answers on this machine (or a reply
        // that wakes another process first) can run before that, so its RTT reads short.
        // This one never reads short; it adds only the few microseconds around the call.
        let sent = tokio::time::Instant::now();
        let outcome = p.ping(PingSequence(seq), &payload).await;
        (seq, outcome.map(|(packet, _)| (packet, sent.elapsed())))
    });
    let mut last_error = None;
    for (seq, outcome) in join_all(pings).await {
        result.sent += 1;
        match outcome {
            Ok((packet, rtt)) => {
                let ttl = match packet {
                    IcmpPacket::V4(p) => p.get_ttl(),
                    IcmpPacket::V6(p) => Some(p.get_max_hop_limit()),
                };
                result.received += 1;
                result.replies.push(PingReply {
                    seq,
                    rtt_ms: ms(rtt),
                    ttl,
                });
            }
            Err(SurgeError::Timeout { .. }) => {}
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    let rtts: Vec<f64> = result.replies.iter().map(|r| r.rtt_ms).collect();
    result.rtt_ms = stats(&rtts);
    result.loss_pct = if result.sent == 0 {
        100.0
    } else {
        100.0 * (result.sent - result.received) as f64 / result.sent as f64
    };
    let error = (result.received == 0).then(|| match last_error {
        Some(e) => ProbeError::new("unreachable", format!("ping {ip} failed: {e}")),
        None => ProbeError::new(
            "timeout",
            format!("no echo reply from {ip} ({} sent)", result.sent),
        ),
    });
    Outcome {
        data: ResultData::Ping(result),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_in_flight_together_are_distinct() {
        let p = Pinger::default();
        let ids: std::collections::HashSet<u16> = (0..65_536).map(|_| p.ident().0).collect();
        assert_eq!(ids.len(), 65_536);
    }

    #[test]
    fn stats_match_iputils_definitions() {
        let s = stats(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.min, s.avg, s.max), (1.0, 2.0, 3.0));
        assert!((s.mdev - (2.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert!(stats(&[]).is_none());
    }
}
