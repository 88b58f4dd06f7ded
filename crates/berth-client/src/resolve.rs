//! Finding the endpoint, region, credentials and CA as AWS tools do, with this machine's berth as the fallback.
//!
//! The order (the same as the AWS CLI's, plus the local berth):
//!
//! - **Profile**: `--profile`, else `AWS_PROFILE` (or `AWS_DEFAULT_PROFILE`), else `default`. A named profile
//!   must exist. A profile is `[name]` in the credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
//!   `~/.aws/credentials`) merged over `[profile name]` (or `[default]`) in the config file (`AWS_CONFIG_FILE`,
//!   default `~/.aws/config`); a bare `[name]` in the config file is not a profile there, as in botocore.
//! - **Endpoint**: `--endpoint-url`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, the local berth. An endpoint
//!   "is the local berth" when it names the local berth's scheme and port on a loopback name (`localhost`,
//!   `127.0.0.1`, `[::1]`).
//! - **Credentials**: the `--profile` profile when the flag is given (environment keys are then ignored, as
//!   botocore does); else `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); else the
//!   `AWS_PROFILE` profile; else, when the endpoint is the local berth, the root user's keys from its data
//!   directory's `credentials` file; else the `default` profile.
//! - **Region**: `--region`; the local berth's own region when the endpoint is the local berth (it accepts no
//!   other); `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`; else `us-east-1`.
//! - **CA** (for `https://` endpoints): `AWS_CA_BUNDLE`, else the profile's `ca_bundle`; plus the local berth's
//!   `ca.pem` when the endpoint is the local berth (a global `AWS_CA_BUNDLE` meant for AWS does not lock it out).
//!
//! Files that do not exist are skipped (as botocore does); files that exist but cannot be read are errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{ClientError, Credentials, Settings};

/// A berth on this machine, from its data directory: the fallback when nothing else names an endpoint.
#[derive(Debug, Clone)]
pub struct LocalBerth {
    pub endpoint: String,
    pub region: String,
    /// The root user's credentials file `berth up` writes.
    pub credentials_file: PathBuf,
    /// berth's root CA.
    pub ca_pem: PathBuf,
}

/// What the command line says; the environment and `~/.aws` are read by [`resolve`].
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    pub local: Option<LocalBerth>,
}

/// The region when nothing names one.
const DEFAULT_REGION: &str = "us-east-1";

/// Resolves the endpoint, region, CA and credentials from `sources`, the process environment and the AWS
/// configuration files, in the order the module documentation gives.
pub fn resolve(sources: &Sources) -> Result<(Settings, Credentials), ClientError> {
    resolve_with(sources, &|name| std::env::var(name).ok())
}

