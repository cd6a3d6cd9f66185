//! Real targets for probes, on loopback: an HTTP server with known answers, an HTTPS server
//! with a known certificate, and a DNS server with known records.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use actix_web::{web, App, HttpResponse, HttpServer};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::Process;

/// HTTP on 127.0.0.1: `/status/{code}` answers that code with `x-netcheck-test: yes` and a
/// 5-byte body; `/redirect` → 302 to `/final`; `/final` → 200.
pub async fn http_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/status/{code}",
                web::get().to(|code: web::Path<u16>| async move {
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(*code).unwrap())
                        .insert_header(("x-netcheck-test", "yes"))
                        .body("hello")
                }),
            )
            .route(
                "/redirect",
                web::get().to(|| async {
                    HttpResponse::Found()
                        .insert_header(("Location", "/final"))
                        .finish()
                }),
            )
            .route(
                "/final",
                web::get().to(|| async { HttpResponse::Ok().body("final!") }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    addr
}

/// HTTPS on 127.0.0.1 (openssl s_server) with a fresh self-signed certificate whose
/// subject CN is `netcheck-test`, valid for 30 days.
pub fn https_server(dir: &std::path::Path) -> (u16, Process) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "netcheck-test");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    let now = std::time::SystemTime::now();
    params.not_after = (now + std::time::Duration::from_secs(30 * 86400)).into();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (port, Process(child))
}

fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let mut resp = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    resp.metadata.recursion_desired = q.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(question.clone());
    let name = question.name().to_ascii().to_lowercase();
    let rtype = question.query_type();
    let rec = |data: RData| Record::from_rdata(question.name().clone(), 300, data);
    match (name.as_str(), rtype) {
        ("example.test.", RecordType::A) => {
            resp.answers.push(rec(RData::A(A::new(192, 0, 2, 10))));
            resp.answers.push(rec(RData::A(A::new(192, 0, 2, 11))));
        }
        ("example.test.", RecordType::MX) => {
            resp.answers.push(rec(RData::MX(MX::new(
                10,
                Name::from_ascii("mail.example.test.").unwrap(),
            ))));
        }
        ("rebind.test.", RecordType::A) => resp.answers.push(rec(RData::A(A::new(10, 1, 2, 3)))),
        ("example.test.", _) | ("rebind.test.", _) => {}
        _ => resp.metadata.response_code = ResponseCode::NXDomain,
    }
    resp.to_vec().ok()
}

/// A DNS server on 127.0.0.1 (UDP and TCP, same port): `example.test` A 192.0.2.10 and
/// 192.0.2.11 and MX 10 mail.example.test; `rebind.test` A 10.1.2.3; everything else NXDOMAIN.
pub async fn dns_server() -> SocketAddr {
    // UDP and TCP on one port: the port the system picks for UDP may be taken for TCP (by
    // another test's connection, say), so try again with another.
    let mut attempts = 0;
    let (udp, tcp, addr) = loop {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => break (udp, tcp, addr),
            Err(_) if attempts < 50 => attempts += 1,
            Err(e) => panic!("no port free for both UDP and TCP: {e}"),
        }
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            if let Some(r) = answer(&buf[..n]) {
                let _ = udp.send_to(&r, peer).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let len = s.read_u16().await.ok()? as usize;
                let mut q = vec![0u8; len];
                s.read_exact(&mut q).await.ok()?;
                let r = answer(&q)?;
                s.write_all(&(r.len() as u16).to_be_bytes()).await.ok()?;
                s.write_all(&r).await.ok()
            });
        }
    });
    addr
}
