//! IAM roles: trust policies, inline policies, attachments and tags.

use berth_core::ErrorCode;
use berth_iam::{Policy, PolicyKind, RequestContext};
use berth_model::Timestamp;
use berth_model::iam::*;
use berth_store::{IamOwner, IamRoleRow, Tx};

use super::owners::{self, Owner};
use super::{authorize, check_name, check_path, err, no_such, page, policy_error, validation};
use crate::names::new_id;
use crate::{CallerIdentity, Control, ControlError, authz, now};

/// IAM's bounds for `MaxSessionDuration` (seconds).
const MIN_SESSION: i32 = 3600;
const MAX_SESSION: i32 = 43_200;
/// IAM's quota of tags per role.
const TAGS_PER_ROLE: usize = 50;

fn role_arn(c: &Control, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{}:role{path}{name}", c.names.account)
}

fn render(r: &IamRoleRow, tags: Vec<(String, String)>) -> Role {
    Role {
        path: Some(r.path.clone()),
        role_name: Some(r.name.clone()),
        role_id: Some(r.role_id.clone()),
        arn: Some(r.arn.clone()),
        create_date: Some(Timestamp(r.created_at)),
        assume_role_policy_document: Some(r.trust_policy.clone()),
        description: r.description.clone(),
        max_session_duration: Some(r.max_session_duration as i32),
        tags: (!tags.is_empty()).then(|| tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect()),
        ..Default::default()
    }
}

pub(crate) fn require_role(tx: &Tx<'_>, name: &str) -> Result<IamRoleRow, ControlError> {
    tx.iam_role_get(name)?.ok_or_else(|| no_such(format!("The role with name {name} cannot be found.")))
}

/// The role named in a request, authorized for `iam:<action>` on its ARN.
fn authorized_role(tx: &Tx<'_>, caller: &CallerIdentity, action: &str, name: &str) -> Result<IamRoleRow, ControlError> {
    let role = require_role(tx, name)?;
    authorize(caller, action, &role.arn)?;
    Ok(role)
}

fn trust_document(doc: &str) -> Result<(), ControlError> {
    berth_iam::check_trust_policy_size(doc).map_err(policy_error)?;
    Policy::parse(doc, PolicyKind::Trust).map_err(policy_error)?;
    Ok(())
}

fn tag_pairs(tags: Option<Vec<Tag>>) -> Result<Vec<(String, String)>, ControlError> {
    let tags: Vec<(String, String)> = tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    for (k, v) in &tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 || k.starts_with("aws:") {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("Invalid tag '{k}': keys are 1-128 characters and may not start with aws:, values up to 256."),
            ));
        }
    }
    Ok(tags)
}

pub(super) fn create(
    c: &Control,
    caller: &CallerIdentity,
    r: CreateRoleRequest,
) -> Result<CreateRoleResponse, ControlError> {
    let name = r.role_name.unwrap_or_default();
    check_name("roleName", &name, 64)?;
    let path = check_path(r.path.as_deref())?;
    let doc = r.assume_role_policy_document.unwrap_or_default();
    let max = r.max_session_duration.unwrap_or(MIN_SESSION);
    if !(MIN_SESSION..=MAX_SESSION).contains(&max) {
        return Err(validation(format!(
            "1 validation error detected: Value '{max}' at 'maxSessionDuration' failed to satisfy constraint: Member \
             must have value between {MIN_SESSION} and {MAX_SESSION}"
        )));
    }
    if r.permissions_boundary.is_some() {
        return Err(err(ErrorCode::InvalidInput, "Permissions boundaries are not supported by berth yet."));
    }
    let tags = tag_pairs(r.tags)?;
    let arn = role_arn(c, &path, &name);
    authz::authorize_request(
        caller,
        RequestContext::new("iam:CreateRole", arn.clone())
            .with_request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    )?;
    trust_document(&doc)?;
    let row = IamRoleRow {
        name: name.clone(),
        role_id: new_id("AROA", 17),
        arn,
        path,
        trust_policy: doc,
        description: r.description,
        max_session_duration: i64::from(max),
        created_at: now(),
    };
    c.tx(|tx| {
        if tx.iam_role_get(&name)?.is_some() {
            return Err(err(ErrorCode::EntityAlreadyExists, format!("Role with name {name} already exists.")));
        }
        tx.iam_role_insert(&row)?;
        tx.tags_put(&row.arn, &tags)?;
        Ok(())
    })?;
    Ok(CreateRoleResponse { role: Some(render(&row, tags)) })
}

