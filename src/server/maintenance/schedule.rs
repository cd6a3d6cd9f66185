//! When a maintenance window is on: once between two instants, or every week at a UTC day
//! and time for a number of minutes.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Once {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    /// Days after Monday (0–6), minutes after midnight UTC, length in minutes.
    Weekly {
        day: u32,
        minute: u32,
        duration: u32,
    },
}

impl Schedule {
    /// The occurrence under way at `now`, else the next one; `None` when a one-off window is
    /// over.
    pub fn occurrence(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match *self {
            Schedule::Once { starts_at, ends_at } => {
                (ends_at > now).then_some((starts_at, ends_at))
            }
            Schedule::Weekly {
                day,
                minute,
                duration,
            } => {
                let monday = now.date_naive()
                    - Duration::days(i64::from(now.weekday().num_days_from_monday()));
                let week_start = monday.and_time(NaiveTime::MIN).and_utc();
                // A window may run into the next week, so last week's may still be on.
                (-1..=1)
                    .map(|k| {
                        let start = week_start
                            + Duration::weeks(k)
                            + Duration::days(i64::from(day))
                            + Duration::minutes(i64::from(minute));
                        (start, start + Duration::minutes(i64::from(duration)))
                    })
                    .find(|(_, end)| *end > now)
            }
        }
    }

    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.occurrence(now)
            .is_some_and(|(start, end)| start <= now && now < end)
    }
}

/// `HH:MM` → minutes after midnight.
pub fn parse_start(s: &str) -> Option<u32> {
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    (s.len() == 5).then(|| t.hour() * 60 + t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_one_off_window_is_on_between_its_ends_and_gone_after() {
        let w = Schedule::Once {
            starts_at: at("2026-12-06T10:00:00Z"),
            ends_at: at("2026-12-06T11:00:00Z"),
        };
        assert!(!w.active(at("2026-12-06T09:59:59Z")));
        assert!(w.active(at("2026-12-06T10:00:00Z")));
        assert!(!w.active(at("2026-12-06T11:00:00Z")));
        assert_eq!(w.occurrence(at("2026-12-06T11:00:00Z")), None);
    }

    #[test]
    fn a_weekly_window_recurs_and_may_cross_into_the_next_week() {
        // Sundays 23:00 for 2 hours: on late Sunday and early Monday.
        let w = Schedule::Weekly {
            day: 6,
            minute: 23 * 60,
            duration: 120,
        };
        // 2026-12-06 is a Sunday; 2026-12-07 a Monday.
        assert!(w.active(at("2026-12-06T23:30:00Z")));
        assert!(w.active(at("2026-12-07T00:30:00Z")), "last week's still on");
        assert!(!w.active(at("2026-12-07T01:00:00Z")));
        assert_eq!(
            w.occurrence(at("2026-12-07T01:00:00Z")),
            Some((at("2026-12-13T23:00:00Z"), at("2026-12-14T01:00:00Z")))
        );
        let tue = Schedule::Weekly {
            day: 1,
            minute: 2 * 60,
            duration: 30,
        };
        assert_eq!(
            tue.occurrence(at("2026-12-06T12:00:00Z")),
            Some((at("2026-12-08T02:00:00Z"), at("2026-12-08T02:30:00Z")))
        );
    }

    #[test]
    fn start_times_are_hours_and_minutes() {
        assert_eq!(parse_start("02:30"), Some(150));
        assert_eq!(parse_start("23:59"), Some(1439));
        assert_eq!(parse_start("24:00"), None);
        assert_eq!(parse_start("2:30"), None);
    }
}
