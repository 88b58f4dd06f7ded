//! Application Auto Scaling scheduled actions' `Schedule` (reference §6.8): `at(yyyy-mm-ddThh:mm:ss)`,
//! `rate(<n> minute|minutes|hour|hours|day|days)` and `cron(Minutes Hours Day-of-month Month Day-of-week Year)`,
//! with the next run after a given time. Times are UTC epoch seconds; a `Timezone` other than UTC is refused
//! (berth carries no time zone database). Cron fields take numbers, `*`, `?` (day fields), ranges `a-b`, lists
//! `a,b`, steps `*/n` and `a/n`, month names `JAN`–`DEC` and day names `SUN`–`SAT` (1 = SUN); `L`, `W` and `#`
//! are refused. Exactly one of day-of-month and day-of-week is `?`.

use berth_core::time::{civil_from_days, epoch_days};

use crate::error::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    At(i64),
    /// Every this many seconds from the action's start (its StartTime, else its creation).
    Rate(i64),
    Cron(Cron),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    /// Index 1..=31; `None` = `?`.
    days_of_month: Option<Vec<bool>>,
    /// Index 1..=12.
    months: Vec<bool>,
    /// Index 1..=7 (1 = Sunday); `None` = `?`.
    days_of_week: Option<Vec<bool>>,
    /// `None` = every year.
    years: Option<Vec<i64>>,
}

fn invalid(schedule: &str, why: &str) -> Invalid {
    Invalid {
        code: berth_core::ErrorCode::Validation,
        message: format!("The schedule expression {schedule} is not valid: {why}."),
    }
}

impl Schedule {
    /// Parses `Schedule` with its `Timezone` (only UTC, or none).
    pub fn parse(s: &str, timezone: Option<&str>) -> Result<Schedule, Invalid> {
        if let Some(tz) = timezone
            && !matches!(tz, "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT")
        {
            return Err(Invalid {
                code: berth_core::ErrorCode::Validation,
                message: format!("The time zone {tz} is not supported by berth: use UTC."),
            });
        }
        let inner = |prefix: &str| s.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
        if let Some(at) = inner("at(") {
            return parse_at(at).map(Schedule::At).ok_or_else(|| invalid(s, "expected at(yyyy-mm-ddThh:mm:ss)"));
        }
        if let Some(rate) = inner("rate(") {
            let (n, unit) = rate.trim().split_once(' ').ok_or_else(|| invalid(s, "expected rate(<n> <unit>)"))?;
            let n: i64 = n
                .parse()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| invalid(s, "the rate must be a positive integer"))?;
            let secs = match (unit.trim(), n) {
                ("minute", 1) | ("minutes", 2..) => 60,
                ("hour", 1) | ("hours", 2..) => 3600,
                ("day", 1) | ("days", 2..) => 86_400,
                _ => return Err(invalid(s, "the unit must be minute(s), hour(s) or day(s), singular for 1")),
            };
            return Ok(Schedule::Rate(n * secs));
        }
        if let Some(cron) = inner("cron(") {
            return parse_cron(cron).map(Schedule::Cron).map_err(|why| invalid(s, &why));
        }
        Err(invalid(s, "expected at(...), rate(...) or cron(...)"))
    }

    /// The first run strictly after `after`. `start` anchors `rate` (StartTime, else creation time). `None` when
    /// the schedule never runs again (a past `at`, a cron whose years are over).
    pub fn next_after(&self, after: i64, start: i64) -> Option<i64> {
        match self {
            Schedule::At(t) => (*t > after).then_some(*t),
            Schedule::Rate(every) => {
                if after < start {
                    return Some(start);
                }
                Some(start + ((after - start) / every + 1) * every)
            }
            Schedule::Cron(c) => c.next_after(after),
        }
    }
}

/// When a scheduled action last ran and over which window it may run: what [`due`] needs besides the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The scheduled time of the last run (a new or changed action: the time it was written, so it runs afresh).
    pub last_run: Option<i64>,
    /// `StartTime`, else the action's creation: anchors `rate`, and nothing runs before it.
    pub start: i64,
    /// `EndTime`: a run after it is skipped (and counted as run).
    pub end: Option<i64>,
}

/// What a pass at `now` does with a scheduled action: `None` when nothing is due; else the scheduled time of the
/// latest run due (runs missed while nothing checked collapse into one, as the time to record as run) and whether
/// to carry it out (`false` past `EndTime`).
pub fn due(schedule: &Schedule, window: Window, now: i64) -> Option<(i64, bool)> {
    let anchor = window.last_run.unwrap_or(window.start - 1);
    let mut run = schedule.next_after(anchor, window.start)?;
    if run > now || run < window.start {
        return None;
    }
    while let Some(next) = schedule.next_after(run, window.start).filter(|n| *n <= now) {
        run = next;
    }
    Some((run, window.end.is_none_or(|e| run <= e)))
}

