//! IAM users, their access keys (kept with the root key in `credentials`), inline policies and attachments.

use berth_core::ErrorCode;
use berth_iam::RequestContext;
use berth_model::Timestamp;
use berth_model::iam::*;
use berth_store::{IamOwner, IamUserRow, Tx};

use super::access::managed_document;
use super::owners::{self, Owner};
use super::{authorize, check_name, check_path, err, no_such, page};
use crate::names::new_id;
use crate::{CallerIdentity, Control, ControlError, authz, now};

/// IAM's quota of access keys per user.
const ACCESS_KEYS_PER_USER: usize = 2;

fn user_arn(c: &Control, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{}:user{path}{name}", c.names.account)
}

fn render(u: &IamUserRow) -> User {
    User {
        path: Some(u.path.clone()),
        user_name: Some(u.name.clone()),
        user_id: Some(u.user_id.clone()),
        arn: Some(u.arn.clone()),
        create_date: Some(Timestamp(u.created_at)),
        ..Default::default()
    }
}

pub(super) fn require_user(tx: &Tx<'_>, name: &str) -> Result<IamUserRow, ControlError> {
    tx.iam_user_get(name)?.ok_or_else(|| no_such(format!("The user with name {name} cannot be found.")))
}

/// The user an operation without `UserName` acts on: the calling user (IAM's rule for access keys and GetUser).
fn implied_user(caller: &CallerIdentity, given: Option<String>) -> Result<String, ControlError> {
    if let Some(n) = given {
        return Ok(n);
    }
    let arn: berth_core::Arn = caller
        .principal_arn
        .parse()
        .map_err(|_| err(ErrorCode::ValidationError, "Must specify userName when calling with non-User credentials"))?;
    match arn.resource.strip_prefix("user/") {
        Some(p) if arn.service == "iam" => Ok(p.rsplit('/').next().unwrap_or_default().to_owned()),
        _ => Err(err(ErrorCode::ValidationError, "Must specify userName when calling with non-User credentials")),
    }
}

pub(super) fn create(
    c: &Control,
    caller: &CallerIdentity,
    r: CreateUserRequest,
) -> Result<CreateUserResponse, ControlError> {
    let name = r.user_name.unwrap_or_default();
    check_name("userName", &name, 64)?;
    let path = check_path(r.path.as_deref())?;
    let arn = user_arn(c, &path, &name);
    let tags: Vec<(String, String)> = r
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    authz::authorize_request(
        caller,
        RequestContext::new("iam:CreateUser", arn.clone())
            .with_request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    )?;
    let row = IamUserRow { name: name.clone(), user_id: new_id("AIDA", 17), arn, path, created_at: now() };
    c.tx(|tx| {
        if tx.iam_user_get(&name)?.is_some() {
            return Err(err(ErrorCode::EntityAlreadyExists, format!("User with name {name} already exists.")));
        }
        tx.iam_user_insert(&row)?;
        tx.tags_put(&row.arn, &tags)?;
        Ok(())
    })?;
    let mut user = render(&row);
    if !tags.is_empty() {
        user.tags = Some(tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect());
    }
    Ok(CreateUserResponse { user: Some(user) })
}

pub(super) fn get(c: &Control, caller: &CallerIdentity, r: GetUserRequest) -> Result<GetUserResponse, ControlError> {
    if r.user_name.is_none() && authz::is_root(caller) {
        // The root user asking about itself.
        return Ok(GetUserResponse {
            user: Some(User {
                user_id: Some(c.names.account.clone()),
                arn: Some(caller.principal_arn.clone()),
                create_date: Some(Timestamp(0.0)),
                ..Default::default()
            }),
        });
    }
    let name = implied_user(caller, r.user_name)?;
    let (row, tags) = c.read(|tx| {
        // The resource is the user's ARN (with its path); one that does not exist is asked about by name.
        let existing = tx.iam_user_get(&name)?;
        authorize(caller, "GetUser", &existing.as_ref().map_or_else(|| user_arn(c, "/", &name), |u| u.arn.clone()))?;
        let u = existing.ok_or_else(|| no_such(format!("The user with name {name} cannot be found.")))?;
        let tags = tx.tags_get(&u.arn)?;
        Ok((u, tags))
    })?;
    let mut user = render(&row);
    if !tags.is_empty() {
        user.tags = Some(tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect());
    }
    Ok(GetUserResponse { user: Some(user) })
}

pub(super) fn list(
    c: &Control,
    caller: &CallerIdentity,
    r: ListUsersRequest,
) -> Result<ListUsersResponse, ControlError> {
    authorize(caller, "ListUsers", "*")?;
    let prefix = r.path_prefix.unwrap_or_else(|| "/".into());
    let users: Vec<User> =
        c.read(|tx| Ok(tx.iam_users()?))?.iter().filter(|u| u.path.starts_with(&prefix)).map(render).collect();
    let (users, truncated, marker) = page(users, r.marker.as_deref(), r.max_items)?;
    Ok(ListUsersResponse { users: Some(users), is_truncated: Some(truncated), marker })
}

