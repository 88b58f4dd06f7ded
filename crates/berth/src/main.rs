//! berth: the one binary. It owns configuration, process wiring and the command line; it must never hold
//! business logic (the control plane does) or protocol logic (the API and proxy crates do).
//!
//! `berth up` runs `berth server` and `berth proxy` as two supervised processes; `berth env` and `berth ca`
//! print what clients need to talk to it.

mod backend;
mod config;
mod files;
mod http1;
mod internal;
mod metrics;
mod proxy;
mod server;
mod task_endpoint;
mod up;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Image in, HTTPS URL out: a self-hosted Amazon ECS Express Mode")]
struct Cli {
    #[command(flatten)]
    common: config::Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server and the proxy on this machine, supervised (restarted if they die).
    Up,
    /// Run the control plane: the AWS API, the reconcilers, the internal API proxies follow.
    Server,
    /// Run the data plane: the HTTPS load balancer that follows a server's route tables.
    Proxy,
    /// Print shell exports for the AWS CLI and SDKs (eval "$(berth env)").
    Env,
    /// Print berth's root CA certificate (PEM), to add to a trust store or pass to curl --cacert.
    Ca,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let config = cli.common.load()?;
    match cli.command {
        Command::Env => return files::print_env(&config),
        Command::Ca => return files::print_ca(&config),
        _ => {}
    }
    if matches!(cli.command, Command::Server | Command::Proxy) {
        up::exit_with_supervisor()?;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        match cli.command {
            Command::Up => up::run(&cli.common, config).await,
            Command::Server => server::run(config).await,
            Command::Proxy => proxy::run(config).await,
            Command::Env | Command::Ca => Ok(()),
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
