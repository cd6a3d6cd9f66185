//! `GET /api/v1/lookup/{host}` against the real DB-IP Lite databases fetched by the set-up.

use netcheck_proto::api::ErrorCode;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn lookup_locates_public_addresses_and_shows_no_refused_one() {
    let app = spawn_app().await;
    let looker = app.api_as(&app.user_token("looker").await);
    for (host, version) in [("1.1.1.1", 4), ("2606:4700:4700::1111", 6), ("8.8.8.8", 4)] {
        let found = looker.lookup(host).await.unwrap();
        assert_eq!(found.host, host);
        assert!(found.attribution.contains("DB-IP"));
        let addr = &found.addresses[0];
        assert_eq!((addr.ip.as_str(), addr.version), (host, version));
        let geo = addr
            .geo
            .as_ref()
            .unwrap_or_else(|| panic!("{host} located: {found:?}"));
        assert_eq!(geo.country_code.as_deref().map(str::len), Some(2));
        assert!(geo.country.as_ref().is_some_and(|c| !c.is_empty()));
        let (lat, lon) = (geo.lat, geo.lon);
        assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon));
    }
    // The server's resolver may know internal names: their addresses are never shown.
    let found = looker.lookup("localhost").await.unwrap();
    assert!(found.addresses.is_empty(), "{found:?}");
    assert!(found.withheld >= 1, "{found:?}");
    for literal in ["127.0.0.1", "0x7f.1", "10.0.0.1"] {
        let err = refused(
            looker.lookup(literal).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        assert_eq!(err.code(), Some(ErrorCode::ForbiddenTarget), "{literal}");
    }

    refused(app.api().lookup("1.1.1.1").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn trace_hops_get_their_network_and_place_where_known() {
    use netcheck_proto::result::ResultData;
    use netcheck_proto::trace::{TraceHop, TraceProtocol, TracerouteResult};
    let app = spawn_app().await;
    let hop = |ttl: u8, address: &str| TraceHop {
        ttl,
        address: Some(address.into()),
        rtt_ms: vec![1.0],
        rate_limited: false,
        asn: None,
        network: None,
        geo: None,
    };
    let mut data = ResultData::Traceroute(TracerouteResult {
        resolved_address: Some("8.8.8.8".into()),
        protocol: TraceProtocol::Icmp,
        reached: true,
        hops: vec![hop(1, "10.0.0.1"), hop(2, "8.8.8.8")],
        assertions: Vec::new(),
    });
    app.state.geoip.locate_hops(&mut data).await;
    let ResultData::Traceroute(r) = data else {
        unreachable!()
    };
    assert!(
        r.hops[0].geo.is_none() && r.hops[0].asn.is_none(),
        "a private router stays unplaced"
    );
    assert_eq!(r.hops[1].asn, Some(15169), "{:?}", r.hops[1]);
    let geo = r.hops[1].geo.as_ref().expect("a place");
    assert_eq!(geo.country_code.as_deref().map(str::len), Some(2));
    assert!(geo.lat.is_some() && geo.lon.is_some());
}
