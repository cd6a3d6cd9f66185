//! TCP connect probe: how long the three-way handshake to host:port takes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::resolve::TargetResolver;
use super::{ms, Outcome};
use crate::policy::Policy;
use netcheck_proto::check::TcpOptions;
use netcheck_proto::result::ProbeErrorCode;
use netcheck_proto::result::{ProbeError, ResultData, TcpResult};

/// Classifies a failed connect by what the network said.
pub fn connect_error(err: &std::io::Error, addr: SocketAddr) -> ProbeError {
    use std::io::ErrorKind::*;
    match err.kind() {
        ConnectionRefused => ProbeError::new(
            ProbeErrorCode::Refused,
            format!("{addr} refused the connection"),
        ),
        HostUnreachable => ProbeError::new(
            ProbeErrorCode::Unreachable,
            format!("no route to host {addr}"),
        ),
        NetworkUnreachable => ProbeError::new(
            ProbeErrorCode::Unreachable,
            format!("network unreachable for {addr}"),
        ),
        TimedOut => ProbeError::new(
            ProbeErrorCode::Timeout,
            format!("connecting to {addr} timed out"),
        ),
        _ => ProbeError::new(
            ProbeErrorCode::ConnectFailed,
            format!("connecting to {addr}: {err}"),
        ),
    }
}

pub async fn run(
    targets: &TargetResolver,
    target: &str,
    o: &TcpOptions,
    policy: &Policy,
) -> Outcome {
    let mut result = TcpResult {
        resolved_address: None,
        port: o.port,
        connected: false,
        connect_ms: None,
        assertions: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_millis(o.timeout_ms as u64);
    let ip = match tokio::time::timeout_at(
        deadline.into(),
        targets.resolve(target, o.ip_version, policy),
    )
    .await
    {
        Ok(Ok((ip, _))) => ip,
        Ok(Err(e)) => {
            return Outcome {
                data: ResultData::Tcp(result),
                error: Some(e),
            }
        }
        Err(_) => {
            return Outcome {
                data: ResultData::Tcp(result),
                error: Some(ProbeError::new(
                    ProbeErrorCode::Timeout,
                    "name resolution timed out",
                )),
            }
        }
    };
    result.resolved_address = Some(ip.to_string());
    let addr = SocketAddr::new(ip, o.port);
    let start = Instant::now();
    let error = match tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => {
            result.connected = true;
            result.connect_ms = Some(ms(start.elapsed()));
            None
        }
        Ok(Err(e)) => Some(connect_error(&e, addr)),
        Err(_) => Some(ProbeError::new(
            ProbeErrorCode::Timeout,
            format!("no answer from {addr} within {} ms", o.timeout_ms),
        )),
    };
    Outcome {
        data: ResultData::Tcp(result),
        error,
    }
}
