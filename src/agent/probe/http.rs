//! HTTP(S) probe on hyper, driving each phase itself so it can time them: DNS, TCP connect,
//! TLS handshake (with certificate facts), first byte, download and total. Each phase starts
//! where the previous one ended (one lap clock), so the phases add up to the total. Redirects
//! are reported, and followed only when asked — each hop re-resolved and re-checked against
//! the target policy.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::Url;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use super::expect::MAX_JUDGED_BODY;
use super::resolve::TargetResolver;
use super::tcp::connect_error;
use super::{ms, Outcome};
use crate::policy::Policy;
use netcheck_proto::check::{HttpOptions, HttpVersion};
use netcheck_proto::result::ProbeErrorCode;
use netcheck_proto::result::{HttpResult, HttpTimings, ProbeError, ResultData, TlsInfo};

/// Most body bytes read (and counted) per response.
const MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
/// Most redirects followed.
const MAX_REDIRECTS: usize = 10;
/// Most response headers reported.
const MAX_HEADERS: usize = 64;
/// Most bytes of one header value reported.
const MAX_HEADER_VALUE: usize = 1024;
/// Most bytes of all header names and values reported: a result must stay small enough for
/// the broker whatever a server answers.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest redirect target reported (and followed).
const MAX_REDIRECT_BYTES: usize = 2048;

/// Client TLS configurations by (verify the certificate, ALPN offer): both versions, 1.1
/// only, 2 only.
pub struct TlsConfigs {
    verify: [Arc<ClientConfig>; 3],
    no_verify: [Arc<ClientConfig>; 3],
}

impl TlsConfigs {
    pub fn new() -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let verify = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let no_verify = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        let offers = |base: ClientConfig| {
            [
                vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                vec![b"http/1.1".to_vec()],
                vec![b"h2".to_vec()],
            ]
            .map(|alpn| {
                let mut c = base.clone();
                c.alpn_protocols = alpn;
                Arc::new(c)
            })
        };
        Ok(Self {
            verify: offers(verify),
            no_verify: offers(no_verify),
        })
    }

    fn pick(&self, verify: bool, version: Option<HttpVersion>) -> &Arc<ClientConfig> {
        let set = if verify {
            &self.verify
        } else {
            &self.no_verify
        };
        &set[match version {
            None => 0,
            Some(HttpVersion::Http11) => 1,
            Some(HttpVersion::Http2) => 2,
        }]
    }
}

/// Accepts any certificate (signatures are still checked) for `verify_tls: false`.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn empty_result() -> HttpResult {
    HttpResult {
        resolved_address: None,
        status_code: None,
        http_version: None,
        headers: BTreeMap::new(),
        headers_truncated: false,
        body_bytes: None,
        timings_ms: HttpTimings::default(),
        tls: None,
        redirect_to: None,
        redirects: 0,
        assertions: Vec::new(),
    }
}

pub async fn run(
    targets: &TargetResolver,
    tls: &TlsConfigs,
    target: &str,
    o: &HttpOptions,
    policy: &Policy,
) -> (Outcome, Vec<u8>) {
    let start = Instant::now();
    let keep_body = o.expect.as_ref().is_some_and(|e| e.needs_body());
    let mut body = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(o.timeout_ms as u64);
    let mut result = empty_result();
    let mut url = match Url::parse(target) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            return (
                Outcome {
                    data: ResultData::Http(Box::new(result)),
                    error: Some(ProbeError::new(
                        ProbeErrorCode::InvalidTarget,
                        "not an http(s) URL",
                    )),
                },
                body,
            )
        }
    };
    let mut hops = 0;
    let mut timings = HttpTimings::default();
    let mut lap = Lap(start);
    let mut exchanged;
    let error = loop {
        result = empty_result();
        let hop = tokio::time::timeout_at(
            deadline,
            request(
                targets,
                tls,
                &url,
                o,
                policy,
                &mut result,
                &mut lap,
                (keep_body, &mut body),
            ),
        )
        .await;
        timings.add(&result.timings_ms);
        exchanged = matches!(hop, Ok(Ok(())));
        match hop {
            Err(_) => {
                break Some(ProbeError::new(
                    ProbeErrorCode::Timeout,
                    format!("no complete answer within {} ms", o.timeout_ms),
                ))
            }
            Ok(Err(e)) => break Some(e),
            Ok(Ok(())) => {}
        }
        match (&result.redirect_to, o.follow_redirects) {
            (Some(next), true) => {
                hops += 1;
                if hops > MAX_REDIRECTS {
                    break Some(ProbeError::new(
                        ProbeErrorCode::TooManyRedirects,
                        format!("more than {MAX_REDIRECTS} redirects"),
                    ));
                }
                match Url::parse(next) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => url = u,
                    _ => {
                        break Some(ProbeError::new(
                            ProbeErrorCode::BadRedirect,
                            format!("cannot follow redirect to {next}"),
                        ))
                    }
                }
            }
            _ => {
                // Accepted statuses given in `expect.status` are judged with the other
                // expectations; without them a 4xx or 5xx answer is a failure.
                let judged = o.expect.as_ref().is_some_and(|e| e.status.is_some());
                break match result.status_code {
                    Some(code) if code >= 400 && !judged => Some(ProbeError::new(
                        ProbeErrorCode::HttpStatus,
                        format!("the server answered {code}"),
                    )),
                    _ => None,
                };
            }
        }
    };
    // A completed exchange ends with its last phase, so the phases add up to the total
    // (closing the connection afterwards is not part of it); one cut short lasted until now.
    let end = if exchanged { lap.0 } else { Instant::now() };
    timings.total = Some(ms(end - start));
    result.timings_ms = timings;
    result.redirects = hops.min(MAX_REDIRECTS) as u32;
    (
        Outcome {
            data: ResultData::Http(Box::new(result)),
            error,
        },
        body,
    )
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Times consecutive phases: each lap runs from the end of the previous one.
struct Lap(Instant);

