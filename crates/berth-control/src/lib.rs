//! berth-control: the control plane. It turns API commands into desired state and converges the world to it.
//!
//! It owns what the operations of every service berth speaks mean (ECS with Express Mode, ELBv2, EC2, IAM, STS,
//! Secrets Manager, SSM Parameter Store, CloudWatch Logs; each in its own module, entered by `handle_<service>`),
//! the Express feature as an orchestration of those services' resources (`express/`), the reconciler that starts,
//! drains, stops and replaces tasks (a pure [`plan`] over desired and observed state, then a thin executor), the
//! shipping of containers' output into CloudWatch Logs, the host firewall policy from security groups, task-role
//! credentials, and the route table it publishes to proxies with the target health it learns back from them. The
//! module rules (which module may use which) are in ARCHITECTURE.md and checked by a test. It must never speak a
//! wire protocol (it receives decoded operations and returns typed outputs), never know Docker (only the
//! [`Driver`] trait), and never block a command on a container: commands record intent, the reconciler acts.

pub mod authz;
mod autoscaling;
mod certs;
pub mod cloudwatch;
mod config;
mod containers;
mod credentials;
pub mod deployment;
pub mod ec2;
mod ecs;
mod elbv2;
mod error;
mod express;
mod health;
mod iam;
mod log_shipping;
pub mod logs;
mod names;
pub mod observe;
mod paging;
pub mod plan;
mod publish;
mod reconcile;
mod revisions;
mod rollout;
pub mod routes;
mod sampling;
mod sealed_credentials;
pub(crate) mod secrets;
mod sts;
pub mod task_role;
mod token;

pub use autoscaling::{AlarmTrigger, ScalingOutcome};
pub use config::{ControlConfig, ScalingDefaults, TaskEndpoint};
pub use credentials::{AccessKey, IssuedKey};
pub use deployment::Defaults as DeployDefaults;
pub use error::{ControlError, internal_error, may_return};
pub use health::HealthView;
pub use sampling::UsageHistory;

use std::sync::{Arc, Mutex};

use berth_certs::Ca;

use berth_routes::{ProxyReport, RouteTable};
use berth_runtime::Driver;
use berth_store::Store;
use tokio::sync::{Notify, watch};

use crate::names::Names;

/// Who is calling, as the API layer authenticated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub principal_arn: String,
    pub account: String,
    /// The principal's unique id (the account id for the root user), as STS reports it.
    pub user_id: String,
    /// The identity policies that apply, resolved by [`Control::identify`] (none: only root is allowed).
    pub access: authz::Access,
}

impl CallerIdentity {
    /// The account's root user (allowed everything).
    pub fn root(account: &str) -> Self {
        CallerIdentity {
            principal_arn: format!("arn:aws:iam::{account}:root"),
            account: account.to_owned(),
            user_id: account.to_owned(),
            access: authz::Access::default(),
        }
    }
}

/// The control plane. Cheap to share: clone the `Arc`.
pub struct Control {
    config: ControlConfig,
    names: Names,
    /// The one writer: every write, in short transactions ([`Control::tx`]).
    store: Mutex<Store>,
    /// Read-only connections beside the writer, for whatever only reads ([`Control::read`]).
    readers: berth_store::Readers,
    driver: Arc<dyn Driver>,
    ca: Arc<Ca>,
    wake: Notify,
    routes: watch::Sender<Arc<RouteTable>>,
    /// Serializes route publishing, so tables reach the watch in version order; remembers which store state the
    /// last built table reflects.
    publishing: Mutex<routes::Built>,
    health: Mutex<HealthView>,
    reconciler: Mutex<reconcile::State>,
    /// Seals secret values and SecureStrings at rest.
    vault: berth_vault::Vault,
    /// Long-term access keys opened for SigV4.
    access_keys: credentials::KeyCache,
    firewall: Mutex<ec2::firewall::State>,
    /// The log shippers running in this process (`log_shipping.rs`).
    shippers: Mutex<log_shipping::Shippers>,
    /// Where ingested log events reach the open live-tail sessions (`logs/live_tail.rs`).
    live_tail: logs::live_tail::Hub,
    /// The control plane's own timings, for `/metrics` (`observe.rs`).
    observed: observe::Health,
    /// CloudWatch metrics' write buffer (`cloudwatch/ingest.rs`).
    metrics: cloudwatch::ingest::Metrics,
}

