//! The typed client of the HTTP API, [`api::Api`], which every Rust caller uses (the terminal
//! commands in `crate::cli`, the agent for its own protocol, the tests and the benches), and
//! the Server-Sent Events reader of a check's live results (`sse`).

pub mod api;
pub mod sse;
