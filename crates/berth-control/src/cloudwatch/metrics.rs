//! The metric operations: PutMetricData (validated by `metric::validate_put`, recorded through the write buffer),
//! GetMetricStatistics (`storage::plan_range` → stored aggregates → `Statistic::compute`), GetMetricData (metric
//! stats, metric math through `math::validate_queries`/`evaluate_queries`, `SEARCH` over the series table, paging
//! by time with `ScanBy`, `MaxDatapoints` and `NextToken`) and ListMetrics (filters, `RecentlyActive`, paging).

use std::collections::BTreeMap;

use berth_core::{AwsError, ErrorCode};
use berth_model::Timestamp;
use berth_model::cloudwatch as cw;
use berth_telemetry::math::{self, Context, Query, Value};
use berth_telemetry::metric::{self, DatumInput, MetricDatumInput, StatisticSet};
use berth_telemetry::statistic::parse_statistics_request;
use berth_telemetry::storage::{self, Api};
use berth_telemetry::{Aggregate, Dimension, MetricId, Statistic, Unit};

use super::ingest::{Sample, Stored, into_periods};
use super::{invalid, missing};
use crate::{Control, ControlError};

/// Most metrics one ListMetrics page holds (AWS: 500).
const LIST_PAGE: usize = 500;
/// Most dimension filters in ListMetrics (AWS: 10).
const MAX_FILTERS: usize = 10;
/// RecentlyActive `PT3H`.
const RECENT: i64 = 3 * 3600;
/// Most series one SEARCH returns (AWS: 500).
const MAX_SEARCH: usize = 500;

fn secs(t: &Option<Timestamp>, name: &str) -> Result<i64, ControlError> {
    let t = t.as_ref().ok_or_else(|| missing(name))?;
    if !t.0.is_finite() {
        return Err(invalid(format!("The parameter {name} is invalid.")));
    }
    Ok(t.0.floor() as i64)
}

fn dimensions(dims: &Option<Vec<cw::Dimension>>, parameter: &str) -> Result<Vec<Dimension>, ControlError> {
    let dims = dims
        .iter()
        .flatten()
        .map(|d| Dimension::new(d.name.clone().unwrap_or_default(), d.value.clone().unwrap_or_default()))
        .collect();
    Ok(metric::validate_dimensions(dims, parameter)?)
}

fn unit_of(u: &Option<cw::StandardUnit>) -> Option<Unit> {
    u.as_ref().map(|u| Unit::parse(u.as_str(), "Unit").unwrap_or(Unit::None))
}

fn wire_unit(u: Unit) -> Option<cw::StandardUnit> {
    cw::StandardUnit::parse(u.as_str())
}

pub(super) fn put(c: &Control, r: cw::PutMetricDataInput, now: f64) -> Result<(), ControlError> {
    if c.metric_backlog_full() {
        return Err(AwsError::new(
            crate::error::internal_error(cw::SIGNING_NAME),
            "The metric store is not accepting writes; retry later",
        )
        .into());
    }
    let namespace = r.namespace.ok_or_else(|| missing("Namespace"))?;
    let mut data = Vec::new();
    for (i, d) in r.metric_data.unwrap_or_default().into_iter().enumerate() {
        let at = format!("MetricData.member.{}", i + 1);
        let statistic_values = match d.statistic_values {
            None => None,
            Some(s) => {
                let field = |v: Option<f64>, n: &str| v.ok_or_else(|| missing(&format!("{at}.StatisticValues.{n}")));
                Some(StatisticSet {
                    sample_count: field(s.sample_count, "SampleCount")?,
                    sum: field(s.sum, "Sum")?,
                    minimum: field(s.minimum, "Minimum")?,
                    maximum: field(s.maximum, "Maximum")?,
                })
            }
        };
        data.push(MetricDatumInput {
            metric_name: d.metric_name.unwrap_or_default(),
            dimensions: d
                .dimensions
                .unwrap_or_default()
                .into_iter()
                .map(|x| Dimension::new(x.name.unwrap_or_default(), x.value.unwrap_or_default()))
                .collect(),
            unit: d.unit.map(|u| u.as_str().to_string()),
            datum: DatumInput {
                value: d.value,
                statistic_values,
                values: d.values,
                counts: d.counts,
                timestamp: d.timestamp.map(|t| t.0),
                storage_resolution: d.storage_resolution.map(i64::from),
            },
        });
    }
    let valid = metric::validate_put(&namespace, &data, now)?;
    let samples = valid
        .into_iter()
        .map(|(metric, d)| Sample {
            metric,
            timestamp: d.timestamp as f64,
            aggregate: Aggregate::of(&d.datum),
            storage_resolution: if d.high_resolution { 1 } else { 60 },
        })
        .collect();
    // Buffered (readable at once, written within a second and at every clean stop): the answer never waits for
    // the store's writer.
    c.record_metrics(samples);
    Ok(())
}

