//! `[notify]`: where monitors' notifications may go and how they get there.

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Networks webhook URLs may point into although the target policy refuses them (on top
    /// of `checks.allowed_networks`), e.g. `["10.0.0.0/8"]` for an internal alert relay.
    pub allowed_networks: Vec<IpNet>,
    /// Wait before the first retry of a failed delivery; it doubles with each further
    /// failure, up to 10 minutes.
    pub retry_first_ms: u64,
    /// The SMTP relay e-mail notifications go through; without it, `email` channels are
    /// refused.
    pub smtp: Option<SmtpSettings>,
    /// PagerDuty's Events API v2 endpoint.
    pub pagerduty_url: String,
    /// Telegram's Bot API base (`…/bot<token>/sendMessage` is appended).
    pub telegram_url: String,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            allowed_networks: Vec::new(),
            retry_first_ms: 5_000,
            smtp: None,
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            telegram_url: "https://api.telegram.org".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte, usually port 465.
    Tls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    #[serde(default = "starttls")]
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The sender, e.g. `netcheck <alerts@example.com>`.
    pub from: String,
}

fn starttls() -> SmtpTls {
    SmtpTls::Starttls
}

impl SmtpSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }
}
