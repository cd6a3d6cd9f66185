//! A webhook receiver on loopback for the monitor tests, and the signature it should see.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{KeyInit, Mac};

/// Webhook deliveries received: (signature header, body).
pub type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver on loopback that answers 500 to its first `failures` requests, then
/// 200 (recording what it accepted).
pub async fn receiver(failures: u32) -> (String, Received) {
    let got: Received = Default::default();
    let seen = got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(0u32));
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        let calls = calls.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let seen = seen.clone();
                let calls = calls.clone();
                async move {
                    let mut n = calls.lock().unwrap();
                    *n += 1;
                    if *n <= failures {
                        return HttpResponse::InternalServerError().finish();
                    }
                    let sig = req
                        .headers()
                        .get("x-netcheck-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock()
                        .unwrap()
                        .push((sig, String::from_utf8_lossy(&body).to_string()));
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (url, got)
}

pub fn signed(secret: &str, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Requests a [`recorder`] accepted: (path, JSON body), in arrival order.
pub type Recorded = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A receiver on loopback for every path (one per provider under test) that answers 500 to
/// the first `failures` requests whose path starts with `failing`, then 200 with `{"ok":
/// true}`, recording the JSON bodies it accepted.
pub async fn recorder(failing: &'static str, failures: u32) -> (String, Recorded) {
    let got: Recorded = Default::default();
    let seen = got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(0u32));
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        let calls = calls.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let seen = seen.clone();
            let calls = calls.clone();
            async move {
                let path = req.path().to_string();
                if path.starts_with(failing) {
                    let mut n = calls.lock().unwrap();
                    *n += 1;
                    if *n <= failures {
                        return HttpResponse::InternalServerError().finish();
                    }
                }
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                seen.lock().unwrap().push((path, json));
                HttpResponse::Ok().json(serde_json::json!({"ok": true}))
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (base, got)
}
