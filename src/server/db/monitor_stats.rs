//! Roll-ups of judged runs, written as each run is judged: hourly (`monitor_hours`, a week,
//! for the monitor list's uptime and sparklines) and daily (`monitor_days`, 90 days, for
//! status pages), so either costs one indexed query per page.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use uuid::Uuid;

use netcheck_proto::api::monitors::{HourStats, MonitorStats};

/// Adds one judged run to its hour and its (UTC) day.
pub async fn record_run(
    db: &impl ConnectionTrait,
    monitor: Uuid,
    at: DateTime<Utc>,
    failing: bool,
    value_ms: Option<f64>,
) -> Result<(), DbErr> {
    super::execute(
        db,
        "INSERT INTO monitor_hours (monitor_id, hour, runs, failing_runs, value_sum, value_n)
         VALUES ($1, date_trunc('hour', $2::timestamptz), 1, $3, $4, $5)
         ON CONFLICT (monitor_id, hour) DO UPDATE SET
             runs = monitor_hours.runs + 1,
             failing_runs = monitor_hours.failing_runs + EXCLUDED.failing_runs,
             value_sum = monitor_hours.value_sum + EXCLUDED.value_sum,
             value_n = monitor_hours.value_n + EXCLUDED.value_n",
        [
            monitor.into(),
            at.into(),
            (failing as i32).into(),
            value_ms.unwrap_or(0.0).into(),
            (value_ms.is_some() as i32).into(),
        ],
    )
    .await?;
    super::execute(
        db,
        "INSERT INTO monitor_days (monitor_id, day, runs, failing_runs)
         VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC')::date, 1, $3)
         ON CONFLICT (monitor_id, day) DO UPDATE SET
             runs = monitor_days.runs + 1,
             failing_runs = monitor_days.failing_runs + EXCLUDED.failing_runs",
        [monitor.into(), at.into(), (failing as i32).into()],
    )
    .await?;
    Ok(())
}

/// Uptime over 24 hours and 7 days and the last 24 hours of each monitor in `ids`.
pub async fn load(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, MonitorStats>, DbErr> {
    let mut out: HashMap<Uuid, MonitorStats> = ids
        .iter()
        .map(|id| (*id, MonitorStats::default()))
        .collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let day = this_hour - Duration::hours(23);
    let week = this_hour - Duration::hours(24 * 7 - 1);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT monitor_id, hour, runs, failing_runs, value_sum, value_n FROM monitor_hours
             WHERE monitor_id = ANY($1) AND hour >= $2 ORDER BY monitor_id, hour",
            [ids.to_vec().into(), week.into()],
        ))
        .await?;
    // (runs, failing) per monitor over the week and the day.
    let mut totals: HashMap<Uuid, [(u32, u32); 2]> = HashMap::new();
    for r in rows {
        let id: Uuid = r.try_get("", "monitor_id")?;
        let hour: DateTime<Utc> = r.try_get("", "hour")?;
        let runs = r.try_get::<i32>("", "runs")?.max(0) as u32;
        let failing = r.try_get::<i32>("", "failing_runs")?.max(0) as u32;
        let sum: f64 = r.try_get("", "value_sum")?;
        let n: i32 = r.try_get("", "value_n")?;
        let t = totals.entry(id).or_default();
        t[0].0 += runs;
        t[0].1 += failing;
        if hour >= day {
            t[1].0 += runs;
            t[1].1 += failing;
            if let Some(s) = out.get_mut(&id) {
                s.hours.push(HourStats {
                    hour,
                    runs,
                    failing_runs: failing,
                    value_ms: (n > 0).then(|| sum / n as f64),
                });
            }
        }
    }
    let pct = |(runs, failing): (u32, u32)| {
        (runs > 0).then(|| 100.0 * (runs - failing.min(runs)) as f64 / runs as f64)
    };
    for (id, [week, day]) in totals {
        if let Some(s) = out.get_mut(&id) {
            s.uptime_7d = pct(week);
            s.uptime_24h = pct(day);
        }
    }
    Ok(out)
}

/// Deletes hourly roll-ups older than the week the list shows and daily ones older than the
/// 90 days status pages show (each plus a day).
pub async fn prune(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let hours = super::execute(
        db,
        "DELETE FROM monitor_hours WHERE hour < now() - interval '8 days'",
        [],
    )
    .await?;
    let days = super::execute(
        db,
        "DELETE FROM monitor_days WHERE day < (now() AT TIME ZONE 'UTC')::date - 91",
        [],
    )
    .await?;
    Ok(hours + days)
}
