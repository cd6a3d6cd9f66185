//! TLS end to end with the real broker: the server and agents on `amqps://` through the local
//! RabbitMQ's TLS listener (127.0.0.1:5671, its CA made by scripts/services.sh), a broker
//! certificate from another CA refused cleanly, an agent reaching the server's https URL
//! through a private CA, and no role that panics on TLS settings.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use netcheck_proto::api::agents::AgentStatus;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::ResultStatus;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::helpers::*;
use crate::rig::rig_with;
use crate::targets::{tls_acceptor, TestCa};

/// The CA of the local broker's TLS listener.
pub const BROKER_CA: &str = "/etc/rabbitmq/netcheck-tls/ca.pem";

/// The server on amqps://localhost:5671; agents told to use TLS on 127.0.0.1:5671.
fn amqps(s: &mut netcheck::config::Settings) {
    s.amqp.url = "amqps://guest:guest@localhost:5671".into();
    s.amqp.ca_file = Some(BROKER_CA.into());
    s.amqp.public_host = Some("127.0.0.1".into());
    s.amqp.public_port = Some(5671);
    s.amqp.public_tls = true;
}

/// Lines a child process writes to stderr, read on a thread of their own.
fn stderr_lines(p: &mut Process) -> mpsc::UnboundedReceiver<String> {
    let stderr = p.0.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads lines until one contains `wanted`; fails on a panic or after `timeout`.
async fn until_line(
    lines: &mut mpsc::UnboundedReceiver<String>,
    wanted: &str,
    timeout: Duration,
) -> String {
    let read = async {
        while let Some(line) = lines.recv().await {
            assert!(!line.contains("panicked"), "a panic: {line}");
            if line.contains(wanted) {
                return line;
            }
        }
        panic!("the process ended before writing {wanted:?}");
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| panic!("no line with {wanted:?} within {timeout:?}"))
}

#[tokio::test]
async fn server_and_agent_work_over_amqps_with_verified_certificates() {
    let rig = rig_with(&["--ca-file", BROKER_CA], amqps).await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    let (c, streamed) = rig
        .run(crate::rig::check(
            CheckType::Tcp,
            "127.0.0.1",
            json!({"port": port}),
        ))
        .await;
    assert_eq!(crate::rig::only(&c).status, ResultStatus::Ok, "{c:?}");
    assert_eq!(streamed.len(), 1);

    // Both the server's session and the agent's ran over TLS on 5671.
    let vhost = &rig.app.settings.amqp.vhost;
    // The management API lists connections from its statistics, which may lag a moment.
    let conns = eventually(
        "both connections listed",
        Duration::from_secs(15),
        || async {
            let conns =
                broker_api(&format!("vhosts/{vhost}/connections?columns=user,ssl,port")).await?;
            let conns = conns.as_array()?.clone();
            let agent = conns.iter().any(|c| c["user"] != "guest");
            let server = conns.iter().any(|c| c["user"] == "guest");
            (agent && server).then_some(conns)
        },
    )
    .await;
    for c in &conns {
        assert_eq!(c["ssl"], true, "{c}");
        assert_eq!(c["port"], 5671, "{c}");
    }
    assert!(
        conns.iter().any(|c| c["user"] != "guest"),
        "the agent's own user: {conns:?}"
    );
}

#[tokio::test]
async fn an_agent_refuses_a_broker_certificate_from_another_ca() {
    let app = spawn_app_with(amqps).await;
    assert!(
        app.state.broker.is_connected().await,
        "the server's amqps session"
    );
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new("not the broker's CA").write(dir.path());
    let (agent, token) = app.create_agent("wrong-ca").await;
    let mut process = app.spawn_agent_with(&token, &["--ca-file", other_ca.to_str().unwrap()]);
    let mut lines = stderr_lines(&mut process);
    let line = until_line(&mut lines, "broker session lost", Duration::from_secs(20)).await;
    assert!(
        line.contains("certificate") || line.contains("UnknownIssuer"),
        "the reason names the certificate: {line}"
    );
    assert!(
        process.0.try_wait().unwrap().is_none(),
        "the agent keeps running and retrying"
    );
    let vhost = &app.settings.amqp.vhost;
    let conns = broker_api(&format!("vhosts/{vhost}/connections?columns=user"))
        .await
        .expect("management API");
    assert!(
        conns
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["user"] == "guest"),
        "only the server's session; the agent never got one: {conns}"
    );
    assert_eq!(app.agent(agent.id).await.name, "wrong-ca");
}

