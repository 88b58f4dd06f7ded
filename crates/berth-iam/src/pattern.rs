//! Wildcard patterns and policy variables: the one matcher behind Action, Resource, `String*Like` and `Arn*`.
//!
//! A pattern is compiled into `berth_core::wildcard` tokens (literal bytes, `*`, `?`) after policy variables are
//! substituted, so a variable's value is always literal: a user named `a*b` never becomes a wildcard. The core
//! matcher never backtracks exponentially (a dynamic programme for ARN patterns), which is what a parser facing
//! untrusted documents needs. Case-insensitive patterns (actions, `StringEqualsIgnoreCase`...) are lowercased
//! with Unicode's rules on both sides.
//!
//! Semantics, from the IAM User Guide:
//! - Action (reference_policies_elements_action.html): `*` and `?` anywhere in `service:Action`, matched
//!   case-insensitively ("the prefix and the action name are case insensitive").
//! - Resource (reference_policies_elements_resource.html, "Using wildcards in resource ARNs"): "You can use
//!   wildcard characters (* and ?) within the individual segments of an ARN (the parts separated by colons)";
//!   "If the * wildcard is the last character of a resource ARN segment, it can expand to match beyond the colon
//!   boundaries"; within a segment `*` also spans `/`. So a `*` followed by `:` or by the end of the pattern may
//!   match anything, any other `*` and every `?` stop at `:`. Resource matching is case-sensitive.
//! - `StringLike` (reference_policies_elements_condition_operators.html): "multi-character match wildcard (*) and
//!   the single-character match wildcard (?) anywhere in the string", case-sensitive.
//! - Policy variables (reference_policies_variables.html): `${key}`, `${key, 'default'}`, and the escapes `${*}`,
//!   `${?}`, `${$}` for a literal `*`, `?`, `$`. Variables are replaced only in `Version` 2012-10-17 documents;
//!   in older ones `${...}` is literal text. A variable whose key is absent (or multivalued) and has no default
//!   leaves the value unresolved: it matches nothing.

use berth_core::wildcard::{Token, Wildcard};

use crate::context::RequestContext;

/// How `*` and `?` are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No wildcards: `*` and `?` are literal (`StringEquals`).
    Literal,
    /// `*` and `?` match any characters (Action, `StringLike`).
    Glob,
    /// ARN rules: `*` stays inside a colon-separated segment unless it ends one (Resource, `ArnLike`).
    Arn,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    wildcard: Wildcard,
    ignore_case: bool,
}

impl Pattern {
    /// Compile `text`. `vars` is the request context when policy variables are to be substituted (2012-10-17
    /// documents), `None` otherwise. Returns `None` when a variable cannot be resolved.
    pub(crate) fn compile(text: &str, vars: Option<&RequestContext>, mode: Mode, ignore_case: bool) -> Option<Self> {
        let mut toks = Vec::with_capacity(text.len());
        let push_lit = |toks: &mut Vec<Token>, c: char| {
            let mut buf = [0u8; 4];
            let mut push = |c: char| toks.extend(c.encode_utf8(&mut buf).bytes().map(Token::Byte));
            if ignore_case { c.to_lowercase().for_each(&mut push) } else { push(c) }
        };
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if c == '$'
                && let Some(ctx) = vars
                && let Some(body) = rest.strip_prefix("${")
                && let Some(end) = body.find('}')
            {
                let inner = &body[..end];
                rest = &body[end + 1..];
                match inner {
                    "*" | "?" | "$" => inner.chars().for_each(|c| push_lit(&mut toks, c)),
                    _ => {
                        let value = resolve_variable(inner, ctx)?;
                        value.chars().for_each(|c| push_lit(&mut toks, c));
                    }
                }
                continue;
            }
            rest = &rest[c.len_utf8()..];
            match (c, mode) {
                ('*', Mode::Glob) => toks.push(Token::Star { colon: true }),
                ('?', Mode::Glob) => toks.push(Token::One { colon: true }),
                ('*', Mode::Arn) => toks.push(Token::Star { colon: false }),
                ('?', Mode::Arn) => toks.push(Token::One { colon: false }),
                _ => push_lit(&mut toks, c),
            }
        }
        if mode == Mode::Arn {
            // A `*` that is the last character of a segment (followed by `:` or the end) expands past colons.
            for i in 0..toks.len() {
                if let Token::Star { .. } = toks[i] {
                    let ends_segment = matches!(toks.get(i + 1), None | Some(Token::Byte(b':')));
                    toks[i] = Token::Star { colon: ends_segment };
                }
            }
        }
        Some(Pattern { wildcard: Wildcard::new(toks, false), ignore_case })
    }

    /// Does the whole of `text` match?
    pub(crate) fn matches(&self, text: &str) -> bool {
        if self.ignore_case { self.wildcard.matches(&text.to_lowercase()) } else { self.wildcard.matches(text) }
    }
}

