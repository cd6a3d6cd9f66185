//! DNS probe: one query of the chosen record type, sent straight to the chosen resolver (or
//! the first system resolver) over UDP or TCP, reporting the rcode and every answer with its
//! TTL. Truncated UDP answers are retried over TCP, as resolvers do.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType as HRecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{tcp::connect_error, Outcome};
use netcheck_proto::result::ProbeErrorCode;

/// Most answers reported: a result must stay small enough for the broker whatever a
/// resolver answers (a TCP answer may hold thousands of records).
const MAX_ANSWERS: usize = 100;
use crate::policy::{parse_ip_loose, Policy};
use netcheck_proto::check::{DnsOptions, DnsProtocol, RecordType};
use netcheck_proto::result::{DnsAnswer, DnsResult, ProbeError, ResultData};

fn record_type(t: RecordType) -> HRecordType {
    match t {
        RecordType::A => HRecordType::A,
        RecordType::Aaaa => HRecordType::AAAA,
        RecordType::Cname => HRecordType::CNAME,
        RecordType::Mx => HRecordType::MX,
        RecordType::Ns => HRecordType::NS,
        RecordType::Txt => HRecordType::TXT,
        RecordType::Soa => HRecordType::SOA,
        RecordType::Ptr => HRecordType::PTR,
        RecordType::Srv => HRecordType::SRV,
        RecordType::Caa => HRecordType::CAA,
    }
}

/// Parses `ip`, `ip:port` or `[v6]:port`.
pub fn parse_resolver(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    parse_ip_loose(s).map(|ip| SocketAddr::new(ip, 53))
}

fn system_resolver() -> Result<SocketAddr, ProbeError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
        ProbeError::new(
            ProbeErrorCode::Dns,
            format!("cannot read the system resolver configuration: {e}"),
        )
    })?;
    config
        .name_servers()
        .first()
        .map(|ns| SocketAddr::new(ns.ip, 53))
        .ok_or_else(|| {
            ProbeError::new(ProbeErrorCode::Dns, "the system has no resolver configured")
        })
}

/// The address an A or AAAA answer holds.
fn answer_ip(data: &hickory_proto::rr::RData) -> Option<IpAddr> {
    match data {
        hickory_proto::rr::RData::A(a) => Some(IpAddr::V4(a.0)),
        hickory_proto::rr::RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

fn query_name(target: &str, rtype: RecordType, policy: &Policy) -> Result<Name, ProbeError> {
    if rtype == RecordType::Ptr {
        if let Some(ip) = crate::policy::reverse_lookup_address(target) {
            // What a reverse lookup of an internal address says is internal too.
            policy
                .check(ip)
                .map_err(|r| ProbeError::new(ProbeErrorCode::TargetRefused, r.to_string()))?;
            if let Some(ip) = parse_ip_loose(target) {
                return Ok(Name::from(ip));
            }
        }
    }
    Name::from_ascii(target).map_err(|e| {
        ProbeError::new(
            ProbeErrorCode::InvalidTarget,
            format!("'{target}' is not a DNS name: {e}"),
        )
    })
}

/// Runs a `dns` check; without `o.resolver` it asks `own` (the agent's `--resolver`) or the
/// system's resolver.
pub async fn run(
    target: &str,
    o: &DnsOptions,
    policy: &Policy,
    own: Option<SocketAddr>,
) -> Outcome {
    let mut result = DnsResult {
        resolver: None,
        rcode: None,
        answers: Vec::new(),
        truncated: false,
        withheld: 0,
        answer_count: None,
        authority_count: None,
        additional_count: None,
        assertions: Vec::new(),
    };
    let resolver = match &o.resolver {
        Some(r) => match parse_resolver(r) {
            // A resolver the user chose is where the query goes: it must pass the policy.
            Some(sa) => match policy.check(sa.ip()) {
                Ok(()) => sa,
                Err(refused) => {
                    return Outcome {
                        data: ResultData::Dns(result),
                        error: Some(ProbeError::new(
                            ProbeErrorCode::TargetRefused,
                            refused.to_string(),
                        )),
                    }
                }
            },
            None => {
                return Outcome {
                    data: ResultData::Dns(result),
                    error: Some(ProbeError::new(
                        ProbeErrorCode::InvalidTarget,
                        format!("bad resolver '{r}'"),
                    )),
                }
            }
        },
        None => match own.map(Ok).unwrap_or_else(system_resolver) {
            Ok(sa) => sa,
            Err(e) => {
                return Outcome {
                    data: ResultData::Dns(result),
                    error: Some(e),
                }
            }
        },
    };
    result.resolver = Some(resolver.to_string());
    let name = match query_name(target, o.record_type, policy) {
        Ok(n) => n,
        Err(e) => {
            return Outcome {
                data: ResultData::Dns(result),
                error: Some(e),
            }
        }
    };
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, record_type(o.record_type)));
    let timeout = Duration::from_millis(o.timeout_ms as u64);
    let exchange = async {
        let response = match o.protocol {
            DnsProtocol::Udp => {
                let r = udp(&msg, resolver).await?;
                if r.metadata.truncation {
                    tcp(&msg, resolver).await?
                } else {
                    r
                }
            }
            DnsProtocol::Tcp => tcp(&msg, resolver).await?,
        };
        Ok::<_, ProbeError>(response)
    };
    let response = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Outcome {
                data: ResultData::Dns(result),
                error: Some(e),
            }
        }
        Err(_) => {
            return Outcome {
                data: ResultData::Dns(result),
                error: Some(ProbeError::new(
                    ProbeErrorCode::Timeout,
                    format!("no answer from {resolver} within {} ms", o.timeout_ms),
                )),
            }
        }
    };
    let rcode = response.metadata.response_code;
    result.rcode = Some(mnemonic(rcode));
    result.answer_count = Some(response.answers.len() as u32);
    result.authority_count = Some(response.authorities.len() as u32);
    result.additional_count = Some(response.additionals.len() as u32);
    // The agent's own resolver may answer with internal addresses: those stay here.
    let withhold = |rec: &&hickory_proto::rr::Record| {
        o.resolver.is_none() && answer_ip(&rec.data).is_some_and(|ip| policy.check(ip).is_err())
    };
    result.withheld = response.answers.iter().filter(withhold).count() as u32;
    let shown: Vec<_> = response.answers.iter().filter(|r| !withhold(r)).collect();
    result.truncated = shown.len() > MAX_ANSWERS;
    result.answers = shown
        .into_iter()
        .take(MAX_ANSWERS)
        .map(|rec| DnsAnswer {
            name: rec.name.to_string(),
            record_type: rec.data.record_type().to_string(),
            ttl: rec.ttl,
            value: rec.data.to_string(),
        })
        .collect();
    let error = (rcode != hickory_proto::op::ResponseCode::NoError).then(|| {
        ProbeError::new(
            ProbeErrorCode::DnsRcode,
            format!(
                "the resolver answered {}",
                result.rcode.as_deref().unwrap_or("?")
            ),
        )
    });
    Outcome {
        data: ResultData::Dns(result),
        error,
    }
}

