//! Choosing agents through the HTTP API: by id or name, by place, network and label, like an
//! earlier check, with limits; fixed places set by `PATCH /agents/{id}`; networks from the
//! ASN data.

use std::collections::{BTreeSet, HashMap};

use netcheck_proto::api::agents::Location;
use netcheck_proto::api::checks::CheckCreated;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// A fleet of registered agents with places set by hand (their loopback addresses have none).
struct Fleet {
    app: TestApp,
    admin: String,
    /// name → id
    ids: HashMap<String, Uuid>,
}

/// `PATCH /api/v1/agents/{id}` with a body as it is (these tests are about its fields).
async fn patch_agent(app: &TestApp, admin: &str, id: Uuid, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/v1/agents/{id}")))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn fleet() -> Fleet {
    // A long heartbeat interval keeps registered agents online without heartbeats.
    let app = spawn_app_with(|s| {
        s.agents.heartbeat_interval_secs = 600;
        s.checks.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let admin = app.admin_token().await;
    let places = [
        (
            "ber-1",
            json!({"country_code": "de", "city": "Berlin", "lat": 52.52, "lon": 13.4, "asn": 3320, "network": "Deutsche Telekom AG"}),
            vec!["dc1"],
        ),
        (
            "muc-1",
            json!({"country_code": "DE", "city": "Munich", "asn": 3209}),
            vec![],
        ),
        (
            "nyc-1",
            json!({"country_code": "US", "city": "New York", "asn": 7922}),
            vec!["dc1"],
        ),
        (
            "chi-1",
            json!({"country_code": "US", "city": "Chicago", "asn": 7018}),
            vec![],
        ),
        ("lab-1", Value::Null, vec!["lab"]),
    ];
    let mut ids = HashMap::new();
    for (name, location, labels) in places {
        let (agent, token) = app.create_agent(name).await;
        let id = agent.id;
        assert_eq!(app.register(&token).await.status(), StatusCode::OK);
        let resp = patch_agent(
            &app,
            &admin,
            id,
            json!({"location": location, "labels": labels}),
        )
        .await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
        ids.insert(name.to_string(), id);
    }
    // Never registered: it matches DE but is not online, so no location picks it.
    let (agent, _) = app.create_agent("ham-pending").await;
    let resp = patch_agent(
        &app,
        &admin,
        agent.id,
        json!({"location": {"country_code": "DE", "city": "Hamburg"}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    Fleet { app, admin, ids }
}

impl Fleet {
    /// Posts a TCP check with `selection` merged into the body.
    async fn post(&self, selection: Value) -> reqwest::Response {
        let mut body = json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": 9, "timeout_ms": 200}});
        body.as_object_mut()
            .unwrap()
            .extend(selection.as_object().unwrap().clone());
        self.app
            .client
            .post(self.app.url("/api/v1/checks"))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The check's id and the names of the agents it went to.
    async fn chosen(&self, selection: Value) -> (Uuid, BTreeSet<String>) {
        let resp = self.post(selection.clone()).await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "{selection}: {}",
            resp.text().await.unwrap()
        );
        let created: CheckCreated = resp.json().await.unwrap();
        let check = self.app.check(&self.admin, created.id).await;
        let names: BTreeSet<String> = check.results.into_iter().map(|r| r.agent.name).collect();
        assert_eq!(created.agents, names.len(), "{selection}");
        (created.id, names)
    }

    async fn names(&self, selection: Value) -> BTreeSet<String> {
        self.chosen(selection).await.1
    }

    async fn refused(&self, selection: Value, status: StatusCode) -> (String, Value) {
        error_code(self.post(selection).await, status).await
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn country(name: &str) -> &'static str {
    match name {
        "ber-1" | "muc-1" => "DE",
        "nyc-1" | "chi-1" => "US",
        _ => "none",
    }
}

#[tokio::test]
async fn locations_match_country_city_network_region_and_label() {
    let f = fleet().await;
    let one_de = f.names(json!({"locations": [{"country": "de"}]})).await;
    assert_eq!(one_de.len(), 1, "the default limit of an entry is 1");
    assert!(one_de.iter().all(|n| country(n) == "DE"), "{one_de:?}");
    assert_eq!(
        f.names(json!({"locations": [{"country": "DE", "limit": 5}]}))
            .await,
        set(&["ber-1", "muc-1"]),
        "only online agents match: the pending Hamburg agent is left out"
    );
    assert_eq!(
        f.names(json!({"locations": [{"label": "dc1", "limit": 5}]}))
            .await,
        set(&["ber-1", "nyc-1"])
    );
    assert_eq!(
        f.names(json!({"locations": [{"asn": 7922}]})).await,
        set(&["nyc-1"])
    );
    assert_eq!(
        f.names(json!({"locations": [{"country": "us", "city": "CHICAGO"}]}))
            .await,
        set(&["chi-1"])
    );
    assert_eq!(
        f.names(json!({"locations": [{"country": "DE", "label": "dc1", "limit": 3}]}))
            .await,
        set(&["ber-1"]),
        "an entry matches agents with every field it gives"
    );
    let resp = patch_agent(&f.app, &f.admin, f.ids["lab-1"], json!({"region": "Lab"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        f.names(json!({"locations": [{"region": "lab"}]})).await,
        set(&["lab-1"])
    );

    // One from each country: the union of the entries.
    let two = f
        .names(json!({"locations": [{"country": "DE"}, {"country": "US"}]}))
        .await;
    let countries: BTreeSet<_> = two.iter().map(|n| country(n)).collect();
    assert_eq!(
        countries,
        ["DE", "US"].into_iter().collect::<BTreeSet<_>>(),
        "{two:?}"
    );
    // Overlapping entries use each agent once; the second entry takes another dc1 agent.
    let both = f
        .names(json!({"locations": [{"country": "DE", "label": "dc1"}, {"label": "dc1"}]}))
        .await;
    assert_eq!(both, set(&["ber-1", "nyc-1"]));
    // The global limit caps the union, keeping the countries apart.
    let capped = f
        .names(json!({"locations": [{"country": "DE", "limit": 2}, {"country": "US", "limit": 2}], "limit": 2}))
        .await;
    let countries: BTreeSet<_> = capped.iter().map(|n| country(n)).collect();
    assert_eq!(countries.len(), 2, "{capped:?}");

    let (code, body) = f
        .refused(
            json!({"locations": [{"country": "FR"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(code, "no_matching_agents", "{body}");
    let (code, _) = f
        .refused(
            json!({"locations": [{"country": "DE", "asn": 7922}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(code, "no_matching_agents");
}

#[tokio::test]
async fn a_limit_alone_spreads_over_countries_and_rotates_among_equals() {
    let f = fleet().await;
    for limit in 1..=3 {
        let picked = f.names(json!({"limit": limit})).await;
        let countries: BTreeSet<_> = picked.iter().map(|n| country(n)).collect();
        assert_eq!(picked.len(), limit, "{picked:?}");
        assert_eq!(
            countries.len(),
            limit,
            "{limit} agents from {limit} countries: {picked:?}"
        );
    }
    assert_eq!(
        f.names(json!({"limit": 500})).await.len(),
        5,
        "every online agent"
    );
    // Two equally good German agents: over 20 checks both get picked.
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.extend(f.names(json!({"locations": [{"country": "DE"}]})).await);
    }
    assert_eq!(seen, set(&["ber-1", "muc-1"]));
}

#[tokio::test]
async fn agents_by_id_or_name_and_like_an_earlier_check() {
    let f = fleet().await;
    let (earlier, names) = f.chosen(json!({"agents": ["BER-1", f.ids["chi-1"]]})).await;
    assert_eq!(
        names,
        set(&["ber-1", "chi-1"]),
        "names in any letter case, and ids"
    );
    let (code, body) = f
        .refused(
            json!({"agents": ["ber-1", "nowhere-9"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(code, "invalid_field");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere-9"),
        "{body}"
    );

    assert_eq!(
        f.names(json!({"same_agents_as": earlier})).await,
        set(&["ber-1", "chi-1"])
    );
    let one = f
        .names(json!({"same_agents_as": earlier, "limit": 1}))
        .await;
    assert_eq!(one.len(), 1);
    // Another user cannot reuse a check they cannot see.
    let eve = f.app.user_token("eve").await;
    let resp = f
        .app
        .client
        .post(f.app.url("/api/v1/checks"))
        .bearer_auth(&eve)
        .json(&json!({"type": "tcp", "target": "127.0.0.1", "options": {"port": 9}, "same_agents_as": earlier}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        (code.as_str(), &body["error"]["details"]["field"]),
        ("invalid_field", &json!("same_agents_as"))
    );
}

#[tokio::test]
async fn malformed_selections_get_422_naming_the_field() {
    let f = fleet().await;
    for (selection, code, field) in [
        (
            json!({"agents": ["ber-1"], "locations": [{"country": "DE"}]}),
            "invalid_selection",
            None,
        ),
        (
            json!({"agents": ["ber-1"], "same_agents_as": "0190a8a4-0000-7000-8000-000000000000"}),
            "invalid_selection",
            None,
        ),
        (
            json!({"locations": [{"country": "DE"}], "same_agents_as": "0190a8a4-0000-7000-8000-000000000000"}),
            "invalid_selection",
            None,
        ),
        (json!({"limit": 0}), "invalid_field", Some("limit")),
        (json!({"limit": 501}), "invalid_field", Some("limit")),
        (json!({"locations": []}), "invalid_field", Some("locations")),
        (
            json!({"locations": [{}]}),
            "invalid_field",
            Some("locations[0]"),
        ),
        (
            json!({"locations": [{"country": "DE", "limit": 0}]}),
            "invalid_field",
            Some("locations[0].limit"),
        ),
        (
            json!({"locations": [{"country": "DE"}, {"country": "DEU"}]}),
            "invalid_field",
            Some("locations[1].country"),
        ),
        (
            json!({"locations": [{"country": "DE", "planet": "mars"}]}),
            "invalid_body",
            None,
        ),
        (json!({"agentz": ["ber-1"]}), "invalid_body", Some("agentz")),
        (json!({"agents": []}), "invalid_field", Some("agents")),
    ] {
        let (got, body) = f
            .refused(selection.clone(), StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(got, code, "{selection}: {body}");
        if let Some(field) = field {
            assert_eq!(
                body["error"]["details"]["field"], field,
                "{selection}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn a_fixed_place_overrides_geoip_until_cleared() {
    let f = fleet().await;
    let id = f.ids["ber-1"];
    let agent = f.app.agent(id).await;
    assert_eq!(
        agent.location,
        Some(Location {
            country_code: Some("DE".into()),
            city: Some("Berlin".into()),
            lat: Some(52.52),
            lon: Some(13.4),
            asn: Some(3320),
            network: Some("Deutsche Telekom AG".into()),
            fixed: true,
        })
    );
    for (location, field) in [
        (json!({"country_code": "Germany"}), "location.country_code"),
        (json!({"country_code": "XX"}), "location.country_code"),
        (
            json!({"country_code": "DE", "lat": 91, "lon": 0}),
            "location.lat",
        ),
        (json!({"country_code": "DE", "lat": 50}), "location.lon"),
        (json!({"city": "Berlin"}), "location.country_code"),
    ] {
        let resp = patch_agent(&f.app, &f.admin, id, json!({ "location": location })).await;
        let (_, body) = error_code(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            body["error"]["details"]["field"], field,
            "{location}: {body}"
        );
    }
    // Other fields leave the place alone; `null` clears it (loopback has no GeoIP place).
    let resp = patch_agent(&f.app, &f.admin, id, json!({"labels": ["x"]})).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["location"]["city"],
        "Berlin"
    );
    let resp = patch_agent(&f.app, &f.admin, id, json!({"location": null})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(f.app.agent(id).await.location, None);
    let (code, _) = f
        .refused(
            json!({"locations": [{"city": "Berlin"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(
        code, "no_matching_agents",
        "the cleared place no longer matches"
    );

    // Users see places and labels, not host facts.
    let eve = f.app.api_as(&f.app.user_token("eve").await);
    let list = eve.agents().await.unwrap();
    let nyc = list.iter().find(|a| a.name == "nyc-1").unwrap();
    let city = nyc.location.as_ref().and_then(|l| l.city.as_deref());
    assert_eq!(city, Some("New York"));
    assert_eq!(nyc.labels, ["dc1"]);
    assert!(nyc.hostname.is_none() && nyc.public_ip.is_none() && nyc.version.is_none());
}

#[tokio::test]
async fn registration_and_lookup_name_the_network_from_the_asn_data() {
    // The server trusts the local proxy, so the agent's address is taken from the header
    // (no traffic goes to it: it is only looked up in the offline data).
    let app =
        spawn_app_with(|s| s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let (agent, token) = app.create_agent("cf-1").await;
    let resp = app
        .client
        .post(app.url("/api/v1/agent/register"))
        .bearer_auth(&token)
        .header("X-Forwarded-For", "1.0.0.1")
        .json(&json!({"hostname": "h", "version": "0.0.0-test", "capabilities": ["tcp"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let got = app.agent(agent.id).await;
    assert_eq!(got.public_ip.as_deref(), Some("1.0.0.1"));
    let place = got.location.unwrap();
    assert_eq!(place.asn, Some(13335), "{place:?}");
    assert_eq!(place.network.as_deref(), Some("Cloudflare, Inc."));
    assert!(!place.fixed);

    let found = app.admin().await.lookup("1.0.0.1").await.unwrap();
    let geo = found.addresses[0].geo.as_ref().unwrap();
    assert_eq!(geo.asn, Some(13335), "{found:?}");
    assert!(found.attribution.contains("ip-location-db"));
}
