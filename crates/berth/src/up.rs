//! `berth up`: the server and the proxy as two supervised child processes on one machine.
//!
//! A child that dies is started again (with a short backoff), so a crashed or killed server comes back
//! and adopts its running tasks, while the proxy keeps serving the last route table meanwhile.
//!
//! SIGHUP replaces the proxy without losing a connection (also how a new `berth` binary is rolled out: the
//! executable is started again from its path): a new proxy starts next to the old one on the same ports and,
//! once it reports ready, the old one gets SIGTERM and drains.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::config::{Common, Config};
use crate::files;

/// Tells a child which `berth up` supervises it, so it stops when that process dies (see
/// [`exit_with_supervisor`]).
const PARENT_ENV: &str = "BERTH_SUPERVISOR_PID";

/// In a supervised child: ask the kernel for SIGTERM when the supervisor dies (even by SIGKILL), so no
/// orphaned server or proxy keeps the ports; and stop at once if it is already gone.
pub fn exit_with_supervisor() -> Result<()> {
    let Some(parent) = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<i32>().ok()) else {
        return Ok(());
    };
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).context("prctl(PR_SET_PDEATHSIG)")?;
    if nix::unistd::getppid() != Pid::from_raw(parent) {
        anyhow::bail!("the supervising berth up (pid {parent}) is gone");
    }
    Ok(())
}

pub async fn run(common: &Common, config: Config) -> Result<()> {
    files::ensure_data_dir(&config)?;
    files::ensure_token(&config)?;
    let exe = std::env::current_exe().context("finding the berth executable")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (reload_tx, reload_rx) = watch::channel(0u64);
    let mut hangup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: replacing the proxy");
            reload_tx.send_modify(|n| *n += 1);
        }
    });
    let mut children = Vec::new();
    for role in ["server", "proxy"] {
        let exe = exe.clone();
        let args = common.to_args();
        let stop = stop_rx.clone();
        let reload = (role == "proxy").then(|| (reload_rx.clone(), config.data_dir.clone()));
        children.push(tokio::spawn(supervise(role, exe, args, stop, reload)));
    }
    let ready = wait_ready(&config).await;
    match ready {
        Ok(()) => {
            println!(
                "berth is up: API {} · HTTPS proxy {} (HTTP {} redirects) · data {}",
                config.api_url(),
                config.proxy.https_listen,
                config.proxy.http_listen,
                config.data_dir.display()
            );
            println!("  use it with: eval \"$(berth env{})\"", env_args(common));
        }
        Err(e) => tracing::warn!(error = %e, "berth is not answering yet; still supervising"),
    }
    crate::shutdown_signal().await;
    tracing::info!("stopping server and proxy");
    let _ = stop_tx.send(true);
    for c in children {
        let _ = c.await;
    }
    Ok(())
}

fn env_args(common: &Common) -> String {
    let args = common.to_args();
    if args.is_empty() { String::new() } else { format!(" {}", args.join(" ")) }
}

fn command(role: &str, exe: &Path, args: &[String]) -> Command {
    let mut command = Command::new(exe);
    command.arg(role).args(args).env(PARENT_ENV, std::process::id().to_string()).kill_on_drop(true);
    command
}

/// Starts a second proxy next to the running one and waits until it accepts connections (its ready file).
async fn start_replacement(exe: &Path, args: &[String], data_dir: &Path) -> Result<Child> {
    let ready = data_dir.join(format!("proxy-ready-{}", berth_core::ids::random_hex(8)));
    let mut child = command("proxy", exe, args).env(crate::proxy::READY_ENV, &ready).spawn().context("spawning")?;
    let deadline = Instant::now() + REPLACE_TIMEOUT;
    loop {
        if ready.exists() {
            let _ = std::fs::remove_file(&ready);
            return Ok(child);
        }
        if let Some(status) = child.try_wait().context("waiting")? {
            anyhow::bail!("the new proxy exited before it was ready ({status})");
        }
        if Instant::now() > deadline {
            let _ = child.kill().await;
            anyhow::bail!("the new proxy was not ready after {} s", REPLACE_TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long a replacement proxy may take to load its table, check its targets and listen.
const REPLACE_TIMEOUT: Duration = Duration::from_secs(30);

async fn supervise(
    role: &'static str,
    exe: std::path::PathBuf,
    args: Vec<String>,
    mut stop: watch::Receiver<bool>,
    mut reload: Option<(watch::Receiver<u64>, PathBuf)>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = Instant::now();
        let mut child = match command(role, &exe, &args).spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(role, error = %e, "cannot start");
                if wait_or_stop(&mut stop, backoff).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let reloaded = async {
                match reload.as_mut() {
                    Some((rx, data_dir)) => match rx.changed().await {
                        Ok(()) => data_dir.clone(),
                        Err(_) => std::future::pending().await,
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = child.wait() => {
                    log_exit(role, status);
                    break;
                }
                _ = stopped(&mut stop) => {
                    terminate(role, &mut child).await;
                    return;
                }
                data_dir = reloaded => {
                    match start_replacement(&exe, &args, &data_dir).await {
                        Ok(new) => {
                            let mut old = std::mem::replace(&mut child, new);
                            tracing::info!(role, pid = child.id(), "replacement ready; draining the old one");
                            tokio::spawn(async move { terminate(role, &mut old).await });
                        }
                        Err(e) => tracing::error!(role, error = %e, "cannot replace; the running one stays"),
                    }
                }
            }
        }
        backoff = if started.elapsed() > Duration::from_secs(10) {
            Duration::from_millis(200)
        } else {
            (backoff * 2).min(Duration::from_secs(5))
        };
        tracing::warn!(role, delay_ms = backoff.as_millis() as u64, "restarting");
        if wait_or_stop(&mut stop, backoff).await {
            return;
        }
    }
}

fn log_exit(role: &str, status: std::io::Result<ExitStatus>) {
    match status {
        Ok(s) => tracing::warn!(role, status = %s, "exited"),
        Err(e) => tracing::warn!(role, error = %e, "wait failed"),
    }
}

/// Sleeps `d`; true if asked to stop meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stopped(stop) => true,
    }
}

/// Resolves once the stop flag is set.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// SIGTERM, then SIGKILL after 15 s.
async fn terminate(role: &str, child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait()).await.is_err() {
        tracing::warn!(role, "did not stop in 15 s; killing");
        let _ = child.kill().await;
    }
}

fn dial(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr }
}

async fn wait_ready(config: &Config) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for addr in [config.api.listen, config.proxy.https_listen] {
        let addr = dial(addr);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("nothing listens on {addr} after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
