//! `maintenance_windows`: the rows, and the windows that may cover given monitors.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "maintenance_windows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub monitor_ids: Vec<Uuid>,
    pub status_page_id: Option<Uuid>,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub weekly_day: Option<i16>,
    pub weekly_minute: Option<i16>,
    pub duration_minutes: Option<i32>,
    pub note: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The windows listing any of `monitors`, and those of the status pages of `owners` (a page
/// holds only its owner's monitors, so pages of other owners cannot matter), each with its
/// page's groups (`None` for a window of listed monitors): one query.
pub async fn of_monitors_or_pages(
    db: &impl ConnectionTrait,
    monitors: &[Uuid],
    owners: &[Uuid],
) -> Result<Vec<(Model, Option<Json>)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT w.*, p.groups FROM maintenance_windows w
             LEFT JOIN status_pages p ON p.id = w.status_page_id
             WHERE w.monitor_ids && $1 OR (w.status_page_id IS NOT NULL AND p.user_id = ANY($2))",
            [monitors.to_vec().into(), owners.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                Model::from_query_result(row, "")?,
                row.try_get("", "groups")?,
            ))
        })
        .collect()
}
