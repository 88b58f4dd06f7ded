//! The data directory: its layout, the files clients read, and `berth env` / `berth ca`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use berth_store::Store;

use crate::config::Config;

pub const DB: &str = "berth.db";
pub const CA_PEM: &str = "ca.pem";
pub const CREDENTIALS: &str = "credentials";
pub const TOKEN: &str = "internal-token";
pub const PROXY_STATE: &str = "proxy-state.json";
/// The data key that seals secret values and SecureStrings (0600, created on first start).
pub const SECRETS_KEY: &str = "secrets.key";

/// Creates the data directory (0700) if needed.
pub fn ensure_data_dir(config: &Config) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    set_mode(&config.data_dir, 0o700)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", path.display()))
}

/// Writes `contents` to `path` atomically with the given mode.
pub fn write_private(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        set_mode(&tmp, mode)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The token proxies present to the internal API, created once.
pub fn ensure_token(config: &Config) -> Result<String> {
    let path = config.path(TOKEN);
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = berth_core::ids::random_hex(48);
    write_private(&path, &token, 0o600)?;
    Ok(token)
}

pub fn write_pid(config: &Config, name: &str) -> Result<()> {
    write_private(&config.path(&format!("{name}.pid")), &std::process::id().to_string(), 0o644)
}

/// The AWS credentials file for the root user (profile `default`).
pub fn write_credentials(config: &Config, access_key_id: &str, secret: &str) -> Result<()> {
    let text = format!(
        "# berth root user. Use with: export AWS_SHARED_CREDENTIALS_FILE={}\n[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n",
        config.path(CREDENTIALS).display()
    );
    write_private(&config.path(CREDENTIALS), &text, 0o600)
}

/// The root user's (access key id, secret access key) from the credentials file, the user's copy (the store
/// holds the secret only sealed). The server rewrites the file at every start.
fn read_credentials(config: &Config) -> Result<(String, String)> {
    let path = config.path(CREDENTIALS);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}: start berth first with `berth up`", path.display()))?;
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .with_context(|| format!("{} has no {name}: restart berth to rewrite it", path.display()))
    };
    Ok((field("aws_access_key_id")?, field("aws_secret_access_key")?))
}

pub fn print_env(config: &Config) -> Result<()> {
    let db = config.path(DB);
    if !db.exists() {
        anyhow::bail!("no berth data in {}: start it first with `berth up`", config.data_dir.display());
    }
    let mut store = Store::open(&db)?;
    let account = store.tx(|t| t.meta_get("account_id"))?;
    let account = account.context("the store has no account yet: start berth first with `berth up`")?;
    let (access_key_id, secret) = read_credentials(config)?;
    println!("export AWS_ENDPOINT_URL={}", config.api_url());
    println!("export AWS_ACCESS_KEY_ID={access_key_id}");
    println!("export AWS_SECRET_ACCESS_KEY={secret}");
    println!("export AWS_DEFAULT_REGION={}", config.region);
    // One endpoint serves every operation: no `stream-` (StartLiveTail) or other host prefix in front of it.
    println!("export AWS_DISABLE_HOST_PREFIX_INJECTION=true");
    println!("unset AWS_SESSION_TOKEN AWS_PROFILE");
    if config.api.tls {
        println!("export AWS_CA_BUNDLE={}", config.path(CA_PEM).display());
    }
    println!("export BERTH_ACCOUNT_ID={account}");
    Ok(())
}
