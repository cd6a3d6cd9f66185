//! The command-line arguments of `netcheck server`.

use clap::Args;

#[derive(Args, Clone, Default)]
pub struct ServerArgs {
    /// Username of the first administrator, created when the database has no users.
    #[arg(long, env = "NETCHECK_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,
    /// Password of the first administrator; when unset a random one is generated and printed once.
    #[arg(long, env = "NETCHECK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Also run an agent of this name inside the server process (single-host mode). It is
    /// created if missing, gets a fresh token at every start and goes through the broker like
    /// any other agent.
    #[arg(long, env = "NETCHECK_LOCAL_AGENT")]
    pub local_agent: Option<String>,
}

/// The admin password stays out of debug output (and so out of logs).
impl std::fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerArgs")
            .field("admin_username", &self.admin_username)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "[redacted]"),
            )
            .field("local_agent", &self.local_agent)
            .finish()
    }
}
