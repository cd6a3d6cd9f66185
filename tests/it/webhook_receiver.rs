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
