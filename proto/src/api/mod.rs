//! The HTTP API's types: every request and response body, the error body every non-2xx answer
//! carries and the list of its stable codes. The server, the OpenAPI document and the typed
//! client (`crate::client::api`) all use these, so the three cannot drift apart.

pub mod agents;
pub mod auth;
pub mod checks;
mod error;
pub mod health;
pub mod lookup;
pub mod monitors;
mod selection;
pub mod share;
pub use error::{ErrorBody, ErrorCode, ErrorObject};
pub use selection::{AgentSelection, FixedLocation, LocationFilter, MAX_SELECTION_LIMIT};
