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

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6,
    SockaddrLike, SockaddrStorage,
};
use nix::sys::time::TimeSpec;
use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{IcmpCode, IcmpType};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::{MutablePacket, Packet};
use socket2::{Domain, Protocol, SockAddr, SockFilter, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::agent::AbortOnDrop;

/// Receive buffer asked for a shared ICMP socket (the kernel caps it at net.core.rmem_max).
/// Every reply to every ping in flight lands in that one socket, and a raw socket also gets
/// every other ICMP packet of the host: the default (~200 KB) overflowed at ~2 500 replies per
/// second here, and each dropped reply read as a timeout.
const RECV_BUFFER: usize = 4 << 20;

/// Bytes of data after the echo header, as iputils sends by default (84-byte IPv4 packets).
const PAYLOAD_LEN: usize = 56;

/// ICMP and ICMPv6 echo messages share one layout (RFC 792, RFC 4443 §4): type, code,
/// checksum, identifier, sequence number, data. Only the type numbers differ.
#[derive(Clone, Copy)]
struct Family {
    v6: bool,
    echo_request: u8,
    echo_reply: u8,
    /// The types that can answer an echo request: the reply, and the errors `error` names.
    answers: &'static [u8],
}

const V4: Family = Family {
    v6: false,
    echo_request: 8,
    echo_reply: 0,
    answers: &[0, 3, 11, 12],
};
const V6: Family = Family {
    v6: true,
    echo_request: 128,
    echo_reply: 129,
    answers: &[129, 1, 2, 3, 4],
};

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

/// A packet, or an entry of the error queue, as the socket received it.
struct Datagram {
    /// Who sent the packet; for an error queue entry, where the request it is about went.
    from: Option<IpAddr>,
    /// The kernel's receive timestamp (wall clock).
    kernel_at: Option<SystemTime>,
    /// When the agent read it.
    read_at: Instant,
    ttl: Option<u8>,
    /// What an error queue entry says.
    error: Option<QueuedError>,
}

/// What a received packet says about one of our echo requests.
#[derive(Debug, PartialEq)]
enum Parsed<'a> {
    Reply {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    /// An ICMP error quoting our request to `dst`.
    Error {
        ident: u16,
        seq: u16,
        dst: IpAddr,
        what: &'static str,
    },
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

fn open_socket(family: Family, types: &[Type]) -> io::Result<(Socket, bool)> {
    let (domain, protocol) = if family.v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let mut first_error = None;
    let Some((socket, raw)) =
        types
            .iter()
            .find_map(|&t| match Socket::new(domain, t, Some(protocol)) {
                Ok(s) => Some((s, t == Type::RAW)),
                Err(e) => {
                    first_error.get_or_insert(e);
                    None
                }
            })
    else {
        return Err(first_error.unwrap_or_else(|| io::ErrorKind::Unsupported.into()));
    };
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER) {
        tracing::warn!(error = %e, "could not enlarge the ICMP receive buffer");
    }
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
    if family.v6 {
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvTtl, &true)?;
    }
    if raw {
        socket.attach_filter(&family.raw_filter())?;
    } else if family.v6 {
        // ICMP errors reach a datagram socket only through its error queue.
        setsockopt(&socket, sockopt::Ipv6RecvErr, &true)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvErr, &true)?;
    }
    Ok((socket, raw))
}

impl Echo {
    /// Opens the socket for IPv4 or IPv6 and starts reading it (needs a Tokio runtime).
    pub fn open(v6: bool) -> io::Result<Echo> {
        Self::open_as(v6, &[Type::RAW, Type::DGRAM])
    }

