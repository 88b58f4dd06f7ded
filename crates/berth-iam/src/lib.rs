//! berth-iam: IAM policy documents — parsing, validation and evaluation — and the AWS managed policies berth
//! ships.
//!
//! It owns the policy language: the document model and its parser ([`Policy::parse`], with IAM's
//! `MalformedPolicyDocument` reasons and the size quotas), the evaluation of a request against policies
//! ([`evaluate`]: explicit deny wins, then any allow, else the implicit deny; Action/NotAction, Resource/
//! NotResource, Principal/NotPrincipal, every condition operator, policy variables), trust-policy checks for
//! `sts:AssumeRole` ([`trust_allows`]) and the managed policies under their real ARNs ([`managed`]).
//!
//! It must never do I/O, never touch the store or know where policies are kept, and never read a clock: the
//! only time it knows is the `now` injected into a [`RequestContext`] (`aws:CurrentTime`, `aws:EpochTime`).
//! Who the caller is, which policies apply to it and which condition keys a request carries are the API layer's
//! business; this crate decides. (The root user is allowed everything: that short-cut is the caller's too.)

mod condition;
pub mod context;
mod date;
pub mod error;
pub mod eval;
pub mod managed;
mod pattern;
pub mod policy;

pub use context::{AwsPrincipal, ContextValue, Principal, RequestContext};
pub use error::PolicyError;
pub use eval::{Decision, access_denied_message, evaluate, principal_matches, statement_applies, trust_allows};
pub use managed::ManagedPolicy;
pub use pattern::{action_matches, resource_matches};
pub use policy::{
    ActionBlock, Condition, Effect, InlineOwner, Operator, Policy, PolicyKind, PrincipalBlock, PrincipalSet,
    ResourceBlock, SetQualifier, Statement, Test, Version, check_inline_aggregate, check_managed_policy_size,
    check_trust_policy_size, policy_size,
};