/// `key` or `key, 'default'` → the key's single value in the context, or the default.
fn resolve_variable(inner: &str, ctx: &RequestContext) -> Option<String> {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d.strip_prefix('\'').and_then(|d| d.strip_suffix('\''))?;
            (k.trim(), Some(d))
        }
        None => (inner.trim(), None),
    };
    match ctx.single(key) {
        Some(v) => Some(v.to_owned()),
        None => default.map(str::to_owned),
    }
}

/// Does the action pattern (`service:Action` with `*`/`?`, case-insensitive) match `action`?
pub fn action_matches(pattern: &str, action: &str) -> bool {
    Pattern::compile(pattern, None, Mode::Glob, true).is_some_and(|p| p.matches(action))
}

/// Does the Resource pattern match the resource ARN (no policy variables)? `*` alone matches everything.
pub fn resource_matches(pattern: &str, resource: &str) -> bool {
    Pattern::compile(pattern, None, Mode::Arn, false).is_some_and(|p| p.matches(resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_wildcards_are_case_insensitive() {
        let cases = [
            ("ecs:*", "ecs:CreateService", true),
            ("ECS:create*", "ecs:CreateService", true),
            ("ecs:Describe?ervices", "ecs:DescribeServices", true),
            ("ecs:Describe?", "ecs:DescribeServices", false),
            ("*", "anything:AtAll", true),
            ("ec2:*", "ecs:CreateService", false),
            ("ecs:CreateService", "ecs:CreateServices", false),
            ("*:Get*", "s3:GetObject", true),
        ];
        for (p, a, want) in cases {
            assert_eq!(action_matches(p, a), want, "{p} vs {a}");
        }
    }

    #[test]
    fn resource_star_stays_in_its_segment_unless_it_ends_it() {
        let cases = [
            ("*", "arn:aws:s3:::b/k", true),
            ("*", "not-an-arn", true),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c", true),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::c/a", false),
            // The trailing `*` ends a segment, so it expands across colons (log-group:x:log-stream:y).
            ("arn:aws:logs:*:*:log-group:*", "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/x:log-stream:y", true),
            // A mid-segment `*` does not cross a colon.
            ("arn:aws:iam::*x:user/bob", "arn:aws:iam::1:2x:user/bob", false),
            ("arn:aws:iam::123456789012:user/*bob", "arn:aws:iam::123456789012:user/al:bob", false),
            ("arn:aws:iam::123456789012:user/*bob", "arn:aws:iam::123456789012:user/path/bob", true),
            ("arn:aws:ec2:*:*:vpc/*", "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1", true),
            ("arn:aws:ec2:*:*:vpc/*", "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1", false),
            ("arn:aws:ec2:us-east-?:*:vpc/*", "arn:aws:ec2:us-east-1:123456789012:vpc/v", true),
            ("arn:aws:ec2:us-east-??:*:vpc/*", "arn:aws:ec2:us-east-1:123456789012:vpc/v", false),
            // Case-sensitive.
            ("arn:aws:iam::123456789012:user/Bob", "arn:aws:iam::123456789012:user/bob", false),
            ("arn:aws:s3:*", "arn:aws:s3:::bucket/key", true),
        ];
        for (p, r, want) in cases {
            assert_eq!(resource_matches(p, r), want, "{p} vs {r}");
        }
    }
}