fn parse_at(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [y, mo, da]: [i64; 3] = d[..].try_into().ok()?;
    let [h, mi, se]: [i64; 3] = t[..].try_into().ok()?;
    let valid = (1970..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=31).contains(&da)
        && h < 24
        && mi < 60
        && se < 60
        && h >= 0
        && mi >= 0;
    // Dates that do not exist (2026-02-30) have no day.
    let days = epoch_days(y, mo, da)?;
    valid.then(|| days * 86_400 + h * 3600 + mi * 60 + se)
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses one field over `lo..=hi` into a membership table indexed by value.
fn field(s: &str, lo: i64, hi: i64, names: &[&str], what: &str) -> Result<Vec<bool>, String> {
    let mut set = vec![false; (hi + 1) as usize];
    let value = |v: &str| -> Result<i64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(lo + i as i64);
        }
        let n: i64 = v.parse().map_err(|_| format!("{what}: {v} is not supported"))?;
        if n < lo || n > hi {
            return Err(format!("{what}: {n} is outside {lo}-{hi}"));
        }
        Ok(n)
    };
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                (r, st.parse::<i64>().ok().filter(|s| *s > 0).ok_or_else(|| format!("{what}: bad step {st}"))?)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a > b {
            return Err(format!("{what}: {a}-{b} is empty"));
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

fn parse_cron(s: &str) -> Result<Cron, String> {
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() != 6 {
        return Err(format!("a cron expression has 6 fields, not {}", f.len()));
    }
    if f.iter().any(|x| x.contains(['L', 'W', '#']) && !MONTHS.iter().chain(DAYS.iter()).any(|n| x.contains(n))) {
        return Err("L, W and # are not supported by berth".into());
    }
    let (dom_q, dow_q) = (f[2] == "?", f[4] == "?");
    if dom_q == dow_q {
        return Err("exactly one of day-of-month and day-of-week must be ?".into());
    }
    let years = if f[5] == "*" {
        None
    } else {
        let set = field(f[5], 1970, 2199, &[], "year")?;
        Some(set.iter().enumerate().filter(|(_, b)| **b).map(|(y, _)| y as i64).collect())
    };
    Ok(Cron {
        minutes: field(f[0], 0, 59, &[], "minutes")?,
        hours: field(f[1], 0, 23, &[], "hours")?,
        days_of_month: if dom_q { None } else { Some(field(f[2], 1, 31, &[], "day-of-month")?) },
        months: field(f[3], 1, 12, &MONTHS, "month")?,
        days_of_week: if dow_q { None } else { Some(field(f[4], 1, 7, &DAYS, "day-of-week")?) },
        years,
    })
}

impl Cron {
    fn next_after(&self, after: i64) -> Option<i64> {
        let t = after.div_euclid(60) * 60 + 60;
        let mut day = t.div_euclid(86_400);
        let mut from_minute = t.rem_euclid(86_400) / 60;
        // Cron years end at 2199: a day that never comes (30 FEB) ends the search there.
        let last_year = self.years.as_ref().map_or(2199, |y| y.iter().copied().max().unwrap_or(0));
        loop {
            let (y, m, d) = civil_from_days(day);
            if y > last_year {
                return None;
            }
            let dow = (day + 4).rem_euclid(7) + 1; // 1970-01-01 was a Thursday (5); 1 = Sunday
            let day_ok = self.years.as_ref().is_none_or(|ys| ys.contains(&y))
                && self.months[m as usize]
                && self.days_of_month.as_ref().is_none_or(|s| s[d as usize])
                && self.days_of_week.as_ref().is_none_or(|s| s[dow as usize]);
            if day_ok
                && let Some(minute) =
                    (from_minute..1440).find(|mi| self.hours[(mi / 60) as usize] && self.minutes[(mi % 60) as usize])
            {
                return Some(day * 86_400 + minute * 60);
            }
            day += 1;
            from_minute = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        parse_at(s).expect(s)
    }

    #[test]
    fn next_runs_table() {
        let now = at("2026-12-07T18:47:30"); // a Monday
        for (expr, want) in [
            ("at(2026-12-08T09:00:00)", Some("2026-12-08T09:00:00")),
            ("at(2026-12-07T18:00:00)", None),
            ("cron(0 9 * * ? *)", Some("2026-12-08T09:00:00")),
            ("cron(*/15 * * * ? *)", Some("2026-12-07T19:00:00")),
            ("cron(50 18 * * ? *)", Some("2026-12-07T18:50:00")),
            ("cron(0 8 ? * MON-FRI *)", Some("2026-12-08T08:00:00")),
            ("cron(0 8 ? * SAT,SUN *)", Some("2026-12-12T08:00:00")),
            ("cron(0 8 ? * 1 *)", Some("2026-12-13T08:00:00")),
            ("cron(0 0 1 JAN ? *)", Some("2027-01-01T00:00:00")),
            ("cron(0 0 29 2 ? *)", Some("2028-02-29T00:00:00")),
            ("cron(30 12 15 6 ? 2030)", Some("2030-06-15T12:30:00")),
            ("cron(0 0 1 1 ? 2020-2025)", None),
            ("cron(0 0 30 2 ? *)", None),
            ("cron(0/20 10-11 7 DEC ? 2026)", None),
            ("cron(0/20 19-20 7 DEC ? 2026)", Some("2026-12-07T19:00:00")),
            ("cron(5,35 19 ? DEC WED 2026)", Some("2026-12-09T19:05:00")),
        ] {
            let s = Schedule::parse(expr, None).expect(expr);
            assert_eq!(s.next_after(now, now), want.map(at), "{expr}");
        }
        let rate = Schedule::parse("rate(5 minutes)", Some("UTC")).expect("rate");
        assert_eq!(rate, Schedule::Rate(300));
        assert_eq!(rate.next_after(now, now - 60), Some(now + 240));
        assert_eq!(rate.next_after(now, now + 1000), Some(now + 1000), "before its start: the start");
        assert_eq!(Schedule::parse("rate(1 day)", None), Ok(Schedule::Rate(86_400)));
    }

    #[test]
    fn due_runs_table() {
        let t = at("2026-12-07T18:00:00");
        let w = |last_run: Option<i64>, start: i64, end: Option<i64>| Window { last_run, start, end };
        let rate = Schedule::parse("rate(1 minute)", None).expect("rate");
        let once = Schedule::parse("at(2026-12-07T18:05:00)", None).expect("at");
        let daily = Schedule::parse("cron(0 9 * * ? *)", None).expect("cron");
        // (case, schedule, window, now, due)
        type Case<'a> = (&'a str, &'a Schedule, Window, i64, Option<(i64, bool)>);
        let cases: Vec<Case> = vec![
            ("at: not yet", &once, w(Some(t), t, None), t + 299, None),
            ("at: due", &once, w(Some(t), t, None), t + 300, Some((t + 300, true))),
            ("at: ran already", &once, w(Some(t + 300), t, None), t + 900, None),
            ("at: written after its time never runs", &once, w(Some(t + 400), t, None), t + 900, None),
            ("rate: never run: at its start", &rate, w(None, t, None), t + 59, Some((t, true))),
            ("rate: written at t: one period later", &rate, w(Some(t), t, None), t + 59, None),
            ("rate: due", &rate, w(Some(t), t, None), t + 60, Some((t + 60, true))),
            (
                "rate: missed runs collapse into the latest",
                &rate,
                w(Some(t + 60), t, None),
                t + 330,
                Some((t + 300, true)),
            ),
            ("rate: past EndTime it is skipped", &rate, w(Some(t), t, Some(t + 100)), t + 130, Some((t + 120, false))),
            ("cron: before its StartTime nothing runs", &daily, w(None, t + 86_400 * 2, None), t + 86_400, None),
            ("cron: due the next morning", &daily, w(Some(t), t, None), t + 15 * 3600 + 1, Some((t + 15 * 3600, true))),
        ];
        for (case, schedule, window, now, want) in cases {
            assert_eq!(due(schedule, window, now), want, "{case}");
        }
    }

    #[test]
    fn refused_schedules() {
        for (expr, tz, want) in [
            (
                "rate(1 minutes)",
                None,
                "The schedule expression rate(1 minutes) is not valid: the unit must be minute(s), hour(s) or day(s), singular for 1.",
            ),
            (
                "rate(0 minutes)",
                None,
                "The schedule expression rate(0 minutes) is not valid: the rate must be a positive integer.",
            ),
            (
                "cron(0 9 * * *)",
                None,
                "The schedule expression cron(0 9 * * *) is not valid: a cron expression has 6 fields, not 5.",
            ),
            (
                "cron(0 9 * * * *)",
                None,
                "The schedule expression cron(0 9 * * * *) is not valid: exactly one of day-of-month and day-of-week must be ?.",
            ),
            (
                "cron(0 9 L * ? *)",
                None,
                "The schedule expression cron(0 9 L * ? *) is not valid: L, W and # are not supported by berth.",
            ),
            (
                "cron(60 9 * * ? *)",
                None,
                "The schedule expression cron(60 9 * * ? *) is not valid: minutes: 60 is outside 0-59.",
            ),
            (
                "at(2026-02-30T00:00:00)",
                None,
                "The schedule expression at(2026-02-30T00:00:00) is not valid: expected at(yyyy-mm-ddThh:mm:ss).",
            ),
            (
                "every(5)",
                None,
                "The schedule expression every(5) is not valid: expected at(...), rate(...) or cron(...).",
            ),
            ("rate(5 minutes)", Some("Europe/Paris"), "The time zone Europe/Paris is not supported by berth: use UTC."),
        ] {
            let e = Schedule::parse(expr, tz).expect_err(expr);
            assert_eq!((e.code.name(), e.message.as_str()), ("ValidationException", want));
        }
    }
}
