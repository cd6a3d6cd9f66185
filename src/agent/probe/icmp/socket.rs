//! The ICMP socket itself: opening a raw or datagram socket with the options the agent needs,
//! and reading packets and error queue entries with their control messages (the kernel's
//! receive timestamp, the TTL, what an ICMP error said).

use std::io::{self, IoSliceMut};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6,
    SockaddrLike, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::packet::Family;

/// Receive buffer asked for a shared ICMP socket (the kernel caps it at net.core.rmem_max).
/// Every reply to every ping in flight lands in that one socket, and a raw socket also gets
/// every other ICMP packet of the host: the default (~200 KB) overflowed at ~2 500 replies per
/// second here, and each dropped reply read as a timeout.
pub(super) const RECV_BUFFER: usize = 4 << 20;

/// A packet, or an entry of the error queue, as the socket received it.
pub(super) struct Datagram {
    /// Who sent the packet; for an error queue entry, where the request it is about went.
    pub(super) from: Option<IpAddr>,
    /// The kernel's receive timestamp (wall clock).
    pub(super) kernel_at: Option<SystemTime>,
    /// When the agent read it.
    pub(super) read_at: Instant,
    pub(super) ttl: Option<u8>,
    /// What an error queue entry says.
    pub(super) error: Option<QueuedError>,
}

/// What an entry of a datagram socket's error queue says (`struct sock_extended_err`).
pub(super) struct QueuedError {
    /// Who reported it (the router or host that sent the ICMP message).
    pub(super) from: Option<IpAddr>,
    pub(super) origin: u8,
    pub(super) kind: u8,
    pub(super) code: u8,
    pub(super) errno: nix::errno::Errno,
}

/// Opens the first of `types` the system allows; a raw socket keeps only answers to requests
/// that carry `cookie`.
pub(super) fn open_socket(
    family: Family,
    types: &[Type],
    cookie: &[u8; 8],
) -> io::Result<(Socket, bool)> {
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
        socket.attach_filter(&family.raw_filter(cookie))?;
    } else if family.v6 {
        // ICMP errors reach a datagram socket only through its error queue.
        setsockopt(&socket, sockopt::Ipv6RecvErr, &true)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvErr, &true)?;
    }
    Ok((socket, raw))
}

/// Runs `read` (one packet or queue entry, read and handed on) until the queue is empty;
/// `try_io` then clears the readiness. On another error it stops too: a datagram socket
/// returns a pending ICMP error once in place of a packet (the error queue has the details),
/// and the packets are still there for the next round.
pub(super) fn drain(
    socket: &UdpSocket,
    interest: Interest,
    mut read: impl FnMut() -> io::Result<()>,
) {
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

pub(super) fn ip_of(a: &SockaddrStorage) -> Option<IpAddr> {
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
pub(super) fn receive(
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
