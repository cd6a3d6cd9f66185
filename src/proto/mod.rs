//! Wire types shared by the server and the agent (registration, heartbeat, check requests and
//! results) and by the server and its HTTP clients (`api`: the error body and its codes). Only serde, uuid and chrono here, so both roles compile against one definition.
//!
//! Evolution rule: fields are only ever added, as `#[serde(default)]` options, so an older peer
//! keeps working; anything else bumps [`PROTOCOL_VERSION`].

pub mod agent;
pub mod api;
pub mod check;
pub mod expect;
pub mod result;
pub mod trace;

/// Version of the agent protocol; carried in every message so peers can detect drift.
pub const PROTOCOL_VERSION: u32 = 1;