fn encode(msg: &Message) -> Result<Vec<u8>, ProbeError> {
    msg.to_vec()
        .map_err(|e| ProbeError::new(ProbeErrorCode::Dns, format!("cannot encode the query: {e}")))
}

fn decode(buf: &[u8], id: u16) -> Result<Option<Message>, ProbeError> {
    let m = Message::from_vec(buf)
        .map_err(|e| ProbeError::new(ProbeErrorCode::Dns, format!("malformed answer: {e}")))?;
    Ok((m.metadata.id == id).then_some(m))
}

async fn udp(msg: &Message, resolver: SocketAddr) -> Result<Message, ProbeError> {
    let bind: SocketAddr = match resolver.ip() {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("addr"),
        IpAddr::V6(_) => "[::]:0".parse().expect("addr"),
    };
    let sock = UdpSocket::bind(bind).await.map_err(|e| {
        ProbeError::new(
            ProbeErrorCode::Dns,
            format!("cannot open a UDP socket: {e}"),
        )
    })?;
    sock.connect(resolver)
        .await
        .map_err(|e| connect_error(&e, resolver))?;
    sock.send(&encode(msg)?)
        .await
        .map_err(|e| connect_error(&e, resolver))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| connect_error(&e, resolver))?;
        // Ignore stray datagrams that do not answer our query id.
        if let Some(m) = decode(&buf[..n], msg.metadata.id)? {
            return Ok(m);
        }
    }
}

async fn tcp(msg: &Message, resolver: SocketAddr) -> Result<Message, ProbeError> {
    let mut stream = TcpStream::connect(resolver)
        .await
        .map_err(|e| connect_error(&e, resolver))?;
    let body = encode(msg)?;
    let mut framed = (body.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| connect_error(&e, resolver))?;
    let len = stream
        .read_u16()
        .await
        .map_err(|e| ProbeError::new(ProbeErrorCode::Dns, format!("reading the answer: {e}")))?;
    let mut buf = vec![0u8; len as usize];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| ProbeError::new(ProbeErrorCode::Dns, format!("reading the answer: {e}")))?;
    decode(&buf, msg.metadata.id)?
        .ok_or_else(|| ProbeError::new(ProbeErrorCode::Dns, "the answer does not match the query"))
}

/// The RFC mnemonic of a response code (`NOERROR`, `NXDOMAIN`, …).
fn mnemonic(code: hickory_proto::op::ResponseCode) -> String {
    use hickory_proto::op::ResponseCode::*;
    match code {
        NoError => "NOERROR".into(),
        FormErr => "FORMERR".into(),
        ServFail => "SERVFAIL".into(),
        NXDomain => "NXDOMAIN".into(),
        NotImp => "NOTIMP".into(),
        Refused => "REFUSED".into(),
        YXDomain => "YXDOMAIN".into(),
        YXRRSet => "YXRRSET".into(),
        NXRRSet => "NXRRSET".into(),
        NotAuth => "NOTAUTH".into(),
        NotZone => "NOTZONE".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}
