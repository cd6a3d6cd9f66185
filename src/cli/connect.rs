//! How a terminal command reaches the server: the flags, the environment and the client
//! settings file, turned into the typed API client.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

use super::options::{CheckKind, SelectionArgs};
use crate::client::api::Api;

#[derive(Args, Clone)]
pub struct ClientArgs {
    /// Base URL of the netcheck server.
    #[arg(long, env = "NETCHECK_SERVER_URL", global = true)]
    pub server: Option<String>,
    /// Personal API key (create one with POST /api/v1/auth/api-keys).
    #[arg(long, env = "NETCHECK_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Client settings file with `server` and `api_key` (default ~/.config/netcheck/client.toml).
    #[arg(long, env = "NETCHECK_CLIENT_CONFIG", global = true)]
    pub client_config: Option<PathBuf>,
    /// PEM file of a private CA that signed the server's https certificate.
    #[arg(long, env = "NETCHECK_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub kind: CheckKind,
    #[command(flatten)]
    pub agents: SelectionArgs,
    /// Make a share link (30 days, no login needed) once the check finished, and print it.
    #[arg(long, global = true)]
    pub share: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The client settings file (`~/.config/netcheck/client.toml`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    api_key: Option<String>,
}

/// The API client the command-line flags, the environment or the client settings file name.
pub(crate) fn connect(args: &ClientArgs) -> anyhow::Result<Api> {
    let path = args.client_config.clone().or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/netcheck/client.toml"))
    });
    let file: FileConfig = match path {
        Some(p) if p.exists() => toml::from_str(&std::fs::read_to_string(&p)?)
            .with_context(|| format!("reading {}", p.display()))?,
        _ => FileConfig::default(),
    };
    let base = args
        .server
        .clone()
        .or(file.server)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let Some(key) = args.api_key.clone().or(file.api_key) else {
        bail!("no API key: pass --api-key, set NETCHECK_API_KEY, or put api_key in ~/.config/netcheck/client.toml");
    };
    let http =
        crate::tls::trust_ca_file(reqwest::Client::builder(), args.ca_file.as_deref())?.build()?;
    Ok(Api::new(http, &base).with_token(key))
}

/// The key stays out of logs and panic messages.
impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("server", &self.server)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("client_config", &self.client_config)
            .field("ca_file", &self.ca_file)
            .field("json", &self.json)
            .finish()
    }
}
