//! berth's configuration: a TOML file (every field optional) plus command-line overrides.
//! Each field is documented in docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The AWS region berth answers as.
    pub region: String,
    /// Endpoint hosts are `<service>-<6 hex>.ecs.<region>.<base_domain>`.
    pub base_domain: String,
    pub api: ApiSection,
    pub internal: InternalSection,
    pub proxy: ProxySection,
    pub runtime: RuntimeSection,
    pub deploy: DeploySection,
    pub task_endpoint: TaskEndpointSection,
    pub metrics: MetricsSection,
    pub autoscaling: AutoscalingSection,
    pub console: ConsoleSection,
    /// Filled from the command line, never from the file.
    #[serde(skip)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Where the AWS API listens.
    pub listen: SocketAddr,
    /// Serve the API over HTTPS with a certificate from berth's CA.
    pub tls: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSection {
    /// Serve the web console (`berth console` prints its URL).
    pub enabled: bool,
    /// Where: HTTPS with a certificate from berth's CA.
    pub listen: SocketAddr,
    /// How long a console sign-in lasts, in seconds.
    pub session_ttl_secs: u64,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9445)), session_ttl_secs: 8 * 3600 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InternalSection {
    /// Where proxies watch route tables and report health (loopback or a private network).
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Serve the server's Prometheus `GET /metrics`.
    pub enabled: bool,
    /// Where: plain HTTP, no authentication (loopback by default; widen it for a remote Prometheus).
    pub listen: SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9464)) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySection {
    pub https_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// The internal API the proxy follows; defaults to `http://<internal.listen>`.
    pub server_url: Option<String>,
    pub request_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// Addresses internet-facing load balancers listen on by themselves, one each (on the listeners' ports).
    pub address_pool: Vec<std::net::IpAddr>,
    /// Where the proxy serves its Prometheus `GET /metrics` (plain HTTP, no authentication); `None`: off.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// `docker` (the only driver today).
    pub driver: String,
    /// The Docker Engine socket.
    pub docker_socket: String,
    /// The bridge network tasks join.
    pub network: String,
    /// DNS servers for task containers (Docker's embedded resolver forwards to them); empty: the host's.
    pub dns_servers: Vec<std::net::IpAddr>,
    /// How often each running task's CPU and memory are read (its cgroup) for `AWS/ECS` metrics; at least 1.
    pub sampling_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeploySection {
    /// The longest a replaced or stopped task drains before it is stopped anyway.
    pub drain_timeout_secs: u64,
    /// SIGTERM-to-SIGKILL grace when a task stops.
    pub stop_timeout_secs: u64,
    /// Express deployments: share of traffic the canary step sends to the new revision, percent (0–100).
    pub canary_percent: f64,
    /// Express deployments: seconds the canary step bakes, watched by the deployment alarm.
    pub canary_bake_secs: u64,
    /// Express deployments: seconds the full shift bakes before the old tasks go.
    pub bake_secs: u64,
}

/// How fast target tracking reacts (docs/autoscaling.md): a preset and the fields that override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoscalingSection {
    /// `berth` (10-second alarms, answered in seconds) or `aws` (AWS's 1-minute alarms and 300 s cooldowns).
    pub preset: Option<String>,
    pub alarm_period_secs: Option<i64>,
    pub alarm_high_datapoints: Option<u32>,
    pub alarm_low_datapoints: Option<u32>,
    pub scale_out_cooldown_secs: Option<i64>,
    pub scale_in_cooldown_secs: Option<i64>,
}

