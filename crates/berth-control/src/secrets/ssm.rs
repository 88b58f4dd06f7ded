//! SSM Parameter Store: String, StringList and SecureString parameters in a `/`-separated hierarchy, with
//! a version history (`name:version` selectors). SecureString values are sealed with the parameter's
//! ARN and version as associated data, and shown decrypted only `WithDecryption`.

use berth_core::{AwsError, ErrorCode};
use berth_model::Timestamp;
use berth_model::ssm::*;
use berth_store::{ParameterRow, ParameterVersionRow, Tx};

use super::{base64, page_after, tag_pairs};
use crate::{CallerIdentity, Control, ControlError, now};

const MAX_STANDARD: usize = 4096;
const MAX_ADVANCED: usize = 8192;
const MAX_NAME: usize = 1011;
const MAX_LEVELS: usize = 15;
const KEEP_VERSIONS: usize = 100;
const DEFAULT_KEY: &str = "alias/aws/ssm";

pub(crate) fn handle(c: &Control, caller: &CallerIdentity, op: Operation) -> Result<Output, ControlError> {
    Ok(match op {
        Operation::PutParameter(r) => Output::PutParameter(put(c, caller, r)?),
        Operation::GetParameter(r) => Output::GetParameter(get_one(c, r)?),
        Operation::GetParameters(r) => Output::GetParameters(get_many(c, r)?),
        Operation::GetParametersByPath(r) => Output::GetParametersByPath(by_path(c, r)?),
        Operation::DeleteParameter(r) => Output::DeleteParameter(delete_one(c, r)?),
        Operation::DeleteParameters(r) => Output::DeleteParameters(delete_many(c, r)?),
        Operation::DescribeParameters(r) => Output::DescribeParameters(describe(c, r)?),
    })
}

fn err(code: ErrorCode, message: impl Into<String>) -> ControlError {
    ControlError::Aws(AwsError::new(code, message))
}

fn validation(message: impl Into<String>) -> ControlError {
    err(ErrorCode::Validation, message)
}

/// Checks a parameter name as SSM does.
pub(crate) fn valid_name(name: &str) -> Result<(), ControlError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(validation(format!("Parameter name must have 1 to {MAX_NAME} characters.")));
    }
    if !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "_.-/".contains(ch)) {
        return Err(validation(format!(
            "Parameter name '{name}' can contain only letters, numbers and the symbols _ . - /"
        )));
    }
    let bare = name.trim_start_matches('/').to_ascii_lowercase();
    if bare.starts_with("aws") || bare.starts_with("ssm") {
        return Err(validation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)."));
    }
    if name.contains('/') && (!name.starts_with('/') || name.ends_with('/') || name.contains("//")) {
        return Err(validation(format!(
            "Parameter name '{name}' must be a fully qualified name: /level-1/level-2/name, with no empty level."
        )));
    }
    if name.matches('/').count() > MAX_LEVELS {
        return Err(err(
            ErrorCode::HierarchyLevelLimitExceeded,
            format!("A parameter name can have at most {MAX_LEVELS} hierarchy levels."),
        ));
    }
    Ok(())
}

/// The ARN of a parameter: `.../parameter/a/b` for `/a/b` and `.../parameter/flat` for `flat`.
pub(crate) fn arn_of(c: &Control, name: &str) -> String {
    let sep = if name.starts_with('/') { "" } else { "/" };
    format!("arn:aws:ssm:{}:{}:parameter{sep}{name}", c.names.region, c.names.account)
}

