//! Secrets Manager: secrets with versions and staging labels (AWSCURRENT, AWSPREVIOUS), scheduled
//! deletion with a recovery window, and tags. Values are sealed with the secret's ARN and version id as
//! associated data.

use std::collections::BTreeMap;

use berth_core::{AwsError, ErrorCode};
use berth_model::Timestamp;
use berth_model::secretsmanager::*;
use berth_store::{SecretRow, SecretVersionRow, Tx};

use super::{page_after, random_alnum, tag_pairs};
use crate::{Control, ControlError, now};

pub(crate) const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";
/// Largest SecretString or SecretBinary Secrets Manager accepts.
const MAX_VALUE: usize = 65_536;
/// Versions kept beyond the labelled ones (Secrets Manager keeps about 100).
const KEEP_VERSIONS: usize = 100;
const DAY: f64 = 86_400.0;

pub(crate) fn handle(c: &Control, op: Operation) -> Result<Output, ControlError> {
    let t = now();
    // Scheduled deletions become final lazily, before anything looks at secrets.
    c.tx(|tx| Ok(tx.secrets_purge_due(t)?))?;
    Ok(match op {
        Operation::CreateSecret(r) => Output::CreateSecret(create(c, r, t)?),
        Operation::GetSecretValue(r) => Output::GetSecretValue(get_value(c, r, t)?),
        Operation::PutSecretValue(r) => Output::PutSecretValue(put_value(c, r, t)?),
        Operation::DescribeSecret(r) => Output::DescribeSecret(describe(c, r)?),
        Operation::ListSecrets(r) => Output::ListSecrets(list(c, r)?),
        Operation::UpdateSecret(r) => Output::UpdateSecret(update(c, r, t)?),
        Operation::DeleteSecret(r) => Output::DeleteSecret(delete(c, r, t)?),
        Operation::RestoreSecret(r) => Output::RestoreSecret(restore(c, r, t)?),
        Operation::TagResource(r) => {
            tag(c, r)?;
            Output::TagResource(())
        }
        Operation::UntagResource(r) => {
            untag(c, r)?;
            Output::UntagResource(())
        }
    })
}

fn err(code: ErrorCode, message: impl Into<String>) -> ControlError {
    ControlError::Aws(AwsError::new(code, message))
}

fn not_found() -> ControlError {
    err(ErrorCode::ResourceNotFound, "Secrets Manager can't find the specified secret.")
}

fn marked_deleted() -> ControlError {
    err(ErrorCode::InvalidRequest, "You can't perform this operation on the secret because it was marked for deletion.")
}

/// Finds a secret by name, full ARN, or partial ARN (the ARN without its random suffix).
pub(crate) fn find(c: &Control, tx: &Tx<'_>, secret_id: &str) -> Result<SecretRow, ControlError> {
    if secret_id.is_empty() {
        return Err(err(ErrorCode::InvalidParameter, "SecretId must not be empty."));
    }
    if !secret_id.starts_with("arn:") {
        return tx.secret_by_name(secret_id)?.ok_or_else(not_found);
    }
    if let Some(s) = tx.secret_by_arn(secret_id)? {
        return Ok(s);
    }
    let parts: Vec<&str> = secret_id.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", _, "secretsmanager", region, account, "secret", name]
            if *region == c.names.region && *account == c.names.account =>
        {
            tx.secret_by_name(name)?.ok_or_else(not_found)
        }
        ["arn", _, "secretsmanager", _, _, "secret", _] => Err(not_found()),
        _ => Err(err(ErrorCode::InvalidParameter, format!("Invalid SecretId '{secret_id}': not a secret ARN."))),
    }
}

fn valid_name(name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 512
        && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "/_+=.@-".contains(ch));
    if ok {
        Ok(())
    } else {
        Err(err(
            ErrorCode::Validation,
            format!(
                "Invalid name '{name}'. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
            ),
        ))
    }
}