impl AutoscalingSection {
    /// The control plane's scaling defaults this section describes.
    pub fn defaults(&self) -> Result<berth_control::ScalingDefaults> {
        let mut d = match self.preset.as_deref() {
            None | Some("berth") => berth_control::ScalingDefaults::BERTH,
            Some("aws") => berth_control::ScalingDefaults::AWS,
            Some(other) => anyhow::bail!("autoscaling.preset must be \"berth\" or \"aws\", not {other:?}"),
        };
        if let Some(p) = self.alarm_period_secs {
            anyhow::ensure!(
                [10, 30].contains(&p) || (p >= 60 && p % 60 == 0),
                "autoscaling.alarm_period_secs must be 10, 30 or a multiple of 60"
            );
            d.alarm_timing.period = p;
        }
        if let Some(n) = self.alarm_high_datapoints {
            anyhow::ensure!(n >= 1, "autoscaling.alarm_high_datapoints must be at least 1");
            d.alarm_timing.high_datapoints = n;
        }
        if let Some(n) = self.alarm_low_datapoints {
            anyhow::ensure!(n >= 1, "autoscaling.alarm_low_datapoints must be at least 1");
            d.alarm_timing.low_datapoints = n;
        }
        if let Some(c) = self.scale_out_cooldown_secs {
            anyhow::ensure!(c >= 0, "autoscaling.scale_out_cooldown_secs must not be negative");
            d.scale_out_cooldown = c;
        }
        if let Some(c) = self.scale_in_cooldown_secs {
            anyhow::ensure!(c >= 0, "autoscaling.scale_in_cooldown_secs must not be negative");
            d.scale_in_cooldown = c;
        }
        Ok(d)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskEndpointSection {
    /// Serve task-role credentials (and the API) to tasks.
    pub enabled: bool,
    /// The link-local address tasks reach berth on; berth adds it to the host's loopback interface.
    pub address: std::net::Ipv4Addr,
    /// The ECS-style credentials endpoint (`/v2/credentials/<id>`), plain HTTP as in ECS.
    pub credentials_port: u16,
    /// The AWS API for tasks (`AWS_ENDPOINT_URL`), plain HTTP on the same address.
    pub api_port: u16,
}

impl Default for TaskEndpointSection {
    fn default() -> Self {
        TaskEndpointSection {
            enabled: true,
            address: std::net::Ipv4Addr::new(169, 254, 170, 2),
            credentials_port: 51679,
            api_port: 51680,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            region: "us-east-1".into(),
            base_domain: "localhost".into(),
            api: ApiSection::default(),
            internal: InternalSection::default(),
            proxy: ProxySection::default(),
            runtime: RuntimeSection::default(),
            deploy: DeploySection::default(),
            task_endpoint: TaskEndpointSection::default(),
            metrics: MetricsSection::default(),
            autoscaling: AutoscalingSection::default(),
            console: ConsoleSection::default(),
            data_dir: PathBuf::new(),
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { listen: SocketAddr::from(([127, 0, 0, 1], 9443)), tls: true }
    }
}

impl Default for InternalSection {
    fn default() -> Self {
        InternalSection { listen: SocketAddr::from(([127, 0, 0, 1], 9444)) }
    }
}

impl Default for ProxySection {
    fn default() -> Self {
        ProxySection {
            https_listen: SocketAddr::from(([0, 0, 0, 0], 443)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            server_url: None,
            request_timeout_secs: 60,
            idle_timeout_secs: 60,
            address_pool: Vec::new(),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9465))),
        }
    }
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            driver: "docker".into(),
            docker_socket: "/var/run/docker.sock".into(),
            network: "berth-default".into(),
            dns_servers: Vec::new(),
            sampling_interval_secs: 10,
        }
    }
}

impl Default for DeploySection {
    fn default() -> Self {
        DeploySection {
            drain_timeout_secs: 30,
            stop_timeout_secs: 30,
            canary_percent: 5.0,
            canary_bake_secs: 180,
            bake_secs: 180,
        }
    }
}

/// Command-line settings shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Data directory (SQLite store, CA, credentials). Default: $BERTH_DATA_DIR or ~/.berth.
    #[arg(long, env = "BERTH_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file. Default: <data dir>/berth.toml if it exists.
    #[arg(long, env = "BERTH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Overrides `api.listen`.
    #[arg(long, global = true)]
    pub api_listen: Option<SocketAddr>,
    /// Overrides `proxy.https_listen`.
    #[arg(long, global = true)]
    pub https_listen: Option<SocketAddr>,
    /// Overrides `proxy.http_listen`.
    #[arg(long, global = true)]
    pub http_listen: Option<SocketAddr>,
    /// Overrides `internal.listen`.
    #[arg(long, global = true)]
    pub internal_listen: Option<SocketAddr>,
    /// Overrides `console.listen`.
    #[arg(long, global = true)]
    pub console_listen: Option<SocketAddr>,
}

impl Common {
    /// The arguments that reproduce these settings for a child process.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                args.push(flag.to_string());
                args.push(v);
            }
        };
        push("--data-dir", self.data_dir.as_ref().map(|p| p.display().to_string()));
        push("--config", self.config.as_ref().map(|p| p.display().to_string()));
        push("--api-listen", self.api_listen.map(|a| a.to_string()));
        push("--https-listen", self.https_listen.map(|a| a.to_string()));
        push("--http-listen", self.http_listen.map(|a| a.to_string()));
        push("--internal-listen", self.internal_listen.map(|a| a.to_string()));
        push("--console-listen", self.console_listen.map(|a| a.to_string()));
        args
    }

    pub fn load(&self) -> Result<Config> {
        let data_dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => {
                let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
                Path::new(&home).join(".berth")
            }
        };
        let file = match &self.config {
            Some(f) => Some(f.clone()),
            None => Some(data_dir.join("berth.toml")).filter(|p| p.exists()),
        };
        let mut config = match file {
            Some(f) => {
                let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
                toml::from_str::<Config>(&text).with_context(|| format!("parsing {}", f.display()))?
            }
            None => Config::default(),
        };
        config.data_dir = data_dir;
        if let Some(a) = self.api_listen {
            config.api.listen = a;
        }
        if let Some(a) = self.https_listen {
            config.proxy.https_listen = a;
        }
        if let Some(a) = self.http_listen {
            config.proxy.http_listen = a;
        }
        if let Some(a) = self.internal_listen {
            config.internal.listen = a;
        }
        if let Some(a) = self.console_listen {
            config.console.listen = a;
        }
        if config.runtime.driver != "docker" {
            anyhow::bail!("runtime.driver {:?} is not supported (only \"docker\")", config.runtime.driver);
        }
        if let Some(a) = config.proxy.address_pool.iter().find(|a| a.is_unspecified() || a.is_multicast()) {
            anyhow::bail!("proxy.address_pool: {a} cannot be a load balancer's own address");
        }
        Ok(config)
    }
}

