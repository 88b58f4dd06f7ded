//! The request contexts a Secrets Manager or SSM operation is authorized with, as AWS's Service Authorization
//! Reference lists them: the secret's or parameter's ARN with its tags (`aws:ResourceTag/...`, and
//! `secretsmanager:ResourceTag/...` / `ssm:resourceTag/...`), the request's tags (`aws:RequestTag/...`,
//! `aws:TagKeys`) where it carries some. A secret that does not exist yet (CreateSecret, or a name nothing
//! answers to) is named by the ARN it would have: `secret:<name>` plus the six-character suffix AWS adds, written
//! `-??????`, so `secret:<name>-*` policies match. ListSecrets and DescribeParameters take resource `*`.

use berth_iam::RequestContext;
use berth_model::{secretsmanager as sm, ssm};

use super::{manager, ssm as params};
use crate::{Control, ControlError, authz};

fn with_tags(mut request: RequestContext, tags: &[(String, String)], service_key: &str) -> RequestContext {
    request = request.with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (k, v) in tags {
        request = request.with_key(&format!("{service_key}/{k}"), v.clone());
    }
    request
}

/// The contexts `secretsmanager:<Op>` is authorized with.
pub(crate) fn secretsmanager_requests(c: &Control, op: &sm::Operation) -> Result<Vec<RequestContext>, ControlError> {
    use sm::Operation as O;
    let action = format!("secretsmanager:{}", op.name());
    let tagged = |request: RequestContext, tags: &Option<Vec<sm::Tag>>| {
        authz::with_request_tags(request, tags.iter().flatten().map(|t| (&t.key, &t.value)))
    };
    let unborn =
        |name: &str| format!("arn:aws:secretsmanager:{}:{}:secret:{name}-??????", c.names.region, c.names.account);
    let on = |id: &Option<String>| -> Result<RequestContext, ControlError> {
        let id = id.as_deref().unwrap_or_default();
        c.read(|tx| match manager::find(c, tx, id) {
            Ok(secret) => {
                let tags = tx.tags_get(&secret.arn)?;
                Ok(with_tags(RequestContext::new(action.clone(), secret.arn), &tags, "secretsmanager:ResourceTag"))
            }
            // Unknown secrets are authorized on what was asked for; the operation then reports them missing.
            Err(_) if id.starts_with("arn:") => Ok(RequestContext::new(action.clone(), id)),
            Err(_) => Ok(RequestContext::new(action.clone(), unborn(id))),
        })
    };
    Ok(vec![match op {
        O::CreateSecret(r) => {
            tagged(RequestContext::new(action.clone(), unborn(r.name.as_deref().unwrap_or_default())), &r.tags)
        }
        O::GetSecretValue(r) => on(&r.secret_id)?,
        O::PutSecretValue(r) => on(&r.secret_id)?,
        O::DescribeSecret(r) => on(&r.secret_id)?,
        O::UpdateSecret(r) => on(&r.secret_id)?,
        O::DeleteSecret(r) => on(&r.secret_id)?,
        O::RestoreSecret(r) => on(&r.secret_id)?,
        O::TagResource(r) => tagged(on(&r.secret_id)?, &r.tags),
        O::UntagResource(r) => on(&r.secret_id)?.with_multi_key("aws:TagKeys", r.tag_keys.clone().unwrap_or_default()),
        O::ListSecrets(_) => RequestContext::new(action.clone(), "*"),
    }])
}

/// The contexts `ssm:<Op>` is authorized with (one per parameter named).
pub(crate) fn ssm_requests(c: &Control, op: &ssm::Operation) -> Result<Vec<RequestContext>, ControlError> {
    use ssm::Operation as O;
    let action = format!("ssm:{}", op.name());
    let on = |name: &str| -> Result<RequestContext, ControlError> {
        // A version selector (`name:3`) is not part of the resource.
        let bare = match name.rsplit_once(':') {
            Some((n, v)) if !n.is_empty() && v.parse::<i64>().is_ok() => n,
            _ => name,
        };
        c.read(|tx| match params::lookup(c, tx, bare)? {
            Some(p) => {
                let tags = tx.tags_get(&p.arn)?;
                Ok(with_tags(RequestContext::new(action.clone(), p.arn), &tags, "ssm:resourceTag"))
            }
            None if bare.starts_with("arn:") => Ok(RequestContext::new(action.clone(), bare)),
            None => Ok(RequestContext::new(action.clone(), params::arn_of(c, bare))),
        })
    };
    let each = |names: &Option<Vec<String>>| -> Result<Vec<RequestContext>, ControlError> {
        names.iter().flatten().map(|n| on(n)).collect()
    };
    Ok(match op {
        O::PutParameter(r) => {
            let request = on(r.name.as_deref().unwrap_or_default())?;
            vec![authz::with_request_tags(request, r.tags.iter().flatten().map(|t| (&t.key, &t.value)))]
        }
        O::GetParameter(r) => vec![on(r.name.as_deref().unwrap_or_default())?],
        O::GetParameters(r) => each(&r.names)?,
        O::GetParametersByPath(r) => {
            vec![RequestContext::new(action.clone(), params::arn_of(c, r.path.as_deref().unwrap_or_default()))]
        }
        O::DeleteParameter(r) => vec![on(r.name.as_deref().unwrap_or_default())?],
        O::DeleteParameters(r) => each(&r.names)?,
        O::DescribeParameters(_) => vec![RequestContext::new(action.clone(), "*")],
    })
}
