//! The `netcheck agent` role: registers with its token, consumes check requests from its own
//! queue, runs probes, publishes results and sends heartbeats. amqprs has no automatic
//! recovery, so the session loop here reconnects with jittered backoff (on the credentials it
//! has after losing a session that was consuming, registering again for fresh ones when a
//! session cannot start), and stops for good when the token is revoked.

mod acks;
mod coalesce;
pub mod memory;
pub mod metrics;
pub mod probe;
mod results;
mod session;

use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::client::api::{Api, ClientError};
use netcheck_proto::agent::{Capability, RegisterRequest, RegisterResponse};
use netcheck_proto::PROTOCOL_VERSION;
use probe::Prober;

#[derive(Args, Clone)]
pub struct AgentArgs {
    /// Base URL of the netcheck server, e.g. https://netcheck.example.com
    #[arg(long, env = "NETCHECK_SERVER_URL")]
    pub server: String,
    /// Agent token shown when the agent was created (nca_…).
    #[arg(long, env = "NETCHECK_AGENT_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Host name reported to the server (default: this machine's).
    #[arg(long, env = "NETCHECK_AGENT_HOSTNAME")]
    pub hostname: Option<String>,
    /// DNS server (ip or ip:port) the agent resolves target names with, instead of the
    /// system's (/etc/resolv.conf).
    #[arg(long, env = "NETCHECK_AGENT_RESOLVER")]
    pub resolver: Option<String>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464).
    #[arg(long, env = "NETCHECK_AGENT_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Probes run at the same time at most.
    #[arg(long, env = "NETCHECK_AGENT_CONCURRENCY", default_value_t = 256)]
    pub concurrency: u16,
    /// PEM file of a private CA: the broker's TLS certificate and the server's https
    /// certificate are verified against it (the broker's only against it).
    #[arg(long, env = "NETCHECK_AGENT_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Narrows the server's target policy on this host: of the networks the server allows
    /// beyond the public internet, only those within these (comma-separated CIDRs).
    #[arg(long, env = "NETCHECK_AGENT_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub allowed_networks: Option<Vec<ipnet::IpNet>>,
}

/// `netcheck agent`: the agent's options, and the runtime it gets as a process of its own
/// (an agent inside `netcheck server` shares the server's).
#[derive(Args, Clone, Debug)]
pub struct AgentCommand {
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Threads that run probes and talk to the broker. One (the default) is the cheapest per
    /// probe: a probe's messages hop between tasks on one thread instead of waking another
    /// (docs/benchmarks.md, session 19); more let one agent use more cores when saturated.
    #[arg(long, env = "NETCHECK_AGENT_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

/// The token stays out of debug output (and so out of logs).
impl std::fmt::Debug for AgentArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentArgs")
            .field("server", &self.server)
            .field("token", &"[redacted]")
            .field("hostname", &self.hostname)
            .field("resolver", &self.resolver)
            .field("metrics_listen", &self.metrics_listen)
            .field("concurrency", &self.concurrency)
            .field("ca_file", &self.ca_file)
            .field("allowed_networks", &self.allowed_networks)
            .finish()
    }
}

impl AgentArgs {
    fn hostname(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
    }
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "the agent token is invalid or was revoked; create or rotate the agent's token and restart"
    )]
    Revoked,
    #[error("{0}")]
    Fatal(String),
}

/// Stops a background task when dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Exit code of `netcheck agent` when its token is revoked (systemd: RestartPreventExitStatus=3).
pub const EXIT_REVOKED: u8 = 3;

enum RegisterError {
    Unauthorized,
    Retry(String),
}

/// What this agent can run. Traces read ICMP answers (time exceeded, unreachable) from a raw
/// socket for every protocol, so they need one; so does ping here.
fn capabilities() -> Vec<Capability> {
    let mut can = vec![
        Capability::Tcp,
        Capability::Http,
        Capability::Dns,
        Capability::Icmp,
    ];
    let raw = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::ICMPV4),
    );
    if raw.is_ok() {
        can.extend([
            Capability::TraceIcmp,
            Capability::TraceUdp,
            Capability::TraceTcp,
        ]);
    }
    can
}

