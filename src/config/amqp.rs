//! `[amqp]`: the broker (one node or a RabbitMQ cluster), its management API, and the
//! addresses agents are given.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpSettings {
    /// AMQP URL of the broker the server itself uses (administrator credentials). A list of
    /// one when `urls` is empty.
    pub url: SecretString,
    /// Every node of a RabbitMQ cluster, in the order the server tries them: it connects to
    /// the first that answers and moves to the next when its node goes away.
    pub urls: Vec<SecretString>,
    /// RabbitMQ management HTTP API, used to provision agents' users, queues and permissions.
    /// A list of one when `management_urls` is empty.
    pub management_url: SecretString,
    /// The management API of every cluster node; each call goes to the first that answers.
    pub management_urls: Vec<SecretString>,
    /// Virtual host that holds every netcheck exchange and queue.
    pub vhost: String,
    /// Broker addresses handed to agents (`amqp://host:port` or `amqps://host:port`, no
    /// credentials). Empty: the hosts and ports of `urls`, as changed by `public_host`,
    /// `public_port` and `public_tls`.
    pub public_urls: Vec<String>,
    /// Host name agents use to reach the broker instead of the host of each of `urls`.
    pub public_host: Option<String>,
    /// AMQP port agents use to reach the broker instead of the port of each of `urls`.
    pub public_port: Option<u16>,
    /// Whether agents must use TLS to reach the broker (also implied by `amqps://` URLs).
    pub public_tls: bool,
    /// PEM file of the CA that signed the broker's certificate, for `amqps://` URLs and an
    /// https management API with a private CA. Unset: the Mozilla roots (AMQP) and the
    /// system's roots (management API).
    pub ca_file: Option<std::path::PathBuf>,
    /// Type of the results queue and of every agent's queue: `classic`, or `quorum` on a
    /// RabbitMQ cluster (replicated on a majority of nodes).
    #[serde(alias = "results_queue_type")]
    pub queue_type: QueueType,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672".into(),
            urls: Vec::new(),
            management_url: "http://guest:guest@127.0.0.1:15672".into(),
            management_urls: Vec::new(),
            vhost: "netcheck".into(),
            public_urls: Vec::new(),
            public_host: None,
            public_port: None,
            public_tls: false,
            ca_file: None,
            queue_type: QueueType::Classic,
        }
    }
}

impl AmqpSettings {
    /// The broker URLs the server connects to, in order of preference.
    pub fn server_urls(&self) -> Vec<&str> {
        if self.urls.is_empty() {
            vec![self.url.expose_secret()]
        } else {
            self.urls.iter().map(|u| u.expose_secret()).collect()
        }
    }

    /// The management API base URLs, in order of preference.
    pub fn management_endpoints(&self) -> Vec<&str> {
        if self.management_urls.is_empty() {
            vec![self.management_url.expose_secret()]
        } else {
            self.management_urls
                .iter()
                .map(|u| u.expose_secret())
                .collect()
        }
    }

    /// The broker addresses agents are given (`scheme://host:port`, no credentials, no
    /// vhost), without duplicates.
    pub fn agent_urls(&self) -> Result<Vec<url::Url>, String> {
        let mut out: Vec<url::Url> = Vec::new();
        if !self.public_urls.is_empty() {
            for raw in &self.public_urls {
                let u =
                    url::Url::parse(raw).map_err(|e| format!("amqp.public_urls: {raw:?}: {e}"))?;
                if !matches!(u.scheme(), "amqp" | "amqps") || u.host_str().is_none() {
                    return Err(format!(
                        "amqp.public_urls: {raw:?} must be amqp://host:port or amqps://host:port"
                    ));
                }
                if !u.username().is_empty() || u.password().is_some() {
                    return Err(format!(
                        "amqp.public_urls: the entry for {} must not carry credentials (agents get their own)",
                        u.host_str().unwrap_or("?")
                    ));
                }
                let tls = u.scheme() == "amqps" || self.public_tls;
                let port = u.port().unwrap_or(if tls { 5671 } else { 5672 });
                push_unique(
                    &mut out,
                    broker_address(tls, u.host_str().unwrap_or(""), port),
                );
            }
            return Ok(out);
        }
        for raw in self.server_urls() {
            // Never echo a server URL in an error: it holds the administrator's password.
            let u = url::Url::parse(raw).map_err(|e| format!("amqp.urls: invalid URL: {e}"))?;
            let tls = u.scheme() == "amqps" || self.public_tls;
            let host = match &self.public_host {
                Some(h) => h.clone(),
                None => u
                    .host_str()
                    .ok_or("amqp.urls: a URL has no host")?
                    .to_string(),
            };
            let port = self
                .public_port
                .or(u.port())
                .unwrap_or(if tls { 5671 } else { 5672 });
            push_unique(&mut out, broker_address(tls, &host, port));
        }
        Ok(out)
    }
}