pub(super) fn get(c: &Control, caller: &CallerIdentity, r: GetRoleRequest) -> Result<GetRoleResponse, ControlError> {
    let name = r.role_name.unwrap_or_default();
    let (row, tags) = c.read(|tx| {
        let role = authorized_role(tx, caller, "GetRole", &name)?;
        let tags = tx.tags_get(&role.arn)?;
        Ok((role, tags))
    })?;
    Ok(GetRoleResponse { role: Some(render(&row, tags)) })
}

pub(super) fn list(
    c: &Control,
    caller: &CallerIdentity,
    r: ListRolesRequest,
) -> Result<ListRolesResponse, ControlError> {
    authorize(caller, "ListRoles", "*")?;
    let prefix = r.path_prefix.unwrap_or_else(|| "/".into());
    // ListRoles leaves tags out, as IAM does.
    let roles: Vec<Role> = c
        .read(|tx| Ok(tx.iam_roles()?))?
        .iter()
        .filter(|r| r.path.starts_with(&prefix))
        .map(|r| render(r, vec![]))
        .collect();
    let (roles, truncated, marker) = page(roles, r.marker.as_deref(), r.max_items)?;
    Ok(ListRolesResponse { roles: Some(roles), is_truncated: Some(truncated), marker })
}

pub(super) fn delete(c: &Control, caller: &CallerIdentity, r: DeleteRoleRequest) -> Result<(), ControlError> {
    let name = r.role_name.unwrap_or_default();
    c.tx(|tx| {
        let role = authorized_role(tx, caller, "DeleteRole", &name)?;
        if !tx.iam_inline_all(IamOwner::Role, &role.name)?.is_empty() {
            return Err(err(ErrorCode::DeleteConflict, "Cannot delete entity, must delete policies first."));
        }
        if !tx.iam_attached(IamOwner::Role, &role.name)?.is_empty() {
            return Err(err(ErrorCode::DeleteConflict, "Cannot delete entity, must detach all policies first."));
        }
        let keys: Vec<String> = tx.tags_get(&role.arn)?.into_iter().map(|(k, _)| k).collect();
        tx.tags_remove(&role.arn, &keys)?;
        tx.iam_role_delete(&role.name)?;
        Ok(())
    })
}

pub(super) fn update_trust(
    c: &Control,
    caller: &CallerIdentity,
    r: UpdateAssumeRolePolicyRequest,
) -> Result<(), ControlError> {
    let name = r.role_name.unwrap_or_default();
    let doc = r.policy_document.unwrap_or_default();
    c.tx(|tx| {
        let role = authorized_role(tx, caller, "UpdateAssumeRolePolicy", &name)?;
        trust_document(&doc)?;
        tx.iam_role_set_trust(&role.name, &doc)?;
        Ok(())
    })
}

pub(super) fn put_policy(c: &Control, caller: &CallerIdentity, r: PutRolePolicyRequest) -> Result<(), ControlError> {
    let (name, policy, doc) = (r.role_name.unwrap_or_default(), r.policy_name.unwrap_or_default(), r.policy_document);
    owners::put_inline(c, caller, Owner::Role, &name, &policy, &doc.unwrap_or_default())
}

pub(super) fn get_policy(
    c: &Control,
    caller: &CallerIdentity,
    r: GetRolePolicyRequest,
) -> Result<GetRolePolicyResponse, ControlError> {
    let name = r.role_name.unwrap_or_default();
    let policy_name = r.policy_name.unwrap_or_default();
    c.read(|tx| {
        let role = authorized_role(tx, caller, "GetRolePolicy", &name)?;
        let doc = tx
            .iam_inline_get(IamOwner::Role, &role.name, &policy_name)?
            .ok_or_else(|| no_such(format!("The role policy with name {policy_name} cannot be found.")))?;
        Ok(GetRolePolicyResponse {
            role_name: Some(role.name),
            policy_name: Some(policy_name),
            policy_document: Some(doc.clone()),
        })
    })
}