async fn register(api: &Api, args: &AgentArgs) -> Result<RegisterResponse, RegisterError> {
    let body = RegisterRequest {
        hostname: args.hostname(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities: capabilities(),
        protocol_version: Some(PROTOCOL_VERSION),
        platform: Some(format!(
            "{}/{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
    };
    match api.register_agent(&body).await {
        Ok(reg) => Ok(reg),
        Err(e) if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
            Err(RegisterError::Unauthorized)
        }
        // "cannot reach …" with every cause (why a certificate was refused, say).
        Err(e @ ClientError::Transport { .. }) => Err(RegisterError::Retry(e.to_string())),
        Err(e) => Err(RegisterError::Retry(format!("registration refused: {e}"))),
    }
}

/// First and longest wait between registrations. The longest is low enough that agents are
/// back well within the server's `checks.outage_grace_ms` after a broker outage, with the
/// answers they held.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Runs the agent until `shutdown` fires (Ok) or the token is revoked (Err). `process` says
/// whether the agent has its process to itself, and so may give the heap back when idle.
pub async fn run(
    args: AgentArgs,
    process: memory::Process,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("netcheck-agent/", env!("CARGO_PKG_VERSION")));
    // Read the CA file once up front: a bad one stops the agent with a clear error.
    let http = crate::tls::trust_ca_file(http, args.ca_file.as_deref())
        .and_then(|b| Ok(b.build()?))
        .map_err(|e| AgentError::Fatal(format!("{e:#}")))?;
    crate::tls::root_store(args.ca_file.as_deref())
        .map_err(|e| AgentError::Fatal(format!("{e:#}")))?;
    let started = std::time::Instant::now();
    let prober = std::sync::Arc::new(
        Prober::new(args.resolver.as_deref()).map_err(|e| AgentError::Fatal(e.to_string()))?,
    );
    if let Err(msg) = prober.icmp_available() {
        tracing::warn!("{msg}; ping checks will fail until this is fixed");
    }
    let stats = std::sync::Arc::new(session::Stats::default());
    let _settle = (process == memory::Process::AgentOnly)
        .then(|| AbortOnDrop(tokio::spawn(session::settle_when_idle(stats.clone()))));
    let _metrics_server = match args.metrics_listen {
        Some(addr) => {
            let listener = metrics::bind(addr).await.map_err(|e| {
                AgentError::Fatal(format!("cannot listen for metrics on {addr}: {e}"))
            })?;
            let server = tokio::spawn(metrics::serve(listener, stats.metrics.clone()));
            Some(AbortOnDrop(server))
        }
        None => None,
    };
    let api = Api::new(http.clone(), &args.server).with_token(args.token.clone());
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    // The registration of a session that was consuming when it was lost: its credentials
    // work on the other nodes of a cluster, so the next session tries them without
    // registering again (which costs the server several management API calls, at the moment a
    // node has just gone away). A session that cannot start registers again.
    let mut kept: Option<RegisterResponse> = None;
    loop {
        let reg = match kept.take() {
            Some(reg) => reg,
            None => {
                let registration = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    r = register(&api, &args) => r,
                };
                match registration {
                    Ok(reg) => {
                        tracing::info!(agent_id = %reg.agent_id, queue = %reg.amqp.queue, "registered");
                        reg
                    }
                    Err(RegisterError::Unauthorized) => {
                        tracing::error!(
                            "agent token rejected by the server: invalid or revoked; stopping"
                        );
                        return Err(AgentError::Revoked);
                    }
                    Err(RegisterError::Retry(reason)) => {
                        let wait = backoff.next_wait();
                        tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "registration failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(wait) => continue,
                        }
                    }
                }
            }
        };
        let session_started = std::time::Instant::now();
        let end = session::run(
            &api,
            &args,
            &reg,
            started,
            prober.clone(),
            stats.clone(),
            shutdown.clone(),
        )
        .await;
        let (reason, next) = match end {
            session::End::Shutdown => return Ok(()),
            session::End::Revoked => {
                tracing::error!("agent token revoked; stopping");
                return Err(AgentError::Revoked);
            }
            session::End::Lost(reason) => {
                kept = Some(reg);
                (reason, "reconnecting with the same credentials")
            }
            session::End::Failed(reason) => (reason, "re-registering"),
        };
        stats.metrics.reconnects.inc();
        let wait = backoff.after_session(session_started.elapsed());
        tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "broker session lost; {next}");
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