fn valid_token(token: &str) -> Result<(), ControlError> {
    if (32..=64).contains(&token.len()) && token.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
        Ok(())
    } else {
        Err(err(ErrorCode::Validation, "ClientRequestToken must be 32 to 64 letters, digits or hyphens."))
    }
}

/// The value a request carries, if any: (binary, text). Exactly one of string and binary may be set.
fn value_of(string: Option<String>, binary: Option<String>) -> Result<Option<(bool, String)>, ControlError> {
    let v = match (string, binary) {
        (Some(_), Some(_)) => {
            return Err(err(
                ErrorCode::InvalidParameter,
                "You can't specify both a binary secret value and a string secret value in the same secret.",
            ));
        }
        (Some(s), None) => (false, s),
        (None, Some(b)) => (true, b),
        (None, None) => return Ok(None),
    };
    if v.1.len() > MAX_VALUE {
        return Err(err(ErrorCode::InvalidParameter, format!("The secret value is larger than {MAX_VALUE} bytes.")));
    }
    Ok(Some(v))
}

fn aad(arn: &str, version_id: &str) -> Vec<u8> {
    format!("secretsmanager:{arn}:{version_id}").into_bytes()
}

/// Opens a version's value: (binary, text).
pub(crate) fn open(c: &Control, v: &SecretVersionRow) -> Result<(bool, String), ControlError> {
    let plain = c.vault.open(&aad(&v.secret_arn, &v.version_id), &v.sealed).map_err(|e| {
        tracing::error!(secret = %v.secret_arn, version = %v.version_id, error = %e, "cannot open a sealed secret value");
        err(ErrorCode::DecryptionFailure, "Secrets Manager can't decrypt the protected secret text using the data key.")
    })?;
    let text = String::from_utf8(plain)
        .map_err(|_| err(ErrorCode::DecryptionFailure, "The stored secret value is not valid UTF-8."))?;
    Ok((v.binary, text))
}

/// Stores a new version with `stages` (AWSCURRENT by default); moving AWSCURRENT labels the version that
/// had it AWSPREVIOUS. A repeated `ClientRequestToken` with the same value is a no-op; with another
/// value it is refused. Returns the version's stages.
fn add_version(
    c: &Control,
    tx: &Tx<'_>,
    secret: &SecretRow,
    version_id: &str,
    value: (bool, String),
    stages: Option<Vec<String>>,
    t: f64,
) -> Result<Vec<String>, ControlError> {
    let stages_of = |tx: &Tx<'_>| -> Result<Vec<String>, ControlError> {
        Ok(tx.secret_stages(&secret.arn)?.into_iter().filter(|(_, v)| v == version_id).map(|(s, _)| s).collect())
    };
    if let Some(existing) = tx.secret_version_get(&secret.arn, version_id)? {
        if open(c, &existing)? == value {
            return stages_of(tx);
        }
        return Err(err(
            ErrorCode::ResourceExists,
            "You can't modify an existing version, you can only create a new version.",
        ));
    }
    let stages = stages.unwrap_or_else(|| vec![CURRENT.to_string()]);
    if stages.len() > 20 || stages.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(err(ErrorCode::InvalidParameter, "VersionStages takes 1 to 20 labels of 1 to 256 characters."));
    }
    let sealed = c.vault.seal(&aad(&secret.arn, version_id), value.1.as_bytes()).map_err(|e| {
        tracing::error!(error = %e, "cannot seal a secret value");
        err(ErrorCode::EncryptionFailure, "Secrets Manager can't encrypt the secret value.")
    })?;
    tx.secret_version_insert(&SecretVersionRow {
        secret_arn: secret.arn.clone(),
        version_id: version_id.to_string(),
        binary: value.0,
        sealed,
        created_at: t,
    })?;
    let old_current = tx.secret_stages(&secret.arn)?.into_iter().find(|(s, _)| s == CURRENT).map(|(_, v)| v);
    for stage in &stages {
        tx.secret_stage_set(&secret.arn, stage, version_id)?;
    }
    if stages.iter().any(|s| s == CURRENT)
        && let Some(old) = old_current
        && old != version_id
    {
        tx.secret_stage_set(&secret.arn, PREVIOUS, &old)?;
    }
    tx.secret_versions_prune(&secret.arn, KEEP_VERSIONS)?;
    stages_of(tx)
}