pub(super) fn list_policies(
    c: &Control,
    caller: &CallerIdentity,
    r: ListRolePoliciesRequest,
) -> Result<ListRolePoliciesResponse, ControlError> {
    let name = r.role_name.unwrap_or_default();
    let names: Vec<String> = c.read(|tx| {
        let role = authorized_role(tx, caller, "ListRolePolicies", &name)?;
        Ok(tx.iam_inline_all(IamOwner::Role, &role.name)?.into_iter().map(|(n, _)| n).collect())
    })?;
    let (names, truncated, marker) = page(names, r.marker.as_deref(), r.max_items)?;
    Ok(ListRolePoliciesResponse { policy_names: Some(names), is_truncated: Some(truncated), marker })
}

pub(super) fn delete_policy(
    c: &Control,
    caller: &CallerIdentity,
    r: DeleteRolePolicyRequest,
) -> Result<(), ControlError> {
    let name = r.role_name.unwrap_or_default();
    let policy_name = r.policy_name.unwrap_or_default();
    c.tx(|tx| {
        let role = authorized_role(tx, caller, "DeleteRolePolicy", &name)?;
        if !tx.iam_inline_delete(IamOwner::Role, &role.name, &policy_name)? {
            return Err(no_such(format!("The role policy with name {policy_name} cannot be found.")));
        }
        Ok(())
    })
}

pub(super) fn attach(c: &Control, caller: &CallerIdentity, r: AttachRolePolicyRequest) -> Result<(), ControlError> {
    let (name, policy_arn) = (r.role_name.unwrap_or_default(), r.policy_arn.unwrap_or_default());
    owners::attachment(c, caller, Owner::Role, &name, &policy_arn, true)
}

pub(super) fn detach(c: &Control, caller: &CallerIdentity, r: DetachRolePolicyRequest) -> Result<(), ControlError> {
    let (name, policy_arn) = (r.role_name.unwrap_or_default(), r.policy_arn.unwrap_or_default());
    owners::attachment(c, caller, Owner::Role, &name, &policy_arn, false)
}

pub(super) fn list_attached(
    c: &Control,
    caller: &CallerIdentity,
    r: ListAttachedRolePoliciesRequest,
) -> Result<ListAttachedRolePoliciesResponse, ControlError> {
    let name = r.role_name.unwrap_or_default();
    let prefix = r.path_prefix.unwrap_or_else(|| "/".into());
    let attached: Vec<AttachedPolicy> = c.read(|tx| {
        let role = authorized_role(tx, caller, "ListAttachedRolePolicies", &name)?;
        let mut out = Vec::new();
        for arn in tx.iam_attached(IamOwner::Role, &role.name)? {
            let (path, policy_name) = super::policies::path_and_name(&arn);
            if path.starts_with(&prefix) {
                out.push(AttachedPolicy { policy_name: Some(policy_name), policy_arn: Some(arn) });
            }
        }
        Ok(out)
    })?;
    let (attached, truncated, marker) = page(attached, r.marker.as_deref(), r.max_items)?;
    Ok(ListAttachedRolePoliciesResponse { attached_policies: Some(attached), is_truncated: Some(truncated), marker })
}

pub(super) fn tag(c: &Control, caller: &CallerIdentity, r: TagRoleRequest) -> Result<(), ControlError> {
    let name = r.role_name.unwrap_or_default();
    let tags = tag_pairs(r.tags)?;
    c.tx(|tx| {
        let role = require_role(tx, &name)?;
        authz::authorize_request(
            caller,
            RequestContext::new("iam:TagRole", role.arn.clone())
                .with_request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .with_resource_tags(tx.tags_get(&role.arn)?.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        )?;
        tx.tags_put(&role.arn, &tags)?;
        if tx.tags_get(&role.arn)?.len() > TAGS_PER_ROLE {
            return Err(err(
                ErrorCode::IamLimitExceeded,
                format!("The number of tags has reached the maximum limit ({TAGS_PER_ROLE})."),
            ));
        }
        Ok(())
    })
}

pub(super) fn list_tags(
    c: &Control,
    caller: &CallerIdentity,
    r: ListRoleTagsRequest,
) -> Result<ListRoleTagsResponse, ControlError> {
    let name = r.role_name.unwrap_or_default();
    let tags = c.read(|tx| {
        let role = authorized_role(tx, caller, "ListRoleTags", &name)?;
        Ok(tx.tags_get(&role.arn)?)
    })?;
    let tags: Vec<Tag> = tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect();
    let (tags, truncated, marker) = page(tags, r.marker.as_deref(), r.max_items)?;
    Ok(ListRoleTagsResponse { tags: Some(tags), is_truncated: Some(truncated), marker })
}
