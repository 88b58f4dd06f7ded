//! berth: the one binary. It owns configuration, process wiring and the command line; it must never hold
//! business logic (the control plane does) or protocol logic (the API and proxy crates do).
//!
//! `berth up` runs `berth server` and `berth proxy` as two supervised processes; `berth env` and `berth ca`
//! print what clients need to talk to it; `berth console` prints the console's URL. Every other command is a
//! client command of `berth-cli` (deploy, ls, status, logs, …), which reaches berth through its public API.

mod backend;
mod config;
mod console;
mod files;
mod http1;
mod internal;
mod metrics;
mod proxy;
mod server;
mod task_endpoint;
mod up;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Image in, HTTPS URL out: a self-hosted Amazon ECS Express Mode")]
struct Cli {
    #[command(flatten)]
    common: config::Common,
    #[command(flatten)]
    global: berth_cli::Global,
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
    /// Print berth's root CA certificate (PEM), to pass to curl --cacert; `--install` adds it to the trust store.
    Ca(berth_cli::ca::Args),
    /// Print the web console's URL and open it in a browser.
    Console {
        /// Only print the URL.
        #[arg(long)]
        no_open: bool,
    },
    /// Print a shell completion script: `berth completions bash > /etc/bash_completion.d/berth`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(Box<berth_cli::Command>),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        // Generated into memory: clap_complete panics on a failed write (a closed pipe); a write error is an error.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "berth", &mut script);
        use std::io::Write as _;
        return match std::io::stdout().write_all(&script) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        };
    }
    let config = cli.common.load()?;
    match cli.command {
        Command::Env => return files::print_env(&config),
        Command::Ca(args) => {
            std::process::exit(berth_cli::ca::run(&args, cli.global.output, &config.path(files::CA_PEM)))
        }
        Command::Console { no_open } => return print_console(&config, no_open),
        Command::Client(command) => {
            std::process::exit(berth_cli::run(*command, cli.global, Some(config.local_berth())))
        }
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
            Command::Env
            | Command::Ca(_)
            | Command::Console { .. }
            | Command::Completions { .. }
            | Command::Client(_) => Ok(()),
        }
    })
}

fn print_console(config: &config::Config, no_open: bool) -> Result<()> {
    if !config.console.enabled {
        anyhow::bail!("the console is off (console.enabled = false in berth.toml)");
    }
    let url = config.console_url();
    println!("{url}");
    eprintln!(
        "Sign in with an access key: `berth env` prints the root user's; trust berth's CA with `berth ca --install`."
    );
    if !no_open {
        berth_cli::open_url(&url);
    }
    Ok(())
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
