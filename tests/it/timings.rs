//! HTTP timing phases: they follow one another without overlap and add up to the total.

use std::time::Duration;

use netcheck_proto::check::CheckType;
use netcheck_proto::result::{HttpResult, HttpTimings, ResultStatus};
use serde_json::json;

use crate::rig::{check, data, only, rig};
use crate::targets;

/// How far the sum of the phases is from `total`, in ms.
fn gap(t: &HttpTimings) -> f64 {
    let sum: f64 = [t.dns, t.connect, t.tls, t.first_byte, t.download]
        .iter()
        .map(|p| p.unwrap_or(0.0))
        .sum();
    (t.total.unwrap() - sum).abs()
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
    let (c, _) = rig
        .run(check(
            CheckType::Http,
            format!("https://127.0.0.1:{}/", addr.port()),
            json!({"verify_tls": false}),
        ))
        .await;
    let r = only(&c);
    assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
    let t = data::<HttpResult>(r).timings_ms;
    assert_eq!(t.dns, None, "an IP address needs no lookup: {t:?}");
    assert!(t.connect.unwrap() > 0.0, "{t:?}");
    let tls = t.tls.unwrap();
    assert!(
        tls > 0.0 && tls < 150.0,
        "the handshake is not the wait: {t:?}"
    );
    let first_byte = t.first_byte.unwrap();
    assert!(
        (150.0..400.0).contains(&first_byte),
        "first_byte holds the server's 150 ms think time and not the handshake: {t:?}"
    );
    assert!(
        t.download.unwrap() >= 90.0,
        "download holds the 100 ms trickle: {t:?}"
    );
    let gap_ms = gap(&t);
    assert!(
        gap_ms <= 0.05,
        "phases sum to total within rounding (gap {gap_ms} ms): {t:?}"
    );

    // Followed redirects: each phase summed over the hops, still adding up.
    let plain = targets::http_server().await;
    let (c, _) = rig
        .run(check(
            CheckType::Http,
            format!("http://{plain}/redirect"),
            json!({"follow_redirects": true}),
        ))
        .await;
    let h: HttpResult = data(only(&c));
    assert_eq!(h.status_code, Some(200), "{h:?}");
    let t = h.timings_ms;
    assert_eq!(t.tls, None, "{t:?}");
    assert!(gap(&t) <= 0.05, "gap {} ms: {t:?}", gap(&t));
}
