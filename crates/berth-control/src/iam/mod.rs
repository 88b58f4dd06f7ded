//! IAM: users and their access keys, roles and their trust policies, inline and customer managed policies,
//! attachments (the AWS managed policies included, served from berth-iam) and role tags.
//!
//! Every operation is authorized against the caller's identity policies with its IAM resource ARN before it runs;
//! documents are validated by berth-iam (`MalformedPolicyDocument` with IAM's reason, `LimitExceeded` for
//! sizes) and stored and returned as given (the XML encoder URL-encodes the members the model marks, as IAM
//! does; the AWS CLI and boto3 decode them). Errors are IAM's: `NoSuchEntity` (404), `EntityAlreadyExists` and `DeleteConflict` (409),
//! `InvalidInput`, `ValidationError`, `LimitExceeded`. What the policies mean for a request is [`access`].

pub(crate) mod access;
mod owners;
mod policies;
mod roles;
mod users;

use berth_core::{AwsError, ErrorCode};
use berth_iam::RequestContext;
use berth_model::iam::{Operation, Output};

use crate::{CallerIdentity, Control, ControlError, authz};

impl Control {
    /// Handles one decoded IAM operation for an authenticated caller.
    pub async fn handle_iam(&self, caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        crate::error::answer(
            berth_model::iam::SIGNING_NAME,
            name,
            errors,
            handle(self, caller, op).map_err(AwsError::from),
        )
    }
}

fn handle(c: &Control, caller: &CallerIdentity, op: Operation) -> Result<Output, ControlError> {
    use Operation as O;
    Ok(match op {
        O::CreateUser(r) => Output::CreateUser(users::create(c, caller, r)?),
        O::GetUser(r) => Output::GetUser(users::get(c, caller, r)?),
        O::ListUsers(r) => Output::ListUsers(users::list(c, caller, r)?),
        O::DeleteUser(r) => Output::DeleteUser(users::delete(c, caller, r)?),
        O::CreateAccessKey(r) => Output::CreateAccessKey(users::create_access_key(c, caller, r)?),
        O::ListAccessKeys(r) => Output::ListAccessKeys(users::list_access_keys(c, caller, r)?),
        O::DeleteAccessKey(r) => Output::DeleteAccessKey(users::delete_access_key(c, caller, r)?),
        O::PutUserPolicy(r) => Output::PutUserPolicy(users::put_policy(c, caller, r)?),
        O::AttachUserPolicy(r) => Output::AttachUserPolicy(users::attach(c, caller, r)?),
        O::DetachUserPolicy(r) => Output::DetachUserPolicy(users::detach(c, caller, r)?),
        O::CreateRole(r) => Output::CreateRole(roles::create(c, caller, r)?),
        O::GetRole(r) => Output::GetRole(roles::get(c, caller, r)?),
        O::ListRoles(r) => Output::ListRoles(roles::list(c, caller, r)?),
        O::DeleteRole(r) => Output::DeleteRole(roles::delete(c, caller, r)?),
        O::UpdateAssumeRolePolicy(r) => Output::UpdateAssumeRolePolicy(roles::update_trust(c, caller, r)?),
        O::PutRolePolicy(r) => Output::PutRolePolicy(roles::put_policy(c, caller, r)?),
        O::GetRolePolicy(r) => Output::GetRolePolicy(roles::get_policy(c, caller, r)?),
        O::ListRolePolicies(r) => Output::ListRolePolicies(roles::list_policies(c, caller, r)?),
        O::DeleteRolePolicy(r) => Output::DeleteRolePolicy(roles::delete_policy(c, caller, r)?),
        O::AttachRolePolicy(r) => Output::AttachRolePolicy(roles::attach(c, caller, r)?),
        O::DetachRolePolicy(r) => Output::DetachRolePolicy(roles::detach(c, caller, r)?),
        O::ListAttachedRolePolicies(r) => Output::ListAttachedRolePolicies(roles::list_attached(c, caller, r)?),
        O::TagRole(r) => Output::TagRole(roles::tag(c, caller, r)?),
        O::ListRoleTags(r) => Output::ListRoleTags(roles::list_tags(c, caller, r)?),
        O::CreatePolicy(r) => Output::CreatePolicy(policies::create(c, caller, r)?),
        O::GetPolicy(r) => Output::GetPolicy(policies::get(c, caller, r)?),
        O::GetPolicyVersion(r) => Output::GetPolicyVersion(policies::get_version(c, caller, r)?),
        O::ListPolicies(r) => Output::ListPolicies(policies::list(c, caller, r)?),
        O::DeletePolicy(r) => Output::DeletePolicy(policies::delete(c, caller, r)?),
    })
}

