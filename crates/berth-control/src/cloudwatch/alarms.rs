//! Alarms (PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState,
//! DescribeAlarmHistory, EnableAlarmActions, DisableAlarmActions): placeholder until the alarms work lands (it
//! replaces this file, keeping both functions' signatures).

use berth_core::{AwsError, ErrorCode};
use berth_model::cloudwatch::{Operation, Output};

use crate::{Control, ControlError};

/// Handles one alarm operation at `now` (epoch seconds).
pub(super) fn handle(control: &Control, op: Operation, now: f64) -> Result<Output, ControlError> {
    let _ = (control, now);
    Err(AwsError::new(ErrorCode::InvalidParameterValue, format!("{} is not served yet", op.name())).into())
}

/// Whether an alarm of this name exists (TagResource and friends check it).
pub(super) fn exists(control: &Control, name: &str) -> Result<bool, ControlError> {
    let _ = (control, name);
    Ok(false)
}