impl Lap {
    fn next(&mut self) -> f64 {
        let now = Instant::now();
        let took = ms(now - self.0);
        self.0 = now;
        took
    }
}

/// One request/response exchange, filling `r` as each phase completes; with `keep.0`, the
/// first [`MAX_JUDGED_BODY`] bytes of the body go to `keep.1`.
#[allow(clippy::too_many_arguments)]
async fn request(
    targets: &TargetResolver,
    tls_configs: &TlsConfigs,
    url: &Url,
    o: &HttpOptions,
    policy: &Policy,
    r: &mut HttpResult,
    lap: &mut Lap,
    keep: (bool, &mut Vec<u8>),
) -> Result<(), ProbeError> {
    let (keep_body, kept) = keep;
    kept.clear();
    let host = url
        .host_str()
        .ok_or_else(|| ProbeError::new(ProbeErrorCode::InvalidTarget, "URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let (ip, dns_took) = targets.resolve(host, o.ip_version, policy).await?;
    r.resolved_address = Some(ip.to_string());
    // An IP address needs no lookup: its few microseconds of checks count as connecting.
    if dns_took.is_some() {
        r.timings_ms.dns = Some(lap.next());
    }

    let addr = SocketAddr::new(ip, port);
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| connect_error(&e, addr))?;
    let _ = tcp.set_nodelay(true);
    r.timings_ms.connect = Some(lap.next());

    let req = build_request(url, o)?;
    let response = if url.scheme() == "https" {
        let name = match url.host() {
            Some(url::Host::Domain(d)) => ServerName::try_from(d.to_string()),
            Some(url::Host::Ipv4(v4)) => Ok(ServerName::IpAddress(IpAddr::V4(v4).into())),
            Some(url::Host::Ipv6(v6)) => Ok(ServerName::IpAddress(IpAddr::V6(v6).into())),
            None => {
                return Err(ProbeError::new(
                    ProbeErrorCode::InvalidTarget,
                    "URL has no host",
                ))
            }
        }
        .map_err(|e| {
            ProbeError::new(
                ProbeErrorCode::InvalidTarget,
                format!("bad TLS server name: {e}"),
            )
        })?;
        let config = tls_configs.pick(o.verify_tls, o.version);
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                ProbeError::new(
                    ProbeErrorCode::Tls,
                    format!("TLS handshake with {addr} failed: {e}"),
                )
            })?;
        r.timings_ms.tls = Some(lap.next());
        let (_, session) = tls.get_ref();
        r.tls = tls_info(session);
        let h2 = session.alpn_protocol() == Some(b"h2");
        exchange(TokioIo::new(tls), (h2, true), req).await?
    } else {
        // HTTP/2 in clear is spoken with prior knowledge (h2c), as curl's --http2-prior-knowledge.
        let h2 = o.version == Some(HttpVersion::Http2);
        exchange(TokioIo::new(tcp), (h2, false), req).await?
    };
    r.timings_ms.first_byte = Some(lap.next());
    r.status_code = Some(response.status().as_u16());
    r.http_version = Some(format!("{:?}", response.version()));
    let mut header_bytes = 0;
    for (name, value) in response.headers().iter() {
        let full = String::from_utf8_lossy(value.as_bytes());
        let v = cut(&full, MAX_HEADER_VALUE);
        let new_name = !r.headers.contains_key(name.as_str());
        let cost = v.len() + if new_name { name.as_str().len() } else { 2 };
        let left_out =
            (new_name && r.headers.len() >= MAX_HEADERS) || header_bytes + cost > MAX_HEADER_BYTES;
        r.headers_truncated |= left_out || v.len() < full.len();
        if left_out {
            continue;
        }
        header_bytes += cost;
        r.headers
            .entry(name.as_str().to_string())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v)
            })
            .or_insert(v);
    }
    if response.status().is_redirection() {
        if let Some(loc) = response.headers().get(hyper::header::LOCATION) {
            let loc = String::from_utf8_lossy(loc.as_bytes());
            if loc.len() > MAX_REDIRECT_BYTES {
                r.redirect_to = Some(format!("{}…", cut(&loc, MAX_REDIRECT_BYTES)));
                if o.follow_redirects {
                    return Err(ProbeError::new(
                        ProbeErrorCode::BadRedirect,
                        format!(
                            "the redirect's Location is {} bytes, over the {} KiB netcheck follows",
                            loc.len(),
                            MAX_REDIRECT_BYTES / 1024
                        ),
                    ));
                }
            } else {
                r.redirect_to = url.join(&loc).ok().map(|u| u.to_string());
            }
        }
    }
    let mut body = response.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ProbeError::new(ProbeErrorCode::Http, format!("reading the body: {e}")))?;
        if let Some(data) = frame.data_ref() {
            n += data.len() as u64;
            if keep_body && kept.len() < MAX_JUDGED_BODY {
                let room = MAX_JUDGED_BODY - kept.len();
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        if n >= MAX_BODY_BYTES {
            break;
        }
    }
    r.body_bytes = Some(n);
    r.timings_ms.download = Some(lap.next());
    Ok(())
}

