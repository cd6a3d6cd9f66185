//! ICMP echo over one shared socket per address family, timed the way iputils `ping` times it:
//! the wall clock read right before `sendto`, against the kernel's receive timestamp of the
//! reply (`SO_TIMESTAMPNS`). Timing the reply when the agent's task wakes instead adds the
//! wake-up latency (~0.2 ms after an idle 50 ms on a small VM) to every RTT.
//!
//! A raw socket (root or CAP_NET_RAW) is preferred; it receives every ICMP packet of the host,
//! so a socket filter keeps only echo replies and ICMP errors. Without the privilege, a
//! datagram ("ping") socket is used, which `net.ipv4.ping_group_range` must allow; the kernel
//! then picks the echo identifier, delivers only replies to this socket, and queues ICMP
//! errors on its error queue (`IP_RECVERR`). Either way an ICMP error that answers one of our
//! requests (destination unreachable, time exceeded) reads as `unreachable` at once, not as a
//! timeout.

mod packet;
mod socket;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::MsgFlags;
use nix::sys::time::TimeSpec;
use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use socket2::{SockAddr, SockRef, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::agent::AbortOnDrop;
use packet::{Family, Parsed, PAYLOAD_LEN, V4, V6};
use socket::{drain, open_socket, receive, Datagram};

/// What answered one echo request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rtt: Duration,
    pub ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No answer within the timeout.
    Timeout,
    /// The request could not be sent, or a router or the host answered with an ICMP error.
    Unreachable(String),
}

struct Waiter {
    dst: IpAddr,
    tx: oneshot::Sender<Answer>,
}

enum Answer {
    Reply(Datagram),
    Error {
        from: Option<IpAddr>,
        what: &'static str,
    },
}

struct Shared {
    /// Tokio's datagram socket type only registers the descriptor with the runtime; what is
    /// sent and received on it is ICMP.
    socket: UdpSocket,
    family: Family,
    raw: bool,
    /// Starts every payload, so replies to another program's (or agent's) pings that happen
    /// to carry our identifier and sequence are not taken for ours.
    cookie: [u8; 8],
    /// Packets read from the socket (all of them, ours or not).
    packets_read: AtomicU64,
    /// Waiting requests by (identifier, sequence); the identifier is 0 on a datagram socket,
    /// where the kernel sets it and delivers only replies to this socket.
    waiting: Mutex<HashMap<(u16, u16), Waiter>>,
}

/// One ICMP socket and the task that reads it.
pub struct Echo {
    shared: Arc<Shared>,
    /// Sequence numbers of a datagram socket, whose identifier is fixed.
    next_seq: AtomicU16,
    _reader: AbortOnDrop<()>,
}

impl Echo {
    /// Opens the socket for IPv4 or IPv6 and starts reading it (needs a Tokio runtime).
    pub fn open(v6: bool) -> io::Result<Echo> {
        Self::open_as(v6, &[Type::RAW, Type::DGRAM])
    }

    /// Opens the first of these socket types the system allows.
    fn open_as(v6: bool, types: &[Type]) -> io::Result<Echo> {
        let family = if v6 { V6 } else { V4 };
        let cookie = rand::random();
        let (socket, raw) = open_socket(family, types, &cookie)?;
        let shared = Arc::new(Shared {
            socket: UdpSocket::from_std(socket.into())?,
            family,
            raw,
            cookie,
            packets_read: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
        });
        let reader = tokio::spawn(read_loop(shared.clone()));
        Ok(Echo {
            shared,
            next_seq: AtomicU16::new(0),
            _reader: AbortOnDrop(reader),
        })
    }

