//! Condition operators, decided against the request context.
//!
//! The rules, from the IAM User Guide:
//! - reference_policies_elements_condition_operators.html: "If the key that you specify in a policy condition is
//!   not present in the request context, the values do not match and the condition is false. If the policy
//!   condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not
//!   present, the condition is true. This logic applies to all condition operators except ...IfExists and Null
//!   check." `...IfExists`: "If the policy key is present in the context of the request, process the key as
//!   specified in the policy. If the key is not present, evaluate the condition element as true."
//! - reference_policies_condition-logic-multiple-context-keys-or-values.html: several operators and several keys
//!   are ANDed; several values for one key are ORed, except for negated operators, where the statement matches
//!   only if the context value matches none of them.
//! - reference_policies_condition-single-vs-multi-valued-context-keys.html: `ForAllValues` is true when every
//!   context value satisfies the test, and also "if there are no context keys in the request or if the context key
//!   value resolves to a null dataset, such as an empty string" (the empty-set edge case); `ForAnyValue` needs at
//!   least one context value to satisfy it and is false for a missing or empty key.
//! - Policy variables are substituted in String*, Arn* and Bool values (reference_policies_variables.html, "Where
//!   you can use policy variables"); numbers, dates and addresses are taken literally.

use std::net::IpAddr;

use crate::context::RequestContext;
use crate::date;
use crate::pattern::{Mode, Pattern};
use crate::policy::{Condition, SetQualifier, Test};

/// Does one condition hold? `vars` is the request context when policy variables apply (Version 2012-10-17).
pub(crate) fn holds(c: &Condition, ctx: &RequestContext, vars: Option<&RequestContext>) -> bool {
    let op = c.operator;
    let present = ctx.get(&c.key).map(|v| v.values()).filter(|v| !v.is_empty());
    if op.test == Test::Null {
        // `"Null": {"k": "true"}` holds when the key is absent (or an empty set); `"false"` when it is present.
        let absent = present.is_none();
        return c.values.iter().any(|v| match v.to_ascii_lowercase().as_str() {
            "true" => absent,
            "false" => !absent,
            _ => false,
        });
    }
    let negated = op.test.is_negated();
    let Some(ctx_values) = present else {
        return match op.set {
            _ if op.if_exists => true,
            Some(SetQualifier::ForAllValues) => true,
            Some(SetQualifier::ForAnyValue) => false,
            None => negated,
        };
    };
    // The test for one context value: for a negated operator, that it matches none of the policy values.
    let value_passes = |v: &str| {
        let any = c.values.iter().any(|p| positive_match(op.test, v, p, vars));
        any != negated
    };
    match op.set {
        Some(SetQualifier::ForAllValues) => ctx_values.iter().all(|v| value_passes(v)),
        Some(SetQualifier::ForAnyValue) => ctx_values.iter().any(|v| value_passes(v)),
        // A multivalued key without a set operator is read as "any of its values" for the positive test.
        None => {
            let any = ctx_values.iter().any(|v| c.values.iter().any(|p| positive_match(op.test, v, p, vars)));
            any != negated
        }
    }
}

/// The un-negated comparison of one context value with one policy value.
fn positive_match(test: Test, ctx_value: &str, policy_value: &str, vars: Option<&RequestContext>) -> bool {
    let pattern = |mode, ignore_case| {
        Pattern::compile(policy_value, vars, mode, ignore_case).is_some_and(|p| p.matches(ctx_value))
    };
    match test {
        Test::StringEquals | Test::StringNotEquals => pattern(Mode::Literal, false),
        Test::StringEqualsIgnoreCase | Test::StringNotEqualsIgnoreCase => pattern(Mode::Literal, true),
        Test::StringLike | Test::StringNotLike => pattern(Mode::Glob, false),
        // ArnEquals and ArnLike are documented identically: case-sensitive, wildcards per colon segment.
        Test::ArnEquals | Test::ArnLike | Test::ArnNotEquals | Test::ArnNotLike => pattern(Mode::Arn, false),
        Test::Bool => {
            // Compare with the canonical spelling of the context's boolean, case-insensitively.
            let Some(c) = parse_bool(ctx_value) else { return false };
            let canonical = if c { "true" } else { "false" };
            Pattern::compile(policy_value, vars, Mode::Literal, true).is_some_and(|p| p.matches(canonical))
        }
        Test::BinaryEquals => ctx_value == policy_value,
        Test::NumericEquals | Test::NumericNotEquals => cmp_num(ctx_value, policy_value, |a, b| a == b),
        Test::NumericLessThan => cmp_num(ctx_value, policy_value, |a, b| a < b),
        Test::NumericLessThanEquals => cmp_num(ctx_value, policy_value, |a, b| a <= b),
        Test::NumericGreaterThan => cmp_num(ctx_value, policy_value, |a, b| a > b),
        Test::NumericGreaterThanEquals => cmp_num(ctx_value, policy_value, |a, b| a >= b),
        Test::DateEquals | Test::DateNotEquals => cmp_date(ctx_value, policy_value, |a, b| a == b),
        Test::DateLessThan => cmp_date(ctx_value, policy_value, |a, b| a < b),
        Test::DateLessThanEquals => cmp_date(ctx_value, policy_value, |a, b| a <= b),
        Test::DateGreaterThan => cmp_date(ctx_value, policy_value, |a, b| a > b),
        Test::DateGreaterThanEquals => cmp_date(ctx_value, policy_value, |a, b| a >= b),
        Test::IpAddress | Test::NotIpAddress => ip_in_cidr(ctx_value, policy_value),
        Test::Null => false,
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn cmp_num(ctx_value: &str, policy_value: &str, f: impl Fn(f64, f64) -> bool) -> bool {
    match (ctx_value.trim().parse::<f64>(), policy_value.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) if a.is_finite() && b.is_finite() => f(a, b),
        _ => false,
    }
}

fn cmp_date(ctx_value: &str, policy_value: &str, f: impl Fn(i64, i64) -> bool) -> bool {
    match (date::parse(ctx_value), date::parse(policy_value)) {
        (Some(a), Some(b)) => f(a, b),
        _ => false,
    }
}

/// Is `ip` inside `cidr` (`203.0.113.0/24`, `2001:DB8::/32`, or a bare address meaning /32 or /128)?
pub(crate) fn ip_in_cidr(ip: &str, cidr: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else { return false };
    let (net, len) = match cidr.trim().split_once('/') {
        Some((n, l)) => match l.parse::<u32>() {
            Ok(l) => (n, Some(l)),
            Err(_) => return false,
        },
        None => (cidr.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return false;
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return false;
            }
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let cases = [
            ("203.0.113.7", "203.0.113.0/24", true),
            ("203.0.114.7", "203.0.113.0/24", false),
            ("10.1.2.3", "0.0.0.0/0", true),
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.4", "10.1.2.3/32", false),
            ("2001:db8:1234:5678::1", "2001:DB8:1234:5678::/64", true),
            ("2001:db8:1234:5679::1", "2001:DB8:1234:5678::/64", false),
            ("2001:db8::1", "10.0.0.0/8", false),
            ("not-an-ip", "10.0.0.0/8", false),
            ("10.0.0.1", "10.0.0.0/33", false),
            ("10.0.0.1", "10.0.0.0/x", false),
        ];
        for (ip, cidr, want) in cases {
            assert_eq!(ip_in_cidr(ip, cidr), want, "{ip} in {cidr}");
        }
    }
}