/// The stored parameter a name or ARN (without selector) refers to.
pub(crate) fn lookup(c: &Control, tx: &Tx<'_>, name_or_arn: &str) -> Result<Option<ParameterRow>, ControlError> {
    let Some(rest) = name_or_arn.strip_prefix("arn:") else { return Ok(tx.parameter_get(name_or_arn)?) };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [_, "ssm", region, account, resource] = parts.as_slice() else { return Ok(None) };
    if *region != c.names.region || *account != c.names.account {
        return Ok(None);
    }
    let Some(path) = resource.strip_prefix("parameter/") else { return Ok(None) };
    // `parameter/flat` is `flat` or `/flat`; `parameter/a/b` is `/a/b`.
    if !path.contains('/')
        && let Some(p) = tx.parameter_get(path)?
    {
        return Ok(Some(p));
    }
    Ok(tx.parameter_get(&format!("/{path}"))?)
}

/// Splits `name:selector` (a version number; labels are not supported).
fn split_selector(input: &str) -> Result<(&str, Option<i64>), ControlError> {
    // A name has no ':'; in an ARN the selector is after the resource part.
    let colons = input.matches(':').count();
    let has_selector = if input.starts_with("arn:") { colons > 5 } else { colons > 0 };
    if !has_selector {
        return Ok((input, None));
    }
    let (name, sel) = input.rsplit_once(':').unwrap_or((input, ""));
    match sel.parse::<i64>() {
        Ok(v) if v > 0 => Ok((name, Some(v))),
        _ => {
            Err(validation(format!("Invalid parameter selector ':{sel}': berth supports version numbers, not labels.")))
        }
    }
}

fn value_text(c: &Control, p: &ParameterRow, v: &ParameterVersionRow, decrypt: bool) -> Result<String, ControlError> {
    if v.kind != "SecureString" {
        return String::from_utf8(v.value.clone())
            .map_err(|_| err(ErrorCode::InternalServerError, "A stored parameter value is not UTF-8."));
    }
    if !decrypt {
        return Ok(base64(&v.value));
    }
    let plain = c.vault.open(&aad(&p.arn, v.version), &v.value).map_err(|e| {
        tracing::error!(parameter = %p.name, version = v.version, error = %e, "cannot open a sealed SecureString");
        err(ErrorCode::InternalServerError, "The SecureString could not be decrypted with the data key.")
    })?;
    String::from_utf8(plain).map_err(|_| err(ErrorCode::InternalServerError, "A stored parameter value is not UTF-8."))
}

fn aad(arn: &str, version: i64) -> Vec<u8> {
    format!("ssm:{arn}:{version}").into_bytes()
}

fn kind_of(s: &str) -> Option<ParameterType> {
    ParameterType::parse(s)
}

fn tier_of(s: &str) -> Option<ParameterTier> {
    ParameterTier::parse(s)
}

/// Reads one parameter (optionally at a version) as the API shows it. `Ok(None)` when it does not exist.
pub(crate) fn read(
    c: &Control,
    tx: &Tx<'_>,
    input: &str,
    decrypt: bool,
) -> Result<Option<(ParameterRow, Parameter)>, ControlError> {
    let (name, version) = split_selector(input)?;
    let Some(p) = lookup(c, tx, name)? else { return Ok(None) };
    let Some(v) = tx.parameter_version_get(&p.name, version.unwrap_or(p.version))? else {
        if let Some(n) = version {
            return Err(err(
                ErrorCode::ParameterVersionNotFound,
                format!("Systems Manager could not find version {n} of {name}. Verify the version and try again."),
            ));
        }
        return Ok(None);
    };
    let value = value_text(c, &p, &v, decrypt)?;
    let out = Parameter {
        name: Some(p.name.clone()),
        r#type: kind_of(&v.kind),
        value: Some(value),
        version: Some(v.version),
        selector: version.map(|n| format!(":{n}")),
        source_result: None,
        last_modified_date: Some(Timestamp(v.last_modified_at)),
        arn: Some(p.arn.clone()),
        data_type: Some(p.data_type.clone()),
    };
    Ok(Some((p, out)))
}

