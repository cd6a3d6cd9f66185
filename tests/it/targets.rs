//! Real targets for probes, on loopback: an HTTP server with known answers, an HTTPS server
//! with a known certificate, and a DNS server with known records.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::Process;

/// HTTP on 127.0.0.1: `/status/{code}` answers that code with `x-netcheck-test: yes` and a
/// 5-byte body; `/redirect` → 302 to `/final`; `/final` → 200; `/huge-location` → 302 with a
/// 300 KB `Location`; `/ff-headers/{n}` → n headers of 1 KiB of 0xFF bytes; `/zeros-ones` →
/// 1 MiB of `0` and `1`.
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
            // Answers after the given milliseconds: a probe of known length.
            .route(
                "/slow/{ms}",
                web::get().to(|ms: web::Path<u64>| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
                    HttpResponse::Ok().body("slow")
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
            // Answers no well-behaved server gives, and every result must survive.
            .route(
                "/huge-location",
                web::get().to(|| async {
                    HttpResponse::Found()
                        .insert_header(("Location", format!("/{}", "a".repeat(300_000))))
                        .finish()
                }),
            )
            .route(
                "/zeros-ones",
                web::get().to(|| async {
                    // A pseudo-random mix (the multiplication wraps on purpose).
                    let body: Vec<u8> = (0..1i32 << 20)
                        .map(|i| {
                            if i.wrapping_mul(7919) % 3 == 0 {
                                b'1'
                            } else {
                                b'0'
                            }
                        })
                        .collect();
                    HttpResponse::Ok().body(body)
                }),
            )
            .route(
                "/ff-headers/{n}",
                web::get().to(|n: web::Path<usize>| async move {
                    let mut r = HttpResponse::Ok();
                    for i in 0..*n {
                        let value = actix_web::http::header::HeaderValue::from_bytes(&[0xFF; 1024])
                            .unwrap();
                        r.insert_header((format!("x-ff-{i}"), value));
                    }
                    r.body("ok")
                }),
            )
    })
    .workers(2)
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
    let port = crate::helpers::unused_port();
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

fn answer(query: &[u8], tcp: bool) -> Option<Vec<u8>> {
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
        // 4 000 records: over UDP only the truncation flag, in full over TCP.
        ("many.test.", RecordType::A) if tcp => {
            for i in 0..4000u32 {
                let [_, _, a, b] = i.to_be_bytes();
                resp.answers.push(rec(RData::A(A::new(192, 0, a, b))));
            }
        }
        ("many.test.", RecordType::A) => resp.metadata.truncation = true,
        ("example.test.", _) | ("rebind.test.", _) => {}
        _ => resp.metadata.response_code = ResponseCode::NXDomain,
    }
    resp.to_vec().ok()
}

/// A DNS server on 127.0.0.1 (UDP and TCP, same port): `example.test` A 192.0.2.10 and
/// 192.0.2.11 and MX 10 mail.example.test; `rebind.test` A 10.1.2.3; `many.test` 4 000 A
/// records (over TCP; truncated over UDP); everything else NXDOMAIN.
pub async fn dns_server() -> SocketAddr {
    gated_dns_server(Arc::new(AtomicBool::new(true))).await
}

/// [`dns_server`], silent (queries go unanswered, so resolvers time out) while `on` is false.
pub async fn gated_dns_server(on: Arc<AtomicBool>) -> SocketAddr {
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
            if !on.load(Ordering::SeqCst) {
                continue;
            }
            if let Some(r) = answer(&buf[..n], false) {
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
                let r = answer(&q, true)?;
                s.write_all(&(r.len() as u16).to_be_bytes()).await.ok()?;
                s.write_all(&r).await.ok()
            });
        }
    });
    addr
}

/// A certificate authority made for one test, and the certificates it signs.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        Self {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// Writes the CA certificate (PEM) into `dir` and returns its path.
    pub fn write(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    /// A server certificate for `names` (host names or IP addresses) and its key.
    pub fn server_cert(
        &self,
        names: &[&str],
    ) -> (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
    }
}

/// A TLS acceptor serving `chain` with `key`.
pub fn tls_acceptor(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> tokio_rustls::TlsAcceptor {
    netcheck::tls::install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// HTTPS on 127.0.0.1 that answers every request with 200 and `body`, waiting `think` before
/// the headers and `trickle` between the headers and the body.
pub async fn slow_https_server(
    think: std::time::Duration,
    trickle: std::time::Duration,
    body: &'static [u8],
) -> SocketAddr {
    let (chain, key) = TestCa::new("slow-https CA").server_cert(&["localhost", "127.0.0.1"]);
    let acceptor = tls_acceptor(chain, key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(think).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.flush().await;
                tokio::time::sleep(trickle).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}