fn create(c: &Control, r: CreateSecretRequest, t: f64) -> Result<CreateSecretResponse, ControlError> {
    let name = r.name.unwrap_or_default();
    valid_name(&name)?;
    if r.add_replica_regions.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(err(ErrorCode::InvalidRequest, "berth runs one region; AddReplicaRegions is not supported."));
    }
    if let Some(token) = &r.client_request_token {
        valid_token(token)?;
    }
    let value = value_of(r.secret_string, r.secret_binary)?;
    let tags =
        tag_pairs(r.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)), ErrorCode::InvalidParameter)?;
    c.tx(|tx| {
        if let Some(existing) = tx.secret_by_name(&name)? {
            if existing.deleted_at.is_some() {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                ));
            }
            return Err(err(
                ErrorCode::ResourceExists,
                format!("The operation failed because the secret {name} already exists."),
            ));
        }
        let row = SecretRow {
            arn: format!(
                "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
                c.names.region,
                c.names.account,
                random_alnum(6)
            ),
            name: name.clone(),
            description: r.description.clone(),
            kms_key_id: r.kms_key_id.clone(),
            created_at: t,
            last_changed_at: t,
            last_accessed_at: None,
            deleted_at: None,
            deletion_date: None,
        };
        tx.secret_insert(&row)?;
        tx.tags_put(&row.arn, &tags)?;
        let version_id = match value {
            Some(v) => {
                let id = r.client_request_token.clone().unwrap_or_else(berth_core::ids::uuid4);
                add_version(c, tx, &row, &id, v, None, t)?;
                Some(id)
            }
            None => None,
        };
        Ok(CreateSecretResponse { arn: Some(row.arn), name: Some(row.name), version_id, replication_status: None })
    })
}

/// The version a request names by id and/or stage (AWSCURRENT when it names neither).
pub(crate) fn select_version(
    tx: &Tx<'_>,
    secret: &SecretRow,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<SecretVersionRow, ControlError> {
    let stages = tx.secret_stages(&secret.arn)?;
    let by_stage = |s: &str| stages.iter().find(|(st, _)| st == s).map(|(_, v)| v.clone());
    let id = match (version_id, stage) {
        (Some(id), Some(s)) => {
            if by_stage(s).as_deref() != Some(id) {
                return Err(err(
                    ErrorCode::ResourceNotFound,
                    format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {id} and staging label: {s}"
                    ),
                ));
            }
            id.to_string()
        }
        (Some(id), None) => id.to_string(),
        (None, stage) => {
            let s = stage.unwrap_or(CURRENT);
            by_stage(s).ok_or_else(|| {
                err(
                    ErrorCode::ResourceNotFound,
                    format!("Secrets Manager can't find the specified secret value for staging label: {s}"),
                )
            })?
        }
    };
    tx.secret_version_get(&secret.arn, &id)?.ok_or_else(|| {
        err(
            ErrorCode::ResourceNotFound,
            format!("Secrets Manager can't find the specified secret value for VersionId: {id}"),
        )
    })
}

