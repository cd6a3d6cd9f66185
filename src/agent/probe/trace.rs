//! `traceroute` and `mtr`, run by trippy-core: every TTL up to `max_hops` is probed in
//! parallel (ICMP echo, UDP or TCP SYN). A traceroute's three queries are three single-round
//! tracers at once; an mtr's packets are rounds `interval_ms` apart, as mtr's own. Hop lists
//! are read from the tracers' state. Each trace has its own ICMP identifier, so answers to
//! many concurrent traces are told apart. Queries go through the agent's pacer
//! (`pace.rs`), so traces started together share what nearby routers answer.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use trippy_core::{Builder, Port, PortDirection, Protocol, State};

use super::pace;
use super::resolve::TargetResolver;
use super::Outcome;
use crate::policy::Policy;
use netcheck_proto::check::IpVersion;
use netcheck_proto::result::ProbeErrorCode;
use netcheck_proto::result::{ProbeError, ResultData};
use netcheck_proto::trace::{
    HopRtt, MtrHop, MtrOptions, MtrResult, TraceHop, TraceProtocol, TracerouteOptions,
    TracerouteResult, TRACE_PACE_WAIT_MS, TRACE_QUERIES,
};

/// Traces one agent runs at once. Each holds a slot: its own ICMP identifier and its own
/// range of 512 sequence numbers (which trippy puts in the TCP source port and the UDP
/// destination port), so answers to concurrent traces are never taken for one another's.
const SLOTS: usize = 60;
static SLOT_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(SLOTS);
static SLOTS_TAKEN: std::sync::Mutex<u64> = std::sync::Mutex::new(0);