pub(super) fn delete(c: &Control, caller: &CallerIdentity, r: DeleteUserRequest) -> Result<(), ControlError> {
    let name = r.user_name.unwrap_or_default();
    c.tx(|tx| {
        let u = require_user(tx, &name)?;
        authorize(caller, "DeleteUser", &u.arn)?;
        if !tx.credentials_of(&u.arn)?.is_empty() {
            return Err(err(ErrorCode::DeleteConflict, "Cannot delete entity, must delete access keys first."));
        }
        if !tx.iam_inline_all(IamOwner::User, &u.name)?.is_empty() {
            return Err(err(ErrorCode::DeleteConflict, "Cannot delete entity, must delete policies first."));
        }
        if !tx.iam_attached(IamOwner::User, &u.name)?.is_empty() {
            return Err(err(ErrorCode::DeleteConflict, "Cannot delete entity, must detach all policies first."));
        }
        let keys: Vec<String> = tx.tags_get(&u.arn)?.into_iter().map(|(k, _)| k).collect();
        tx.tags_remove(&u.arn, &keys)?;
        tx.iam_user_delete(&u.name)?;
        Ok(())
    })
}

pub(super) fn create_access_key(
    c: &Control,
    caller: &CallerIdentity,
    r: CreateAccessKeyRequest,
) -> Result<CreateAccessKeyResponse, ControlError> {
    let name = implied_user(caller, r.user_name)?;
    let row = c.tx(|tx| {
        let u = require_user(tx, &name)?;
        authorize(caller, "CreateAccessKey", &u.arn)?;
        if tx.credentials_of(&u.arn)?.len() >= ACCESS_KEYS_PER_USER {
            return Err(err(
                ErrorCode::IamLimitExceeded,
                format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"),
            ));
        }
        let key = c.issue_access_key(tx, &u.arn, &u.user_id)?;
        Ok((u.name, key))
    })?;
    let (user_name, key) = row;
    Ok(CreateAccessKeyResponse {
        access_key: Some(AccessKey {
            user_name: Some(user_name),
            access_key_id: Some(key.access_key_id),
            status: Some(StatusType::Active),
            secret_access_key: Some(key.secret_access_key),
            create_date: Some(Timestamp(key.created_at)),
        }),
    })
}

pub(super) fn list_access_keys(
    c: &Control,
    caller: &CallerIdentity,
    r: ListAccessKeysRequest,
) -> Result<ListAccessKeysResponse, ControlError> {
    let name = implied_user(caller, r.user_name)?;
    let (user, keys) = c.read(|tx| {
        let u = require_user(tx, &name)?;
        authorize(caller, "ListAccessKeys", &u.arn)?;
        let keys = tx.credentials_of(&u.arn)?;
        Ok((u, keys))
    })?;
    let meta: Vec<AccessKeyMetadata> = keys
        .into_iter()
        .map(|k| AccessKeyMetadata {
            user_name: Some(user.name.clone()),
            access_key_id: Some(k.access_key_id),
            status: Some(StatusType::Active),
            create_date: Some(Timestamp(k.created_at)),
        })
        .collect();
    let (meta, truncated, marker) = page(meta, r.marker.as_deref(), r.max_items)?;
    Ok(ListAccessKeysResponse { access_key_metadata: Some(meta), is_truncated: Some(truncated), marker })
}

pub(super) fn delete_access_key(
    c: &Control,
    caller: &CallerIdentity,
    r: DeleteAccessKeyRequest,
) -> Result<(), ControlError> {
    let name = implied_user(caller, r.user_name)?;
    let key_id = r.access_key_id.unwrap_or_default();
    c.tx(|tx| {
        let u = require_user(tx, &name)?;
        authorize(caller, "DeleteAccessKey", &u.arn)?;
        let owned = tx.credential_get(&key_id)?.is_some_and(|k| k.principal_arn == u.arn);
        if !owned || !c.delete_access_key(tx, &key_id)? {
            return Err(no_such(format!("The Access Key with id {key_id} cannot be found.")));
        }
        Ok(())
    })
}

pub(super) fn put_policy(c: &Control, caller: &CallerIdentity, r: PutUserPolicyRequest) -> Result<(), ControlError> {
    let (name, policy, doc) = (r.user_name.unwrap_or_default(), r.policy_name.unwrap_or_default(), r.policy_document);
    owners::put_inline(c, caller, Owner::User, &name, &policy, &doc.unwrap_or_default())
}

/// Checks a policy ARN for attaching: well-formed (`InvalidInput`) and existing (`NoSuchEntity`).
pub(super) fn attachable(tx: &Tx<'_>, arn: &str) -> Result<(), ControlError> {
    if !super::access::is_policy_arn(arn) {
        return Err(err(ErrorCode::InvalidInput, format!("ARN {arn} is not valid.")));
    }
    if managed_document(tx, arn)?.is_none() {
        return Err(no_such(format!("Policy {arn} does not exist or is not attachable.")));
    }
    Ok(())
}

pub(super) fn attach(c: &Control, caller: &CallerIdentity, r: AttachUserPolicyRequest) -> Result<(), ControlError> {
    let (name, policy_arn) = (r.user_name.unwrap_or_default(), r.policy_arn.unwrap_or_default());
    owners::attachment(c, caller, Owner::User, &name, &policy_arn, true)
}

pub(super) fn detach(c: &Control, caller: &CallerIdentity, r: DetachUserPolicyRequest) -> Result<(), ControlError> {
    let (name, policy_arn) = (r.user_name.unwrap_or_default(), r.policy_arn.unwrap_or_default());
    owners::attachment(c, caller, Owner::User, &name, &policy_arn, false)
}