fn put(c: &Control, caller: &CallerIdentity, r: PutParameterRequest) -> Result<PutParameterResult, ControlError> {
    let name = r.name.clone().unwrap_or_default();
    valid_name(&name)?;
    let value = r.value.clone().unwrap_or_default();
    if value.is_empty() {
        return Err(validation("Parameter value must not be empty."));
    }
    let overwrite = r.overwrite.unwrap_or(false);
    let tags =
        tag_pairs(r.tags.clone().unwrap_or_default().into_iter().map(|t| (t.key, t.value)), ErrorCode::Validation)?;
    if overwrite && !tags.is_empty() {
        return Err(validation(
            "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
        ));
    }
    if r.allowed_pattern.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(validation("AllowedPattern is not supported by berth yet."));
    }
    if r.policies.as_deref().is_some_and(|p| !p.is_empty() && p != "[]") {
        return Err(validation("Parameter policies are not supported by berth yet."));
    }
    let data_type = r.data_type.clone().unwrap_or_else(|| "text".into());
    if data_type != "text" {
        return Err(validation(format!("DataType '{data_type}' is not supported by berth; use 'text'.")));
    }
    let tier = match r.tier {
        None | Some(ParameterTier::Standard) => {
            if value.len() > MAX_STANDARD {
                return Err(validation(format!(
                    "Standard tier parameters support a maximum parameter value of {MAX_STANDARD} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier."
                )));
            }
            ParameterTier::Standard
        }
        Some(ParameterTier::Advanced) | Some(ParameterTier::IntelligentTiering) => {
            if value.len() > MAX_ADVANCED {
                return Err(validation(format!(
                    "Advanced tier parameters support a maximum parameter value of {MAX_ADVANCED} characters."
                )));
            }
            if r.tier == Some(ParameterTier::Advanced) || value.len() > MAX_STANDARD {
                ParameterTier::Advanced
            } else {
                ParameterTier::Standard
            }
        }
    };
    let t = now();
    c.tx(|tx| {
        let existing = tx.parameter_get(&name)?;
        if existing.is_some() && !overwrite {
            return Err(err(
                ErrorCode::ParameterAlreadyExists,
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        let kind = match (r.r#type, &existing) {
            (Some(k), _) => k,
            (None, Some(e)) => kind_of(&e.kind).unwrap_or(ParameterType::String),
            (None, None) => return Err(validation("A parameter type is required when you create a parameter.")),
        };
        if kind != ParameterType::SecureString && r.key_id.is_some() {
            return Err(validation("KeyId is required for SecureString type parameter only."));
        }
        if kind == ParameterType::StringList && value.split(',').any(str::is_empty) {
            return Err(validation("A StringList value is a comma-separated list with no empty item."));
        }
        let version = existing.as_ref().map(|e| e.version).unwrap_or(0) + 1;
        let arn = arn_of(c, &name);
        let stored = if kind == ParameterType::SecureString {
            c.vault.seal(&aad(&arn, version), value.as_bytes()).map_err(|e| {
                tracing::error!(error = %e, "cannot seal a SecureString");
                err(ErrorCode::InternalServerError, "The SecureString could not be encrypted.")
            })?
        } else {
            value.clone().into_bytes()
        };
        let row = ParameterRow {
            name: name.clone(),
            arn: arn.clone(),
            kind: kind.as_str().to_string(),
            description: r.description.clone().or_else(|| existing.as_ref().and_then(|e| e.description.clone())),
            allowed_pattern: None,
            key_id: (kind == ParameterType::SecureString)
                .then(|| r.key_id.clone().unwrap_or_else(|| DEFAULT_KEY.to_string())),
            tier: tier.as_str().to_string(),
            data_type: data_type.clone(),
            version,
            last_modified_at: t,
            last_modified_user: caller.principal_arn.clone(),
        };
        tx.parameter_put(&row)?;
        tx.parameter_version_insert(&ParameterVersionRow {
            name: name.clone(),
            version,
            kind: row.kind.clone(),
            value: stored,
            last_modified_at: t,
            last_modified_user: caller.principal_arn.clone(),
        })?;
        tx.parameter_versions_prune(&name, KEEP_VERSIONS)?;
        tx.tags_put(&arn, &tags)?;
        Ok(PutParameterResult { version: Some(version), tier: Some(tier) })
    })
}

fn not_found(name: &str) -> ControlError {
    err(ErrorCode::ParameterNotFound, format!("Parameter {name} not found."))
}

fn get_one(c: &Control, r: GetParameterRequest) -> Result<GetParameterResult, ControlError> {
    let name = r.name.unwrap_or_default();
    let decrypt = r.with_decryption.unwrap_or(false);
    c.read(|tx| match read(c, tx, &name, decrypt)? {
        Some((_, p)) => Ok(GetParameterResult { parameter: Some(p) }),
        None => Err(not_found(&name)),
    })
}

fn get_many(c: &Control, r: GetParametersRequest) -> Result<GetParametersResult, ControlError> {
    let names = r.names.unwrap_or_default();
    if names.is_empty() || names.len() > 10 {
        return Err(validation("Names takes 1 to 10 parameter names."));
    }
    let decrypt = r.with_decryption.unwrap_or(false);
    c.read(|tx| {
        let mut found = Vec::new();
        let mut invalid = Vec::new();
        for n in names {
            if found.iter().any(|p: &Parameter| p.name.as_deref() == Some(n.as_str())) || invalid.contains(&n) {
                continue;
            }
            match read(c, tx, &n, decrypt) {
                Ok(Some((_, p))) => found.push(p),
                Ok(None) => invalid.push(n),
                Err(ControlError::Aws(e)) if e.code == ErrorCode::ParameterVersionNotFound => invalid.push(n),
                Err(e) => return Err(e),
            }
        }
        Ok(GetParametersResult { parameters: Some(found), invalid_parameters: Some(invalid) })
    })
}

/// A parameter with its tags.
type Tags = [(String, String)];

/// Checks `ParameterFilters` (the keys and options SSM allows) and returns a predicate over parameters.
fn string_filters(
    filters: &[ParameterStringFilter],
    by_path: bool,
) -> Result<impl Fn(&ParameterRow, &Tags) -> bool + use<>, ControlError> {
    let mut checks: Vec<(String, String, Vec<String>)> = Vec::new();
    for f in filters {
        let key = f.key.clone().unwrap_or_default();
        let values = f.values.clone().unwrap_or_default();
        let option = f.option.clone().unwrap_or_else(|| "Equals".into());
        let allowed: &[&str] = match key.as_str() {
            "Type" | "KeyId" | "Tier" | "DataType" => &["Equals"],
            "Name" if !by_path => &["Equals", "BeginsWith", "Contains"],
            "Path" if !by_path => &["Recursive", "OneLevel"],
            k if k.starts_with("tag:") && k.len() > 4 && !by_path => &["Equals", "BeginsWith", "Contains"],
            "Label" => return Err(err(ErrorCode::InvalidFilterKey, "Parameter labels are not supported by berth.")),
            _ => {
                return Err(err(
                    ErrorCode::InvalidFilterKey,
                    format!("The filter key '{key}' is not valid for this operation."),
                ));
            }
        };
        if !allowed.contains(&option.as_str()) {
            return Err(err(
                ErrorCode::InvalidFilterOption,
                format!(
                    "The filter option '{option}' is not valid for key '{key}'. Valid options: {}.",
                    allowed.join(", ")
                ),
            ));
        }
        if values.is_empty() && !key.starts_with("tag:") {
            return Err(err(ErrorCode::InvalidFilterValue, format!("The filter '{key}' needs at least one value.")));
        }
        checks.push((key, option, values));
    }
    Ok(move |p: &ParameterRow, tags: &Tags| {
        checks.iter().all(|(key, option, values)| {
            let m = |candidate: &str| {
                values.iter().any(|v| match option.as_str() {
                    "BeginsWith" => candidate.starts_with(v.as_str()),
                    "Contains" => candidate.contains(v.as_str()),
                    _ => candidate == v,
                })
            };
            match key.as_str() {
                "Type" => m(&p.kind),
                "KeyId" => p.key_id.as_deref().is_some_and(m),
                "Tier" => m(&p.tier),
                "DataType" => m(&p.data_type),
                "Name" => {
                    let with_slash = if p.name.starts_with('/') { p.name.clone() } else { format!("/{}", p.name) };
                    m(&p.name) || (option != "Contains" && m(&with_slash))
                }
                "Path" => values.iter().any(|v| under_path(&p.name, v, option == "Recursive")),
                k => {
                    let tag = &k[4..];
                    tags.iter().any(|(tk, tv)| tk == tag && (values.is_empty() || m(tv)))
                }
            }
        })
    })
}

/// Whether `name` lies below `path` (directly, or at any depth when `recursive`).
fn under_path(name: &str, path: &str, recursive: bool) -> bool {
    let prefix = if path.ends_with('/') { path.to_string() } else { format!("{path}/") };
    match name.strip_prefix(prefix.as_str()) {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

fn by_path(c: &Control, r: GetParametersByPathRequest) -> Result<GetParametersByPathResult, ControlError> {
    let path = r.path.clone().unwrap_or_default();
    if !path.starts_with('/') || path.contains("//") || path.len() > MAX_NAME {
        return Err(validation(format!("The path '{path}' must be fully qualified: it starts with '/'.")));
    }
    let max = match r.max_results {
        None => 10,
        Some(m) if (1..=10).contains(&m) => m as usize,
        Some(m) => return Err(validation(format!("MaxResults must be 1 to 10, got {m}."))),
    };
    let recursive = r.recursive.unwrap_or(false);
    let decrypt = r.with_decryption.unwrap_or(false);
    let filter = string_filters(r.parameter_filters.as_deref().unwrap_or_default(), true)?;
    c.read(|tx| {
        let prefix = if path.ends_with('/') { path.clone() } else { format!("{path}/") };
        let mut rows = Vec::new();
        for p in tx.parameters_with_prefix(&prefix)? {
            if under_path(&p.name, &path, recursive) && filter(&p, &tx.tags_get(&p.arn)?) {
                rows.push(p);
            }
        }
        let (page, next) =
            page_after(rows, |p| p.name.as_str(), r.next_token.as_deref(), max, ErrorCode::InvalidNextToken)?;
        let mut out = Vec::new();
        for p in page {
            if let Some((_, param)) = read(c, tx, &p.name, decrypt)? {
                out.push(param);
            }
        }
        Ok(GetParametersByPathResult { parameters: Some(out), next_token: next })
    })
}

fn delete_one(c: &Control, r: DeleteParameterRequest) -> Result<DeleteParameterResult, ControlError> {
    let name = r.name.unwrap_or_default();
    c.tx(|tx| {
        let p = lookup(c, tx, &name)?.ok_or_else(|| not_found(&name))?;
        tx.parameter_delete(&p.name)?;
        Ok(DeleteParameterResult {})
    })
}

fn delete_many(c: &Control, r: DeleteParametersRequest) -> Result<DeleteParametersResult, ControlError> {
    let names = r.names.unwrap_or_default();
    if names.is_empty() || names.len() > 10 {
        return Err(validation("Names takes 1 to 10 parameter names."));
    }
    c.tx(|tx| {
        let mut deleted = Vec::new();
        let mut invalid = Vec::new();
        for n in names {
            match lookup(c, tx, &n)? {
                Some(p) => {
                    tx.parameter_delete(&p.name)?;
                    deleted.push(n);
                }
                None if deleted.contains(&n) => {}
                None => invalid.push(n),
            }
        }
        Ok(DeleteParametersResult { deleted_parameters: Some(deleted), invalid_parameters: Some(invalid) })
    })
}

fn describe(c: &Control, r: DescribeParametersRequest) -> Result<DescribeParametersResult, ControlError> {
    let legacy = r.filters.unwrap_or_default();
    let modern = r.parameter_filters.unwrap_or_default();
    if !legacy.is_empty() && !modern.is_empty() {
        return Err(validation("You can use either Filters or ParameterFilters in a single request, not both."));
    }
    // The deprecated Filters are ParameterFilters with Equals (BeginsWith for names).
    let filters: Vec<ParameterStringFilter> = if legacy.is_empty() {
        modern
    } else {
        legacy
            .into_iter()
            .map(|f| {
                let key = f.key.map(|k| k.as_str().to_string()).unwrap_or_default();
                let option = if key == "Name" { "BeginsWith" } else { "Equals" };
                ParameterStringFilter { key: Some(key), option: Some(option.into()), values: f.values }
            })
            .collect()
    };
    let filter = string_filters(&filters, false)?;
    let max = match r.max_results {
        None => 50,
        Some(m) if (1..=50).contains(&m) => m as usize,
        Some(m) => return Err(validation(format!("MaxResults must be 1 to 50, got {m}."))),
    };
    c.read(|tx| {
        let mut rows = Vec::new();
        for p in tx.parameters_all()? {
            if filter(&p, &tx.tags_get(&p.arn)?) {
                rows.push(p);
            }
        }
        let (page, next) =
            page_after(rows, |p| p.name.as_str(), r.next_token.as_deref(), max, ErrorCode::InvalidNextToken)?;
        let parameters = page
            .into_iter()
            .map(|p| ParameterMetadata {
                r#type: kind_of(&p.kind),
                tier: tier_of(&p.tier),
                name: Some(p.name),
                arn: Some(p.arn),
                key_id: p.key_id,
                last_modified_date: Some(Timestamp(p.last_modified_at)),
                last_modified_user: Some(p.last_modified_user),
                description: p.description,
                allowed_pattern: p.allowed_pattern,
                version: Some(p.version),
                policies: Some(Vec::new()),
                data_type: Some(p.data_type),
            })
            .collect();
        Ok(DescribeParametersResult { parameters: Some(parameters), next_token: next })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_ssm_does() {
        for ok in ["flat", "/a", "/a/b/c", "my-param_1.x", "/aw/x"] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        for (bad, code) in [
            ("", ErrorCode::Validation),
            ("a/b", ErrorCode::Validation),
            ("/a/", ErrorCode::Validation),
            ("/a//b", ErrorCode::Validation),
            ("/AWS/x", ErrorCode::Validation),
            ("ssm-thing", ErrorCode::Validation),
            ("a b", ErrorCode::Validation),
            ("/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", ErrorCode::HierarchyLevelLimitExceeded),
        ] {
            match valid_name(bad) {
                Err(ControlError::Aws(e)) => assert_eq!(e.code, code, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn paths_select_one_level_or_all() {
        assert!(under_path("/a/b", "/a", false));
        assert!(under_path("/a/b", "/a/", false));
        assert!(!under_path("/a/b/c", "/a", false));
        assert!(under_path("/a/b/c", "/a", true));
        assert!(!under_path("/ab", "/a", true));
        assert!(under_path("/x", "/", false));
        assert!(!under_path("flat", "/", true));
    }

    #[test]
    fn selectors_are_versions() {
        assert!(matches!(split_selector("/a/b"), Ok(("/a/b", None))));
        assert!(matches!(split_selector("/a/b:3"), Ok(("/a/b", Some(3)))));
        assert!(matches!(split_selector("arn:aws:ssm:r:1:parameter/a"), Ok(("arn:aws:ssm:r:1:parameter/a", None))));
        assert!(matches!(split_selector("arn:aws:ssm:r:1:parameter/a:2"), Ok((_, Some(2)))));
        assert!(split_selector("/a:label").is_err());
        assert!(split_selector("/a:0").is_err());
    }
}
