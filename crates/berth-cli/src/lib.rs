//! berth-cli: the commands berth's users type (`berth deploy`, `ls`, `status`, `logs`, `rollback`, `apply`, …).
//!
//! It owns the command line's arguments, what each command asks berth, how answers are shown (`--output
//! table|text|json`, the live progress display) and the exit codes scripts rely on (docs/cli.md). It talks to
//! berth only through its public AWS API with `berth-client`, as whoever signed the request, so every permission
//! check applies. It must never open the store, call the control plane, or read a data directory beyond the
//! files a client reads (credentials, CA).

#![forbid(unsafe_code)]

pub mod ca;
mod ctx;
mod error;
pub mod exit;
pub mod output;

pub mod apply;
pub mod deploy;
mod logs;
mod lookup;
pub mod ls;
mod manage;
pub mod manifest;
pub mod observe;
mod open;
pub mod progress;
pub mod resources;
mod rm;
mod rollback;
mod scale;
pub mod service;
pub mod status;

pub use ctx::Ctx;
pub use error::CliError;
pub use open::open_url;

use berth_client::LocalBerth;

/// The options every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// How answers are printed: `table` for people, `text` (tab-separated, no headers) for awk, `json` (only
    /// JSON on stdout; progress and prompts go to stderr).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = output::Format::Table, env = "BERTH_OUTPUT")]
    pub output: output::Format,
    /// The API endpoint (default: $AWS_ENDPOINT_URL, the profile's endpoint_url, then the local berth).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// The AWS profile whose credentials sign requests (default: $AWS_PROFILE).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's, then the local berth's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Colour: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, global = true, value_enum, default_value_t = output::Color::Auto)]
    pub color: output::Color,
    /// Answer yes to every question (scripts; needed when stdin is not a terminal).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// The ECS cluster of the services (default: `default`).
    #[arg(long, global = true, default_value = "default")]
    pub cluster: String,
}

/// The client commands.
#[derive(Debug, clap::Subcommand)]
// Parsed once per run: deploy's many flags make its variant the largest, which costs nothing here.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Create or update a service from an image and print its HTTPS URL.
    #[command(after_help = deploy::EXAMPLES)]
    Deploy(deploy::Args),
    /// List services: status, URL, revision, tasks, requests and errors.
    #[command(
        after_help = "Examples:\n  berth ls\n  berth ls -o json | jq -r '.services[].url'\n  berth ls -o text | cut -f1"
    )]
    Ls(ls::Args),
    /// One service: endpoint, revision, deployment, tasks, scaling, alarms, events.
    #[command(after_help = "Examples:\n  berth status web\n  berth status web -o json | jq .deployment")]
    Status(status::Args),
    /// A service's logs; `-f` follows them.
    #[command(after_help = logs::EXAMPLES)]
    Logs(logs::Args),
    /// Open a service's URL in a browser (or print it).
    #[command(after_help = "Examples:\n  berth open web\n  curl --cacert <(berth ca) \"$(berth open web)\"")]
    Open(open::Args),
    /// Roll back: the running deployment, or else to the previous revision.
    #[command(after_help = rollback::ROLLBACK_EXAMPLES)]
    Rollback(rollback::RollbackArgs),
    /// Skip the bake of the running deployment: shift everything to the new revision now.
    #[command(after_help = rollback::PROMOTE_EXAMPLES)]
    Promote(rollback::PromoteArgs),
    /// Set a service's minimum and maximum task counts.
    #[command(after_help = "Examples:\n  berth scale web --min 2 --max 10")]
    Scale(manage::ScaleArgs),
    /// Delete a service and everything berth created for it (asks first).
    #[command(after_help = "Examples:\n  berth rm web\n  berth rm web --yes --wait")]
    Rm(manage::RmArgs),
    /// The tree of every resource berth created for a service, with ARNs.
    #[command(after_help = resources::EXAMPLES)]
    Resources(resources::Args),
    /// Show what `apply` would change to make berth match a berth.toml.
    #[command(after_help = apply::PLAN_EXAMPLES)]
    Plan(apply::Args),
    /// Create and update services to match a berth.toml (`--prune` also deletes those it does not name).
    #[command(after_help = apply::APPLY_EXAMPLES)]
    Apply(apply::ApplyArgs),
}

/// Runs one client command and returns its exit code (see [`exit`]).
pub fn run(command: Command, global: Global, local: Option<LocalBerth>) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start: {e}");
            return exit::FAILED;
        }
    };
    rt.block_on(async move {
        let ctx = match Ctx::new(&global, local) {
            Ok(ctx) => ctx,
            Err(e) => return ctx::report_error(&global, &e),
        };
        let result = match command {
            Command::Deploy(a) => deploy::run(&ctx, a).await,
            Command::Ls(a) => ls::run(&ctx, a).await,
            Command::Status(a) => status::run(&ctx, a).await,
            Command::Logs(a) => logs::run(&ctx, a).await,
            Command::Open(a) => open::run(&ctx, a).await,
            Command::Rollback(a) => rollback::rollback(&ctx, a).await,
            Command::Promote(a) => rollback::promote(&ctx, a).await,
            Command::Scale(a) => manage::scale(&ctx, a).await,
            Command::Rm(a) => manage::rm(&ctx, a).await,
            Command::Resources(a) => resources::run(&ctx, a).await,
            Command::Plan(a) => apply::plan(&ctx, a).await,
            Command::Apply(a) => apply::apply(&ctx, a).await,
        };
        match result {
            Ok(doc) => {
                ctx.out.print(&doc);
                exit::OK
            }
            Err(e) => ctx::report_error(&global, &e),
        }
    })
}
