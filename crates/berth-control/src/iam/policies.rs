//! Managed policies: the account's own (customer managed, version `v1` as default) and AWS's (from berth-iam,
//! read-only, under `arn:aws:iam::aws:policy/...`).

use berth_core::ErrorCode;
use berth_iam::{ManagedPolicy, Policy as Document, PolicyKind};
use berth_model::Timestamp;
use berth_model::iam::*;
use berth_store::{IamPolicyRow, IamPolicyVersionRow, Tx};

use super::access::AWS_MANAGED_PREFIX;
use super::{authorize, check_name, check_path, err, no_such, page, policy_error};
use crate::names::new_id;
use crate::{CallerIdentity, Control, ControlError, now};

/// `(path, name)` of a policy ARN: `arn:aws:iam::aws:policy/service-role/X` → (`/service-role/`, `X`).
pub(super) fn path_and_name(arn: &str) -> (String, String) {
    let rest = arn.split_once(":policy").map(|(_, r)| r).unwrap_or("/");
    match rest.rfind('/') {
        Some(i) => (rest[..=i].to_owned(), rest[i + 1..].to_owned()),
        None => ("/".to_owned(), rest.to_owned()),
    }
}

/// When berth's copies of AWS's policies say they were created and last updated (from the reference's version
/// history; the description of `AdministratorAccess` has none, so its date is the one AWS lists, 2015-02-06).
fn aws_dates(p: &ManagedPolicy) -> (f64, f64) {
    match p.name {
        "AmazonECSTaskExecutionRolePolicy" => (1_510_790_400.0, 1_510_790_400.0), // 2017-11-16
        "AmazonECSInfrastructureRoleforExpressGatewayServices" => (1_762_905_600.0, 1_770_768_000.0), // 2025-11-12, 2026-02-11
        _ => (1_423_180_800.0, 1_423_180_800.0),                                                      // 2015-02-06
    }
}

/// A stable id for an AWS managed policy (`ANPA` + 17 characters derived from its name; not AWS's ids).
fn aws_policy_id(p: &ManagedPolicy) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::from("ANPA");
    for i in 0..17u64 {
        for b in p.name.bytes().chain([i as u8]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        out.push(A[(h % 32) as usize] as char);
    }
    out
}

fn render_aws(p: &ManagedPolicy, attachments: i64) -> Policy {
    let (created, updated) = aws_dates(p);
    Policy {
        policy_name: Some(p.name.to_owned()),
        policy_id: Some(aws_policy_id(p)),
        arn: Some(p.arn.to_owned()),
        path: Some(p.path.to_owned()),
        default_version_id: Some(p.version_id.to_owned()),
        attachment_count: Some(attachments as i32),
        permissions_boundary_usage_count: Some(0),
        is_attachable: Some(true),
        description: Some(p.description.to_owned()),
        create_date: Some(Timestamp(created)),
        update_date: Some(Timestamp(updated)),
        tags: None,
    }
}

fn render(p: &IamPolicyRow, attachments: i64) -> Policy {
    Policy {
        policy_name: Some(p.name.clone()),
        policy_id: Some(p.policy_id.clone()),
        arn: Some(p.arn.clone()),
        path: Some(p.path.clone()),
        default_version_id: Some(p.default_version.clone()),
        attachment_count: Some(attachments as i32),
        permissions_boundary_usage_count: Some(0),
        is_attachable: Some(true),
        description: p.description.clone(),
        create_date: Some(Timestamp(p.created_at)),
        update_date: Some(Timestamp(p.updated_at)),
        tags: None,
    }
}

fn not_found(arn: &str) -> ControlError {
    no_such(format!("Policy {arn} was not found."))
}

/// The policy an ARN names, rendered.
fn lookup(tx: &Tx<'_>, arn: &str) -> Result<Policy, ControlError> {
    let count = tx.iam_attachment_count(arn)?;
    if arn.starts_with(AWS_MANAGED_PREFIX) {
        return berth_iam::managed::find(arn).map(|p| render_aws(p, count)).ok_or_else(|| not_found(arn));
    }
    tx.iam_policy_get(arn)?.map(|p| render(&p, count)).ok_or_else(|| not_found(arn))
}

fn check_arn(arn: &str) -> Result<(), ControlError> {
    if super::access::is_policy_arn(arn) {
        Ok(())
    } else {
        Err(err(ErrorCode::InvalidInput, format!("ARN {arn} is not valid.")))
    }
}

pub(super) fn create(
    c: &Control,
    caller: &CallerIdentity,
    r: CreatePolicyRequest,
) -> Result<CreatePolicyResponse, ControlError> {
    let name = r.policy_name.unwrap_or_default();
    check_name("policyName", &name, 128)?;
    let path = check_path(r.path.as_deref())?;
    let arn = format!("arn:aws:iam::{}:policy{path}{name}", c.names.account);
    authorize(caller, "CreatePolicy", &arn)?;
    let doc = r.policy_document.unwrap_or_default();
    berth_iam::check_managed_policy_size(&doc).map_err(policy_error)?;
    Document::parse(&doc, PolicyKind::Identity).map_err(policy_error)?;
    let t = now();
    let row = IamPolicyRow {
        arn: arn.clone(),
        name: name.clone(),
        policy_id: new_id("ANPA", 17),
        path,
        description: r.description,
        default_version: "v1".into(),
        created_at: t,
        updated_at: t,
    };
    c.tx(|tx| {
        if tx.iam_policy_by_name(&name)?.is_some() {
            return Err(err(
                ErrorCode::EntityAlreadyExists,
                format!("A policy called {name} already exists. Duplicate names are not allowed."),
            ));
        }
        tx.iam_policy_insert(
            &row,
            &IamPolicyVersionRow { policy_arn: arn.clone(), version_id: "v1".into(), document: doc, created_at: t },
        )?;
        Ok(())
    })?;
    Ok(CreatePolicyResponse { policy: Some(render(&row, 0)) })
}

