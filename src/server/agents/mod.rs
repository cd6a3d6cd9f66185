//! Agents: the table of probe hosts, their enrollment tokens (`nca_<id>_<secret>`, only a hash
//! of the secret is stored), liveness from heartbeats, and the API representation.

pub mod protocol;
pub mod routes;

use chrono::{DateTime, Utc};
use deadpool_redis::redis;
use sea_orm::entity::prelude::*;

use super::auth::secret_token;
use super::error::{ApiError, ApiResult};
use super::selection::{Fleet, Member};
use super::AppState;
use netcheck_proto::api::agents::{Agent, AgentStatus, Location};
use netcheck_proto::api::ErrorCode;
use netcheck_proto::api::FixedLocation;

/// Prefix that marks a netcheck agent token.
pub const TOKEN_PREFIX: &str = "nca";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub region: Option<String>,
    pub labels: Json,
    pub token_id: String,
    pub token_hash: Vec<u8>,
    pub broker_user: String,
    pub created_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub version: Option<String>,
    pub hostname: Option<String>,
    pub public_ip: Option<String>,
    pub capabilities: Json,
    pub country_code: Option<String>,
    pub city: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Autonomous system of `public_ip` (ASN data), as measured at registration.
    pub asn: Option<i64>,
    pub network: Option<String>,
    /// A place set by an administrator ([`FixedLocation`]); overrides the measured one.
    pub fixed_location: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The place of an agent row: the fixed one if set (its network falling back to the
/// measured one), otherwise the measured one; `None` when nothing is known.
pub fn location_of(m: &Model) -> Option<Location> {
    let asn = m.asn.and_then(|a| u32::try_from(a).ok());
    let fixed = m
        .fixed_location
        .as_ref()
        .and_then(|v| serde_json::from_value::<FixedLocation>(v.clone()).ok());
    if let Some(f) = fixed {
        let (asn, network) = match f.asn {
            Some(a) => (Some(a), f.network),
            None => (asn, f.network.or_else(|| m.network.clone())),
        };
        return Some(Location {
            country_code: Some(f.country_code),
            city: f.city,
            lat: f.lat,
            lon: f.lon,
            asn,
            network,
            fixed: true,
        });
    }
    if m.country_code.is_none() && m.lat.is_none() && asn.is_none() {
        return None;
    }
    Some(Location {
        country_code: m.country_code.clone(),
        city: m.city.clone(),
        lat: m.lat,
        lon: m.lon,
        asn,
        network: m.network.clone(),
        fixed: false,
    })
}

/// What choosing agents needs to know of an agent row.
pub fn member(m: &Model) -> Member {
    Member {
        id: m.id,
        name: m.name.clone(),
        region: m.region.clone(),
        labels: serde_json::from_value(m.labels.clone()).unwrap_or_default(),
        location: location_of(m),
        registered_at: m.registered_at,
        last_seen_at: m.last_seen_at,
    }
}

/// The API's view of an agent row; `redis_seen` is the newer liveness kept in Redis, if any.
pub fn view(m: Model, redis_seen: Option<DateTime<Utc>>, interval_secs: u64) -> Agent {
    view_as_of(m, redis_seen, interval_secs, Utc::now())
}

/// The view with the status the agent had at `at` (for a row read at `at`).
pub fn view_as_of(
    m: Model,
    redis_seen: Option<DateTime<Utc>>,
    interval_secs: u64,
    at: DateTime<Utc>,
) -> Agent {
    let last_seen_at = match (m.last_seen_at, redis_seen) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let status = AgentStatus::of(m.registered_at, last_seen_at, interval_secs, at);
    let location = location_of(&m);
    Agent {
        id: m.id,
        name: m.name,
        region: m.region,
        labels: serde_json::from_value(m.labels).unwrap_or_default(),
        status,
        created_at: m.created_at,
        last_seen_at,
        version: m.version,
        hostname: m.hostname,
        public_ip: m.public_ip,
        location,
        capabilities: serde_json::from_value(m.capabilities).unwrap_or_default(),
    }
}

/// The agent table as check creation reads it, kept for up to `agents.cache_ms`: every
/// `POST /checks` would otherwise read the whole table. Changes made through this server
/// instance (create, rename, delete, registration, an agent coming back online) clear it at
/// once; changes made through another instance show here within `cache_ms`.
pub struct Directory {
    max_age: std::time::Duration,
    inner: std::sync::Mutex<Cached>,
    /// Held while the expired cache is read again, so that concurrent requests wait for that
    /// one read instead of each reading the table.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cached {
    /// Bumped by every invalidation, so a read that raced with one is not kept.
    generation: u64,
    snapshot: Option<Snapshot>,
}

/// The agent rows as read at one instant, with their index for choosing among them.
#[derive(Clone)]
pub struct Snapshot {
    pub agents: std::sync::Arc<Vec<Model>>,
    pub fleet: std::sync::Arc<Fleet>,
}

impl Snapshot {
    /// When the rows were read (their statuses are judged as of then).
    pub fn read_at(&self) -> DateTime<Utc> {
        self.fleet.read_at()
    }
}

impl Directory {
    pub fn new(max_age: std::time::Duration) -> Self {
        Self {
            max_age,
            inner: Default::default(),
            refreshing: Default::default(),
        }
    }

    /// The agent rows, from the cache when it is fresh enough.
    pub async fn agents(&self, db: &DatabaseConnection) -> Result<Snapshot, DbErr> {
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        if self.max_age.is_zero() {
            // No cache: every request reads the table, none waits for another.
            return self.reload(db).await;
        }
        let _refreshing = self.refreshing.lock().await;
        match self.fresh() {
            Some(s) => Ok(s),
            None => self.reload(db).await,
        }
    }

    /// The cached rows, unless they are older than `max_age` (or forgotten).
    fn fresh(&self) -> Option<Snapshot> {
        let cached = self.inner.lock().expect("directory lock").snapshot.clone();
        cached.filter(|s| (Utc::now() - s.read_at()).to_std().unwrap_or_default() < self.max_age)
    }

    /// The agent rows read now.
    pub async fn reload(&self, db: &DatabaseConnection) -> Result<Snapshot, DbErr> {
        let generation = self.inner.lock().expect("directory lock").generation;
        let read_at = Utc::now();
        let agents = Entity::find().all(db).await?;
        let snapshot = Snapshot {
            fleet: std::sync::Arc::new(Fleet::new(read_at, agents.iter().map(member))),
            agents: std::sync::Arc::new(agents),
        };
        let mut inner = self.inner.lock().expect("directory lock");
        if inner.generation == generation {
            inner.snapshot = Some(snapshot.clone());
        }
        Ok(snapshot)
    }

    /// Forgets the cached rows (an agent was added, changed or removed).
    pub fn invalidate(&self) {
        let mut inner = self.inner.lock().expect("directory lock");
        inner.generation += 1;
        inner.snapshot = None;
    }
}

/// Mints an agent token (`nca_<id>_<secret>`).
pub fn new_token() -> secret_token::Minted {
    secret_token::mint(TOKEN_PREFIX)
}

pub(crate) fn invalid_token() -> ApiError {
    ApiError::unauthorized(
        ErrorCode::InvalidAgentToken,
        "agent token is invalid or revoked",
    )
}

/// Finds the agent a token belongs to; the same 401 for every kind of bad token.
pub async fn authenticate(db: &DatabaseConnection, token: &str) -> ApiResult<Model> {
    let (id, secret) = secret_token::parse(TOKEN_PREFIX, token).ok_or_else(invalid_token)?;
    let agent = Entity::find()
        .filter(Column::TokenId.eq(id))
        .one(db)
        .await?
        .ok_or_else(invalid_token)?;
    if secret_token::matches(secret, &agent.token_hash) {
        Ok(agent)
    } else {
        Err(invalid_token())
    }
}

fn liveness_key(state: &AppState) -> String {
    crate::server::redis_keys::agents_last_seen(&state.settings.redis.key_prefix)
}

/// Records that the agent was seen now (Redis first; PostgreSQL keeps it durable).
pub async fn touch(state: &AppState, agent_id: Uuid) -> ApiResult<DateTime<Utc>> {
    let now = Utc::now();
    let key = liveness_key(state);
    match state.redis.get().await {
        Ok(mut conn) => {
            let r: Result<(), _> = redis::cmd("ZADD")
                .arg(&key)
                .arg(now.timestamp_millis())
                .arg(agent_id.to_string())
                .query_async(&mut conn)
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "could not record heartbeat in redis");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not record heartbeat in redis"),
    }
    Entity::update_many()
        .col_expr(Column::LastSeenAt, Expr::value(now))
        .filter(Column::Id.eq(agent_id))
        .exec(&state.db)
        .await?;
    Ok(now)
}

/// Liveness of every agent as kept in Redis (empty when Redis is down: PostgreSQL then answers).
pub async fn seen_map(state: &AppState) -> std::collections::HashMap<Uuid, DateTime<Utc>> {
    let key = liveness_key(state);
    let Ok(mut conn) = state.redis.get().await else {
        return Default::default();
    };
    let pairs: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    pairs
        .into_iter()
        .filter_map(|(id, ms)| Some((id.parse().ok()?, DateTime::from_timestamp_millis(ms)?)))
        .collect()
}

pub async fn forget(state: &AppState, agent_id: Uuid) {
    if let Ok(mut conn) = state.redis.get().await {
        let _: Result<(), _> = redis::cmd("ZREM")
            .arg(liveness_key(state))
            .arg(agent_id.to_string())
            .query_async(&mut conn)
            .await;
    }
}