fn broker_address(tls: bool, host: &str, port: u16) -> url::Url {
    let scheme = if tls { "amqps" } else { "amqp" };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    url::Url::parse(&format!("{scheme}://{host}:{port}")).expect("a valid broker address")
}

fn push_unique(list: &mut Vec<url::Url>, u: url::Url) {
    if !list.contains(&u) {
        list.push(u);
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QueueType {
    Classic,
    Quorum,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;
    use crate::config::Settings;

    fn agent_urls(s: &Settings) -> Vec<String> {
        let urls = s.amqp.agent_urls().unwrap();
        urls.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn broker_lists_fall_back_to_the_single_keys_and_agents_get_no_credentials() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.amqp.server_urls(), ["amqp://guest:guest@127.0.0.1:5672"]);
        assert_eq!(s.amqp.management_endpoints().len(), 1);
        assert_eq!(agent_urls(&s), ["amqp://127.0.0.1:5672"]);

        let s = Settings::load_from(
            None,
            env(&[
                (
                    "NETCHECK__AMQP__URLS",
                    "amqp://a:b@n1:5681,amqps://a:b@n2:5682,amqp://a:b@n3",
                ),
                (
                    "NETCHECK__AMQP__MANAGEMENT_URLS",
                    "http://a:b@n1:15681,http://a:b@n2:15682",
                ),
                ("NETCHECK__AMQP__QUEUE_TYPE", "quorum"),
            ]),
        )
        .unwrap();
        assert_eq!(s.amqp.server_urls().len(), 3);
        assert_eq!(s.amqp.management_endpoints().len(), 2);
        assert_eq!(s.amqp.queue_type, QueueType::Quorum);
        assert_eq!(
            agent_urls(&s),
            ["amqp://n1:5681", "amqps://n2:5682", "amqp://n3:5672"]
        );

        // One public name in front of the nodes collapses them into one address.
        let s = Settings::load_from(
            None,
            env(&[
                (
                    "NETCHECK__AMQP__URLS",
                    "amqp://a:b@n1:5681,amqp://a:b@n2:5681",
                ),
                ("NETCHECK__AMQP__PUBLIC_HOST", "mq.example.net"),
                ("NETCHECK__AMQP__PUBLIC_TLS", "true"),
                ("NETCHECK__AMQP__PUBLIC_PORT", "5671"),
            ]),
        )
        .unwrap();
        assert_eq!(agent_urls(&s), ["amqps://mq.example.net:5671"]);

        // The older key name still works.
        let s = Settings::load_from(
            None,
            env(&[("NETCHECK__AMQP__RESULTS_QUEUE_TYPE", "quorum")]),
        )
        .unwrap();
        assert_eq!(s.amqp.queue_type, QueueType::Quorum);

        for bad in [
            ("NETCHECK__AMQP__PUBLIC_URLS", "amqp://user:secret@n1:5672"),
            ("NETCHECK__AMQP__PUBLIC_URLS", "http://n1:5672"),
            ("NETCHECK__AMQP__URLS", "http://a:b@n1"),
            ("NETCHECK__AMQP__MANAGEMENT_URLS", "http://n1:15672"),
        ] {
            let err = Settings::load_from(None, env(&[bad]))
                .unwrap_err()
                .to_string();
            assert!(!err.contains("secret") && !err.contains(":b@"), "{err}");
        }
    }
}
