//! `berth scale NAME --min N --max N`: a service's task count bounds (UpdateExpressGatewayService's
//! `scalingTarget`; no new deployment).

use berth_client::Service;
use serde_json::json;

use crate::output::{Doc, Section};
use crate::service;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  berth scale web --min 2 --max 10\n  berth scale web --max 1")]
pub struct ScaleArgs {
    /// The service (name or ARN).
    pub name: String,
    /// The minimum task count.
    #[arg(long, required_unless_present = "max")]
    pub min: Option<i32>,
    /// The maximum task count.
    #[arg(long)]
    pub max: Option<i32>,
}

pub async fn scale(ctx: &Ctx, args: ScaleArgs) -> Result<Doc, CliError> {
    if args.min.is_some_and(|m| m < 0) || args.max.is_some_and(|m| m < 1) {
        return Err(CliError::Usage("--min must be 0 or more and --max 1 or more".into()));
    }
    if let (Some(lo), Some(hi)) = (args.min, args.max)
        && lo > hi
    {
        return Err(CliError::Usage(format!("--min {lo} is more than --max {hi}")));
    }
    let found = service::find(ctx, &args.name).await?;
    let current = service::newest_configuration(&found.service).map(|c| c["scalingTarget"].clone()).unwrap_or_default();
    let mut target = if current.is_object() { current.clone() } else { json!({}) };
    if let Some(m) = args.min {
        target["minTaskCount"] = json!(m);
    }
    if let Some(m) = args.max {
        target["maxTaskCount"] = json!(m);
    }
    let (min, max) = (target["minTaskCount"].as_i64(), target["maxTaskCount"].as_i64());
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(CliError::Usage(format!(
            "the minimum ({lo}) would be more than the maximum ({hi}); pass both --min and --max"
        )));
    }
    ctx.client
        .call_value(
            Service::Ecs,
            "UpdateExpressGatewayService",
            json!({"serviceArn": found.arn, "scalingTarget": target}),
        )
        .await?;
    let show = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    Ok(Doc {
        json: json!({"serviceName": found.name, "serviceArn": found.arn, "scalingTarget": target}),
        sections: vec![Section::Fields {
            title: None,
            fields: vec![("Service".into(), found.name.clone()), ("Min".into(), show(min)), ("Max".into(), show(max))],
        }],
    })
}
