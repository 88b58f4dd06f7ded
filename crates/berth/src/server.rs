//! `berth server`: the control plane process.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_api::ApiConfig;
use berth_certs::Ca;
use berth_control::{Control, ControlConfig};
use berth_runtime_docker::DockerDriver;
use berth_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::ApiBackend;
use crate::config::Config;
use crate::files;

pub async fn run(config: Config) -> Result<()> {
    files::ensure_data_dir(&config)?;
    files::write_pid(&config, "server")?;
    let token = files::ensure_token(&config)?;
    let store = Store::open(&config.path(files::DB)).context("opening the store")?;
    let ca = Arc::new(Ca::load_or_create(&config.data_dir).context("loading the internal CA")?);
    let driver = DockerDriver::connect(Some(&config.runtime.docker_socket))
        .await
        .with_context(|| {
            format!(
                "Docker Engine is not reachable at {} (install and start it: scripts/ensure-docker.sh)",
                config.runtime.docker_socket
            )
        })?
        .with_dns(config.runtime.dns_servers.clone());
    tracing::info!(api_version = %driver.api_version(), "connected to Docker Engine");
    // Once per start: without live-restore a restart of dockerd stops every task (berth replaces them).
    match driver.daemon_settings().await.map(|s| s.warning()) {
        Ok(Some(warning)) => tracing::warn!("{warning}"),
        Ok(None) => tracing::info!("Docker's live-restore is on: tasks run on while dockerd restarts"),
        Err(e) => tracing::warn!(error = %e, "cannot read the Docker daemon's settings (live-restore)"),
    }
    // Tasks reach berth on a link-local address: credentials for their task role, and the API.
    let te = &config.task_endpoint;
    let task_listeners = if te.enabled {
        let bound = async {
            let creds = crate::task_endpoint::bind(te.address, te.credentials_port).await?;
            let api = crate::task_endpoint::bind(te.address, te.api_port).await?;
            anyhow::Ok((creds, api))
        };
        match bound.await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "task endpoint unavailable: tasks get no task-role credentials");
                None
            }
        }
    } else {
        None
    };
    let task_endpoint = task_listeners.as_ref().map(|_| berth_control::TaskEndpoint {
        credentials_base: format!("http://{}:{}", te.address, te.credentials_port),
        api_url: Some(format!("http://{}:{}", te.address, te.api_port)),
    });
    let control = Control::new(
        ControlConfig {
            region: config.region.clone(),
            base_domain: config.base_domain.clone(),
            network: config.runtime.network.clone(),
            drain_timeout: config.drain_timeout(),
            stop_timeout: Duration::from_secs(config.deploy.stop_timeout_secs),
            secrets_key: Some(config.path(files::SECRETS_KEY)),
            task_endpoint,
            address_pool: config.proxy.address_pool.clone(),
            https_port: config.proxy.https_listen.port(),
            http_port: config.proxy.http_listen.port(),
            sampling_interval: Duration::from_secs(config.runtime.sampling_interval_secs.max(1)),
            scaling: config.autoscaling.defaults()?,
            deploy: config.deploy_defaults()?,
            ..ControlConfig::default()
        },
        store,
        Arc::new(driver),
        Arc::clone(&ca),
    )?;
    let root = control.root_credentials()?;
    files::write_credentials(&config, &root.access_key_id, &root.secret_access_key)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let tls = if config.api.tls {
        let issued = ca
            .issue(
                &["localhost".to_string()],
                &[IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST), config.api.listen.ip()],
            )
            .context("issuing the API certificate")?;
        let cfg = berth_certs::single_cert_server_config(&issued.cert_pem, &issued.key_pem, &[b"h2", b"http/1.1"])?;
        Some(Arc::new(cfg))
    } else {
        None
    };
    let api_listener = TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("binding the API on {}", config.api.listen))?;
    let internal_listener = TcpListener::bind(config.internal.listen)
        .await
        .with_context(|| format!("binding the internal API on {}", config.internal.listen))?;

    // Metrics never keep the control plane from starting: a taken port is a warning.
    let metrics = Arc::new(crate::metrics::ServerMetrics::default());
    let metrics_listener = match config.metrics.enabled {
        true => match TcpListener::bind(config.metrics.listen).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(addr = %config.metrics.listen, error = %e, "cannot serve /metrics");
                None
            }
        },
        false => None,
    };
    let console_listener = match config.console.enabled {
        true => match TcpListener::bind(config.console.listen).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(addr = %config.console.listen, error = %e, "cannot serve the console");
                None
            }
        },
        false => None,
    };
    let backend = Arc::new(ApiBackend { control: Arc::clone(&control), metrics: Arc::clone(&metrics) });
    let api = tokio::spawn(berth_api::serve(api_listener, tls, Arc::clone(&backend), ApiConfig::default(), stopped()));
    let internal = tokio::spawn(crate::internal::serve(internal_listener, Arc::clone(&control), token, stopped()));
    let task_tasks = task_listeners.map(|(creds, api)| {
        let c = tokio::spawn(crate::task_endpoint::serve_credentials(creds, Arc::clone(&control), stopped()));
        let a = tokio::spawn(berth_api::serve(api, None, Arc::clone(&backend), ApiConfig::default(), stopped()));
        (c, a)
    });
    let reconciler = tokio::spawn(Arc::clone(&control).run_reconciler(stopped()));
    let metrics_task = metrics_listener
        .map(|l| tokio::spawn(crate::metrics::serve(l, Arc::clone(&control), Arc::clone(&metrics), stopped())));
    let console_task = match console_listener {
        Some(l) => Some(tokio::spawn(crate::console::serve(l, &config, &ca, stopped())?)),
        None => None,
    };
    tokio::spawn(Arc::clone(&control).run_sampling(stopped()));
    // CloudWatch metrics: the write buffer every second, roll-ups every minute, a last write at the stop.
    let metric_store = tokio::spawn(Arc::clone(&control).run_metrics(stopped()));
    tracing::info!(
        api = %config.api_url(),
        internal = %config.internal.listen,
        console = %config.console_url(),
        account = %control.account_id(),
        data_dir = %config.data_dir.display(),
        "berth server is ready"
    );

    crate::shutdown_signal().await;
    tracing::info!("berth server shutting down; task containers keep running");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = api.await;
        let _ = internal.await;
        let _ = reconciler.await;
        if let Some(m) = metrics_task {
            let _ = m.await;
        }
        if let Some(c) = console_task {
            let _ = c.await;
        }
        let _ = metric_store.await;
        if let Some((c, a)) = task_tasks {
            let _ = c.await;
            let _ = a.await;
        }
    })
    .await;
    Ok(())
}