impl Control {
    /// Opens the control plane over an opened store. Reads or creates the account id and instance id.
    pub fn new(
        config: ControlConfig,
        mut store: Store,
        driver: Arc<dyn Driver>,
        ca: Arc<Ca>,
    ) -> Result<Arc<Self>, ControlError> {
        let (account, instance, version) = store.tx(|t| {
            let account = match t.meta_get("account_id")? {
                Some(a) => a,
                None => {
                    let a = names::new_account_id();
                    t.meta_set("account_id", &a)?;
                    a
                }
            };
            let instance = match t.meta_get("instance_id")? {
                Some(i) => i,
                None => {
                    let i = berth_core::ids::random_hex(12);
                    t.meta_set("instance_id", &i)?;
                    i
                }
            };
            let version: u64 = t.meta_get("route_version")?.and_then(|v| v.parse().ok()).unwrap_or(0);
            Ok::<_, ControlError>((account, instance, version))
        })?;
        let vault = match &config.secrets_key {
            Some(path) => berth_vault::Vault::load_or_create(path),
            None => berth_vault::Vault::ephemeral(),
        }
        .map_err(|e| ControlError::Vault(e.to_string()))?;
        let readers = store.readers();
        let names = Names { region: config.region.clone(), account, instance };
        let (routes, _) = watch::channel(Arc::new(RouteTable { version, ..Default::default() }));
        let control = Arc::new(Control {
            config,
            names,
            store: Mutex::new(store),
            readers,
            driver,
            ca,
            wake: Notify::new(),
            routes,
            publishing: Mutex::new(routes::Built::default()),
            health: Mutex::new(HealthView::default()),
            reconciler: Mutex::new(reconcile::State::default()),
            vault,
            access_keys: credentials::KeyCache::default(),
            firewall: Mutex::new(ec2::firewall::State::default()),
            shippers: Mutex::new(log_shipping::Shippers::default()),
            live_tail: logs::live_tail::Hub::default(),
            observed: observe::Health::default(),
            metrics: cloudwatch::ingest::Metrics::default(),
        });
        control.init_metrics()?;
        control.seal_legacy_credentials()?;
        control.ensure_default_certificate()?;
        control.tx(|tx| ec2::network::ensure_default_vpc(&control, tx))?;
        // Publish the table the store describes at once, so proxies get routes before the first pass.
        control.publish_routes()?;
        Ok(control)
    }

    pub fn account_id(&self) -> &str {
        &self.names.account
    }

    pub fn region(&self) -> &str {
        &self.names.region
    }

    /// The label value that marks this server's containers (several berths may share one Docker).
    pub fn instance_id(&self) -> &str {
        &self.names.instance
    }

    /// Runs a store transaction on the writer. Holding the lock across an `await` is impossible by
    /// construction; SQLite never runs on an async worker ([`blocking`]).
    fn tx<T>(&self, f: impl FnOnce(&berth_store::Tx<'_>) -> Result<T, ControlError>) -> Result<T, ControlError> {
        blocking(|| {
            let asked = std::time::Instant::now();
            let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            let got = std::time::Instant::now();
            self.observed.store_wait.observe(got - asked);
            let out = store.tx(f);
            self.observed.store_tx.observe(got.elapsed());
            out
        })
    }

    /// Runs `f` in a read transaction on a read-only connection beside the writer: it sees what was committed
    /// when it began, takes no lock, and so never waits for a command, the reconciler or a log shipper, nor
    /// they for it. A write inside `f` fails (the connection is read-only). Use it for whatever only reads;
    /// a read that decides a write belongs in the writer's [`Control::tx`].
    fn read<T>(&self, f: impl FnOnce(&berth_store::Tx<'_>) -> Result<T, ControlError>) -> Result<T, ControlError> {
        blocking(|| self.readers.read(f))
    }

    /// Subscribes to route-table snapshots (the internal watch API serves these to proxies).
    pub fn subscribe_routes(&self) -> watch::Receiver<Arc<RouteTable>> {
        self.routes.subscribe()
    }

    /// Records a proxy's report of target health and in-flight requests.
    pub fn report(&self, mut report: ProxyReport) {
        if let Some(delta) = report.metrics.take() {
            self.record_proxy_metrics(&delta, &report.targets);
        }
        let changed = self.health.lock().unwrap_or_else(|e| e.into_inner()).apply(report, now());
        if changed {
            self.wake();
        }
    }

    /// The wildcard host of every endpoint: `*.ecs.<region>.<base domain>`.
    pub fn default_host(&self) -> String {
        format!("*.ecs.{}.{}", self.names.region, self.config.base_domain)
    }

    /// The listener's default certificate (a wildcard over every endpoint host), issued at start when missing
    /// or due (the reconciler renews it, and every endpoint's, from then on: `certs.rs`).
    fn ensure_default_certificate(&self) -> Result<(), ControlError> {
        let host = self.default_host();
        let renew_before = self.config.certificate_renew_before;
        if self.tx(|tx| Ok(tx.certificate_get(&host)?))?.is_some_and(|c| !certs::due(c.not_after, now(), renew_before))
        {
            return Ok(());
        }
        let row = self.issue_certificate(&host)?;
        self.tx(|tx| Ok(tx.certificate_put(&row)?))
    }

    /// Builds the route table from the store and publishes it if the routes changed (`publish.rs`). Any module
    /// whose change alters routes calls this at once; it is the one call from the crate root into a module above
    /// the service modules.
    pub(crate) fn publish_routes(&self) -> Result<(), ControlError> {
        self.publish_table()
    }

    /// Asks the reconciler for a pass now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Runs synchronous work (SQLite) without stalling the async runtime: on a multi-threaded runtime's worker
/// the worker first hands its other tasks to another thread (`block_in_place`); anywhere else (already
/// inside such a section, a blocking thread, a current-thread runtime in tests, no runtime) it just runs.
/// Every store access goes through it ([`Control::tx`], [`Control::read`]), and the API entry points
/// (`handle_*`) wrap their whole operation in one, so a request pays one hand-off.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> f64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_millis() as f64 / 1000.0
}
