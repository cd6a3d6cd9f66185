//! The OpenAPI document (`/api/openapi.json`) and Swagger UI (`/api/docs`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{agents, auth, checks, health, lookup, maintenance, monitors, status, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "netcheck", description = "Check whether a site, IP or host is reachable from many places at once."),
    paths(
        health::healthz, health::readyz,
        auth::routes::login, auth::routes::refresh, auth::routes::logout, auth::routes::me,
        auth::api_keys::create, auth::api_keys::list, auth::api_keys::revoke,
        auth::api_keys::list_of_user, auth::api_keys::revoke_of_user,
        users::routes::list, users::routes::create, users::routes::get, users::routes::update,
        users::routes::delete,
        agents::routes::list, agents::routes::create, agents::routes::get, agents::routes::update,
        agents::routes::delete, agents::routes::rotate_token,
        agents::protocol::register, agents::protocol::heartbeat,
        checks::routes::create, checks::routes::get, checks::routes::list, checks::routes::events,
        checks::share::share, checks::share::unshare, checks::share::shared,
        monitors::routes::create, monitors::routes::list, monitors::routes::get,
        monitors::routes::update, monitors::routes::delete, monitors::outcomes::incidents,
        monitors::outcomes::series, monitors::webhook_routes::rotate_secret,
        monitors::webhook_routes::test_event, monitors::webhook_routes::deliveries,
        status::routes::create, status::routes::list, status::routes::get, status::routes::update,
        status::routes::delete, status::public::page, status::badge::badge,
        maintenance::routes::create, maintenance::routes::list, maintenance::routes::get,
        maintenance::routes::delete,
        lookup::lookup,
        crate::server::probe::probe,
    ),
    components(schemas(
        netcheck_proto::api::ErrorBody, netcheck_proto::api::ErrorObject,
        netcheck_proto::check::PingOptions, netcheck_proto::check::TcpOptions,
        netcheck_proto::check::HttpOptions, netcheck_proto::check::DnsOptions,
        netcheck_proto::result::PingResult, netcheck_proto::result::TcpResult,
        netcheck_proto::result::HttpResult, netcheck_proto::result::DnsResult,
        netcheck_proto::trace::TracerouteOptions, netcheck_proto::trace::MtrOptions,
        netcheck_proto::trace::TracerouteResult, netcheck_proto::trace::MtrResult,
        netcheck_proto::check::CheckType, netcheck_proto::result::ResultData,
        netcheck_proto::api::checks::OutcomeFilter,
        netcheck_proto::api::monitors::MonitorState, netcheck_proto::api::monitors::WebhookEvent,
        netcheck_proto::api::monitors::BadgeKind, netcheck_proto::api::monitors::BadgeWindow,
    )),
    modifiers(&BearerAuth, &OptionLimits),
    tags((name = "auth"), (name = "users"), (name = "agents"), (name = "agent protocol"), (name = "checks"), (name = "monitors"), (name = "status pages"), (name = "maintenance"), (name = "lookup"), (name = "prometheus"), (name = "operations"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Writes each bounded option's `minimum`, `maximum` and `default` from `proto::limits`, the
/// one place they are declared (utoipa's attributes take only literals).
struct OptionLimits;

impl Modify for OptionLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema, property, limit) in netcheck_proto::limits::LIMITS {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*schema) else {
                continue;
            };
            let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(*property) else {
                continue;
            };
            field.minimum = Some(limit.min.into());
            field.maximum = Some(limit.max.into());
            // Whole defaults as integers: `3`, not `3.0`.
            field.default = limit.default_value().map(|d| {
                if d.fract() == 0.0 {
                    serde_json::Value::from(d as i64)
                } else {
                    serde_json::Value::from(d)
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    #[test]
    fn every_declared_limit_is_in_the_document() {
        let doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap();
        for (schema, property, limit) in netcheck_proto::limits::LIMITS {
            let field = &doc["components"]["schemas"][schema]["properties"][property];
            assert_eq!(field["minimum"], limit.min, "{schema}.{property}: {field}");
            assert_eq!(field["maximum"], limit.max, "{schema}.{property}: {field}");
            match limit.default_value() {
                Some(d) => assert_eq!(field["default"], d, "{schema}.{property}"),
                None => assert!(field.get("default").is_none(), "{schema}.{property}"),
            }
        }
    }
}
