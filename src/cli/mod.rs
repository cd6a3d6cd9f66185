//! Command line: parses arguments and dispatches each subcommand to its `run` function. The
//! terminal commands of the API (`check`, `agents`, `monitor`, `maintenance`) have a module
//! each here; they speak through the library client, `crate::client::api`.

mod agents;
mod check;
mod connect;
mod hops;
pub mod maintenance;
pub mod monitors;
mod options;
pub mod report;

pub(crate) use connect::connect;
pub use connect::{CheckArgs, ClientArgs};
pub use options::{CheckKind, DnsArgs, HttpArgs, PingArgs, SelectionArgs, TcpArgs};

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{LogFormat, Settings};
use crate::server;
use netcheck_proto::api::auth::Role;

#[derive(Debug, Parser)]
#[command(
    name = "netcheck",
    version,
    about = "Check whether a host is reachable from many places at once"
)]
pub struct Cli {
    /// TOML configuration file (keys documented in config/netcheck.example.toml).
    #[arg(long, global = true, env = "NETCHECK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log output format (overrides `log.format`).
    #[arg(long, global = true, env = "NETCHECK_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the REST API, the web UI and the result collector.
    Server(server::ServerArgs),
    /// Run a probe agent: register with the server, consume checks, publish results.
    Agent(crate::agent::AgentCommand),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run a check from the terminal and print results live (needs an API key).
    Check(Box<CheckArgs>),
    /// List agents and their status.
    Agents(ClientArgs),
    /// List monitors and their state.
    Monitors(ClientArgs),
    /// Create, pause, resume or delete a monitor.
    #[command(subcommand)]
    Monitor(monitors::MonitorCommand),
    /// Maintenance windows: no incident or notification while one is on.
    #[command(subcommand)]
    Maintenance(maintenance::MaintenanceCommand),
    /// Exit 0 when URL answers 2xx within 3 s (a container healthcheck without curl).
    Health {
        #[arg(default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
    /// Print the OpenAPI document of the HTTP API (the web UI's client types come from it).
    Openapi,
    /// Manage users from the command line.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input when `--password-stdin` is
    /// given, otherwise a random one is generated and printed once.
    Add {
        username: String,
        #[arg(long, default_value = "user",
              value_parser = clap::builder::PossibleValuesParser::new(["admin", "user"])
                  .try_map(|s| s.parse::<Role>()))]
        role: Role,
        #[arg(long)]
        password_stdin: bool,
    },
}

/// A token cancelled on SIGINT or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

/// `netcheck server`, with the optional in-process local agent.
async fn run_server(settings: Settings, args: server::ServerArgs) -> anyhow::Result<()> {
    let app = server::Application::build(settings, args.clone()).await?;
    tracing::info!(port = app.port(), "netcheck server listening");
    let local = match &args.local_agent {
        Some(name) => {
            let token = server::agents::routes::local_agent_token(&app.state(), name)
                .await
                .map_err(|e| anyhow::anyhow!("preparing local agent '{name}': {e}"))?;
            let agent_args = crate::agent::AgentArgs {
                server: app.local_url(),
                token,
                hostname: None,
                resolver: None,
                metrics_listen: None,
                concurrency: 256,
                ca_file: app.state().settings.amqp.ca_file.clone(),
                allowed_networks: None,
            };
            let shutdown = CancellationToken::new();
            let handle = tokio::spawn(crate::agent::run(
                agent_args,
                crate::agent::memory::Process::Shared,
                shutdown.clone(),
            ));
            tracing::info!(name = %name, "local agent started");
            Some((shutdown, handle))
        }
        None => None,
    };
    let result = app.run_until_stopped().await;
    if let Some((shutdown, handle)) = local {
        shutdown.cancel();
        let _ = handle.await;
    }
    tracing::info!("netcheck server stopped");
    Ok(result?)
}

fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
    if let Some(format) = cli.log_format {
        settings.log.format = format;
    }
    crate::telemetry::init(settings.log.format, &settings.log.level);
    Ok(settings)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Client commands need no server configuration.
    match cli.command {
        Command::Check(args) => {
            crate::telemetry::init(LogFormat::Human, "warn");
            // 0: ok somewhere, 1: failed everywhere, 2: the check could not be run (refused
            // by the server, or the server unreachable), like a usage error.
            let code = match check::run_check(*args).await {
                Ok(code) => code,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    2
                }
            };
            std::process::exit(code.into());
        }
        Command::Agents(args) => {
            crate::telemetry::init(LogFormat::Human, "warn");
            return agents::list_agents(args).await;
        }
        Command::Monitors(args) => {
            crate::telemetry::init(LogFormat::Human, "warn");
            return monitors::list(args).await;
        }
        Command::Monitor(command) => {
            crate::telemetry::init(LogFormat::Human, "warn");
            return monitors::run(command).await;
        }
        Command::Maintenance(command) => {
            crate::telemetry::init(LogFormat::Human, "warn");
            return maintenance::run(command).await;
        }
        Command::Health { url } => {
            let resp = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(3))
                .build()?
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            if !resp.status().is_success() {
                anyhow::bail!("{url} answered {}", resp.status());
            }
            return Ok(());
        }
        _ => {}
    }
    let settings = load_settings(&cli)?;
    match cli.command {
        Command::Check(_)
        | Command::Agents(_)
        | Command::Monitors(_)
        | Command::Monitor(_)
        | Command::Maintenance(_)
        | Command::Health { .. } => {
            unreachable!("handled above")
        }
        Command::Server(args) => run_server(settings, args).await,
        Command::Agent(command) => {
            let shutdown = shutdown_on_signal();
            match crate::agent::run(
                command.agent,
                crate::agent::memory::Process::AgentOnly,
                shutdown,
            )
            .await
            {
                Ok(()) => Ok(()),
                Err(crate::agent::AgentError::Revoked) => {
                    eprintln!("error: {}", crate::agent::AgentError::Revoked);
                    std::process::exit(crate::agent::EXIT_REVOKED.into())
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Openapi => {
            use utoipa::OpenApi;
            println!("{}", server::openapi::ApiDoc::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Migrate => {
            let db =
                server::db::connect(&settings.database, server::db::COMMAND_CONNECTIONS).await?;
            server::db::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User(UserCommand::Add {
            username,
            role,
            password_stdin,
        }) => {
            let db =
                server::db::connect(&settings.database, server::db::COMMAND_CONNECTIONS).await?;
            server::db::migrate(&db).await?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                (line.trim_end_matches(['\r', '\n']).to_string(), false)
            } else {
                (server::auth::password::generate(), true)
            };
            let user = server::users::create(
                &db,
                &server::auth::password::HashGate::new(1),
                &username,
                &password,
                role,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            println!(
                "created {} user {} ({})",
                user.role.wire().as_str(),
                user.username,
                user.id
            );
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap checks its own rules (no required global flags, no clashing names) here
        // rather than when a user first runs the subcommand.
        super::Cli::command().debug_assert();
    }
}
