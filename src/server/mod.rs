//! The `netcheck server` role: HTTP API, authentication, persistence and (later) broker
//! provisioning, result collection and the embedded web UI.

mod access_log;
pub mod agents;
mod args;
pub mod auth;
pub mod broker;
pub mod checks;
pub mod db;
pub mod error;
pub mod extract;
pub mod geo;
pub mod health;
pub mod lookup;
pub mod maintenance;
pub mod metrics;
pub mod monitors;
pub mod notify;
pub mod openapi;
pub mod periodic;
pub mod probe;
pub mod redis_keys;
pub mod selection;
pub mod status;
pub mod ui;
pub mod users;
pub mod versions;
pub mod window;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use base64::Engine;
use rand::Rng;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Settings;
pub use args::ServerArgs;
use auth::tokens::JwtKeys;
use error::ApiError;
use netcheck_proto::api::ErrorCode;

/// Shared state of every request handler.
pub struct AppState {
    pub db: DatabaseConnection,
    /// The results collector's own small pool, so a burst of API requests can never starve
    /// result storage of connections (and the other way round).
    pub results_db: DatabaseConnection,
    pub redis: deadpool_redis::Pool,
    pub settings: Arc<Settings>,
    pub jwt: JwtKeys,
    /// Refresh-token rotation (lifetime, successor key, grace window).
    pub rotation: auth::sessions::Rotation,
    pub provisioner: broker::Provisioner,
    /// The server's own AMQP session (check requests out, results in).
    pub broker: Arc<broker::link::BrokerLink>,
    /// For pub/sub subscriptions (pooled connections cannot subscribe).
    pub redis_client: deadpool_redis::redis::Client,
    pub policy: crate::policy::Policy,
    pub metrics: metrics::Metrics,
    pub geoip: geo::GeoIp,
    /// The agent table, cached briefly for check creation.
    pub directory: agents::Directory,
    /// Resolves names for lookups (the system's resolvers).
    pub resolver: hickory_resolver::TokioResolver,
    /// Stops background tasks (broker session, sweeper) when the server stops.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The instance's one subscription to live check events, and its open streams.
    pub events: Arc<checks::events::Hub>,
    /// Bounds concurrent password hashing (`auth.max_concurrent_hashes`).
    pub hash_gate: auth::password::HashGate,
    /// Webhook deliveries in flight on this instance, per monitor owner.
    pub webhook_flights: monitors::webhooks::Flights,
    /// What each user's monitors take from their probe budget (briefly cached).
    pub monitor_costs: monitors::budget::Standing,
    /// The modules `/probe` offers (`probe.modules_file`, or blackbox's defaults).
    pub probe_modules: Arc<probe::Modules>,
    /// Public status pages rendered in the last few seconds.
    pub status_pages: status::public::Cache,
    /// Recent queueing delay of answers: admission control for new checks.
    pub pressure: checks::pressure::Pressure,
}