fn build_request(url: &Url, o: &HttpOptions) -> Result<hyper::Request<Full<Bytes>>, ProbeError> {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let mut b = hyper::Request::builder()
        .method(o.method.as_str())
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("netcheck-agent/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "*/*");
    for (k, v) in &o.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let body = Bytes::from(o.body.clone().unwrap_or_default());
    b.body(Full::new(body)).map_err(|e| {
        ProbeError::new(
            ProbeErrorCode::InvalidRequest,
            format!("cannot build the request: {e}"),
        )
    })
}

async fn exchange<I>(
    io: I,
    (h2, tls): (bool, bool),
    mut req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, ProbeError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let http_err = |e: hyper::Error| {
        ProbeError::new(ProbeErrorCode::Http, format!("HTTP exchange failed: {e}"))
    };
    if h2 {
        // HTTP/2 takes the authority from the URI, not a Host header.
        let host = req.headers_mut().remove(hyper::header::HOST);
        if let Some(host) = host.and_then(|h| h.to_str().ok().map(str::to_string)) {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or("/".into());
            let scheme = if tls { "https" } else { "http" };
            *req.uri_mut() = format!("{scheme}://{host}{pq}")
                .parse()
                .map_err(|_| ProbeError::new(ProbeErrorCode::InvalidRequest, "bad URI"))?;
        }
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(http_err)?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(http_err)
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(http_err)?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(http_err)
    }
}

fn tls_info(session: &rustls::ClientConnection) -> Option<TlsInfo> {
    use sha2::Digest;
    let chain = session.peer_certificates()?;
    let cert = chain.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let not_after = chrono::DateTime::from_timestamp(parsed.validity().not_after.timestamp(), 0)?;
    let chain_not_after = chain
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .map(|(_, c)| c.validity().not_after.timestamp())
        .min()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    Some(TlsInfo {
        version: match session.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
            v => format!("{v:?}"),
        },
        cipher: session
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        issuer: parsed.issuer().to_string(),
        subject: parsed.subject().to_string(),
        not_after,
        days_left: (not_after - chrono::Utc::now()).num_days(),
        chain_not_after,
        fingerprint_sha256: Some(
            sha2::Sha256::digest(cert.as_ref())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        ),
        dns_names: parsed
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    })
                    .take(32)
                    .collect()
            })
            .unwrap_or_default(),
    })
}
