//! `/api/v1/status-pages` (owner or admin) and the public `/api/v1/status/{slug}` with its
//! badges.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, SqlErr};

use super::{
    load_visible, validate_groups, validate_slug, validate_text, ActiveModel, Column, Entity,
};
use crate::server::auth::AuthUser;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Json;
use crate::server::AppState;
use netcheck_proto::api::monitors::{CreateStatusPage, StatusPage, UpdateStatusPage};
use netcheck_proto::api::ErrorBody;
use netcheck_proto::api::ErrorCode;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/status-pages")
            .route("", web::post().to(create))
            .route("", web::get().to(list))
            .route("/{id}", web::get().to(get))
            .route("/{id}", web::patch().to(update))
            .route("/{id}", web::delete().to(delete)),
    )
    .service(
        web::scope("/status/{slug}")
            .route("", web::get().to(super::public::page))
            .route("/badge/{monitor}", web::get().to(super::badge::badge)),
    );
}

fn slug_taken(err: DbErr) -> ApiError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::conflict(ErrorCode::SlugTaken, "a status page already has this slug")
                .with_details(serde_json::json!({ "field": "slug" }))
        }
        _ => err.into(),
    }
}

#[utoipa::path(operation_id = "create_status_page", post, path = "/api/v1/status-pages", tag = "status pages", request_body = CreateStatusPage,
    responses((status = 201, body = StatusPage), (status = 409, body = ErrorBody, description = "`slug_taken`"), (status = 422, body = ErrorBody, description = "a field is not acceptable; monitors must be yours")),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<CreateStatusPage>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    validate_slug(&b.slug)?;
    let title = validate_text("title", &b.title, 100, true)?;
    let description = match &b.description {
        Some(d) => Some(validate_text("description", d, 1000, false)?).filter(|d| !d.is_empty()),
        None => None,
    };
    let groups = validate_groups(&state.db, user.0.id, &b.groups).await?;
    let now = Utc::now();
    let page = ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.0.id),
        slug: Set(b.slug),
        title: Set(title),
        description: Set(description),
        public: Set(b.public),
        show_targets: Set(b.show_targets),
        groups: Set(serde_json::to_value(&groups).expect("groups serialise")),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await
    .map_err(slug_taken)?;
    Ok(HttpResponse::Created().json(page.view()))
}

#[utoipa::path(operation_id = "list_status_pages", get, path = "/api/v1/status-pages", tag = "status pages",
    description = "Your pages (an administrator's: everyone's), oldest first, at most 500.",
    responses((status = 200, body = [StatusPage])), security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let mut q = Entity::find().order_by_asc(Column::Id);
    if let Some(owner) = user.0.listing_owner() {
        q = q.filter(Column::UserId.eq(owner));
    }
    let pages: Vec<StatusPage> = q
        .limit(500)
        .all(&state.db)
        .await?
        .iter()
        .map(super::Model::view)
        .collect();
    Ok(HttpResponse::Ok().json(pages))
}

#[utoipa::path(operation_id = "get_status_page", get, path = "/api/v1/status-pages/{id}", tag = "status pages",
    responses((status = 200, body = StatusPage), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let p = load_visible(&state, &user.0, *id).await?;
    Ok(HttpResponse::Ok().json(p.view()))
}

#[utoipa::path(operation_id = "update_status_page", patch, path = "/api/v1/status-pages/{id}", tag = "status pages", request_body = UpdateStatusPage,
    responses((status = 200, body = StatusPage), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    body: Json<UpdateStatusPage>,
) -> ApiResult<HttpResponse> {
    let p = load_visible(&state, &user.0, *id).await?;
    let b = body.0;
    let owner = p.user_id;
    let old_slug = p.slug.clone();
    let mut a: ActiveModel = p.into();
    if let Some(slug) = b.slug {
        validate_slug(&slug)?;
        a.slug = Set(slug);
    }
    if let Some(title) = b.title {
        a.title = Set(validate_text("title", &title, 100, true)?);
    }
    if let Some(description) = b.description {
        let d = match description {
            Some(d) => {
                Some(validate_text("description", &d, 1000, false)?).filter(|d| !d.is_empty())
            }
            None => None,
        };
        a.description = Set(d);
    }
    if let Some(public) = b.public {
        a.public = Set(public);
    }
    if let Some(show) = b.show_targets {
        a.show_targets = Set(show);
    }
    if let Some(groups) = b.groups {
        // The monitors stay the page owner's, whoever edits it.
        let groups = validate_groups(&state.db, owner, &groups).await?;
        a.groups = Set(serde_json::to_value(&groups).expect("groups serialise"));
    }
    a.updated_at = Set(Utc::now());
    let saved = a.update(&state.db).await.map_err(slug_taken)?;
    state.status_pages.invalidate(old_slug.as_str());
    state.status_pages.invalidate(saved.slug.as_str());
    Ok(HttpResponse::Ok().json(saved.view()))
}

#[utoipa::path(operation_id = "delete_status_page", delete, path = "/api/v1/status-pages/{id}", tag = "status pages",
    description = "Deletes the page and its maintenance windows; the monitors stay.",
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let p = load_visible(&state, &user.0, *id).await?;
    Entity::delete_by_id(p.id).exec(&state.db).await?;
    state.status_pages.invalidate(p.slug.as_str());
    Ok(HttpResponse::NoContent().finish())
}
