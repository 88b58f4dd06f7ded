//! Policy operations shared by the IAM principals that hold policies (users and roles): inline policies put, and
//! managed policies attached and detached, each authorized on the owner's ARN (`iam:PolicyARN` for attachments).
//! One implementation over [`Owner`] instead of a near-copy per principal kind.

use berth_iam::{InlineOwner, Policy, PolicyKind, RequestContext};
use berth_store::{IamOwner, Tx};

use super::roles::require_role;
use super::users::{attachable, require_user};
use super::{authorize, check_name, no_such, policy_error};
use crate::{CallerIdentity, Control, ControlError, authz};

/// A kind of principal that holds policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    User,
    Role,
}

impl Owner {
    /// The word in the operation names (`PutUserPolicy`, `AttachRolePolicy`, ...).
    fn word(self) -> &'static str {
        match self {
            Owner::User => "User",
            Owner::Role => "Role",
        }
    }

    fn store(self) -> IamOwner {
        match self {
            Owner::User => IamOwner::User,
            Owner::Role => IamOwner::Role,
        }
    }

    fn inline(self) -> InlineOwner {
        match self {
            Owner::User => InlineOwner::User,
            Owner::Role => InlineOwner::Role,
        }
    }

    /// The stored name and ARN of the owner named `name` (`NoSuchEntity` when there is none).
    fn resolve(self, tx: &Tx<'_>, name: &str) -> Result<(String, String), ControlError> {
        Ok(match self {
            Owner::User => require_user(tx, name).map(|u| (u.name, u.arn))?,
            Owner::Role => require_role(tx, name).map(|r| (r.name, r.arn))?,
        })
    }
}

/// `Put<Owner>Policy`: authorized on the owner, then the document is checked alone and with the owner's other
/// inline policies (IAM's aggregate size).
pub(super) fn put_inline(
    c: &Control,
    caller: &CallerIdentity,
    owner: Owner,
    name: &str,
    policy_name: &str,
    doc: &str,
) -> Result<(), ControlError> {
    check_name("policyName", policy_name, 128)?;
    c.tx(|tx| {
        let (name, arn) = owner.resolve(tx, name)?;
        authorize(caller, &format!("Put{}Policy", owner.word()), &arn)?;
        Policy::parse(doc, PolicyKind::Identity).map_err(policy_error)?;
        let others = tx.iam_inline_all(owner.store(), &name)?;
        let docs = others.iter().filter(|(n, _)| !n.eq_ignore_ascii_case(policy_name)).map(|(_, d)| d.as_str());
        berth_iam::check_inline_aggregate(owner.inline(), &name, docs.chain([doc])).map_err(policy_error)?;
        tx.iam_inline_put(owner.store(), &name, policy_name, doc)?;
        Ok(())
    })
}

/// `Attach<Owner>Policy` / `Detach<Owner>Policy`.
pub(super) fn attachment(
    c: &Control,
    caller: &CallerIdentity,
    owner: Owner,
    name: &str,
    policy_arn: &str,
    attach: bool,
) -> Result<(), ControlError> {
    let verb = if attach { "Attach" } else { "Detach" };
    c.tx(|tx| {
        let (name, arn) = owner.resolve(tx, name)?;
        authz::authorize_request(
            caller,
            RequestContext::new(format!("iam:{verb}{}Policy", owner.word()), arn)
                .with_key("iam:PolicyARN", policy_arn.to_string()),
        )?;
        if attach {
            attachable(tx, policy_arn)?;
            tx.iam_attach(owner.store(), &name, policy_arn)?;
        } else if !tx.iam_detach(owner.store(), &name, policy_arn)? {
            return Err(no_such(format!("Policy {policy_arn} was not found.")));
        }
        Ok(())
    })
}