fn get_value(c: &Control, r: GetSecretValueRequest, t: f64) -> Result<GetSecretValueResponse, ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    c.tx(|tx| {
        let mut secret = find(c, tx, &secret_id)?;
        if secret.deleted_at.is_some() {
            return Err(marked_deleted());
        }
        let version = select_version(tx, &secret, r.version_id.as_deref(), r.version_stage.as_deref())?;
        let (binary, value) = open(c, &version)?;
        // Secrets Manager records the access by day.
        let day = (t / DAY).floor() * DAY;
        if secret.last_accessed_at != Some(day) {
            secret.last_accessed_at = Some(day);
            tx.secret_update(&secret)?;
        }
        let stages: Vec<String> = tx
            .secret_stages(&secret.arn)?
            .into_iter()
            .filter(|(_, v)| *v == version.version_id)
            .map(|(s, _)| s)
            .collect();
        Ok(GetSecretValueResponse {
            arn: Some(secret.arn),
            name: Some(secret.name),
            version_id: Some(version.version_id),
            secret_binary: binary.then(|| value.clone()),
            secret_string: (!binary).then_some(value),
            version_stages: Some(stages),
            created_date: Some(Timestamp(version.created_at)),
        })
    })
}

fn put_value(c: &Control, r: PutSecretValueRequest, t: f64) -> Result<PutSecretValueResponse, ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    if let Some(token) = &r.client_request_token {
        valid_token(token)?;
    }
    let value = value_of(r.secret_string, r.secret_binary)?
        .ok_or_else(|| err(ErrorCode::InvalidRequest, "You must provide either SecretString or SecretBinary."))?;
    c.tx(|tx| {
        let mut secret = find(c, tx, &secret_id)?;
        if secret.deleted_at.is_some() {
            return Err(marked_deleted());
        }
        let id = r.client_request_token.clone().unwrap_or_else(berth_core::ids::uuid4);
        let stages = add_version(c, tx, &secret, &id, value, r.version_stages.clone(), t)?;
        secret.last_changed_at = t;
        tx.secret_update(&secret)?;
        Ok(PutSecretValueResponse {
            arn: Some(secret.arn),
            name: Some(secret.name),
            version_id: Some(id),
            version_stages: Some(stages),
        })
    })
}

fn versions_to_stages(tx: &Tx<'_>, arn: &str) -> Result<BTreeMap<String, Vec<String>>, ControlError> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (stage, version) in tx.secret_stages(arn)? {
        map.entry(version).or_default().push(stage);
    }
    Ok(map)
}

fn tags_of(tx: &Tx<'_>, arn: &str) -> Result<Vec<Tag>, ControlError> {
    Ok(tx.tags_get(arn)?.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect())
}

fn describe(c: &Control, r: DescribeSecretRequest) -> Result<DescribeSecretResponse, ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    c.read(|tx| {
        let s = find(c, tx, &secret_id)?;
        let tags = tags_of(tx, &s.arn)?;
        Ok(DescribeSecretResponse {
            version_ids_to_stages: Some(versions_to_stages(tx, &s.arn)?),
            tags: (!tags.is_empty()).then_some(tags),
            arn: Some(s.arn),
            name: Some(s.name),
            description: s.description,
            kms_key_id: s.kms_key_id,
            rotation_enabled: Some(false),
            last_changed_date: Some(Timestamp(s.last_changed_at)),
            last_accessed_date: s.last_accessed_at.map(Timestamp),
            deleted_date: s.deleted_at.map(Timestamp),
            created_date: Some(Timestamp(s.created_at)),
            ..Default::default()
        })
    })
}

/// A secret in a listing, with its tags.
type Listed = (SecretRow, Vec<(String, String)>);