pub(super) fn get(
    c: &Control,
    caller: &CallerIdentity,
    r: GetPolicyRequest,
) -> Result<GetPolicyResponse, ControlError> {
    let arn = r.policy_arn.unwrap_or_default();
    check_arn(&arn)?;
    authorize(caller, "GetPolicy", &arn)?;
    let policy = c.read(|tx| lookup(tx, &arn))?;
    Ok(GetPolicyResponse { policy: Some(policy) })
}

pub(super) fn get_version(
    c: &Control,
    caller: &CallerIdentity,
    r: GetPolicyVersionRequest,
) -> Result<GetPolicyVersionResponse, ControlError> {
    let arn = r.policy_arn.unwrap_or_default();
    let version = r.version_id.unwrap_or_default();
    check_arn(&arn)?;
    authorize(caller, "GetPolicyVersion", &arn)?;
    let missing = || no_such(format!("Policy {arn} version {version} does not exist or is not attachable."));
    let v = if arn.starts_with(AWS_MANAGED_PREFIX) {
        let p = berth_iam::managed::find(&arn).filter(|p| p.version_id == version).ok_or_else(missing)?;
        PolicyVersion {
            document: Some(p.document.to_owned()),
            version_id: Some(p.version_id.to_owned()),
            is_default_version: Some(true),
            create_date: Some(Timestamp(aws_dates(p).1)),
        }
    } else {
        let (p, v) = c.read(|tx| {
            let p = tx.iam_policy_get(&arn)?.ok_or_else(|| not_found(&arn))?;
            let v = tx.iam_policy_version(&arn, &version)?.ok_or_else(missing)?;
            Ok((p, v))
        })?;
        PolicyVersion {
            document: Some(v.document.clone()),
            is_default_version: Some(p.default_version == v.version_id),
            version_id: Some(v.version_id),
            create_date: Some(Timestamp(v.created_at)),
        }
    };
    Ok(GetPolicyVersionResponse { policy_version: Some(v) })
}

pub(super) fn list(
    c: &Control,
    caller: &CallerIdentity,
    r: ListPoliciesRequest,
) -> Result<ListPoliciesResponse, ControlError> {
    authorize(caller, "ListPolicies", "*")?;
    let scope = r.scope.unwrap_or(PolicyScopeType::All);
    let prefix = r.path_prefix.unwrap_or_else(|| "/".into());
    let only_attached = r.only_attached.unwrap_or(false);
    let policies: Vec<Policy> = c.read(|tx| {
        let mut out = Vec::new();
        if scope != PolicyScopeType::Local {
            for p in berth_iam::managed::ALL {
                out.push(render_aws(p, tx.iam_attachment_count(p.arn)?));
            }
        }
        if scope != PolicyScopeType::Aws {
            for p in tx.iam_policies()? {
                let n = tx.iam_attachment_count(&p.arn)?;
                out.push(render(&p, n));
            }
        }
        Ok(out)
    })?;
    let policies: Vec<Policy> = policies
        .into_iter()
        .filter(|p| p.path.as_deref().unwrap_or("/").starts_with(&prefix))
        .filter(|p| !only_attached || p.attachment_count.unwrap_or(0) > 0)
        .collect();
    let (policies, truncated, marker) = page(policies, r.marker.as_deref(), r.max_items)?;
    Ok(ListPoliciesResponse { policies: Some(policies), is_truncated: Some(truncated), marker })
}

pub(super) fn delete(c: &Control, caller: &CallerIdentity, r: DeletePolicyRequest) -> Result<(), ControlError> {
    let arn = r.policy_arn.unwrap_or_default();
    check_arn(&arn)?;
    authorize(caller, "DeletePolicy", &arn)?;
    if arn.starts_with(AWS_MANAGED_PREFIX) {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("Policy {arn} is an AWS managed policy and cannot be deleted."),
        ));
    }
    c.tx(|tx| {
        tx.iam_policy_get(&arn)?.ok_or_else(|| not_found(&arn))?;
        if tx.iam_attachment_count(&arn)? > 0 {
            return Err(err(ErrorCode::DeleteConflict, "Cannot delete a policy attached to entities."));
        }
        tx.iam_policy_delete(&arn)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arns_split_into_path_and_name() {
        assert_eq!(
            path_and_name("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"),
            ("/service-role/".to_owned(), "AmazonECSTaskExecutionRolePolicy".to_owned())
        );
        assert_eq!(path_and_name("arn:aws:iam::123456789012:policy/p"), ("/".to_owned(), "p".to_owned()));
        // Ids are stable and distinct.
        let ids: Vec<String> = berth_iam::managed::ALL.iter().map(aws_policy_id).collect();
        assert_eq!(ids, berth_iam::managed::ALL.iter().map(aws_policy_id).collect::<Vec<_>>());
        assert!(ids.iter().all(|i| i.len() == 21 && i.starts_with("ANPA")));
        assert_ne!(ids[0], ids[1]);
    }
}
