//! HTTP timing phases: they follow one another without overlap and add up to the total.

use std::time::Duration;

use serde_json::{json, Value};

use crate::rig::rig;
use crate::targets;

/// The phases of a result and how far their sum is from `total`, in ms.
fn phases(r: &Value) -> (Value, f64) {
    let t = r["timings_ms"].clone();
    let sum: f64 = ["dns", "connect", "tls", "first_byte", "download"]
        .iter()
        .map(|p| t[*p].as_f64().unwrap_or(0.0))
        .sum();
    let gap = (t["total"].as_f64().unwrap() - sum).abs();
    (t, gap)
}

#[tokio::test]
async fn http_timing_phases_add_up_to_the_total() {
    let rig = rig().await;
    let addr = targets::slow_https_server(
        Duration::from_millis(150),
        Duration::from_millis(100),
        b"a body in two parts",
    )
    .await;
    let (check, _) = rig
        .run(
            json!({"type": "http", "target": format!("https://127.0.0.1:{}/", addr.port()),
                    "options": {"verify_tls": false}}),
        )
        .await;
    let r = &check["results"][0];
    assert_eq!(r["status"], "ok", "{r}");
    let (t, gap) = phases(r);
    assert!(t["dns"].is_null(), "an IP address needs no lookup: {t}");
    assert!(t["connect"].as_f64().unwrap() > 0.0, "{t}");
    let tls = t["tls"].as_f64().unwrap();
    assert!(
        tls > 0.0 && tls < 150.0,
        "the handshake is not the wait: {t}"
    );
    let first_byte = t["first_byte"].as_f64().unwrap();
    assert!(
        (150.0..400.0).contains(&first_byte),
        "first_byte holds the server's 150 ms think time and not the handshake: {t}"
    );
    assert!(
        t["download"].as_f64().unwrap() >= 90.0,
        "download holds the 100 ms trickle: {t}"
    );
    assert!(
        gap <= 0.05,
        "phases sum to total within rounding (gap {gap} ms): {t}"
    );

    // Followed redirects: each phase summed over the hops, still adding up.
    let plain = targets::http_server().await;
    let (check, _) = rig
        .run(
            json!({"type": "http", "target": format!("http://{plain}/redirect"),
                    "options": {"follow_redirects": true}}),
        )
        .await;
    let r = &check["results"][0];
    assert_eq!(r["status_code"], 200, "{r}");
    let (t, gap) = phases(r);
    assert!(t["tls"].is_null(), "{t}");
    assert!(gap <= 0.05, "gap {gap} ms: {t}");
}