impl Config {
    pub fn server_url(&self) -> String {
        self.proxy.server_url.clone().unwrap_or_else(|| format!("http://{}", self.internal.listen))
    }

    /// The URL clients use for the API.
    pub fn api_url(&self) -> String {
        let scheme = if self.api.tls { "https" } else { "http" };
        let ip = self.api.listen.ip();
        let host = if ip.is_loopback() || ip.is_unspecified() { "localhost".to_string() } else { ip.to_string() };
        format!("{scheme}://{host}:{}", self.api.listen.port())
    }

    /// Express deployments' canary percentage and bakes, checked.
    pub fn deploy_defaults(&self) -> anyhow::Result<berth_control::DeployDefaults> {
        let d = &self.deploy;
        if !(d.canary_percent > 0.0 && d.canary_percent <= 100.0) {
            anyhow::bail!("deploy.canary_percent must be above 0 and at most 100, got {}", d.canary_percent);
        }
        for (name, secs) in [("canary_bake_secs", d.canary_bake_secs), ("bake_secs", d.bake_secs)] {
            if secs > 86_400 {
                anyhow::bail!("deploy.{name} must be at most 86400 (24 hours), got {secs}");
            }
        }
        Ok(berth_control::DeployDefaults {
            canary_percent: d.canary_percent,
            canary_bake_secs: d.canary_bake_secs,
            bake_secs: d.bake_secs,
        })
    }

    /// The console's URL (and origin).
    pub fn console_url(&self) -> String {
        let ip = self.console.listen.ip();
        let host = if ip.is_loopback() || ip.is_unspecified() { "localhost".to_string() } else { ip.to_string() };
        format!("https://{host}:{}", self.console.listen.port())
    }

    /// This machine's berth as a client finds it: the fallback endpoint and credentials of the CLI.
    pub fn local_berth(&self) -> berth_client::LocalBerth {
        berth_client::LocalBerth {
            endpoint: self.api_url(),
            region: self.region.clone(),
            credentials_file: self.path(crate::files::CREDENTIALS),
            ca_pem: self.path(crate::files::CA_PEM),
            https_port: Some(self.proxy.https_listen.port()).filter(|p| *p != 443),
        }
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.deploy.drain_timeout_secs)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.data_dir.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_fields_parse_and_unknown_ones_are_refused() {
        let c: Config = toml::from_str(
            "region = \"eu-west-1\"\n[api]\nlisten = \"127.0.0.1:1\"\ntls = false\n[deploy]\ndrain_timeout_secs = 5\n",
        )
        .expect("parse");
        assert_eq!(c.region, "eu-west-1");
        assert!(!c.api.tls);
        assert_eq!(c.deploy.drain_timeout_secs, 5);
        assert_eq!(c.proxy.https_listen.port(), 443, "unset sections keep their defaults");
        assert!(toml::from_str::<Config>("nope = 1").is_err());
        assert!(toml::from_str::<Config>("[api]\nlisten = \"not an address\"").is_err());
    }

    #[test]
    fn autoscaling_presets_and_overrides() {
        let parse = |t: &str| toml::from_str::<Config>(t).expect("parse").autoscaling.defaults();
        let berth = parse("").expect("default");
        assert_eq!(berth, berth_control::ScalingDefaults::BERTH);
        let aws = parse("[autoscaling]\npreset = \"aws\"\n").expect("aws");
        assert_eq!((aws.alarm_timing.period, aws.alarm_timing.high_datapoints, aws.scale_in_cooldown), (60, 3, 300));
        let mixed = parse("[autoscaling]\nalarm_high_datapoints = 2\nscale_in_cooldown_secs = 15\n").expect("mixed");
        assert_eq!(
            (mixed.alarm_timing.period, mixed.alarm_timing.high_datapoints, mixed.scale_in_cooldown),
            (10, 2, 15)
        );
        assert!(parse("[autoscaling]\npreset = \"fast\"\n").is_err());
        assert!(parse("[autoscaling]\nalarm_period_secs = 45\n").is_err());
        assert!(toml::from_str::<Config>("[autoscaling]\nperiod = 10\n").is_err(), "unknown fields are refused");
    }

    #[test]
    fn api_url_names_localhost_for_loopback() {
        let c = Config::default();
        assert_eq!(c.api_url(), "https://localhost:9443");
        assert_eq!(c.server_url(), "http://127.0.0.1:9444");
    }
}
