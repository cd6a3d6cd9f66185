//! The ICMP and ICMPv6 echo messages themselves: building a request, reading a reply or an
//! ICMP error that quotes one of our requests, and the raw socket's filter of the types that
//! can answer one.

use std::net::IpAddr;

use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{IcmpCode, IcmpType};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::{MutablePacket, Packet};
use socket2::SockFilter;

/// Bytes of data after the echo header, as iputils sends by default (84-byte IPv4 packets).
pub(super) const PAYLOAD_LEN: usize = 56;

/// ICMP and ICMPv6 echo messages share one layout (RFC 792, RFC 4443 §4): type, code,
/// checksum, identifier, sequence number, data. Only the type numbers differ.
#[derive(Clone, Copy)]
pub(super) struct Family {
    pub(super) v6: bool,
    pub(super) echo_request: u8,
    pub(super) echo_reply: u8,
    /// The types that can answer an echo request: the reply, and the errors `error` names.
    pub(super) answers: &'static [u8],
}

pub(super) const V4: Family = Family {
    v6: false,
    echo_request: 8,
    echo_reply: 0,
    answers: &[0, 3, 11, 12],
};
pub(super) const V6: Family = Family {
    v6: true,
    echo_request: 128,
    echo_reply: 129,
    answers: &[129, 1, 2, 3, 4],
};

/// What a received packet says about one of our echo requests.
#[derive(Debug, PartialEq)]
pub(super) enum Parsed<'a> {
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

impl Family {
    /// A classic BPF program for a raw socket that keeps the echo replies that carry our
    /// `cookie` and the ICMP errors that can answer an echo request, and drops in the kernel
    /// every other ICMP packet of the host (echo requests it receives, and the replies to
    /// other programs' pings: each agent on a host would otherwise wake up for every other
    /// agent's replies), so the agent does not wake up for them.
    pub(super) fn raw_filter(self, cookie: &[u8; 8]) -> Vec<SockFilter> {
        // Opcodes from linux/bpf_common.h.
        const LDX_B_MSH: u16 = 0xb1; // X = 4 * (packet[k] & 0xf): the IPv4 header's length
        const LD_B_IND: u16 = 0x50; // A = packet[X + k]
        const LD_B_ABS: u16 = 0x30; // A = packet[k]
        const LD_W_IND: u16 = 0x40; // A = the big-endian word at packet[X + k]
        const LD_W_ABS: u16 = 0x20; // A = the big-endian word at packet[k]
        const JEQ_K: u16 = 0x15; // if A == k skip jt instructions, else skip jf
        const RET_K: u16 = 0x06; // keep k bytes of the packet (0: drop it)
        let (mut program, load_word) = if self.v6 {
            // A raw IPv6 socket sees the packet from its ICMPv6 header.
            (vec![SockFilter::new(LD_B_ABS, 0, 0, 0)], LD_W_ABS)
        } else {
            // A raw IPv4 socket sees the packet from its IP header.
            (
                vec![
                    SockFilter::new(LDX_B_MSH, 0, 0, 0),
                    SockFilter::new(LD_B_IND, 0, 0, 0),
                ],
                LD_W_IND,
            )
        };
        let errors: Vec<u8> = self
            .answers
            .iter()
            .copied()
            .filter(|&kind| kind != self.echo_reply)
            .collect();
        let n = errors.len() as u8;
        // A reply: its data (behind the 8-byte echo header) must start with the cookie.
        // Errors quote our request at an offset of their own, and are rare: kept by type.
        program.push(SockFilter::new(JEQ_K, 0, 2, u32::from(self.echo_reply)));
        program.push(SockFilter::new(load_word, 0, 0, 8));
        let word = u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
        program.push(SockFilter::new(JEQ_K, n + 1, n, word));
        for (i, &kind) in errors.iter().enumerate() {
            // On a match, jump over the remaining tests and the drop to the keep.
            program.push(SockFilter::new(JEQ_K, n - i as u8, 0, u32::from(kind)));
        }
        program.push(SockFilter::new(RET_K, 0, 0, 0));
        program.push(SockFilter::new(RET_K, 0, 0, u32::MAX));
        program
    }

    /// Writes an echo request (header and payload) into `packet`.
    pub(super) fn echo_request(self, packet: &mut [u8], ident: u16, seq: u16, cookie: &[u8; 8]) {
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
    pub(super) fn parse(self, packet: &[u8], raw: bool) -> Option<Parsed<'_>> {
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
    pub(super) fn error(self, kind: u8, code: u8) -> Option<&'static str> {
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
}
