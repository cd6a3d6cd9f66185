//! Each bounded option's range and default, declared once. The options' `Default`, the
//! server's validation and the CLI's flags read these constants; the OpenAPI document's
//! `minimum`, `maximum` and `default` are written from [`LIMITS`], and the web UI takes its
//! form's bounds from the document.

/// An inclusive range and, for an option that has one, its default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub min: f64,
    pub max: f64,
    default: Option<f64>,
}

impl Limit {
    const fn new(min: f64, max: f64, default: f64) -> Self {
        Self {
            min,
            max,
            default: Some(default),
        }
    }

    /// A range without a default (a required option, or an optional one with none).
    const fn range(min: f64, max: f64) -> Self {
        Self {
            min,
            max,
            default: None,
        }
    }

    pub fn contains(&self, v: f64) -> bool {
        v.is_finite() && v >= self.min && v <= self.max
    }

    pub const fn default_value(&self) -> Option<f64> {
        self.default
    }

    /// The default of an integer option (only options that have one are asked).
    pub const fn default_u32(&self) -> u32 {
        match self.default {
            Some(d) => d as u32,
            None => panic!("this option has no default"),
        }
    }

    /// The default of a small integer option.
    pub const fn default_u8(&self) -> u8 {
        self.default_u32() as u8
    }
}

pub const PING_COUNT: Limit = Limit::new(1.0, 16.0, 3.0);
pub const PING_INTERVAL_MS: Limit = Limit::new(100.0, 10_000.0, 500.0);
pub const PING_TIMEOUT_MS: Limit = Limit::new(100.0, 10_000.0, 2000.0);
pub const PORT: Limit = Limit::range(1.0, 65_535.0);
pub const TCP_TIMEOUT_MS: Limit = Limit::new(100.0, 30_000.0, 3000.0);
pub const HTTP_TIMEOUT_MS: Limit = Limit::new(100.0, 60_000.0, 10_000.0);
pub const DNS_TIMEOUT_MS: Limit = Limit::new(100.0, 30_000.0, 5000.0);
pub const TRACE_MAX_HOPS: Limit = Limit::new(1.0, 32.0, 30.0);
pub const TRACE_TIMEOUT_MS: Limit = Limit::new(100.0, 10_000.0, 1000.0);
pub const MTR_PACKETS: Limit = Limit::new(1.0, 16.0, 5.0);
pub const MTR_INTERVAL: Limit = Limit::new(100.0, 5000.0, 1000.0);

pub const EXPECT_LOSS_PCT: Limit = Limit::range(0.0, 100.0);
pub const EXPECT_RTT_MS: Limit = Limit::range(0.0, 60_000.0);
pub const EXPECT_CONNECT_MS: Limit = Limit::range(0.0, 60_000.0);
pub const EXPECT_TOTAL_MS: Limit = Limit::range(0.0, 600_000.0);
pub const EXPECT_CERT_MIN_DAYS: Limit = Limit::range(0.0, 3650.0);
pub const EXPECT_MIN_ANSWERS: Limit = Limit::range(0.0, 1000.0);

/// Where each limit applies: (schema, property, limit).
pub const LIMITS: &[(&str, &str, Limit)] = &[
    ("PingOptions", "count", PING_COUNT),
    ("PingOptions", "interval_ms", PING_INTERVAL_MS),
    ("PingOptions", "timeout_ms", PING_TIMEOUT_MS),
    ("TcpOptions", "port", PORT),
    ("TcpOptions", "timeout_ms", TCP_TIMEOUT_MS),
    ("HttpOptions", "timeout_ms", HTTP_TIMEOUT_MS),
    ("DnsOptions", "timeout_ms", DNS_TIMEOUT_MS),
    ("TracerouteOptions", "port", PORT),
    ("TracerouteOptions", "max_hops", TRACE_MAX_HOPS),
    ("TracerouteOptions", "timeout_ms", TRACE_TIMEOUT_MS),
    ("MtrOptions", "port", PORT),
    ("MtrOptions", "max_hops", TRACE_MAX_HOPS),
    ("MtrOptions", "timeout_ms", TRACE_TIMEOUT_MS),
    ("MtrOptions", "packets", MTR_PACKETS),
    ("MtrOptions", "interval_ms", MTR_INTERVAL),
    ("PingExpect", "max_loss_pct", EXPECT_LOSS_PCT),
    ("PingExpect", "max_avg_rtt_ms", EXPECT_RTT_MS),
    ("TcpExpect", "max_connect_ms", EXPECT_CONNECT_MS),
    ("HttpExpect", "max_total_ms", EXPECT_TOTAL_MS),
    ("HttpExpect", "cert_min_days", EXPECT_CERT_MIN_DAYS),
    ("DnsExpect", "min_answers", EXPECT_MIN_ANSWERS),
];