fn list(c: &Control, r: ListSecretsRequest) -> Result<ListSecretsResponse, ControlError> {
    let max = match r.max_results {
        None => 100,
        Some(m) if (1..=100).contains(&m) => m as usize,
        Some(m) => return Err(err(ErrorCode::InvalidParameter, format!("MaxResults must be 1 to 100, got {m}."))),
    };
    let filters = r.filters.unwrap_or_default();
    for f in &filters {
        if f.key.is_none() || f.values.as_ref().is_none_or(|v| v.is_empty()) {
            return Err(err(ErrorCode::InvalidParameter, "Each filter needs a Key and at least one value."));
        }
    }
    let with_deleted = r.include_planned_deletion.unwrap_or(false);
    let descending = matches!(r.sort_order, Some(SortOrderType::Desc));
    c.read(|tx| {
        let mut entries = Vec::new();
        for s in tx.secrets_all()? {
            if s.deleted_at.is_some() && !with_deleted {
                continue;
            }
            let tags = tx.tags_get(&s.arn)?;
            if !filters.iter().all(|f| matches_filter(f, &s, &tags)) {
                continue;
            }
            entries.push((s, tags));
        }
        let sort_key = |s: &SecretRow| -> f64 {
            match r.sort_by {
                Some(SortByType::LastAccessedDate) => s.last_accessed_at.unwrap_or(0.0),
                Some(SortByType::LastChangedDate) => s.last_changed_at,
                _ => s.created_at,
            }
        };
        if matches!(r.sort_by, Some(SortByType::Name)) {
            entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        } else {
            entries.sort_by(|a, b| sort_key(&a.0).total_cmp(&sort_key(&b.0)).then_with(|| a.0.name.cmp(&b.0.name)));
        }
        if descending {
            entries.reverse();
        }
        // Pages are positions in this order, keyed by a zero-padded index so the keyset helper applies.
        let keyed: Vec<(String, Listed)> =
            entries.into_iter().enumerate().map(|(i, e)| (format!("{i:08}"), e)).collect();
        let (page, next) =
            page_after(keyed, |k| k.0.as_str(), r.next_token.as_deref(), max, ErrorCode::InvalidNextTokenException)?;
        let mut list = Vec::new();
        for (_, (s, tags)) in page {
            list.push(SecretListEntry {
                secret_versions_to_stages: Some(versions_to_stages(tx, &s.arn)?),
                tags: (!tags.is_empty())
                    .then(|| tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect()),
                arn: Some(s.arn),
                name: Some(s.name),
                description: s.description,
                kms_key_id: s.kms_key_id,
                rotation_enabled: Some(false),
                last_changed_date: Some(Timestamp(s.last_changed_at)),
                last_accessed_date: s.last_accessed_at.map(Timestamp),
                deleted_date: s.deleted_at.map(Timestamp),
                created_date: Some(Timestamp(s.created_at)),
                ..Default::default()
            });
        }
        Ok(ListSecretsResponse { secret_list: Some(list), next_token: next })
    })
}

/// ListSecrets filters: values match by prefix (case-sensitive), and a value starting with `!` negates.
fn matches_filter(f: &Filter, s: &SecretRow, tags: &[(String, String)]) -> bool {
    let values = f.values.as_deref().unwrap_or_default();
    let test = |candidates: &[&str]| {
        values.iter().any(|v| match v.strip_prefix('!') {
            Some(neg) => !candidates.iter().any(|c| c.starts_with(neg)),
            None => candidates.iter().any(|c| c.starts_with(v.as_str())),
        })
    };
    let description = s.description.as_deref().unwrap_or_default();
    let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
    let tag_values: Vec<&str> = tags.iter().map(|(_, v)| v.as_str()).collect();
    match f.key {
        Some(FilterNameStringType::Name) => test(&[&s.name]),
        Some(FilterNameStringType::Description) => test(&[description]),
        Some(FilterNameStringType::TagKey) => test(&keys),
        Some(FilterNameStringType::TagValue) => test(&tag_values),
        Some(FilterNameStringType::All) => {
            let mut all = vec![s.name.as_str(), description];
            all.extend(keys.iter().copied());
            all.extend(tag_values.iter().copied());
            test(&all)
        }
        // One region, no owning services: nothing carries these.
        Some(FilterNameStringType::PrimaryRegion | FilterNameStringType::OwningService) | None => test(&[]),
    }
}