/// Authorizes `iam:<action>` on `resource` with extra condition keys.
fn authorize(caller: &CallerIdentity, action: &str, resource: &str) -> Result<(), ControlError> {
    Ok(authz::authorize_request(caller, RequestContext::new(format!("iam:{action}"), resource))?)
}

fn err(code: ErrorCode, message: impl Into<String>) -> ControlError {
    ControlError::code(code, message)
}

fn validation(message: impl Into<String>) -> ControlError {
    err(ErrorCode::ValidationError, message)
}

fn no_such(message: impl Into<String>) -> ControlError {
    err(ErrorCode::NoSuchEntity, message)
}

/// A policy document error as IAM reports it.
fn policy_error(e: berth_iam::PolicyError) -> ControlError {
    match e {
        berth_iam::PolicyError::Malformed(m) => err(ErrorCode::MalformedPolicyDocument, m),
        berth_iam::PolicyError::LimitExceeded(m) => err(ErrorCode::IamLimitExceeded, m),
    }
}

/// Checks a user, role or policy name: `[\w+=,.@-]+`, 1..=`max` characters.
fn check_name(member: &str, value: &str, max: usize) -> Result<(), ControlError> {
    let ok = !value.is_empty()
        && value.chars().count() <= max
        && value.chars().all(|ch| ch.is_ascii_alphanumeric() || "_+=,.@-".contains(ch));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and {max}"
        )))
    }
}

/// Checks a path: `/` or `/a/b/`, at most 512 characters. `None` is `/`.
fn check_path(path: Option<&str>) -> Result<String, ControlError> {
    let p = path.unwrap_or("/");
    let ok = p.starts_with('/')
        && p.ends_with('/')
        && p.len() <= 512
        && !p.contains("//")
        && p.chars().all(|ch| ('\u{21}'..='\u{7e}').contains(&ch));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(validation(format!(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric \
             characters and/or / characters. Got '{p}'."
        )))
    }
}

/// One page of `items` after `marker` (an offset), at most `max_items` (default 100, 1..=1000): the items,
/// `IsTruncated` and the next marker.
fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    max_items: Option<i32>,
) -> Result<(Vec<T>, bool, Option<String>), ControlError> {
    let max = crate::paging::size(max_items, 100, 1..=1000).map_err(|m| {
        validation(format!(
            "1 validation error detected: Value '{m}' at 'maxItems' failed to satisfy constraint: Member must have \
             value between 1 and 1000"
        ))
    })?;
    let (page, next) = crate::paging::offset_page(items, marker, max).map_err(|_| validation("Invalid Marker."))?;
    Ok((page, next.is_some(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for ok in ["a", "ecsTaskExecutionRole", "a+b=c,d.e@f-g_h"] {
            assert!(check_name("roleName", ok, 64).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_name("roleName", bad, 64).is_err(), "{bad}");
        }
        assert_eq!(check_path(None).ok().as_deref(), Some("/"));
        assert_eq!(check_path(Some("/service-role/")).ok().as_deref(), Some("/service-role/"));
        for bad in ["service-role/", "/a", "//", "/a b/"] {
            assert!(check_path(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages() {
        let (p, t, m) = page((0..5).collect(), None, Some(2)).expect("page");
        assert_eq!((p, t, m.as_deref()), (vec![0, 1], true, Some("2")));
        let (p, t, m) = page((0..5).collect(), Some("4"), Some(2)).expect("page");
        assert_eq!((p, t, m), (vec![4], false, None));
        assert!(page::<i32>(vec![], None, Some(0)).is_err());
    }
}