    /// Opens the first of these socket types the system allows.
    fn open_as(v6: bool, types: &[Type]) -> io::Result<Echo> {
        let family = if v6 { V6 } else { V4 };
        let (socket, raw) = open_socket(family, types)?;
        let shared = Arc::new(Shared {
            socket: UdpSocket::from_std(socket.into())?,
            family,
            raw,
            cookie: rand::random(),
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

/// What an entry of a datagram socket's error queue says (`struct sock_extended_err`).
struct QueuedError {
    /// Who reported it (the router or host that sent the ICMP message).
    from: Option<IpAddr>,
    origin: u8,
    kind: u8,
    code: u8,
    errno: nix::errno::Errno,
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

/// Runs `read` (one packet or queue entry, read and handed on) until the queue is empty;
/// `try_io` then clears the readiness. On another error it stops too: a datagram socket
/// returns a pending ICMP error once in place of a packet (the error queue has the details),
/// and the packets are still there for the next round.
fn drain(socket: &UdpSocket, interest: Interest, mut read: impl FnMut() -> io::Result<()>) {
    loop {
        match socket.try_io(interest, &mut read) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::debug!(error = %e, ?interest, "reading the ICMP socket");
                return;
            }
        }
    }
}

fn ip_of(a: &SockaddrStorage) -> Option<IpAddr> {
    match a.family() {
        Some(nix::sys::socket::AddressFamily::Inet) => {
            a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip()))
        }
        Some(nix::sys::socket::AddressFamily::Inet6) => {
            a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip()))
        }
        _ => None,
    }
}

/// Reads one packet (or, with `MSG_ERRQUEUE`, one error queue entry) into `buf`.
fn receive(
    socket: &impl AsRawFd,
    buf: &mut [u8],
    control: &mut [u8],
    flags: MsgFlags,
) -> io::Result<(usize, Datagram)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(control), flags)?;
    let mut d = Datagram {
        from: msg.address.as_ref().and_then(ip_of),
        kernel_at: None,
        read_at: Instant::now(),
        ttl: None,
        error: None,
    };
    for cmsg in msg.cmsgs()? {
        let (ee, from) = match cmsg {
            ControlMessageOwned::ScmTimestampns(ts) => {
                d.kernel_at = u64::try_from(ts.tv_sec())
                    .ok()
                    .map(|s| UNIX_EPOCH + Duration::new(s, ts.tv_nsec() as u32));
                continue;
            }
            ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                d.ttl = u8::try_from(t).ok();
                continue;
            }
            ControlMessageOwned::Ipv4RecvErr(ee, from) => {
                (ee, from.map(|a| IpAddr::V4(SockaddrIn::from(a).ip())))
            }
            ControlMessageOwned::Ipv6RecvErr(ee, from) => {
                (ee, from.map(|a| IpAddr::V6(SockaddrIn6::from(a).ip())))
            }
            _ => continue,
        };
        d.error = Some(QueuedError {
            from,
            origin: ee.ee_origin,
            kind: ee.ee_type,
            code: ee.ee_code,
            errno: nix::errno::Errno::from_raw(ee.ee_errno as i32),
        });
    }
    Ok((msg.bytes, d))
}

impl Family {
    /// A classic BPF program for a raw socket that keeps echo replies and the ICMP errors that
    /// can answer an echo request, and drops in the kernel every other ICMP packet of the host
    /// (echo requests the host receives, above all), so the agent does not wake up for them.
    fn raw_filter(self) -> Vec<SockFilter> {
        // Opcodes from linux/bpf_common.h.
        const LDX_B_MSH: u16 = 0xb1; // X = 4 * (packet[k] & 0xf): the IPv4 header's length
        const LD_B_IND: u16 = 0x50; // A = packet[X + k]
        const LD_B_ABS: u16 = 0x30; // A = packet[k]
        const JEQ_K: u16 = 0x15; // if A == k skip jt instructions, else skip jf
        const RET_K: u16 = 0x06; // keep k bytes of the packet (0: drop it)
        let mut program = if self.v6 {
            // A raw IPv6 socket sees the packet from its ICMPv6 header.
            vec![SockFilter::new(LD_B_ABS, 0, 0, 0)]
        } else {
            // A raw IPv4 socket sees the packet from its IP header.
            vec![
                SockFilter::new(LDX_B_MSH, 0, 0, 0),
                SockFilter::new(LD_B_IND, 0, 0, 0),
            ]
        };
        for (i, &kind) in self.answers.iter().enumerate() {
            // On a match, jump over the remaining tests and the drop to the keep.
            let to_keep = (self.answers.len() - i) as u8;
            program.push(SockFilter::new(JEQ_K, to_keep, 0, u32::from(kind)));
        }
        program.push(SockFilter::new(RET_K, 0, 0, 0));
        program.push(SockFilter::new(RET_K, 0, 0, u32::MAX));
        program
    }

