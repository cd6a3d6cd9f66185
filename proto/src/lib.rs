//! Wire types shared by the server and the agent (registration, heartbeat, check requests and
//! results) and by the server and its HTTP clients (`api`: every request and response body, the
//! error body and its codes), so each side compiles against one definition. Besides serde they
//! derive only their OpenAPI schema (utoipa). This crate depends on no database, runtime or HTTP
//! library: the server maps the enums it stores to its own column types (`server::db::stored`).
//!
//! Evolution rule: fields are only ever added, as `#[serde(default)]` options, so an older peer
//! keeps working; anything else bumps [`PROTOCOL_VERSION`].
//!
//! Wire types are read by every role, so none of them panics on a value: errors are returned
//! (tests excepted, see `clippy.toml`).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod api;
pub mod check;
pub mod expect;
pub mod fields;
pub mod limits;
pub mod result;
pub mod trace;

/// Version of the agent protocol; carried in every message so peers can detect drift.
pub const PROTOCOL_VERSION: u32 = 1;