/// A metric's stored aggregates per period over a plan, per unit (one group when `unit` is given or when
/// `merge_units`).
fn per_unit(
    entries: Vec<Stored>,
    plan: &storage::RangePlan,
    merge_units: bool,
) -> BTreeMap<Unit, Vec<(i64, Aggregate)>> {
    let Some(&first) = plan.timestamps.first() else { return BTreeMap::new() };
    let mut by_unit: BTreeMap<Unit, Vec<(i64, Aggregate)>> = BTreeMap::new();
    for e in entries {
        let unit = if merge_units { Unit::None } else { e.metric.unit };
        by_unit.entry(unit).or_default().push((e.start, e.aggregate));
    }
    by_unit.into_iter().map(|(u, items)| (u, into_periods(items, plan.period, first))).collect()
}

fn plan_end(plan: &storage::RangePlan) -> i64 {
    plan.timestamps.first().map_or(0, |f| f + plan.period * plan.timestamps.len() as i64)
}

pub(super) fn statistics(
    c: &Control,
    r: cw::GetMetricStatisticsInput,
    now: f64,
) -> Result<cw::GetMetricStatisticsOutput, ControlError> {
    let namespace = r.namespace.ok_or_else(|| missing("Namespace"))?;
    let name = r.metric_name.ok_or_else(|| missing("MetricName"))?;
    metric::validate_namespace(&namespace, "Namespace")?;
    let dims = dimensions(&r.dimensions, "Dimensions")?;
    let (start, end) = (secs(&r.start_time, "StartTime")?, secs(&r.end_time, "EndTime")?);
    let period = i64::from(r.period.ok_or_else(|| missing("Period"))?);
    let basic: Vec<String> = r.statistics.iter().flatten().map(|s| s.as_str().to_string()).collect();
    let stats = parse_statistics_request(&basic, r.extended_statistics.as_deref().unwrap_or_default())?;
    let plan = storage::plan_range(start, end, period, now.floor() as i64, Api::GetMetricStatistics)?;
    let unit = unit_of(&r.unit);
    let mut datapoints = Vec::new();
    if !plan.timestamps.is_empty() {
        let first = plan.timestamps[0];
        let entries = c.metric_entries(&namespace, &name, &dims, unit, first, plan_end(&plan))?;
        for (u, buckets) in per_unit(entries, &plan, false) {
            for (t, agg) in buckets {
                let mut dp =
                    cw::Datapoint { timestamp: Some(Timestamp(t as f64)), unit: wire_unit(u), ..Default::default() };
                let mut extended = BTreeMap::new();
                for (text, st) in &stats {
                    let v = st.compute(&agg);
                    match st {
                        Statistic::SampleCount => dp.sample_count = v,
                        Statistic::Sum => dp.sum = v,
                        Statistic::Minimum => dp.minimum = v,
                        Statistic::Maximum => dp.maximum = v,
                        Statistic::Average => dp.average = v,
                        _ => {
                            if let Some(v) = v {
                                extended.insert(text.clone(), v);
                            }
                        }
                    }
                }
                if stats.iter().any(|(_, s)| s.is_extended()) {
                    dp.extended_statistics = Some(extended);
                }
                datapoints.push(dp);
            }
        }
    }
    datapoints.sort_by(|a, b| {
        a.timestamp.map(|t| t.0).partial_cmp(&b.timestamp.map(|t| t.0)).unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(cw::GetMetricStatisticsOutput { label: Some(name), datapoints: Some(datapoints) })
}

/// One `MetricStat` query, checked.
struct StatQuery {
    metric: MetricId,
    unit: Option<Unit>,
    period: i64,
    stat: Statistic,
}

fn stat_query(q: &cw::MetricDataQuery, at: &str) -> Result<StatQuery, ControlError> {
    let ms = q.metric_stat.as_ref().ok_or_else(|| missing(&format!("{at}.MetricStat")))?;
    let m = ms.metric.as_ref().ok_or_else(|| missing(&format!("{at}.MetricStat.Metric")))?;
    let namespace = m.namespace.clone().ok_or_else(|| missing(&format!("{at}.MetricStat.Metric.Namespace")))?;
    let name = m.metric_name.clone().ok_or_else(|| missing(&format!("{at}.MetricStat.Metric.MetricName")))?;
    metric::validate_namespace(&namespace, &format!("{at}.MetricStat.Metric.Namespace"))?;
    let dims = dimensions(&m.dimensions, &format!("{at}.MetricStat.Metric.Dimensions"))?;
    let period = i64::from(ms.period.ok_or_else(|| missing(&format!("{at}.MetricStat.Period")))?);
    let stat_text = ms.stat.clone().ok_or_else(|| missing(&format!("{at}.MetricStat.Stat")))?;
    let stat = Statistic::parse(&stat_text, &format!("{at}.MetricStat.Stat"))?;
    let unit = unit_of(&ms.unit);
    Ok(StatQuery {
        metric: MetricId { namespace, name, dimensions: dims, unit: unit.unwrap_or(Unit::None) },
        unit,
        period,
        stat,
    })
}

/// One statistic per period of a metric over `[start, end)` as a math series.
fn stat_series(
    c: &Control,
    metric: &MetricId,
    unit: Option<Unit>,
    stat: &Statistic,
    plan: &storage::RangePlan,
) -> Result<math::Series, ControlError> {
    let Some(&first) = plan.timestamps.first() else { return Ok(math::Series::new()) };
    let entries = c.metric_entries(&metric.namespace, &metric.name, &metric.dimensions, unit, first, plan_end(plan))?;
    let mut out = math::Series::new();
    for (_, buckets) in per_unit(entries, plan, true) {
        for (t, agg) in buckets {
            if let Some(v) = stat.compute(&agg) {
                out.insert(t, v);
            }
        }
    }
    Ok(out)
}

/// `SEARCH('{Namespace,Dim1,...} terms', 'Stat', Period)`: the series of the schema's namespace with exactly
/// those dimension names (any series without a schema) whose every term matches — `Name=Value` / `Name="Value"`
/// a dimension (or `MetricName`, `Namespace`) exactly, a bare word any part of the name, namespace or a dimension
/// value (case-insensitive) — each as its statistic per period, labelled by name and dimension values.
struct Search {
    namespace: Option<String>,
    dimension_names: Option<Vec<String>>,
    terms: Vec<String>,
    stat: Statistic,
    period: i64,
}

fn parse_search(expr: &str, at: &str) -> Result<Option<Search>, ControlError> {
    let t = expr.trim();
    let Some(inner) = t.strip_prefix("SEARCH(").and_then(|r| r.strip_suffix(')')) else { return Ok(None) };
    let bad = || {
        invalid(format!(
            "The value of {at}.Expression is not a valid SEARCH expression: SEARCH('search terms', 'Stat', Period)."
        ))
    };
    // Three comma-separated arguments; the first two are quoted strings (which may hold commas).
    let mut args = Vec::new();
    let mut rest = inner.trim();
    for _ in 0..2 {
        let q = rest.chars().next().filter(|c| *c == '\'' || *c == '"').ok_or_else(bad)?;
        let close = rest[1..].find(q).ok_or_else(bad)? + 1;
        args.push(rest[1..close].to_string());
        rest = rest[close + 1..].trim_start().strip_prefix(',').ok_or_else(bad)?.trim();
    }
    let period: i64 = rest.trim().parse().map_err(|_| bad())?;
    let (schema, terms_text) = match args[0].trim().strip_prefix('{') {
        Some(s) => {
            let (schema, terms) = s.split_once('}').ok_or_else(bad)?;
            (Some(schema.to_string()), terms.to_string())
        }
        None => (None, args[0].clone()),
    };
    let (namespace, dimension_names) = match schema {
        Some(s) => {
            let mut parts = s.split(',').map(|p| p.trim().trim_matches('"').to_string());
            let ns = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
            let mut dims: Vec<String> = parts.filter(|p| !p.is_empty()).collect();
            dims.sort();
            (Some(ns), Some(dims))
        }
        None => (None, None),
    };
    let stat = Statistic::parse(&args[1], &format!("{at}.Expression"))?;
    Ok(Some(Search {
        namespace,
        dimension_names,
        terms: terms_text.split_whitespace().map(str::to_string).collect(),
        stat,
        period,
    }))
}

fn search_matches(s: &Search, m: &MetricId) -> bool {
    if let Some(ns) = &s.namespace
        && *ns != m.namespace
    {
        return false;
    }
    if let Some(names) = &s.dimension_names {
        let have: Vec<&str> = m.dimensions.iter().map(|d| d.name.as_str()).collect();
        if have != names.iter().map(String::as_str).collect::<Vec<_>>() {
            return false;
        }
    }
    s.terms.iter().all(|term| match term.split_once('=') {
        Some((k, v)) => {
            let v = v.trim_matches('"');
            match k {
                "MetricName" => m.name == v,
                "Namespace" => m.namespace == v,
                _ => m.dimensions.iter().any(|d| d.name == k && d.value == v),
            }
        }
        None => {
            let t = term.trim_matches('"').to_lowercase();
            m.name.to_lowercase().contains(&t)
                || m.namespace.to_lowercase().contains(&t)
                || m.dimensions.iter().any(|d| d.value.to_lowercase().contains(&t))
        }
    })
}

fn run_search(
    c: &Control,
    s: &Search,
    start: i64,
    end: i64,
    now: i64,
) -> Result<Vec<(String, math::Series)>, ControlError> {
    let plan = storage::plan_range(start, end, s.period, now, Api::GetMetricData)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for m in c.metric_series(s.namespace.as_deref(), None)?.into_keys() {
        let id = MetricId { unit: Unit::None, ..m };
        if !search_matches(s, &id) || !seen.insert(id.clone()) {
            continue;
        }
        if out.len() == MAX_SEARCH {
            break;
        }
        let mut label = id.name.clone();
        for d in &id.dimensions {
            label.push(' ');
            label.push_str(&d.value);
        }
        out.push((label, stat_series(c, &id, None, &s.stat, &plan)?));
    }
    Ok(out)
}

/// A page cut: `NextToken` is the time the next page continues from (the start for ascending scans, the end for
/// descending ones).
fn parse_token(token: &Option<String>) -> Result<Option<i64>, ControlError> {
    match token {
        None => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ControlError::Aws(AwsError::new(ErrorCode::InvalidNextToken, "The NextToken is invalid."))),
    }
}

pub(super) fn data(c: &Control, r: cw::GetMetricDataInput, now: f64) -> Result<cw::GetMetricDataOutput, ControlError> {
    let now_s = now.floor() as i64;
    let queries = r.metric_data_queries.unwrap_or_default();
    let (mut start, mut end) = (secs(&r.start_time, "StartTime")?, secs(&r.end_time, "EndTime")?);
    let ascending = matches!(r.scan_by, Some(cw::ScanBy::TimestampAscending));
    if let Some(cut) = parse_token(&r.next_token)? {
        if cut <= start || cut >= end {
            return Err(ControlError::Aws(AwsError::new(ErrorCode::InvalidNextToken, "The NextToken is invalid.")));
        }
        if ascending {
            start = cut;
        } else {
            end = cut;
        }
    }
    let max_points = match r.max_datapoints {
        None => storage::MAX_DATAPOINTS,
        Some(n) if n > 0 => n as usize,
        Some(_) => return Err(invalid("The parameter MaxDatapoints must be greater than 0.")),
    };
    let plain: Vec<Query> = queries
        .iter()
        .map(|q| Query {
            id: q.id.clone().unwrap_or_default(),
            expression: q.expression.clone(),
            return_data: q.return_data.unwrap_or(true),
        })
        .collect();
    math::validate_queries(&plain, false)?;
    if !plain.iter().any(|q| q.return_data) {
        return Err(invalid("At least one element of MetricDataQueries must have ReturnData set to true."));
    }
    // Metric stats first; their plans give expressions their timestamps and period.
    let mut ctx = Context::default();
    let mut truncated_at: Option<i64> = None;
    let mut searches = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let at = format!("MetricDataQueries.member.{}", i + 1);
        match (&q.metric_stat, &q.expression) {
            (Some(_), Some(_)) => {
                return Err(ControlError::Aws(AwsError::new(
                    ErrorCode::InvalidParameterCombination,
                    format!(
                        "The parameters {at}.MetricStat and {at}.Expression are mutually exclusive and you have specified both."
                    ),
                )));
            }
            (None, None) => {
                return Err(missing(&format!("{at}.MetricStat or the parameter {at}.Expression")));
            }
            (Some(_), None) => {
                let sq = stat_query(q, &at)?;
                let plan = storage::plan_range(start, end, sq.period, now_s, Api::GetMetricData)?;
                if let Some(next) = plan.next_start {
                    truncated_at = Some(truncated_at.map_or(next, |t: i64| t.min(next)));
                }
                if ctx.timestamps.is_empty() {
                    ctx.timestamps = plan.timestamps.clone();
                    ctx.period = plan.period;
                }
                let series = stat_series(c, &sq.metric, sq.unit, &sq.stat, &plan)?;
                ctx.metrics.push((plain[i].id.clone(), series));
            }
            (None, Some(e)) => {
                if let Some(s) = parse_search(e, &at)? {
                    if ctx.timestamps.is_empty() {
                        let plan = storage::plan_range(start, end, s.period, now_s, Api::GetMetricData)?;
                        ctx.timestamps = plan.timestamps;
                        ctx.period = plan.period;
                    }
                    let found = run_search(c, &s, start, end, now_s)?;
                    ctx.expressions.insert(plain[i].id.clone(), Value::Array(found.clone()));
                    searches.push(plain[i].id.clone());
                } else if let Some(p) = q.period
                    && ctx.timestamps.is_empty()
                {
                    let plan = storage::plan_range(start, end, i64::from(p), now_s, Api::GetMetricData)?;
                    ctx.timestamps = plan.timestamps;
                    ctx.period = plan.period;
                }
            }
        }
    }
    let expr_queries: Vec<Query> =
        plain.iter().filter(|q| q.expression.is_some() && !searches.contains(&q.id)).cloned().collect();
    let metrics = ctx.metrics.clone();
    let values = math::evaluate_queries(&expr_queries, ctx).map_err(berth_telemetry::Invalid::from)?;
    // Results in request order: (id, label, series).
    let mut results: Vec<(String, String, math::Series)> = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let id = plain[i].id.clone();
        if !plain[i].return_data {
            continue;
        }
        let label = q.label.clone();
        if q.metric_stat.is_some() {
            let series = metrics.iter().find(|(m, _)| *m == id).map(|(_, s)| s.clone()).unwrap_or_default();
            let default = q.metric_stat.as_ref().and_then(|m| m.metric.as_ref()).and_then(|m| m.metric_name.clone());
            results.push((id.clone(), label.or(default).unwrap_or_else(|| id.clone()), series));
            continue;
        }
        match values.get(&id) {
            Some(Value::Series(s)) => results.push((id.clone(), label.unwrap_or_else(|| id.clone()), s.clone())),
            Some(Value::Array(items)) => {
                for (name, s) in items {
                    let l = match &label {
                        Some(l) => format!("{l} {name}"),
                        None => name.clone(),
                    };
                    results.push((id.clone(), l, s.clone()));
                }
            }
            Some(Value::Scalar(_)) => {
                return Err(invalid(format!(
                    "The expression of MetricDataQueries.member.{}.Expression must produce a time series, not a single value.",
                    i + 1
                )));
            }
            None => results.push((id.clone(), label.unwrap_or_else(|| id.clone()), math::Series::new())),
        }
    }
    // Page by time: the datapoints of every result, in scan order, up to MaxDatapoints; the page ends at a
    // timestamp boundary so that every result continues from the same time.
    let mut times: Vec<i64> = results.iter().flat_map(|(_, _, s)| s.keys().copied()).collect();
    times.sort_unstable();
    if !ascending {
        times.reverse();
    }
    let mut cut = truncated_at;
    if times.len() > max_points {
        let boundary = times[max_points];
        // Everything strictly before the boundary (in scan order) fits; the boundary starts the next page.
        let next = if ascending { boundary } else { boundary + 1 };
        cut = Some(match (cut, ascending) {
            (Some(c), true) => c.min(next),
            (Some(c), false) => c.max(next),
            (None, _) => next,
        });
    }
    let in_page = |t: i64| match cut {
        None => true,
        Some(c) if ascending => t < c,
        Some(c) => t >= c,
    };
    let out = results
        .into_iter()
        .map(|(id, label, series)| {
            let mut points: Vec<(i64, f64)> = series.into_iter().filter(|(t, _)| in_page(*t)).collect();
            if !ascending {
                points.reverse();
            }
            cw::MetricDataResult {
                id: Some(id),
                label: Some(label),
                timestamps: Some(points.iter().map(|(t, _)| Timestamp(*t as f64)).collect()),
                values: Some(points.iter().map(|(_, v)| *v).collect()),
                status_code: Some(if cut.is_some() { cw::StatusCode::PartialData } else { cw::StatusCode::Complete }),
                messages: Some(Vec::new()),
            }
        })
        .collect();
    Ok(cw::GetMetricDataOutput {
        metric_data_results: Some(out),
        next_token: cut.map(|c| c.to_string()),
        messages: Some(Vec::new()),
    })
}