/// [`resolve`] with the environment given as a lookup, so that tests need not change the process's.
pub(crate) fn resolve_with(
    sources: &Sources,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Settings, Credentials), ClientError> {
    // An empty variable counts as unset, as in botocore.
    let env = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let home = env("HOME").map(PathBuf::from);
    let aws_file = |var: &str, default: &str| {
        env(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let credentials_path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_path = aws_file("AWS_CONFIG_FILE", "config");
    let credentials_file = credentials_path.as_deref().map(read_ini).transpose()?.flatten().unwrap_or_default();
    let config_file = config_path.as_deref().map(read_ini).transpose()?.flatten().unwrap_or_default();

    let env_profile = env("AWS_PROFILE").or_else(|| env("AWS_DEFAULT_PROFILE"));
    let flag_profile = sources.profile.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_string);
    let named = flag_profile.clone().or(env_profile);
    let profile_name = named.clone().unwrap_or_else(|| "default".to_string());
    let profile = profile(&credentials_file, &config_file, &profile_name);
    if let (Some(name), None) = (&named, &profile) {
        let mut known: Vec<&str> = credentials_file
            .keys()
            .map(String::as_str)
            .chain(config_file.keys().filter_map(|k| config_profile_name(k)))
            .collect();
        known.sort_unstable();
        known.dedup();
        return Err(ClientError::Config(format!(
            "the profile '{name}' is in neither {} nor {}; known profiles: {}. Name another with --profile or \
             AWS_PROFILE",
            shown(credentials_path.as_deref()),
            shown(config_path.as_deref()),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    }
    let setting = |key: &str| profile.as_ref().and_then(|p| p.get(key)).cloned().filter(|v| !v.is_empty());

    // Endpoint.
    let local = sources.local.as_ref();
    let (endpoint, from) = if let Some(url) = sources.endpoint_url.as_deref().filter(|u| !u.trim().is_empty()) {
        (url.to_string(), "--endpoint-url".to_string())
    } else if let Some(url) = env("AWS_ENDPOINT_URL") {
        (url, "AWS_ENDPOINT_URL".to_string())
    } else if let Some(url) = setting("endpoint_url") {
        (url, format!("endpoint_url of profile '{profile_name}'"))
    } else if let Some(local) = local {
        (local.endpoint.clone(), "the local berth".to_string())
    } else {
        return Err(ClientError::Config(
            "no berth endpoint: pass --endpoint-url https://HOST:PORT, set AWS_ENDPOINT_URL, or run this on the \
             machine where berth runs"
                .into(),
        ));
    };
    let endpoint = normalize_endpoint(&endpoint, &from)?;
    let local = local.filter(|l| {
        normalize_endpoint(&l.endpoint, "the local berth").is_ok_and(|local| same_berth(&local, &endpoint))
    });

    // Credentials.
    let from_profile = |why: &str| -> Result<Credentials, ClientError> {
        let access_key_id = setting("aws_access_key_id");
        let secret_access_key = setting("aws_secret_access_key");
        match (access_key_id, secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => {
                Ok(Credentials { access_key_id, secret_access_key, session_token: setting("aws_session_token") })
            }
            _ => Err(ClientError::Config(format!(
                "the profile '{profile_name}' ({why}) has no aws_access_key_id and aws_secret_access_key in {} or \
                 {}: add them, or name another profile",
                shown(credentials_path.as_deref()),
                shown(config_path.as_deref())
            ))),
        }
    };
    let credentials = if flag_profile.is_some() {
        from_profile("from --profile")?
    } else if let Some(creds) = env_credentials(&env)? {
        creds
    } else if named.is_some() {
        from_profile("from AWS_PROFILE")?
    } else if let Some(local) = local {
        local_credentials(&local.credentials_file)?
    } else if profile.is_some() {
        from_profile("the default")?
    } else {
        return Err(ClientError::Config(format!(
            "no credentials for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile \
             with --profile (berth prints its root user's keys with `berth env`)"
        )));
    };

    // Region.
    let region = sources
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| local.map(|l| l.region.clone()))
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| setting("region"))
        .unwrap_or_else(|| DEFAULT_REGION.to_string());

    // CA: the bundle named, plus berth's own CA for the local berth (a global AWS_CA_BUNDLE, often the system's
    // bundle for real AWS, must not make the local berth untrusted).
    let mut ca_pem = if let Some(path) = env("AWS_CA_BUNDLE") {
        read_ca(Path::new(&path), "AWS_CA_BUNDLE")?
    } else if let Some(path) = setting("ca_bundle") {
        read_ca(Path::new(&path), &format!("ca_bundle of profile '{profile_name}'"))?
    } else {
        Vec::new()
    };
    if let Some(local) = local.filter(|_| endpoint.starts_with("https://")) {
        if !ca_pem.is_empty() && !ca_pem.ends_with(b"\n") {
            ca_pem.push(b'\n');
        }
        ca_pem.extend(read_ca(&local.ca_pem, "the local berth")?);
    }
    let ca_pem = (!ca_pem.is_empty()).then_some(ca_pem);

    Ok((Settings { endpoint, region, ca_pem }, credentials))
}

/// `https://host:port` with no trailing slash; anything else (a path, a query, another scheme) is refused.
pub(crate) fn normalize_endpoint(url: &str, from: &str) -> Result<String, ClientError> {
    let invalid = |why: &str| {
        ClientError::Config(format!("the endpoint '{url}' (from {from}) {why}: expected https://HOST:PORT"))
    };
    let uri: http::Uri = url.trim().parse().map_err(|_| invalid("is not a URL"))?;
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => "https",
        Some(s) if s.eq_ignore_ascii_case("http") => "http",
        Some(_) => return Err(invalid("has a scheme other than http or https")),
        None => return Err(invalid("has no scheme")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("has no host"))?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(invalid("has no plain host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("has a path or query"));
    }
    Ok(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()))
}

/// Whether two normalized endpoints reach the same berth: equal, or the same scheme and port on loopback names
/// (`localhost`, `127.0.0.1`, `[::1]`: berth's certificate names all three).
fn same_berth(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let parts = |e: &str| -> Option<(String, bool, Option<u16>)> {
        let uri: http::Uri = e.parse().ok()?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_string();
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        Some((uri.scheme_str()?.to_string(), loopback, uri.port_u16()))
    };
    match (parts(a), parts(b)) {
        (Some((sa, true, pa)), Some((sb, true, pb))) => sa == sb && pa == pb,
        _ => false,
    }
}

fn shown(path: Option<&Path>) -> String {
    path.map_or_else(|| "(no file: HOME is not set)".to_string(), |p| p.display().to_string())
}

fn env_credentials(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Credentials>, ClientError> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(Some(Credentials { access_key_id, secret_access_key, session_token: env("AWS_SESSION_TOKEN") }))
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err(ClientError::Config(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or unset both".into(),
        )),
        (None, Some(_)) => Err(ClientError::Config(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or unset both".into(),
        )),
    }
}

/// The root user's keys from the local berth's credentials file (its `[default]` section).
fn local_credentials(path: &Path) -> Result<Credentials, ClientError> {
    let Some(file) = read_ini(path)? else {
        return Err(ClientError::Config(format!(
            "berth's credentials file {} does not exist: start berth with `berth up`, or set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY",
            path.display()
        )));
    };
    let section = file.get("default");
    let get = |k: &str| section.and_then(|s| s.get(k)).filter(|v| !v.is_empty()).cloned();
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(Credentials { access_key_id, secret_access_key, session_token: get("aws_session_token") })
        }
        _ => Err(ClientError::Config(format!(
            "{} has no [default] aws_access_key_id and aws_secret_access_key: restart berth (`berth up`) to \
             rewrite it",
            path.display()
        ))),
    }
}

