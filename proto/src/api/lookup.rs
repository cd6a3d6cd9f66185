//! Host lookup: a host's addresses and where they are.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Geo {
    pub country_code: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// The autonomous system announcing the address.
    pub asn: Option<u32>,
    /// The organisation holding that AS.
    pub network: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Address {
    pub ip: String,
    pub version: u8,
    pub geo: Option<Geo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Lookup {
    pub host: String,
    pub addresses: Vec<Address>,
    /// Addresses left out because the target policy refuses their range.
    pub withheld: u32,
    /// Where the locations come from (show it wherever they are shown).
    pub attribution: String,
}