pub(super) fn list(c: &Control, r: cw::ListMetricsInput, now: f64) -> Result<cw::ListMetricsOutput, ControlError> {
    let filters = r.dimensions.unwrap_or_default();
    if filters.len() > MAX_FILTERS {
        return Err(invalid(format!("The collection Dimensions must not have a size greater than {MAX_FILTERS}.")));
    }
    if let Some(ns) = &r.namespace {
        metric::validate_namespace(ns, "Namespace")?;
    }
    let offset: usize = match &r.next_token {
        None => 0,
        Some(t) => t.parse().map_err(|_| invalid("The parameter NextToken is invalid."))?,
    };
    let recent = r.recently_active.is_some().then(|| now.floor() as i64 - RECENT);
    let mut metrics: BTreeMap<MetricId, i64> = BTreeMap::new();
    for (m, seen) in c.metric_series(r.namespace.as_deref(), r.metric_name.as_deref())? {
        let ok = filters.iter().all(|f| {
            m.dimensions
                .iter()
                .any(|d| Some(&d.name) == f.name.as_ref() && f.value.as_ref().is_none_or(|v| *v == d.value))
        });
        if ok {
            let e = metrics.entry(MetricId { unit: Unit::None, ..m }).or_insert(seen);
            *e = (*e).max(seen);
        }
    }
    let all: Vec<MetricId> =
        metrics.into_iter().filter(|(_, seen)| recent.is_none_or(|r| *seen >= r)).map(|(m, _)| m).collect();
    let page: Vec<cw::Metric> = all
        .iter()
        .skip(offset)
        .take(LIST_PAGE)
        .map(|m| cw::Metric {
            namespace: Some(m.namespace.clone()),
            metric_name: Some(m.name.clone()),
            dimensions: Some(
                m.dimensions
                    .iter()
                    .map(|d| cw::Dimension { name: Some(d.name.clone()), value: Some(d.value.clone()) })
                    .collect(),
            ),
        })
        .collect();
    let next_token = (all.len() > offset + LIST_PAGE).then(|| (offset + LIST_PAGE).to_string());
    let owning_accounts =
        r.include_linked_accounts.unwrap_or(false).then(|| vec![c.account_id().to_string(); page.len()]);
    Ok(cw::ListMetricsOutput { metrics: Some(page), next_token, owning_accounts })
}
