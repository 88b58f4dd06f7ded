//! `berth rm NAME`: delete an Express service and what berth created for it (asks first; `--wait` until it is
//! INACTIVE).

use std::time::{Duration, Instant};

use berth_client::Service;
use serde_json::json;

use crate::output::{Doc, Section};
use crate::service;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  berth rm web\n  berth rm web --yes --wait     # scripts")]
pub struct RmArgs {
    /// The service (name or ARN).
    pub name: String,
    /// Wait until the service is INACTIVE (its tasks stopped and its resources deleted).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits (`90s`, `5m`).
    #[arg(long, default_value = "5m", value_parser = crate::deploy::parse_duration)]
    pub timeout: Duration,
}

pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<Doc, CliError> {
    let found = service::find(ctx, &args.name).await?;
    let url = service::url(&found.service, ctx.url_port).unwrap_or_else(|| "no URL".into());
    eprintln!(
        "This deletes {} ({url}): its tasks, listener rule, target groups, certificate, scaling and alarms. Its log group is kept.",
        found.name
    );
    if !ctx.confirm(&format!("Delete service {}?", found.name))? {
        return Err(CliError::Failed(format!("{} was not deleted", found.name)));
    }
    let out =
        ctx.client.call_value(Service::Ecs, "DeleteExpressGatewayService", json!({"serviceArn": found.arn})).await?;
    let mut status = service::status_code(&out["service"]).to_string();
    if args.wait {
        let started = Instant::now();
        loop {
            let svc = service::describe(ctx, &found.arn).await?;
            status = service::status_code(&svc).to_string();
            if status == "INACTIVE" {
                break;
            }
            if started.elapsed() >= args.timeout {
                return Err(CliError::Failed(format!(
                    "{} is still {status} after {}s; it keeps deleting — check with `berth ls`",
                    found.name,
                    args.timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(Doc {
        json: json!({"serviceName": found.name, "serviceArn": found.arn, "status": status}),
        sections: vec![Section::Fields {
            title: None,
            fields: vec![("Deleted".into(), found.name.clone()), ("Status".into(), status.clone())],
        }],
    })
}