/// A built, bound, not yet running server. Tests build it on port 0 and read [`Application::port`].
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Headers every response carries (a handler's own value wins). The UI needs nothing beyond
/// its own origin, plus `data:` images (the favicon, Swagger UI's icons) and inline styles
/// (Swagger UI sets `style` attributes in markup).
fn security_headers(settings: &Settings) -> actix_web::middleware::DefaultHeaders {
    let mut headers = actix_web::middleware::DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"));
    if settings
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
    {
        headers = headers.add(("Strict-Transport-Security", "max-age=31536000"));
    }
    headers
}

impl Application {
    pub async fn build(settings: Settings, args: ServerArgs) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        // A bad broker URL or CA file is a configuration error: refuse to start, before any
        // connection is made, instead of retrying forever in the background.
        for url in settings.amqp.server_urls() {
            crate::amqp::open_arguments(url, settings.amqp.ca_file.as_deref())
                .context("amqp.url(s) / amqp.ca_file")?;
        }
        let db = db::connect(&settings.database, settings.database.max_connections).await?;
        let results_db = db::connect(&settings.database, checks::collector::DB_CONNECTIONS).await?;
        versions::check_postgres(&db).await?;
        db::migrate(&db).await?;
        if let Some(generated) =
            users::bootstrap_admin(&db, &args.admin_username, args.admin_password.as_deref())
                .await?
        {
            // Shown once, on the operator's terminal; never written to the log.
            eprintln!(
                "\n  Created the first administrator.\n    username: {}\n    password: {generated}\n  Change it after signing in.\n",
                args.admin_username
            );
        }
        let jwt_secret = match &settings.auth.jwt_secret {
            Some(s) => s.expose_secret().to_string(),
            None => {
                db::setting_or_init(&db, "jwt_secret", || {
                    let mut key = [0u8; 32];
                    rand::rng().fill_bytes(&mut key);
                    base64::engine::general_purpose::STANDARD.encode(key)
                })
                .await?
            }
        };
        let redis = deadpool_redis::Config::from_url(settings.redis.url.expose_secret())
            .builder()
            .context("redis.url")?
            .runtime(deadpool_redis::Runtime::Tokio1)
            .max_size(settings.redis.pool_size)
            .wait_timeout(Some(std::time::Duration::from_secs(2)))
            .create_timeout(Some(std::time::Duration::from_secs(2)))
            .build()
            .context("building the Redis pool")?;
        versions::check_redis(&redis).await?;
        let provisioner = broker::Provisioner::new(&settings.amqp).context("amqp settings")?;
        versions::check_rabbitmq(provisioner.management()).await?;
        let broker = Arc::new(broker::link::BrokerLink::default());
        match provisioner.ensure_topology().await {
            Ok(drain) => broker.set_draining(drain),
            Err(err) => {
                tracing::warn!(error = %err, "could not declare the broker topology yet; retrying in the background");
                let (p, broker) = (provisioner.clone(), broker.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                        match p.ensure_topology().await {
                            Ok(drain) => {
                                broker.set_draining(drain);
                                break tracing::info!("broker topology declared");
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "broker topology still not declared")
                            }
                        }
                    }
                });
            }
        }
        let probe_modules = Arc::new(match &settings.probe.modules_file {
            Some(path) => probe::Modules::load(path)?,
            None => probe::Modules::built_in(),
        });
        let redis_client = deadpool_redis::redis::Client::open(settings.redis.url.expose_secret())
            .context("redis.url")?;
        let state = web::Data::new(AppState {
            provisioner,
            broker,
            redis_client,
            policy: crate::policy::Policy::new(settings.checks.allowed_networks.clone()),
            metrics: metrics::Metrics::default(),
            geoip: geo::GeoIp::new(settings.geoip.clone()),
            directory: agents::Directory::new(std::time::Duration::from_millis(
                settings.agents.cache_ms,
            )),
            resolver: hickory_resolver::TokioResolver::builder_tokio()
                .context("reading the system resolver configuration")?
                .build()
                .context("building the resolver")?,
            shutdown: tokio_util::sync::CancellationToken::new(),
            hash_gate: auth::password::HashGate::new(settings.auth.max_concurrent_hashes),
            webhook_flights: Default::default(),
            status_pages: status::public::new_cache(),
            monitor_costs: Default::default(),
            pressure: checks::pressure::Pressure::new(settings.checks.max_queueing_ms),
            probe_modules,
            events: Arc::default(),
            jwt: JwtKeys::new(jwt_secret.as_bytes(), settings.auth.access_token_ttl_secs)
                .context("auth.jwt_secret")?,
            rotation: auth::sessions::Rotation::new(
                jwt_secret.as_bytes(),
                settings.auth.refresh_token_ttl_secs,
                settings.auth.refresh_reuse_grace_secs,
            ),
            db,
            results_db,
            redis,
            settings: Arc::new(settings),
        });

        {
            let results = checks::collector::spawn(state.clone());
            tokio::spawn(state.broker.clone().run(
                state.settings.amqp.clone(),
                results,
                state.shutdown.clone(),
            ));
            checks::spawn_sweeper(state.clone(), state.shutdown.clone());
            broker::spawn_drainer(state.clone());
            monitors::runner::spawn_runner(state.clone(), state.shutdown.clone());
            monitors::webhooks::spawn_deliverer(state.clone(), state.shutdown.clone());
            tokio::spawn(state.events.clone().run(
                state.redis_client.clone(),
                state.settings.redis.key_prefix.clone(),
                state.shutdown.clone(),
            ));
        }
        let listener = TcpListener::bind(state.settings.http.listen)
            .with_context(|| format!("binding {}", state.settings.http.listen))?;
        let port = listener.local_addr()?.port();
        let workers = match state.settings.http.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let idle = std::time::Duration::from_secs(state.settings.http.keep_alive_secs);
        let data = state.clone();
        let server = HttpServer::new(move || {
            let max_body = data.settings.http.max_body_bytes;
            App::new()
                .wrap(security_headers(&data.settings))
                .wrap(tracing_actix_web::TracingLogger::<access_log::AccessLog>::new())
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(web::PathConfig::default().error_handler(extract::path_error))
                .app_data(web::QueryConfig::default().error_handler(extract::query_error))
                .route("/healthz", web::get().to(health::healthz))
                .route("/readyz", web::get().to(health::readyz))
                .route("/metrics", web::get().to(health::metrics))
                .configure(probe::configure)
                .service(
                    SwaggerUi::new("/api/docs/{_:.*}")
                        .url("/api/openapi.json", openapi::ApiDoc::openapi()),
                )
                .service(
                    web::scope("/api/v1")
                        .configure(auth::routes::configure)
                        .configure(users::routes::configure)
                        .configure(agents::routes::configure)
                        .configure(agents::protocol::configure)
                        .configure(checks::routes::configure)
                        .configure(monitors::routes::configure)
                        .configure(status::routes::configure)
                        .configure(maintenance::routes::configure)
                        .configure(lookup::configure),
                )
                .default_service(web::to(not_found))
        })
        .workers(workers)
        // actix closes a connection after 5 s without a request by default, far below what
        // clients and proxies keep idle connections for: under load, requests sent on a
        // connection being closed failed ("connection closed before message completed", or
        // actix's plain-text 408). The same bound applies to the first request's head.
        .keep_alive(idle)
        .client_request_timeout(idle)
        // Live event frames are small writes; without this, Nagle's algorithm and the client's
        // delayed ACK hold each one back ~40 ms.
        .on_connect(|conn, _| {
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL under which this process reaches its own API (for the local agent).
    pub fn local_url(&self) -> String {
        let ip = self.state.settings.http.listen.ip();
        let host = match ip {
            ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_string(),
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            std::net::IpAddr::V4(v4) => v4.to_string(),
        };
        format!("http://{host}:{}", self.port)
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Stops the HTTP server (and with it the background tasks) from outside.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.state.shutdown.cancel();
        result
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let api = req.path().starts_with("/api/") || req.path() == "/api";
    if req.method() == actix_web::http::Method::GET && !api {
        return Ok(ui::ui(req).await);
    }
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
