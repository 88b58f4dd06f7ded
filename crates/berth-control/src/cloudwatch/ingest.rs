//! The one gate every datapoint enters by: PutMetricData, the proxies' reports and the tasks' samples hand
//! [`Sample`]s to [`Control::record_metrics`], which buffers them and writes them in batches, off the caller's
//! path. Reads of stored aggregates come back through [`Control::metric_aggregates`].

use berth_telemetry::{Aggregate, MetricId};

use crate::{Control, ControlError};

/// One aggregate of one series at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: MetricId,
    /// Epoch seconds.
    pub timestamp: f64,
    pub aggregate: Aggregate,
    /// 1 (high resolution, kept in 1-second buckets for 3 hours) or 60.
    pub storage_resolution: i32,
}

impl Control {
    /// Takes samples into the write buffer; never waits for the store.
    pub fn record_metrics(&self, samples: Vec<Sample>) {
        // Contract placeholder (issue 11 in progress): replaced by the batched metric store.
        let _ = samples;
    }

    /// The stored aggregates of `metric` (unit included) per `period`-second bucket in `[start, end)` (epoch
    /// seconds), oldest first, each keyed by its bucket's start.
    pub fn metric_aggregates(
        &self,
        metric: &MetricId,
        period: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, ControlError> {
        // Contract placeholder (issue 11 in progress): replaced by the metric store's read path.
        let _ = (metric, period, start, end);
        Ok(Vec::new())
    }
}