#[tokio::test]
async fn an_agent_reaches_the_servers_https_url_through_a_private_ca() {
    // A TLS front for the server, like an operator's reverse proxy; its port is known first so
    // the server can hand agents its public https URL.
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front_port = front.local_addr().unwrap().port();
    let app = spawn_app_with(|s| {
        s.server.public_url = Some(format!("https://localhost:{front_port}"));
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("private CA");
    let ca_file = ca.write(dir.path());
    let (chain, key) = ca.server_cert(&["localhost"]);
    let acceptor = tls_acceptor(chain, key);
    let upstream = app.address.trim_start_matches("http://").to_string();
    front.set_nonblocking(true).unwrap();
    let front = tokio::net::TcpListener::from_std(front).unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = front.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    let url = format!("https://localhost:{front_port}");
    let agent_with = |token: &str, extra: &[&str]| {
        let child = Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(["agent", "--server", &url, "--token", token])
            .args(extra)
            .env("NETCHECK_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Process(child)
    };

    // Without the CA the server's certificate is refused, and the agent says so.
    let (untrusting, token) = app.create_agent("no-ca").await;
    let mut process = agent_with(&token, &[]);
    let mut lines = stderr_lines(&mut process);
    let line = until_line(&mut lines, "registration failed", Duration::from_secs(20)).await;
    assert!(
        line.contains(&url) && line.contains("certificate"),
        "{line}"
    );
    assert_eq!(app.agent(untrusting.id).await.status, AgentStatus::Pending);
    drop(process);

    // With it, registration and heartbeats go through the https front.
    let (trusting, token) = app.create_agent("with-ca").await;
    let _agent = agent_with(&token, &["--ca-file", ca_file.to_str().unwrap()]);
    eventually(
        "agent online over https",
        Duration::from_secs(20),
        || async { (app.agent(trusting.id).await.status == AgentStatus::Online).then_some(()) },
    )
    .await;
}

/// `netcheck server` as a child process with its settings in the environment.
fn server_command(db: &str, amqp_url: &str, ca_file: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netcheck"));
    cmd.arg("server")
        .env("NETCHECK__DATABASE__URL", db)
        .env("NETCHECK__HTTP__LISTEN", "127.0.0.1:0")
        .env("NETCHECK__AMQP__URL", amqp_url)
        .env("NETCHECK__AMQP__CA_FILE", ca_file)
        .env(
            "NETCHECK__AMQP__VHOST",
            format!("nctest-{}", uuid::Uuid::new_v4().simple()),
        )
        .env(
            "NETCHECK__REDIS__KEY_PREFIX",
            format!("nctest:{}", uuid::Uuid::new_v4().simple()),
        )
        .env("NETCHECK__AUTH__JWT_SECRET", JWT_SECRET)
        .env("NETCHECK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NETCHECK_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test]
async fn no_role_panics_on_tls_settings() {
    let dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new("not the broker's CA").write(dir.path());
    let missing = dir.path().join("missing.pem");

    // Server, amqps with a CA that did not sign the broker: it runs, and its log says why the
    // broker session fails (this panicked inside amqprs before).
    let db = fresh_database().await;
    let mut server = Process(
        server_command(
            &db,
            "amqps://guest:guest@localhost:5671",
            other_ca.to_str().unwrap(),
        )
        .spawn()
        .unwrap(),
    );
    let mut lines = stderr_lines(&mut server);
    let line = until_line(&mut lines, "broker session lost", Duration::from_secs(30)).await;
    assert!(
        line.contains("certificate") || line.contains("UnknownIssuer"),
        "{line}"
    );
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server keeps running"
    );
    drop(server);

    // Server, a CA file that is not there: refused at start, naming the setting.
    let out = server_command(
        &db,
        "amqps://guest:guest@localhost:5671",
        missing.to_str().unwrap(),
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("amqp.ca_file") && stderr.contains("cannot read CA file"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Agent and terminal client, the same CA file: a clear error and a failing exit code.
    let runs: [(&str, Vec<&str>); 2] = [
        (
            "agent",
            vec![
                "agent",
                "--server",
                "https://localhost:1",
                "--token",
                "nca_x",
            ],
        ),
        (
            "client",
            vec![
                "agents",
                "--server",
                "https://localhost:1",
                "--api-key",
                "nck_x",
            ],
        ),
    ];
    for (role, args) in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_netcheck"))
            .args(args)
            .args(["--ca-file", missing.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{role}");
        assert!(stderr.contains("cannot read CA file"), "{role}: {stderr}");
        assert!(!stderr.contains("panicked"), "{role}: {stderr}");
    }
}

#[tokio::test]
async fn the_registration_answer_tells_agents_to_use_tls() {
    let app = spawn_app_with(amqps).await;
    let (_, token) = app.create_agent("told").await;
    let reg: Value = app.register(&token).await.json().await.unwrap();
    assert_eq!(reg["amqp"]["tls"], true);
    assert_eq!(reg["amqp"]["port"], 5671);
}