    /// Sends one echo request to `dst` and waits up to `timeout` for its answer. `ident` and
    /// `seq` go on the wire of a raw socket; the caller keeps them unique among pings in
    /// flight. A datagram socket numbers its requests itself.
    pub async fn ping(
        &self,
        dst: IpAddr,
        ident: u16,
        seq: u16,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let shared = &*self.shared;
        let (ident, seq) = if shared.raw {
            (ident, seq)
        } else {
            (0, self.next_seq.fetch_add(1, Ordering::Relaxed))
        };
        let (tx, rx) = oneshot::channel();
        let _waiting = shared.wait_for((ident, seq), Waiter { dst, tx })?;
        let mut packet = [0u8; 8 + PAYLOAD_LEN];
        shared
            .family
            .echo_request(&mut packet, ident, seq, &shared.cookie);
        let to = SockAddr::from(SocketAddr::new(dst, 0));
        // A datagram socket also fails a send with the error an ICMP message reported for an
        // earlier request (to any host; the details are in the error queue, for the reader),
        // once per such message. An error that comes back on every try is this request's own.
        let tries = if shared.raw { 1 } else { 3 };
        let mut sent = shared.send(&packet, &to).await;
        for _ in 1..tries {
            if sent.is_ok() {
                break;
            }
            sent = shared.send(&packet, &to).await;
        }
        let (sent_wall, sent) =
            sent.map_err(|e| Failure::Unreachable(format!("sending failed: {e}")))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Answer::Reply(d))) => Ok(Reply {
                rtt: rtt(sent_wall, sent, &d),
                ttl: d.ttl,
            }),
            Ok(Ok(Answer::Error { from, what })) => Err(Failure::Unreachable(match from {
                Some(from) => format!("{what} (reported by {from})"),
                None => what.to_string(),
            })),
            // The reader is gone (it only stops when the socket fails) or time is up.
            Ok(Err(_)) | Err(_) => Err(Failure::Timeout),
        }
    }
}

/// The kernel's receive time minus the send time, unless the wall clock was stepped in
/// between (then it disagrees with the monotonic clock, and the time the reply was read is
/// used; it can only read later than the kernel's).
fn rtt(sent_wall: SystemTime, sent: Instant, d: &Datagram) -> Duration {
    let read = d.read_at.saturating_duration_since(sent);
    match d.kernel_at.map(|at| at.duration_since(sent_wall)) {
        Some(Ok(kernel)) if kernel <= read + Duration::from_millis(1) => kernel,
        _ => read,
    }
}

/// Removes a waiting request when its ping ends, whichever way (also when it is cancelled).
struct Registration<'a> {
    shared: &'a Shared,
    key: (u16, u16),
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        // The key is refused while it is taken, so the entry (if still there) is ours.
        self.shared.waiting().remove(&self.key);
    }
}

impl Shared {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<(u16, u16), Waiter>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_for(&self, key: (u16, u16), waiter: Waiter) -> Result<Registration<'_>, Failure> {
        use std::collections::hash_map::Entry;
        match self.waiting().entry(key) {
            Entry::Occupied(_) => {
                return Err(Failure::Unreachable(format!(
                    "ICMP identifier {} sequence {} is already in flight",
                    key.0, key.1
                )))
            }
            Entry::Vacant(v) => v.insert(waiter),
        };
        Ok(Registration { shared: self, key })
    }

    /// Sends a packet; the clocks as read right before it left.
    async fn send(&self, packet: &[u8], to: &SockAddr) -> io::Result<(SystemTime, Instant)> {
        self.socket
            .async_io(Interest::WRITABLE, || {
                // Read the clocks as late as possible: the RTT runs from here.
                let at = (SystemTime::now(), Instant::now());
                SockRef::from(&self.socket).send_to(packet, to).map(|_| at)
            })
            .await
    }

    /// Hands `answer` to the request waiting under `key`, if `is_ours` says it answers that one.
    fn answer(&self, key: (u16, u16), is_ours: impl FnOnce(&Waiter) -> bool, answer: Answer) {
        use std::collections::hash_map::Entry;
        if let Entry::Occupied(waiter) = self.waiting().entry(key) {
            if is_ours(waiter.get()) {
                let _ = waiter.remove().tx.send(answer);
            }
        }
    }

    /// Hands a received packet to the request it answers, if one is waiting.
    fn deliver(&self, packet: &[u8], d: Datagram) {
        self.packets_read.fetch_add(1, Ordering::Relaxed);
        let Some(parsed) = self.family.parse(packet, self.raw) else {
            return;
        };
        let ident = |i: u16| if self.raw { i } else { 0 };
        match parsed {
            Parsed::Reply {
                ident: i,
                seq,
                data,
            } => {
                let from = d.from;
                let is_ours = |w: &Waiter| Some(w.dst) == from && data.starts_with(&self.cookie);
                self.answer((ident(i), seq), is_ours, Answer::Reply(d));
            }
            Parsed::Error {
                ident: i,
                seq,
                dst,
                what,
            } => {
                let answer = Answer::Error { from: d.from, what };
                self.answer((ident(i), seq), |w| w.dst == dst, answer);
            }
        }
    }

    /// Hands an entry of a datagram socket's error queue to the request it is about. The
    /// entry holds the request as sent, its destination, and what the ICMP message said.
    fn deliver_queued_error(&self, request: &[u8], d: Datagram) {
        let (Some(dst), Some(e), Some(&kind)) = (d.from, d.error, request.first()) else {
            return;
        };
        let Some(echo) = EchoReplyPacket::new(request) else {
            return;
        };
        if kind != self.family.echo_request {
            return;
        }
        let icmp = e.origin
            == if self.family.v6 {
                nix::libc::SO_EE_ORIGIN_ICMP6
            } else {
                nix::libc::SO_EE_ORIGIN_ICMP
            };
        let what = if icmp {
            self.family.error(e.kind, e.code)
        } else {
            None
        };
        // Not from an ICMP message (a local error such as a too-long message): its errno.
        let what = what.unwrap_or(e.errno.desc());
        let answer = Answer::Error { from: e.from, what };
        self.answer((0, echo.get_sequence_number()), |w| w.dst == dst, answer);
    }
}

