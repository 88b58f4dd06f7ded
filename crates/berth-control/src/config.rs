use std::path::PathBuf;
use std::time::Duration;

/// What the control plane needs from the server's configuration.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub region: String,
    /// Endpoint hosts are `<service>-<6 hex>.ecs.<region>.<base_domain>`.
    pub base_domain: String,
    /// The Docker network tasks join.
    pub network: String,
    /// The longest a task may drain before it is stopped anyway.
    pub drain_timeout: Duration,
    /// Grace period between SIGTERM and SIGKILL when a task stops (ECS `stopTimeout`).
    pub stop_timeout: Duration,
    /// How often the reconciler runs when nothing wakes it.
    pub resync_interval: Duration,
    /// How long stopped tasks stay visible (ECS keeps them about an hour).
    pub stopped_task_retention: Duration,
    /// The data key that seals secret values and SecureStrings (created 0600 on first start). `None` keeps
    /// a key in memory only, for tests: sealed values then do not survive the process.
    pub secrets_key: Option<PathBuf>,
    /// Where tasks reach the credentials endpoint and the API; `None` gives tasks no task-role credentials.
    pub task_endpoint: Option<TaskEndpoint>,
    /// The reconciler reissues a listener certificate when it expires within this window (leaf certificates
    /// are valid 90 days; ACM renews 60 days before, berth 30).
    pub certificate_renew_before: Duration,
    /// Addresses internet-facing load balancers may listen on by themselves, one each (`proxy.address_pool`);
    /// a load balancer created when none is free shares the proxy's default sockets.
    pub address_pool: Vec<std::net::IpAddr>,
    /// The port of the proxy's HTTPS listener, also used by load balancers with their own address.
    pub https_port: u16,
    /// The port of the proxy's HTTP listener, likewise.
    pub http_port: u16,
    /// How often each running task's CPU and memory are read for `AWS/ECS` metrics (`sampling.rs`).
    pub sampling_interval: Duration,
    /// Target tracking's alarm periods and datapoints, and the cooldowns of policies that set none
    /// (docs/autoscaling.md): berth's fast defaults, or AWS's.
    pub scaling: ScalingDefaults,
    /// Express deployments' canary percentage and bakes (`[deploy]`; AWS's values by default).
    pub deploy: crate::deployment::Defaults,
}

/// How fast target tracking reacts: the period and datapoints of the alarms a policy creates, and the cooldowns
/// a policy gets when it sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingDefaults {
    pub alarm_timing: berth_telemetry::scaling::AlarmTiming,
    pub scale_out_cooldown: i64,
    pub scale_in_cooldown: i64,
}

impl ScalingDefaults {
    /// berth: 10-second periods, AlarmHigh 1 of 1 (a spike is answered within one period), AlarmLow 30 of 30
    /// (5 minutes below 90% of the target), cooldowns 30 s out and 120 s in.
    pub const BERTH: ScalingDefaults = ScalingDefaults {
        alarm_timing: berth_telemetry::scaling::AlarmTiming::BERTH,
        scale_out_cooldown: 30,
        scale_in_cooldown: 120,
    };
    /// AWS: 60-second periods, AlarmHigh 3 of 3, AlarmLow 15 of 15, cooldowns 300 s each (ECS's defaults).
    pub const AWS: ScalingDefaults = ScalingDefaults {
        alarm_timing: berth_telemetry::scaling::AlarmTiming::AWS,
        scale_out_cooldown: 300,
        scale_in_cooldown: 300,
    };
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            base_domain: "localhost".into(),
            network: "berth-default".into(),
            drain_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(30),
            resync_interval: Duration::from_secs(1),
            stopped_task_retention: Duration::from_secs(3600),
            secrets_key: None,
            task_endpoint: None,
            certificate_renew_before: Duration::from_secs(30 * 86_400),
            address_pool: Vec::new(),
            https_port: 443,
            http_port: 80,
            sampling_interval: Duration::from_secs(10),
            scaling: ScalingDefaults::BERTH,
            deploy: crate::deployment::Defaults::default(),
        }
    }
}

/// Where tasks reach berth: the credentials endpoint and, optionally, the AWS API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEndpoint {
    /// `http://169.254.170.2:51679`: `AWS_CONTAINER_CREDENTIALS_FULL_URI` is this plus `/v2/credentials/<id>`.
    pub credentials_base: String,
    /// Given to tasks as `AWS_ENDPOINT_URL`, so their SDKs call berth's API.
    pub api_url: Option<String>,
}