/// Reads and checks a PEM bundle: it must hold at least one certificate.
fn read_ca(path: &Path, from: &str) -> Result<Vec<u8>, ClientError> {
    let pem = std::fs::read(path)
        .map_err(|e| ClientError::Config(format!("cannot read the CA bundle {} (from {from}): {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>().map_err(|e| {
        ClientError::Config(format!("the CA bundle {} (from {from}) is not valid PEM: {e}", path.display()))
    })?;
    if certs.is_empty() {
        return Err(ClientError::Config(format!(
            "the CA bundle {} (from {from}) holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(pem)
}

/// An INI file: section name → key → value.
type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Reads an INI file; `None` when it does not exist.
fn read_ini(path: &Path) -> Result<Option<Ini>, ClientError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(parse_ini(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClientError::Config(format!("cannot read {}: {e}", path.display()))),
    }
}

/// The AWS flavour of INI: `[section]`, `key = value`, `#` and `;` comments, indented lines continuing a
/// nested block (`s3 =` followed by indented settings), which are skipped.
fn parse_ini(text: &str) -> Ini {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')).map(|s| s.trim().to_string());
            if let Some(s) = &section {
                ini.entry(s.clone()).or_default();
            }
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let (Some(s), Some((k, v))) = (&section, line.split_once('=')) else { continue };
        ini.entry(s.clone()).or_default().insert(k.trim().to_string(), v.trim().to_string());
    }
    ini
}

/// The profile a config-file section defines: `[profile x]` is `x`, `[default]` is `default`.
fn config_profile_name(section: &str) -> Option<&str> {
    if section == "default" {
        return Some("default");
    }
    let rest = section.strip_prefix("profile")?;
    rest.starts_with([' ', '\t']).then(|| rest.trim()).filter(|n| !n.is_empty())
}

/// A profile's settings: the credentials file's `[name]` over the config file's `[profile name]`.
fn profile(credentials: &Ini, config: &Ini, name: &str) -> Option<BTreeMap<String, String>> {
    let from_config = config.iter().filter(|(section, _)| config_profile_name(section) == Some(name)).map(|(_, v)| v);
    let from_credentials = credentials.get(name);
    let mut merged: Option<BTreeMap<String, String>> = None;
    for section in from_config.chain(from_credentials) {
        merged.get_or_insert_with(BTreeMap::new).extend(section.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const OTHER_PEM: &str = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
    /// As `berth up` writes it.
    const BERTH_CREDENTIALS: &str = "# berth root user. Use with: export AWS_SHARED_CREDENTIALS_FILE=/x\n[default]\n\
                                     aws_access_key_id = AKIALOCAL\naws_secret_access_key = local-secret\n";

    /// A fresh directory standing in for HOME, with the local berth's data directory inside.
    fn home(files: &[(&str, &str)]) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-client-resolve-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn local(home: &Path) -> LocalBerth {
        LocalBerth {
            endpoint: "https://localhost:9443".into(),
            region: "eu-central-1".into(),
            credentials_file: home.join("berth/credentials"),
            ca_pem: home.join("berth/ca.pem"),
        }
    }

    /// (endpoint, region, access key id, session token, CA).
    type Resolved = (&'static str, &'static str, &'static str, Option<&'static str>, Option<&'static str>);

    struct Case {
        name: &'static str,
        files: &'static [(&'static str, &'static str)],
        env: &'static [(&'static str, &'static str)],
        endpoint_flag: Option<&'static str>,
        profile_flag: Option<&'static str>,
        region_flag: Option<&'static str>,
        with_local: bool,
        /// What resolves, or a piece of the error.
        expect: Result<Resolved, &'static str>,
    }

    const BASE: Case = Case {
        name: "",
        files: &[],
        env: &[],
        endpoint_flag: None,
        profile_flag: None,
        region_flag: None,
        with_local: true,
        expect: Err(""),
    };

    const LOCAL_FILES: &[(&str, &str)] = &[("berth/credentials", BERTH_CREDENTIALS), ("berth/ca.pem", PEM)];

    fn cases() -> Vec<Case> {
        vec![
            Case { name: "nothing at all", with_local: false, expect: Err("no berth endpoint"), ..BASE },
            Case {
                name: "the local berth alone",
                files: LOCAL_FILES,
                expect: Ok(("https://localhost:9443", "eu-central-1", "AKIALOCAL", None, Some(PEM))),
                ..BASE
            },
            Case { name: "the local berth not started", expect: Err("berth's credentials file"), ..BASE },
            Case {
                name: "the local berth's default profile in ~/.aws is someone else's",
                files: &[
                    ("berth/credentials", BERTH_CREDENTIALS),
                    ("berth/ca.pem", PEM),
                    (".aws/credentials", "[default]\naws_access_key_id = AKIAREALAWS\naws_secret_access_key = s\n"),
                    (".aws/config", "[default]\nregion = ap-south-1\n"),
                ],
                expect: Ok(("https://localhost:9443", "eu-central-1", "AKIALOCAL", None, Some(PEM))),
                ..BASE
            },
            Case {
                name: "environment keys beat the local root keys",
                files: LOCAL_FILES,
                env: &[("AWS_ACCESS_KEY_ID", "AKIAENV"), ("AWS_SECRET_ACCESS_KEY", "e"), ("AWS_SESSION_TOKEN", "tok")],
                expect: Ok(("https://localhost:9443", "eu-central-1", "AKIAENV", Some("tok"), Some(PEM))),
                ..BASE
            },
            Case {
                name: "empty environment variables are unset",
                files: LOCAL_FILES,
                env: &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", " "), ("AWS_ENDPOINT_URL", "")],
                expect: Ok(("https://localhost:9443", "eu-central-1", "AKIALOCAL", None, Some(PEM))),
                ..BASE
            },
            Case {
                name: "half the environment keys",
                files: LOCAL_FILES,
                env: &[("AWS_ACCESS_KEY_ID", "AKIAENV")],
                expect: Err("AWS_SECRET_ACCESS_KEY is not"),
                ..BASE
            },
            Case {
                name: "--endpoint-url naming the local berth (trailing slash, upper case) is the local berth",
                files: LOCAL_FILES,
                endpoint_flag: Some("https://LOCALHOST:9443/"),
                expect: Ok(("https://localhost:9443", "eu-central-1", "AKIALOCAL", None, Some(PEM))),
                ..BASE
            },
            Case {
                name: "another endpoint takes the default profile, its region and its CA",
                files: &[
                    ("berth/credentials", BERTH_CREDENTIALS),
                    (".aws/credentials", "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s\n"),
                    (".aws/config", "[default]\nregion = ap-south-1\nca_bundle = {home}/other.pem\n"),
                    ("other.pem", OTHER_PEM),
                ],
                endpoint_flag: Some("https://berth.example:9443"),
                expect: Ok(("https://berth.example:9443", "ap-south-1", "AKIADEFAULT", None, Some(OTHER_PEM))),
                ..BASE
            },
            Case {
                name: "another endpoint without any credentials",
                files: LOCAL_FILES,
                endpoint_flag: Some("http://10.0.0.5:9443"),
                expect: Err("no credentials for http://10.0.0.5:9443"),
                ..BASE
            },
            Case {
                name: "AWS_ENDPOINT_URL, AWS_REGION over AWS_DEFAULT_REGION over the profile, AWS_CA_BUNDLE",
                files: &[
                    (".aws/credentials", "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s\n"),
                    (".aws/config", "[default]\nregion = ap-south-1\nendpoint_url = https://ignored:1\n"),
                    ("bundle.pem", OTHER_PEM),
                ],
                env: &[
                    ("AWS_ENDPOINT_URL", "https://env.example:1234"),
                    ("AWS_REGION", "us-west-2"),
                    ("AWS_DEFAULT_REGION", "us-west-1"),
                    ("AWS_CA_BUNDLE", "{home}/bundle.pem"),
                ],
                with_local: false,
                expect: Ok(("https://env.example:1234", "us-west-2", "AKIADEFAULT", None, Some(OTHER_PEM))),
                ..BASE
            },
            Case {
                name: "AWS_DEFAULT_REGION, and the profile's endpoint_url",
                files: &[(
                    ".aws/config",
                    "[default]\nregion = ap-south-1\nendpoint_url = http://profile.example:80\n\
                     aws_access_key_id = AKIACONFIG\naws_secret_access_key = s\n",
                )],
                env: &[("AWS_DEFAULT_REGION", "us-west-1")],
                with_local: false,
                expect: Ok(("http://profile.example:80", "us-west-1", "AKIACONFIG", None, None)),
                ..BASE
            },
            Case {
                name: "--region beats the local berth's region",
                files: LOCAL_FILES,
                region_flag: Some("sa-east-1"),
                env: &[("AWS_REGION", "us-west-2")],
                expect: Ok(("https://localhost:9443", "sa-east-1", "AKIALOCAL", None, Some(PEM))),
                ..BASE
            },
            Case {
                name: "no region anywhere",
                files: &[(
                    ".aws/credentials",
                    "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = s\n",
                )],
                endpoint_flag: Some("http://127.0.0.1:9443"),
                with_local: false,
                expect: Ok(("http://127.0.0.1:9443", "us-east-1", "AKIADEFAULT", None, None)),
                ..BASE
            },
            Case {
                name: "[profile x] in the config file",
                files: &[(
                    ".aws/config",
                    "# comment\n[profile dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n\
                     aws_session_token = devtok\nregion = eu-north-1\ns3 =\n  max_concurrent_requests = 2\n",
                )],
                env: &[("AWS_PROFILE", "dev")],
                endpoint_flag: Some("http://127.0.0.1:9443"),
                with_local: false,
                expect: Ok(("http://127.0.0.1:9443", "eu-north-1", "AKIADEV", Some("devtok"), None)),
                ..BASE
            },
            Case {
                name: "a bare [x] in the config file is not a profile",
                files: &[(".aws/config", "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n")],
                env: &[("AWS_PROFILE", "dev")],
                endpoint_flag: Some("http://127.0.0.1:9443"),
                expect: Err("the profile 'dev' is in neither"),
                ..BASE
            },
            Case {
                name: "the credentials file's [x] over the config file's [profile x]",
                files: &[
                    (".aws/credentials", "[dev]\naws_access_key_id = AKIACREDS\naws_secret_access_key = s\n"),
                    (
                        ".aws/config",
                        "[profile dev]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = s\nregion = eu-north-1\n",
                    ),
                ],
                profile_flag: Some("dev"),
                endpoint_flag: Some("http://127.0.0.1:9443"),
                expect: Ok(("http://127.0.0.1:9443", "eu-north-1", "AKIACREDS", None, None)),
                ..BASE
            },
            Case {
                name: "--profile beats environment keys",
                files: &[(".aws/credentials", "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n")],
                env: &[("AWS_ACCESS_KEY_ID", "AKIAENV"), ("AWS_SECRET_ACCESS_KEY", "e")],
                profile_flag: Some("dev"),
                endpoint_flag: Some("http://127.0.0.1:9443"),
                expect: Ok(("http://127.0.0.1:9443", "us-east-1", "AKIADEV", None, None)),
                ..BASE
            },
            Case {
                name: "environment keys beat AWS_PROFILE",
                files: &[(".aws/credentials", "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n")],
                env: &[("AWS_ACCESS_KEY_ID", "AKIAENV"), ("AWS_SECRET_ACCESS_KEY", "e"), ("AWS_PROFILE", "dev")],
                endpoint_flag: Some("http://127.0.0.1:9443"),
                expect: Ok(("http://127.0.0.1:9443", "us-east-1", "AKIAENV", None, None)),
                ..BASE
            },
            Case {
                name: "a named profile without keys is not replaced by the local root keys",
                files: &[
                    ("berth/credentials", BERTH_CREDENTIALS),
                    ("berth/ca.pem", PEM),
                    (".aws/config", "[profile dev]\nregion = eu-north-1\n"),
                ],
                profile_flag: Some("dev"),
                expect: Err("the profile 'dev' (from --profile) has no aws_access_key_id"),
                ..BASE
            },
            Case {
                name: "an unknown --profile lists the known ones",
                files: &[
                    (".aws/credentials", "[a]\naws_access_key_id = A\naws_secret_access_key = s\n"),
                    (".aws/config", "[profile b]\nregion = x\n[default]\nregion = y\n"),
                ],
                profile_flag: Some("nope"),
                expect: Err("known profiles: a, b, default"),
                ..BASE
            },
            Case {
                name: "AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE replace ~/.aws",
                files: &[
                    (".aws/credentials", "[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = s\n"),
                    ("elsewhere/creds", "[default]\naws_access_key_id = AKIAELSEWHERE\naws_secret_access_key = s\n"),
                    ("elsewhere/conf", "[default]\nregion = me-south-1\n"),
                ],
                env: &[
                    ("AWS_SHARED_CREDENTIALS_FILE", "{home}/elsewhere/creds"),
                    ("AWS_CONFIG_FILE", "{home}/elsewhere/conf"),
                ],
                endpoint_flag: Some("http://127.0.0.1:9443"),
                expect: Ok(("http://127.0.0.1:9443", "me-south-1", "AKIAELSEWHERE", None, None)),
                ..BASE
            },
            Case {
                name: "an endpoint with a path",
                files: LOCAL_FILES,
                endpoint_flag: Some("https://localhost:9443/api"),
                expect: Err("(from --endpoint-url) has a path"),
                ..BASE
            },
            Case {
                name: "an endpoint without a scheme",
                files: LOCAL_FILES,
                env: &[("AWS_ENDPOINT_URL", "localhost:9443")],
                expect: Err("(from AWS_ENDPOINT_URL)"),
                ..BASE
            },
            Case {
                name: "AWS_CA_BUNDLE and the local berth's CA are both trusted for the local berth",
                files: &[("berth/credentials", BERTH_CREDENTIALS), ("berth/ca.pem", PEM), ("system.pem", OTHER_PEM)],
                env: &[("AWS_CA_BUNDLE", "{home}/system.pem")],
                expect: Ok((
                    "https://localhost:9443",
                    "eu-central-1",
                    "AKIALOCAL",
                    None,
                    Some(concat!(
                        "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n",
                        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                    )),
                )),
                ..BASE
            },
            Case {
                name: "127.0.0.1 for localhost is still the local berth",
                files: LOCAL_FILES,
                env: &[("AWS_ENDPOINT_URL", "https://127.0.0.1:9443")],
                expect: Ok(("https://127.0.0.1:9443", "eu-central-1", "AKIALOCAL", None, Some(PEM))),
                ..BASE
            },
            Case {
                name: "another port on localhost is not the local berth",
                files: LOCAL_FILES,
                endpoint_flag: Some("https://[::1]:9444"),
                expect: Err("no credentials for https://[::1]:9444"),
                ..BASE
            },
            Case {
                name: "the same host over http is not the local berth",
                files: &[("berth/credentials", BERTH_CREDENTIALS)],
                endpoint_flag: Some("http://localhost:9443"),
                expect: Err("no credentials for http://localhost:9443"),
                ..BASE
            },
            Case {
                name: "a CA bundle that is not there",
                files: LOCAL_FILES,
                env: &[("AWS_CA_BUNDLE", "{home}/missing.pem")],
                expect: Err("cannot read the CA bundle"),
                ..BASE
            },
            Case {
                name: "a CA bundle that is no PEM",
                files: &[("berth/credentials", BERTH_CREDENTIALS), ("berth/ca.pem", "not a certificate\n")],
                expect: Err("holds no certificate"),
                ..BASE
            },
            Case {
                name: "the local berth's credentials file without keys",
                files: &[("berth/credentials", "[default]\n"), ("berth/ca.pem", PEM)],
                expect: Err("has no [default] aws_access_key_id"),
                ..BASE
            },
        ]
    }

    #[test]
    fn resolution_follows_the_documented_order() {
        for case in cases() {
            let dir = home(case.files);
            let root = dir.display().to_string();
            let vars: BTreeMap<String, String> = case
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.replace("{home}", &root)))
                .chain([("HOME".to_string(), root.clone())])
                .collect();
            // The config files name paths below the temporary HOME.
            for (path, text) in case.files {
                if text.contains("{home}") {
                    std::fs::write(dir.join(path), text.replace("{home}", &root)).expect("rewrite");
                }
            }
            let sources = Sources {
                endpoint_url: case.endpoint_flag.map(str::to_string),
                profile: case.profile_flag.map(str::to_string),
                region: case.region_flag.map(str::to_string),
                local: case.with_local.then(|| local(&dir)),
            };
            let got = resolve_with(&sources, &|k| vars.get(k).cloned());
            match (&case.expect, got) {
                (Ok((endpoint, region, akid, token, ca)), Ok((settings, creds))) => {
                    assert_eq!(settings.endpoint, *endpoint, "{}", case.name);
                    assert_eq!(settings.region, *region, "{}", case.name);
                    assert_eq!(creds.access_key_id, *akid, "{}", case.name);
                    assert!(!creds.secret_access_key.is_empty(), "{}", case.name);
                    assert_eq!(creds.session_token.as_deref(), *token, "{}", case.name);
                    assert_eq!(settings.ca_pem.as_deref(), ca.map(str::as_bytes), "{}", case.name);
                }
                (Err(text), Err(ClientError::Config(message))) => {
                    assert!(message.contains(text), "{}: {message}", case.name);
                }
                (expect, got) => panic!("{}: expected {expect:?}, got {got:?}", case.name),
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn ini_sections_and_nested_blocks() {
        let ini = parse_ini("; c\n[default]\na = 1\n  nested = no\ns3 =\n  x = y\nb=2 = 3\n[profile p q]\nc = \n");
        assert_eq!(ini["default"].get("a").map(String::as_str), Some("1"));
        assert_eq!(ini["default"].get("b").map(String::as_str), Some("2 = 3"));
        assert!(!ini["default"].contains_key("nested") && !ini["default"].contains_key("x"));
        assert_eq!(config_profile_name("profile p q"), Some("p q"));
        assert_eq!(config_profile_name("profile"), None);
        assert_eq!(config_profile_name("profiles"), None);
        assert_eq!(config_profile_name("sso-session x"), None);
    }
}