/// A trace's slot, given back when dropped.
struct Slot {
    index: usize,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl Slot {
    async fn take() -> Slot {
        let permit = SLOT_PERMITS
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut taken = SLOTS_TAKEN.lock().expect("slot lock");
        let index = (0..SLOTS)
            .find(|i| *taken & (1 << i) == 0)
            .expect("a permit means a free slot");
        *taken |= 1 << index;
        Slot {
            index,
            _permit: permit,
        }
    }

    /// The ICMP identifier: the slot, offset by the process so two agents on one host differ.
    fn identifier(&self) -> u16 {
        (std::process::id() as u16)
            .wrapping_mul(61)
            .wrapping_add(self.index as u16)
            | 1
    }

    /// First sequence number: 33434 (traceroute's first UDP port) plus 512 per slot.
    fn initial_sequence(&self) -> u16 {
        33434 + 512 * self.index as u16
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS_TAKEN.lock().expect("slot lock") &= !(1 << self.index);
    }
}

/// Below Linux's initial retransmission timeout of a SYN (1 s).
const TCP_PROBE_LIFETIME: Duration = Duration::from_millis(900);

/// What both types ask of the tracer.
#[derive(Clone, Copy)]
struct Plan {
    protocol: TraceProtocol,
    port: Option<u16>,
    max_hops: u8,
    timeout: Duration,
    rounds: usize,
    /// Least time between the starts of two rounds.
    interval: Duration,
}

/// One hop as the tracer saw it: the most frequent address and every answer's round trip.
struct SeenHop {
    ttl: u8,
    address: Option<IpAddr>,
    sent: usize,
    rtts: Vec<f64>,
    /// Lost answers may be the routers' rate limit (see `pace.rs`).
    rate_limited: bool,
}

struct Trace {
    resolved: IpAddr,
    reached: bool,
    hops: Vec<SeenHop>,
    /// Its probes went out beyond what nearby routers answer.
    over_rate: bool,
}

/// An mtr: its rounds are paced by the tracer itself; each round's probes are also placed in
/// the agent's budget as they go (never held back), so a round beyond what routers answer
/// (a short interval, or other traces at once) marks the hops that lost answers.
async fn paced_mtr(
    targets: &TargetResolver,
    target: &str,
    ip_version: Option<IpVersion>,
    policy: &Policy,
    plan: &Plan,
) -> Result<Trace, (Option<IpAddr>, ProbeError)> {
    let (ip, _) = targets
        .resolve(target, ip_version, policy)
        .await
        .map_err(|e| (None, e))?;
    let pacer = pace::for_family(ip.is_ipv4());
    let over = Arc::new(AtomicBool::new(false));
    let rounds = plan.rounds;
    let interval = plan.interval;
    let placing = {
        let over = over.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            for _ in 0..rounds {
                let now = tick.tick().await;
                if pacer.place(now, Duration::ZERO).over {
                    over.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let _in_flight = pacer.enter();
    let start = tokio::time::Instant::now();
    let traced = run_tracer(ip, plan).await;
    placing.abort();
    let mut t = traced.map_err(|e| (Some(ip), e))?;
    t.over_rate =
        over.load(Ordering::Relaxed) || pacer.overrun_since(start) || pacer.contended_since(start);
    for h in &mut t.hops {
        h.rate_limited = t.over_rate;
    }
    Ok(t)
}

/// One tracer to `ip`, `plan.rounds` rounds.
async fn run_tracer(ip: IpAddr, plan: &Plan) -> Result<Trace, ProbeError> {
    let slot = Slot::take().await;
    let (protocol, ports) = match plan.protocol {
        TraceProtocol::Icmp => (Protocol::Icmp, PortDirection::None),
        TraceProtocol::Udp => (
            Protocol::Udp,
            match plan.port {
                Some(p) => PortDirection::FixedDest(Port(p)),
                // Classic traceroute: the destination port climbs with the sequence.
                None => PortDirection::FixedSrc(Port(20000 + slot.index as u16)),
            },
        ),
        TraceProtocol::Tcp => (
            Protocol::Tcp,
            PortDirection::FixedDest(Port(plan.port.unwrap_or(80))),
        ),
    };
    let tracer = Builder::new(ip)
        .protocol(protocol)
        .port_direction(ports)
        .trace_identifier(slot.identifier())
        .initial_sequence(slot.initial_sequence())
        .first_ttl(1)
        .max_ttl(plan.max_hops)
        .max_inflight(plan.max_hops)
        .max_rounds(Some(plan.rounds))
        .min_round_duration(plan.interval)
        .max_round_duration(plan.timeout.max(plan.interval))
        // After the target answers, wait this long for slower answers from earlier hops (all
        // TTLs were sent at once, so they are normally in already).
        .grace_duration(Duration::from_millis(10))
        // A TCP probe's socket closes before the kernel's first SYN retransmission (1 s):
        // a retransmitted SYN is one more probe at every router, spending their ICMP budget.
        .tcp_connect_timeout(plan.timeout.min(TCP_PROBE_LIFETIME))
        .read_timeout(Duration::from_millis(10))
        .max_samples(plan.rounds.max(1))
        .build()
        .map_err(|e| ProbeError::new(ProbeErrorCode::TraceFailed, e.to_string()))?;
    // The tracer blocks its thread (its own socket and clock) for the whole trace.
    let state = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        tracer.run().map(|()| tracer.snapshot())
    })
    .await
    .map_err(|e| ProbeError::new(ProbeErrorCode::TraceFailed, e.to_string()))?
    .map_err(|e| {
        ProbeError::new(
            ProbeErrorCode::TraceFailed,
            format!("the trace failed: {e}"),
        )
    })?;
    Ok(read(&state, ip, plan.max_hops))
}

/// A traceroute's queries as single-round tracers. They are placed in the routers' budget
/// before this trace counts as in flight, so a lone trace goes at once; with others running
/// they may wait (`pace.rs`).
async fn queries(ip: IpAddr, plan: &Plan) -> Result<Vec<Trace>, ProbeError> {
    let pacer = pace::for_family(ip.is_ipv4());
    let now = tokio::time::Instant::now();
    let wait = Duration::from_millis(TRACE_PACE_WAIT_MS);
    let mut slots = (0..TRACE_QUERIES)
        .map(|_| pacer.place(now, wait))
        .collect::<Vec<_>>()
        .into_iter();
    let _in_flight = pacer.enter();
    let query = |slot: pace::Placement, max_hops: u8| async move {
        tokio::time::sleep_until(slot.at).await;
        let plan = Plan { max_hops, ..*plan };
        let mut t = run_tracer(ip, &plan).await?;
        t.over_rate = slot.over;
        Ok::<_, ProbeError>(t)
    };
    let mut traces: Vec<Trace> = Vec::with_capacity(TRACE_QUERIES);
    let mut reach = plan.max_hops;
    if plan.protocol == TraceProtocol::Udp {
        // The target answers UDP with port-unreachable errors, which it rate-limits like any
        // router: a query sprays every TTL past the target at it, so the other queries stop
        // at the TTL the first one found instead of finding the target's limiter spent.
        let first = query(slots.next().expect("three queries"), reach).await?;
        if first.reached {
            reach = first.hops.len() as u8;
        }
        traces.push(first);
    }
    let rest = futures_util::future::join_all(slots.map(|slot| query(slot, reach))).await;
    for t in rest {
        traces.push(t?);
    }
    if pacer.overrun_since(now) || pacer.contended_since(now) {
        for t in &mut traces {
            t.over_rate = true;
        }
    }
    Ok(traces)
}

/// Several single-round traces of one target as one: per TTL the address most of them saw,
/// and all their round trips.
fn merge(traces: Vec<Trace>, target: IpAddr, max_hops: u8) -> Trace {
    let reached_at = traces
        .iter()
        .filter(|t| t.reached)
        .map(|t| t.hops.len() as u8)
        .min();
    let last = reached_at.unwrap_or(max_hops);
    let hops = (1..=last)
        .map(|ttl| {
            let seen: Vec<&SeenHop> = traces
                .iter()
                .filter_map(|t| t.hops.get(ttl as usize - 1))
                .collect();
            let mut counts: Vec<(IpAddr, usize)> = Vec::new();
            for a in seen.iter().filter_map(|h| h.address) {
                match counts.iter_mut().find(|(b, _)| *b == a) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((a, 1)),
                }
            }
            // A query that went out over the routers' rate and got no answer here.
            let rate_limited = traces.iter().any(|t| {
                t.over_rate
                    && t.hops
                        .get(ttl as usize - 1)
                        .is_some_and(|h| h.rtts.is_empty())
            });
            SeenHop {
                ttl,
                address: counts.iter().max_by_key(|(_, n)| *n).map(|(a, _)| *a),
                sent: seen.iter().map(|h| h.sent).sum(),
                rtts: seen.iter().flat_map(|h| h.rtts.iter().copied()).collect(),
                rate_limited,
            }
        })
        .collect();
    Trace {
        resolved: target,
        reached: reached_at.is_some(),
        hops,
        over_rate: traces.iter().any(|t| t.over_rate),
    }
}

/// The hop list from the tracer's state: TTL 1 up to the target (when it answered) or
/// `max_hops`, silent TTLs included as `None`.
fn read(state: &State, target: IpAddr, max_hops: u8) -> Trace {
    let seen = state.hops();
    let reached_at = seen
        .iter()
        .find(|h| h.addrs().any(|a| *a == target))
        .map(|h| h.ttl());
    let last = reached_at.unwrap_or(max_hops);
    let hops = (1..=last)
        .map(|ttl| match seen.iter().find(|h| h.ttl() == ttl) {
            Some(h) => SeenHop {
                ttl,
                address: h
                    .addrs_with_counts()
                    .max_by_key(|(_, n)| **n)
                    .map(|(a, _)| *a),
                sent: h.total_sent(),
                // Lost probes are recorded as zero-length samples.
                rtts: h
                    .samples()
                    .iter()
                    .filter(|d| !d.is_zero())
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .collect(),
                rate_limited: false,
            },
            None => SeenHop {
                ttl,
                address: None,
                sent: 0,
                rtts: Vec::new(),
                rate_limited: false,
            },
        })
        .collect();
    Trace {
        resolved: target,
        reached: reached_at.is_some(),
        hops,
        over_rate: false,
    }
}

/// An unreached target fails the result, unless the check expects exactly that
/// (`expect.reached: false`, e.g. proving a firewall holds).
fn not_reached(
    reached: bool,
    target: IpAddr,
    max_hops: u8,
    expect: Option<&netcheck_proto::expect::TraceExpect>,
) -> Option<ProbeError> {
    let wanted_unreached = expect.and_then(|e| e.reached) == Some(false);
    (!reached && !wanted_unreached).then(|| {
        ProbeError::new(
            ProbeErrorCode::NotReached,
            format!("{target} did not answer within {max_hops} hops"),
        )
    })
}

pub async fn traceroute(
    targets: &TargetResolver,
    target: &str,
    o: &TracerouteOptions,
    policy: &Policy,
) -> Outcome {
    // The queries run as parallel single-round tracers: a trace waits for one round's
    // silence (timeout_ms), not one per query, which is most of a blackholed trace's time.
    let plan = Plan {
        protocol: o.protocol,
        port: o.port,
        max_hops: o.max_hops,
        timeout: Duration::from_millis(o.timeout_ms as u64),
        rounds: 1,
        interval: Duration::ZERO,
    };
    let empty = |ip: Option<IpAddr>| TracerouteResult {
        resolved_address: ip.map(|i| i.to_string()),
        protocol: o.protocol,
        reached: false,
        hops: Vec::new(),
        assertions: Vec::new(),
    };
    let traced = match targets.resolve(target, o.ip_version, policy).await {
        Err(e) => Err((None, e)),
        Ok((ip, _)) => queries(ip, &plan)
            .await
            .map(|traces| merge(traces, ip, o.max_hops))
            .map_err(|e| (Some(ip), e)),
    };
    match traced {
        Err((ip, e)) => Outcome {
            data: ResultData::Traceroute(empty(ip)),
            error: Some(e),
        },
        Ok(t) => Outcome {
            error: not_reached(t.reached, t.resolved, o.max_hops, o.expect.as_ref()),
            data: ResultData::Traceroute(TracerouteResult {
                resolved_address: Some(t.resolved.to_string()),
                protocol: o.protocol,
                reached: t.reached,
                hops: t
                    .hops
                    .into_iter()
                    .map(|h| TraceHop {
                        ttl: h.ttl,
                        address: h.address.map(|a| a.to_string()),
                        rtt_ms: h.rtts,
                        rate_limited: h.rate_limited,
                        asn: None,
                        network: None,
                        geo: None,
                    })
                    .collect(),
                assertions: Vec::new(),
            }),
        },
    }
}

pub async fn mtr(
    targets: &TargetResolver,
    target: &str,
    o: &MtrOptions,
    policy: &Policy,
) -> Outcome {
    let plan = Plan {
        protocol: o.protocol,
        port: o.port,
        max_hops: o.max_hops,
        timeout: Duration::from_millis(o.timeout_ms as u64),
        rounds: o.packets.max(1) as usize,
        interval: Duration::from_millis(o.interval_ms as u64),
    };
    let empty = |ip: Option<IpAddr>| MtrResult {
        resolved_address: ip.map(|i| i.to_string()),
        protocol: o.protocol,
        reached: false,
        hops: Vec::new(),
        assertions: Vec::new(),
    };
    match paced_mtr(targets, target, o.ip_version, policy, &plan).await {
        Err((ip, e)) => Outcome {
            data: ResultData::Mtr(empty(ip)),
            error: Some(e),
        },
        Ok(t) => Outcome {
            error: not_reached(t.reached, t.resolved, o.max_hops, o.expect.as_ref()),
            data: ResultData::Mtr(MtrResult {
                resolved_address: Some(t.resolved.to_string()),
                protocol: o.protocol,
                reached: t.reached,
                hops: t.hops.into_iter().map(|h| mtr_hop(h, o.packets)).collect(),
                assertions: Vec::new(),
            }),
        },
    }
}

fn mtr_hop(h: SeenHop, packets: u8) -> MtrHop {
    // A TTL the tracer never got to (past a target that answered early in a round) still
    // counts the packets it was owed as sent.
    let sent = (h.sent as u32).max(if h.address.is_none() {
        packets as u32
    } else {
        0
    });
    let received = h.rtts.len() as u32;
    MtrHop {
        ttl: h.ttl,
        address: h.address.map(|a| a.to_string()),
        rate_limited: h.rate_limited && received < sent,
        sent,
        received,
        loss_pct: if sent == 0 {
            100.0
        } else {
            100.0 * (sent - received.min(sent)) as f64 / sent as f64
        },
        rtt_ms: stats(&h.rtts),
        asn: None,
        network: None,
        geo: None,
    }
}

fn stats(rtts: &[f64]) -> Option<HopRtt> {
    if rtts.is_empty() {
        return None;
    }
    let n = rtts.len() as f64;
    let avg = rtts.iter().sum::<f64>() / n;
    let var = if rtts.len() > 1 {
        rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some(HopRtt {
        min: rtts.iter().copied().fold(f64::INFINITY, f64::min),
        avg,
        max: rtts.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        stdev: var.sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_statistics_are_those_of_mtr() {
        let s = stats(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.min, s.avg, s.max), (1.0, 2.0, 3.0));
        assert!((s.stdev - 1.0).abs() < 1e-9);
        assert!(stats(&[]).is_none());
        let hop = mtr_hop(
            SeenHop {
                ttl: 2,
                address: Some("10.0.0.1".parse().unwrap()),
                sent: 4,
                rtts: vec![1.0, 1.0, 1.0],
                rate_limited: false,
            },
            4,
        );
        assert_eq!((hop.sent, hop.received, hop.loss_pct), (4, 3, 25.0));
        let silent = mtr_hop(
            SeenHop {
                ttl: 3,
                address: None,
                sent: 0,
                rtts: vec![],
                rate_limited: true,
            },
            5,
        );
        assert_eq!((silent.sent, silent.loss_pct), (5, 100.0));
        assert!(silent.rtt_ms.is_none());
        assert!(silent.rate_limited && !hop.rate_limited);
    }
}
