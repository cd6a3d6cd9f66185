//! ICMP echo probe over the agent's own ICMP sockets (`icmp`), IPv4 and IPv6.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::future::join_all;

use super::icmp::{Echo, Failure};
use super::resolve::TargetResolver;
use super::{ms, Outcome};
use crate::policy::Policy;
use netcheck_proto::check::PingOptions;
use netcheck_proto::result::ProbeErrorCode;
use netcheck_proto::result::{PingReply, PingResult, ProbeError, ResultData, Rtt};

/// One ICMP socket per address family, opened on first use and shared by all pings.
pub struct Pinger {
    v4: OnceLock<Result<Echo, String>>,
    v6: OnceLock<Result<Echo, String>>,
    /// Echo identifiers are handed out in turn, so pings in flight together never share one
    /// (random ones collided: 256 concurrent pings share an identifier with 39 % probability).
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

fn open(v6: bool) -> Result<Echo, String> {
    Echo::open(v6).map_err(|e| {
        format!(
            "cannot open an ICMP socket ({e}); ICMP needs root, CAP_NET_RAW, or a \
             net.ipv4.ping_group_range that includes this user's group"
        )
    })
}

impl Pinger {
    fn socket(&self, ip: IpAddr) -> Result<&Echo, String> {
        let cell = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        cell.get_or_init(|| open(ip.is_ipv6()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// An identifier no other ping in flight from this agent uses (as long as fewer than
    /// 65 536 are in flight).
    fn ident(&self) -> u16 {
        self.next_ident.fetch_add(1, Ordering::Relaxed)
    }

    pub fn available(&self) -> Result<(), String> {
        self.socket(IpAddr::from([127, 0, 0, 1])).map(|_| ())
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

pub async fn run(
    targets: &TargetResolver,
    pinger: &Pinger,
    target: &str,
    o: &PingOptions,
    policy: &Policy,
) -> Outcome {
    let mut result = PingResult {
        resolved_address: None,
        sent: 0,
        received: 0,
        loss_pct: 100.0,
        rtt_ms: None,
        replies: Vec::new(),
        assertions: Vec::new(),
    };
    let ip = match targets.resolve(target, o.ip_version, policy).await {
        Ok((ip, _)) => ip,
        Err(e) => {
            return Outcome {
                data: ResultData::Ping(result),
                error: Some(e),
            }
        }
    };
    result.resolved_address = Some(ip.to_string());
    let socket = match pinger.socket(ip) {
        Ok(s) => s,
        Err(msg) => {
            return Outcome {
                data: ResultData::Ping(result),
                error: Some(ProbeError::new(ProbeErrorCode::IcmpUnavailable, msg)),
            }
        }
    };
    let ident = pinger.ident();
    let timeout = Duration::from_millis(o.timeout_ms as u64);
    let start = tokio::time::Instant::now();
    let count = o.count.max(1) as u16;
    let pings = (0..count).map(|seq| async move {
        tokio::time::sleep_until(start + Duration::from_millis(o.interval_ms as u64 * seq as u64))
            .await;
        (seq, socket.ping(ip, ident, seq, timeout).await)
    });
    let mut last_error = None;
    for (seq, outcome) in join_all(pings).await {
        result.sent += 1;
        match outcome {
            Ok(reply) => {
                result.received += 1;
                result.replies.push(PingReply {
                    seq,
                    rtt_ms: ms(reply.rtt),
                    ttl: reply.ttl,
                });
            }
            Err(Failure::Timeout) => {}
            Err(Failure::Unreachable(e)) => last_error = Some(format!("icmp_seq {seq}: {e}")),
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
        Some(e) => ProbeError::new(
            ProbeErrorCode::Unreachable,
            format!("ping {ip} failed: {e}"),
        ),
        None => ProbeError::new(
            ProbeErrorCode::Timeout,
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
        let ids: std::collections::HashSet<u16> = (0..65_536).map(|_| p.ident()).collect();
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