async fn read_loop(shared: Arc<Shared>) {
    // Big enough for any ICMP error (at most 576 bytes for IPv4, 1280 for IPv6) and for
    // replies to our own requests; longer packets are not ours and are cut short.
    let mut buf = vec![0u8; 1500];
    // Room for every control message either queue may carry: the receive timestamp, the TTL
    // or hop limit, and an error queue entry's description and reporter.
    let mut control = nix::cmsg_space!(
        TimeSpec,
        i32,
        nix::libc::sock_extended_err,
        nix::libc::sockaddr_in6
    );
    let socket = &shared.socket;
    // Only a datagram socket has an error queue to read; on a raw one, error readiness that
    // nothing clears would wake this loop over and over.
    let interest = if shared.raw {
        Interest::READABLE
    } else {
        Interest::READABLE | Interest::ERROR
    };
    loop {
        let ready = match socket.ready(interest).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "ICMP socket failed; pings will time out");
                return;
            }
        };
        if ready.is_error() && !shared.raw {
            drain(socket, Interest::ERROR, || {
                let (len, d) = receive(socket, &mut buf, &mut control, MsgFlags::MSG_ERRQUEUE)?;
                shared.deliver_queued_error(&buf[..len], d);
                Ok(())
            });
        }
        if ready.is_readable() {
            drain(socket, Interest::READABLE, || {
                let (len, d) = receive(socket, &mut buf, &mut control, MsgFlags::empty())?;
                shared.deliver(&buf[..len], d);
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` on a thread of its own in a network namespace of its own (only `lo`, up), after
    /// running `setup` there, so that the host's ICMP settings are left alone.
    fn in_own_netns<F: std::future::Future<Output = ()>>(
        setup: &'static [&'static str],
        test: impl FnOnce() -> F + Send + 'static,
    ) {
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("needs root");
            for cmd in ["ip link set lo up"].iter().chain(setup) {
                let ok = std::process::Command::new("sh").args(["-c", cmd]).status();
                assert!(ok.unwrap().success(), "{cmd}");
            }
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(test());
        })
        .join()
        .unwrap();
    }

    /// Datagram ICMP sockets allowed for root's group: the socket a non-root agent gets.
    #[test]
    fn a_datagram_socket_pings_without_privilege_and_numbers_its_requests_itself() {
        let setup = &[
            "sysctl -qw net.ipv4.ping_group_range='0 0'",
            "nft 'add table ip t; add chain ip t i { type filter hook input priority 0; }; \
             add rule ip t i ip daddr 127.0.0.2 icmp type echo-request \
             reject with icmp type host-unreachable'",
        ];
        in_own_netns(setup, || async {
            let echo = Echo::open_as(false, &[Type::DGRAM]).unwrap();
            assert!(!echo.shared.raw);
            let lo = IpAddr::from([127, 0, 0, 1]);
            // Ten pings in flight at once with the same identifier and sequence: the kernel
            // sets the identifier, the socket numbers them apart.
            let pings = (0..10).map(|_| echo.ping(lo, 1, 0, Duration::from_secs(2)));
            for reply in futures_util::future::join_all(pings).await {
                let reply = reply.unwrap();
                assert_eq!(reply.ttl, Some(64));
                assert!(reply.rtt < Duration::from_secs(1));
            }
            assert!(echo.shared.waiting().is_empty());
            // 127.0.0.2 rejects echo requests with host-unreachable. The error comes back
            // through the socket's error queue, while pings to 127.0.0.1 sent at the same
            // time are not failed by it.
            let to = |ip: [u8; 4]| echo.ping(IpAddr::from(ip), 1, 0, Duration::from_secs(2));
            let (rejected, answered) = futures_util::future::join(
                futures_util::future::join_all((0..5).map(|_| to([127, 0, 0, 2]))),
                futures_util::future::join_all((0..5).map(|_| to([127, 0, 0, 1]))),
            )
            .await;
            for r in rejected {
                let expected = "destination host unreachable (reported by 127.0.0.2)";
                assert_eq!(r, Err(Failure::Unreachable(expected.into())));
            }
            assert!(answered.iter().all(Result::is_ok), "{answered:?}");
            // No route at all (the namespace has only `lo`): the send itself fails.
            let unrouted = echo.ping(IpAddr::from([10, 9, 9, 9]), 1, 0, Duration::from_secs(2));
            let expected = "sending failed: Network is unreachable (os error 101)";
            assert_eq!(unrouted.await, Err(Failure::Unreachable(expected.into())));
            // With echo answers turned off: a timeout, and the request is forgotten.
            let off = "sysctl -qw net.ipv4.icmp_echo_ignore_all=1";
            let ok = std::process::Command::new("sh").args(["-c", off]).status();
            assert!(ok.unwrap().success());
            let lost = echo.ping(lo, 1, 0, Duration::from_millis(200)).await;
            assert_eq!(lost, Err(Failure::Timeout));
            assert!(echo.shared.waiting().is_empty());
        });
    }

    /// A raw socket gets a copy of every ICMP packet of the host; its filter lets through only
    /// what can answer our requests. Pinging itself, the host receives each echo request too,
    /// and a second socket (another agent on the host) sees the replies to the first's pings.
    #[test]
    fn a_raw_socket_reads_only_answers_not_the_hosts_other_icmp() {
        in_own_netns(&[], || async {
            for (v6, lo) in [(false, "127.0.0.1"), (true, "::1")] {
                let echo = Echo::open_as(v6, &[Type::RAW]).unwrap();
                let other = Echo::open_as(v6, &[Type::RAW]).unwrap();
                assert!(echo.shared.raw);
                for seq in 0..3 {
                    let reply = echo.ping(lo.parse().unwrap(), 7, seq, Duration::from_secs(2));
                    assert_eq!(reply.await.unwrap().ttl, Some(64), "{lo}");
                }
                let reply = other.ping(lo.parse().unwrap(), 8, 0, Duration::from_secs(2));
                assert!(reply.await.is_ok(), "{lo}");
                // Three replies; without the filter also the three requests (and on IPv6
                // whatever multicast listener reports the namespace sends), and the other's.
                assert_eq!(echo.shared.packets_read.load(Ordering::Relaxed), 3, "{lo}");
                // Its own one reply, not the first socket's three (another cookie).
                assert_eq!(other.shared.packets_read.load(Ordering::Relaxed), 1, "{lo}");
            }
        });
    }

    #[test]
    fn a_stepped_wall_clock_falls_back_to_the_monotonic_one() {
        let sent = Instant::now();
        let sent_wall = SystemTime::now();
        let d = |kernel_at| Datagram {
            from: None,
            kernel_at,
            read_at: sent + Duration::from_millis(10),
            ttl: None,
            error: None,
        };
        let kernel = sent_wall + Duration::from_micros(9_800);
        assert_eq!(
            rtt(sent_wall, sent, &d(Some(kernel))),
            Duration::from_micros(9_800)
        );
        // Stepped back, or forward by an hour, or no timestamp: the time it was read.
        for at in [
            Some(sent_wall - Duration::from_secs(1)),
            Some(sent_wall + Duration::from_secs(3600)),
            None,
        ] {
            assert_eq!(rtt(sent_wall, sent, &d(at)), Duration::from_millis(10));
        }
    }
}