    /// Writes an echo request (header and payload) into `packet`.
    fn echo_request(self, packet: &mut [u8], ident: u16, seq: u16, cookie: &[u8; 8]) {
        let mut p = MutableEchoRequestPacket::new(packet).expect("room for the echo header");
        p.set_icmp_type(IcmpType(self.echo_request));
        p.set_icmp_code(IcmpCode(0));
        p.set_identifier(ident);
        p.set_sequence_number(seq);
        p.payload_mut()[..cookie.len()].copy_from_slice(cookie);
        // The kernel fills in the ICMPv6 checksum (it covers a pseudo-header with the source
        // address, which only the kernel knows) and that of datagram sockets.
        if !self.v6 {
            let sum = pnet_packet::util::checksum(p.packet(), 1);
            p.set_checksum(sum);
        }
    }

    /// Reads an ICMP packet as received: behind its IPv4 header on a raw IPv4 socket, bare
    /// otherwise. `None` for anything that is neither an echo reply nor an ICMP error quoting
    /// an echo request.
    fn parse(self, packet: &[u8], raw: bool) -> Option<Parsed<'_>> {
        let icmp = if raw && !self.v6 {
            let ip = Ipv4Packet::new(packet)?;
            packet.get(usize::from(ip.get_header_length()) * 4..)?
        } else {
            packet
        };
        let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
        if kind == self.echo_reply {
            let echo = EchoReplyPacket::new(icmp)?;
            return Some(Parsed::Reply {
                ident: echo.get_identifier(),
                seq: echo.get_sequence_number(),
                data: &icmp[8..],
            });
        }
        let what = self.error(kind, code)?;
        // An ICMP error quotes the IP header and the start of the packet that caused it.
        let quoted = icmp.get(8..)?;
        let (dst, inner) = if self.v6 {
            let ip = Ipv6Packet::new(quoted)?;
            (IpAddr::V6(ip.get_destination()), quoted.get(40..)?)
        } else {
            let ip = Ipv4Packet::new(quoted)?;
            let len = usize::from(ip.get_header_length()) * 4;
            (IpAddr::V4(ip.get_destination()), quoted.get(len..)?)
        };
        let echo = EchoReplyPacket::new(inner)?;
        (echo.get_icmp_type().0 == self.echo_request).then(|| Parsed::Error {
            ident: echo.get_identifier(),
            seq: echo.get_sequence_number(),
            dst,
            what,
        })
    }

    /// What an ICMP error type and code mean, in the words of iputils `ping`.
    fn error(self, kind: u8, code: u8) -> Option<&'static str> {
        Some(match (self.v6, kind, code) {
            (false, 3, 0) => "destination net unreachable",
            (false, 3, 1) => "destination host unreachable",
            (false, 3, 2) => "destination protocol unreachable",
            (false, 3, 3) => "destination port unreachable",
            (false, 3, 4) => "fragmentation needed",
            (false, 3, 5) => "source route failed",
            (false, 3, 6) => "destination net unknown",
            (false, 3, 7) => "destination host unknown",
            (false, 3, 9 | 10 | 13) => "communication administratively prohibited",
            (false, 3, _) => "destination unreachable",
            (false, 11, _) => "time to live exceeded",
            (false, 12, _) => "parameter problem",
            (true, 1, 0) => "no route to destination",
            (true, 1, 1) => "communication administratively prohibited",
            (true, 1, 2) => "beyond scope of source address",
            (true, 1, 3) => "address unreachable",
            (true, 1, 4) => "port unreachable",
            (true, 1, 5) => "source address failed ingress/egress policy",
            (true, 1, 6) => "reject route to destination",
            (true, 1, _) => "destination unreachable",
            (true, 2, _) => "packet too big",
            (true, 3, _) => "hop limit exceeded",
            (true, 4, _) => "parameter problem",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE: [u8; 8] = *b"netcheck";

    fn request(family: Family, ident: u16, seq: u16) -> Vec<u8> {
        let mut p = vec![0u8; 8 + PAYLOAD_LEN];
        family.echo_request(&mut p, ident, seq, &COOKIE);
        p
    }

    /// An IPv4 header (no options) from `src` to `dst` in front of `payload`.
    fn ipv4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn the_raw_socket_filter_keeps_exactly_the_types_parse_reads() {
        for family in [V4, V6] {
            for kind in 0..=255u8 {
                let read = kind == family.echo_reply || family.error(kind, 0).is_some();
                assert_eq!(read, family.answers.contains(&kind), "type {kind}");
            }
        }
    }

    #[test]
    fn an_ipv4_echo_request_has_a_valid_checksum_and_our_payload() {
        let p = request(V4, 0x1234, 7);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&p[8..16], &COOKIE);
        // The one's-complement sum over a packet with a correct checksum is zero.
        assert_eq!(pnet_packet::util::checksum(&p, 99), 0);
    }

    #[test]
    fn replies_are_read_behind_the_ip_header_of_a_raw_ipv4_socket() {
        let mut reply = request(V4, 42, 3);
        reply[0] = 0;
        let packet = ipv4([10, 0, 0, 2], [10, 0, 0, 1], &reply);
        assert_eq!(
            V4.parse(&packet, true),
            Some(Parsed::Reply {
                ident: 42,
                seq: 3,
                data: &reply[8..]
            })
        );
        // A datagram socket delivers the bare ICMP message.
        assert!(matches!(
            V4.parse(&reply, false),
            Some(Parsed::Reply { seq: 3, .. })
        ));
        // Someone's echo request (raw sockets see incoming ones too) is not an answer.
        let req = ipv4([10, 0, 0, 2], [10, 0, 0, 1], &request(V4, 42, 3));
        assert_eq!(V4.parse(&req, true), None);
    }

    #[test]
    fn an_icmp_error_is_matched_to_the_request_it_quotes() {
        let quoted = ipv4([10, 0, 0, 1], [10, 0, 0, 9], &request(V4, 42, 5));
        let mut error = vec![3, 1, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&quoted);
        let packet = ipv4([10, 0, 0, 254], [10, 0, 0, 1], &error);
        assert_eq!(
            V4.parse(&packet, true),
            Some(Parsed::Error {
                ident: 42,
                seq: 5,
                dst: IpAddr::from([10, 0, 0, 9]),
                what: "destination host unreachable"
            })
        );
        // An error about something else (here a UDP datagram) is not ours.
        let mut udp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        udp.extend_from_slice(&ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 9],
            &[0, 53, 0, 53, 0, 8, 0, 0],
        ));
        let packet = ipv4([10, 0, 0, 254], [10, 0, 0, 1], &udp);
        assert_eq!(V4.parse(&packet, true), None);
        // Truncated packets are dropped, not read past their end.
        for cut in 0..packet.len() {
            let _ = V4.parse(&packet[..cut], true);
        }
    }

    #[test]
    fn icmpv6_errors_quote_the_ipv6_header() {
        let mut quoted = vec![0x60, 0, 0, 0, 0, 64, 58, 64];
        quoted.extend_from_slice(&[0xfd; 16]);
        let dst: std::net::Ipv6Addr = "fd00::9".parse().unwrap();
        quoted.extend_from_slice(&dst.octets());
        quoted.extend_from_slice(&request(V6, 7, 1));
        let mut error = vec![1, 3, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&quoted);
        assert_eq!(
            V6.parse(&error, true),
            Some(Parsed::Error {
                ident: 7,
                seq: 1,
                dst: IpAddr::V6(dst),
                what: "address unreachable"
            })
        );
        let mut reply = request(V6, 7, 1);
        reply[0] = 129;
        assert!(matches!(
            V6.parse(&reply, true),
            Some(Parsed::Reply {
                ident: 7,
                seq: 1,
                ..
            })
        ));
    }

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
    /// what can answer our requests. Pinging itself, the host receives each echo request too.
    #[test]
    fn a_raw_socket_reads_only_answers_not_the_hosts_other_icmp() {
        in_own_netns(&[], || async {
            for (v6, lo) in [(false, "127.0.0.1"), (true, "::1")] {
                let echo = Echo::open_as(v6, &[Type::RAW]).unwrap();
                assert!(echo.shared.raw);
                for seq in 0..3 {
                    let reply = echo.ping(lo.parse().unwrap(), 7, seq, Duration::from_secs(2));
                    assert_eq!(reply.await.unwrap().ttl, Some(64), "{lo}");
                }
                // Three replies; without the filter also the three requests (and on IPv6
                // whatever multicast listener reports the namespace sends).
                assert_eq!(echo.shared.packets_read.load(Ordering::Relaxed), 3, "{lo}");
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
