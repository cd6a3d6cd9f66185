//! Test harness: a fresh database and Redis key space per test, the real server on port 0.

use netcheck::client::api::{Api, ClientError, ClientResult};
use netcheck::config::Settings;
use netcheck::server::Application;
use netcheck::server::ServerArgs;
use netcheck_proto::api::agents::{Agent, CreateAgent};
use netcheck_proto::api::auth::{CreateUser, Role};
use netcheck_proto::api::checks::CheckView;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use uuid::Uuid;

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const JWT_SECRET: &str = "test-signing-key-0123456789abcdef";

pub fn pg_base() -> String {
    std::env::var("NETCHECK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let name = format!("nc_test_{}", Uuid::new_v4().simple());
    let admin = Database::connect(format!("{}/postgres", pg_base()))
        .await
        .expect("connect to PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    admin.close().await.ok();
    format!("{}/{name}", pg_base())
}

/// Settings for a test: fresh database, own Redis prefix, port 0, known JWT key.
pub async fn test_settings() -> Settings {
    let mut s = Settings::load_from(None, Vec::new()).unwrap();
    s.http.listen = "127.0.0.1:0".parse().unwrap();
    s.http.workers = 2;
    s.database.url = fresh_database().await.into();
    s.database.max_connections = 5;
    s.redis.key_prefix = format!("nctest:{}", Uuid::new_v4().simple());
    s.auth.jwt_secret = Some(JWT_SECRET.into());
    s.amqp.vhost = format!("nctest-{}", Uuid::new_v4().simple());
    s.agents.heartbeat_interval_secs = 1;
    s
}

pub struct TestApp {
    pub address: String,
    pub state: actix_web::web::Data<netcheck::server::AppState>,
    pub client: reqwest::Client,
    #[allow(dead_code)] // read by later test modules
    pub settings: Settings,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings().await;
    customize(&mut settings);
    let args = ServerArgs {
        admin_username: ADMIN_USER.into(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        local_agent: None,
    };
    let app = Application::build(settings.clone(), args)
        .await
        .expect("build server");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    // The AMQP session comes up in the background; most tests want it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !state.broker.is_connected().await && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    TestApp {
        address,
        state,
        client: new_client(),
        settings,
    }
}

impl TestApp {
    /// A second server instance on this one's database, broker vhost and Redis prefix.
    pub async fn another_instance(&self) -> TestApp {
        let shared = self.settings.clone();
        spawn_app_with(|s| {
            s.database.url = shared.database.url.clone();
            s.amqp.vhost = shared.amqp.vhost.clone();
            s.redis.key_prefix = shared.redis.key_prefix.clone();
        })
        .await
    }
}

/// A loopback TCP port nothing listens on, for a process to listen on or for a check to be
/// refused at. Drawn below the kernel's ephemeral range (32768–60999), so no outgoing
/// connection of a parallel test can take it between this check and its use, as a released
/// `bind(":0")` port can be.
pub fn unused_port() -> u16 {
    loop {
        let port = rand::random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A client with its own cookie jar, like one browser (and never through a proxy from the
/// environment, which one test sets for the server's sake).
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Logs in with `client`; returns the response body.
    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> (StatusCode, Value) {
        let resp = client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    /// The typed client on the app's own client (its cookie jar), signed in as nobody.
    pub fn api(&self) -> Api {
        Api::new(self.client.clone(), &self.address)
    }

    /// The typed client signed in with `token`.
    pub fn api_as(&self, token: &str) -> Api {
        self.api().with_token(token)
    }

    /// Logs the admin in on the app's own client and returns an access token.
    pub async fn admin_token(&self) -> String {
        let session = self.api().login(ADMIN_USER, ADMIN_PASSWORD).await;
        session.expect("admin login").access_token
    }

    /// The typed client signed in as the admin.
    pub async fn admin(&self) -> Api {
        self.api_as(&self.admin_token().await)
    }

    /// Creates a user as admin and returns an access token for it (own client, own cookies).
    pub async fn user_token(&self, username: &str) -> String {
        let user = CreateUser {
            username: username.into(),
            password: "user-password-1".into(),
            role: Role::User,
        };
        self.admin().await.create_user(&user).await.unwrap();
        let own = Api::new(new_client(), &self.address);
        let session = own.login(username, "user-password-1").await.unwrap();
        session.access_token
    }
}

/// Asserts the API's error shape and returns the code.
pub async fn error_code(resp: reqwest::Response, status: StatusCode) -> (String, Value) {
    assert_eq!(resp.status(), status);
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(ct.as_deref(), Some("application/json"));
    let body: Value = resp.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{code}"
    );
    (code, body)
}

/// A call the API refused with `status` and its error body (the client reads it only from a
/// JSON answer): a stable code and a message for people. Returns the error for its code and
/// field.
pub fn refused<T>(result: ClientResult<T>, status: StatusCode) -> ClientError {
    let Err(err) = result else {
        panic!("expected a {status} refusal, the call succeeded");
    };
    assert_eq!(err.status(), Some(status), "{err}");
    match &err {
        ClientError::Api { body, .. } => assert!(!body.error.message.is_empty(), "{err}"),
        other => panic!("not the API's error body: {other}"),
    }
    err
}

/// Polls `probe` until it yields `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A `netcheck` child process, killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl TestApp {
    /// Creates an agent (region `test`, label `ci`) as admin; returns it and its token.
    pub async fn create_agent(&self, name: &str) -> (Agent, String) {
        let body = CreateAgent {
            name: name.into(),
            region: Some("test".into()),
            labels: vec!["ci".into()],
        };
        let created = self.admin().await.create_agent(&body).await.unwrap();
        (created.agent, created.token)
    }

    /// Starts the real agent binary against this server.
    pub fn spawn_agent(&self, token: &str) -> Process {
        self.spawn_agent_with(token, &[])
    }

    /// Starts the real agent binary with extra arguments.
    pub fn spawn_agent_with(&self, token: &str, extra: &[&str]) -> Process {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(["agent", "--server", &self.address, "--token", token])
            .args(extra)
            .env("NETCHECK_LOG_FORMAT", "json")
            .env("RUST_LOG", "netcheck=debug,warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn netcheck agent");
        Process(child)
    }

    /// Registers as the agent would and returns the registration answer.
    pub async fn register(&self, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/agent/register"))
            .bearer_auth(token)
            .json(&json!({ "hostname": "test-host", "version": "0.0.0-test", "capabilities": ["tcp"] }))
            .send()
            .await
            .unwrap()
    }

    /// `GET /api/v1/checks/{id}` as the holder of `token`.
    pub async fn check(&self, token: &str, id: Uuid) -> CheckView {
        self.api_as(token).check(id).await.unwrap()
    }

    /// The agent as an administrator sees it.
    pub async fn agent(&self, id: Uuid) -> Agent {
        self.admin().await.agent(id).await.unwrap()
    }
}

/// GET on the local RabbitMQ management API (as the administrator); `None` when it fails.
pub async fn broker_api(path: &str) -> Option<Value> {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:15672/api/{path}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Connections the broker currently lists for `user`.
pub async fn broker_connections_of(user: &str) -> Option<usize> {
    let conns = broker_api("connections?columns=user").await?;
    Some(
        conns
            .as_array()?
            .iter()
            .filter(|c| c["user"] == user)
            .count(),
    )
}

/// Messages of a queue delivered to a consumer but not yet acknowledged.
pub async fn unacked(vhost: &str, queue: &str) -> Option<u64> {
    // From the broker itself: the management API's queue figures are samples refreshed every
    // few seconds, too late to see a message that is unacknowledged for a moment.
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "--no-table-headers", "-p", vhost])
        .args(["name", "messages_unacknowledged"])
        .output()
        .await
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (name, n) = l.split_once('\t')?;
        (name == queue).then(|| n.trim().parse().ok())?
    })
}

/// Resident memory of this process (the server runs in it), in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}
