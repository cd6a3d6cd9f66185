//! netcheck: checks whether a site, IP or host is reachable from many places at once.
//!
//! One binary, several roles: `server` (REST API, web UI, broker provisioning, result collection)
//! and `agent` (runs probes on a probe host). Every type that crosses the wire between them, or
//! between the server and its HTTP clients, is in the `netcheck-proto` crate (`proto/`).

pub mod agent;
pub mod amqp;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod config;
pub mod names;
pub mod policy;
pub mod server;
pub mod telemetry;
pub mod tls;