fn update(c: &Control, r: UpdateSecretRequest, t: f64) -> Result<UpdateSecretResponse, ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    if let Some(token) = &r.client_request_token {
        valid_token(token)?;
    }
    let value = value_of(r.secret_string, r.secret_binary)?;
    c.tx(|tx| {
        let mut secret = find(c, tx, &secret_id)?;
        if secret.deleted_at.is_some() {
            return Err(marked_deleted());
        }
        if let Some(d) = &r.description {
            secret.description = Some(d.clone());
        }
        if let Some(k) = &r.kms_key_id {
            secret.kms_key_id = Some(k.clone());
        }
        let version_id = match value {
            Some(v) => {
                let id = r.client_request_token.clone().unwrap_or_else(berth_core::ids::uuid4);
                add_version(c, tx, &secret, &id, v, None, t)?;
                Some(id)
            }
            None => None,
        };
        secret.last_changed_at = t;
        tx.secret_update(&secret)?;
        Ok(UpdateSecretResponse { arn: Some(secret.arn), name: Some(secret.name), version_id })
    })
}

fn delete(c: &Control, r: DeleteSecretRequest, t: f64) -> Result<DeleteSecretResponse, ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    let force = r.force_delete_without_recovery.unwrap_or(false);
    if force && r.recovery_window_in_days.is_some() {
        return Err(err(
            ErrorCode::InvalidParameter,
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    let days = r.recovery_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(err(
            ErrorCode::InvalidParameter,
            format!("RecoveryWindowInDays must be between 7 and 30 days, got {days}."),
        ));
    }
    c.tx(|tx| {
        let mut secret = find(c, tx, &secret_id)?;
        if force {
            tx.secret_delete(&secret.arn)?;
            return Ok(DeleteSecretResponse {
                arn: Some(secret.arn),
                name: Some(secret.name),
                deletion_date: Some(Timestamp(t)),
            });
        }
        if secret.deleted_at.is_some() {
            return Err(marked_deleted());
        }
        let when = t + days as f64 * DAY;
        secret.deleted_at = Some(t);
        secret.deletion_date = Some(when);
        tx.secret_update(&secret)?;
        Ok(DeleteSecretResponse {
            arn: Some(secret.arn),
            name: Some(secret.name),
            deletion_date: Some(Timestamp(when)),
        })
    })
}

fn restore(c: &Control, r: RestoreSecretRequest, _t: f64) -> Result<RestoreSecretResponse, ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    c.tx(|tx| {
        let mut secret = find(c, tx, &secret_id)?;
        secret.deleted_at = None;
        secret.deletion_date = None;
        tx.secret_update(&secret)?;
        Ok(RestoreSecretResponse { arn: Some(secret.arn), name: Some(secret.name) })
    })
}

fn tag(c: &Control, r: TagResourceRequest) -> Result<(), ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    let tags =
        tag_pairs(r.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)), ErrorCode::InvalidParameter)?;
    c.tx(|tx| {
        let secret = find(c, tx, &secret_id)?;
        if secret.deleted_at.is_some() {
            return Err(marked_deleted());
        }
        tx.tags_put(&secret.arn, &tags)?;
        if tx.tags_get(&secret.arn)?.len() > 50 {
            // TagResource's model lists no LimitExceededException: too many tags is an invalid parameter.
            return Err(err(ErrorCode::InvalidParameter, "A secret can have at most 50 tags."));
        }
        Ok(())
    })
}

fn untag(c: &Control, r: UntagResourceRequest) -> Result<(), ControlError> {
    let secret_id = r.secret_id.unwrap_or_default();
    let keys = r.tag_keys.unwrap_or_default();
    c.tx(|tx| {
        let secret = find(c, tx, &secret_id)?;
        if secret.deleted_at.is_some() {
            return Err(marked_deleted());
        }
        tx.tags_remove(&secret.arn, &keys)?;
        Ok(())
    })
}
