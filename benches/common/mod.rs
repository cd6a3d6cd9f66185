//! What the benchmarks share: a real server in this process on a fresh database, a logged-in
//! admin client, real agent processes, and readings of a process's CPU time and memory.
#![allow(dead_code)] // each bench uses its own part of this

use std::time::Duration;

use netcheck::client::api::Api;
use netcheck::config::Settings;
use netcheck::server::Application;
use netcheck::server::ServerArgs;
use netcheck_proto::api::agents::{AgentStatus, CreateAgent};
use netcheck_proto::api::checks::{CheckResultView, CreateCheck};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use uuid::Uuid;

pub fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0–1) of sorted values, nearest rank.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// "p50 … ms  p90 … ms  p99 … ms" of sorted milliseconds.
pub fn p50_p90_p99(sorted: &[f64]) -> String {
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms",
        pct(sorted, 0.5),
        pct(sorted, 0.9),
        pct(sorted, 0.99)
    )
}

/// The median of unsorted values.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    pct(&v, 0.5)
}

/// Runs a shell command; true when it succeeded.
pub fn sh(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// An agent process, stopped when dropped: also when the bench panics, so that no agent is
/// left holding the bench's output open.
pub struct AgentProcess(std::process::Child, String);

impl AgentProcess {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The binary it runs.
    pub fn bin(&self) -> &str {
        &self.1
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Bench {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    /// The typed client, signed in as the admin.
    pub api: Api,
    pub db: DatabaseConnection,
    /// The broker virtual host of this bench's server.
    pub vhost: String,
    db_name: String,
    admin_db: DatabaseConnection,
    server: actix_web::dev::ServerHandle,
    state: actix_web::web::Data<netcheck::server::AppState>,
}

impl Bench {
    /// Starts the server on a fresh database and vhost; targets in `allowed` may be checked.
    pub async fn start(allowed: &[&str]) -> Bench {
        Self::start_with(allowed, |_| {}).await
    }

    /// Like [`Bench::start`], with settings changed by `customize` last.
    pub async fn start_with(allowed: &[&str], customize: impl FnOnce(&mut Settings)) -> Bench {
        let db_name = format!("nc_bench_{}", uuid::Uuid::new_v4().simple());
        let admin_db = Database::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .unwrap();
        admin_db
            .execute_unprepared(&format!("CREATE DATABASE {db_name}"))
            .await
            .unwrap();
        let mut s = Settings::load_from(None, Vec::new()).unwrap();
        s.http.listen = "127.0.0.1:0".parse().unwrap();
        s.database.url = format!("postgres://postgres@127.0.0.1:5432/{db_name}").into();
        s.database.max_connections = 32;
        s.redis.key_prefix = format!("ncbench:{}", uuid::Uuid::new_v4().simple());
        let vhost = format!("nctest-bench-{}", uuid::Uuid::new_v4().simple());
        s.amqp.vhost = vhost.clone();
        s.checks.allowed_networks = allowed.iter().map(|n| n.parse().unwrap()).collect();
        s.checks.rate_limit_per_minute = u32::MAX;
        s.agents.heartbeat_interval_secs = 2;
        // Admission control's queueing limit, to compare settings (the default otherwise).
        s.checks.max_queueing_ms = env_or("BENCH_MAX_QUEUEING_MS", s.checks.max_queueing_ms);
        s.log.level = "warn".into();
        customize(&mut s);
        netcheck::telemetry::init(s.log.format, "warn");
        let args = ServerArgs {
            admin_username: "admin".into(),
            admin_password: Some("bench-password".into()),
            local_agent: None,
        };
        let app = Application::build(s, args).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let (server, state) = (app.handle(), app.state());
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        let anonymous = Api::new(http.clone(), &base);
        let login = anonymous.login("admin", "bench-password").await.unwrap();
        let token = login.access_token;
        let api = anonymous.with_token(&token);
        let db = Database::connect(format!("postgres://postgres@127.0.0.1:5432/{db_name}"))
            .await
            .unwrap();
        Bench {
            base,
            http,
            token,
            api,
            db,
            vhost,
            db_name,
            admin_db,
            server,
            state,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The running server's state (settings, pools, agent directory).
    #[allow(dead_code)] // used by some benches only
    pub fn state(&self) -> &netcheck::server::AppState {
        &self.state
    }

    /// Creates an agent; returns its id and token.
    pub async fn create_agent(&self, name: &str) -> (Uuid, String) {
        let body = CreateAgent {
            name: name.into(),
            ..Default::default()
        };
        let created = self.api.create_agent(&body).await.unwrap();
        (created.agent.id, created.token)
    }

    /// Starts `n` agent processes (`bench-0` …) and waits until all are online.
    pub async fn spawn_agents(&self, n: usize) -> Vec<AgentProcess> {
        let mut children = Vec::new();
        // BENCH_AGENT_BIN: other builds' binaries as the agents (comma-separated, taken in
        // turn), to compare builds side by side: every agent runs every check.
        let bins: Vec<String> = std::env::var("BENCH_AGENT_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_netcheck").to_string())
            .split(',')
            .map(str::to_string)
            .collect();
        for i in 0..n {
            let (_, token) = self.create_agent(&format!("bench-{i}")).await;
            let bin = bins[i % bins.len()].clone();
            let child = std::process::Command::new(&bin)
                .args(["agent", "--server", &self.base, "--token", &token])
                .env("RUST_LOG", "warn")
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            children.push(AgentProcess(child, bin));
        }
        loop {
            let agents = self.api.agents().await.unwrap();
            let online = agents.iter().filter(|a| a.status == AgentStatus::Online);
            if online.count() == n {
                return children;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a check; its id.
    pub async fn create_check(&self, body: &CreateCheck) -> Uuid {
        let created = self.api.create_check(body).await;
        created
            .unwrap_or_else(|e| panic!("check not created: {e}"))
            .id
    }

    /// Follows a check's live stream until `finished`; the results streamed.
    pub async fn until_finished(&self, id: Uuid) -> Vec<CheckResultView> {
        let events = self.api.check_events(id).await.unwrap();
        events.results().await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        count(&self.db, sql).await
    }

    /// Stops the server and its background tasks, then drops the bench database.
    pub async fn finish(self) {
        self.server.stop(true).await;
        self.state.shutdown.cancel();
        // Let the background tasks see the cancellation before their database goes away.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.db.close().await.ok();
        self.admin_db
            .execute_unprepared(&format!("DROP DATABASE {} WITH (FORCE)", self.db_name))
            .await
            .ok();
    }
}

/// A TCP target on loopback that accepts every connection; its port.
#[allow(dead_code)] // used by some benches only
pub async fn tcp_target() -> u16 {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let _ = target.accept().await;
        }
    });
    port
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// CPU time (user + system) of every process named `comm` on this machine, in seconds (e.g.
/// `beam.smp`, RabbitMQ: each probe costs it a delivery, a publish with its confirm and an
/// ack; `postgres`, whose connections the server pools, so its backends live through a run).
#[allow(dead_code)] // used by some benches only
pub fn cpu_secs_of(comm: &str) -> f64 {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == comm)
        })
        .map(cpu_secs)
        .sum()
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Prints how long headless Chromium takes to show `selector` at `path` (signed in as the
/// bench's admin), with `frontend/tests/pageload.mjs`; nothing when Chromium is not there.
#[allow(dead_code)] // used by some benches only
pub fn page_load(base: &str, path: &str, selector: &str) {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        return;
    }
    let out = std::process::Command::new("node")
        .args([
            "frontend/tests/pageload.mjs",
            base,
            "admin",
            "bench-password",
            path,
            selector,
        ])
        .output()
        .expect("node runs");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
}
