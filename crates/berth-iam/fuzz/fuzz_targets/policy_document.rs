//! Fuzz target: policy-document parsing (every kind) and, for what parses, evaluation. Must never panic, hang or
//! overflow the stack.

#![no_main]

use berth_iam::{Policy, PolicyKind, Principal, RequestContext, evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let requests = [
        RequestContext::new("ecs:CreateService", "arn:aws:ecs:us-east-1:123456789012:service/default/web")
            .with_key("aws:username", "bob")
            .with_multi_key("aws:TagKeys", ["AmazonECSManaged"])
            .with_resource_tags([("AmazonECSManaged", "true")])
            .with_key("aws:SourceIp", "10.0.0.1")
            .with_now(std::time::UNIX_EPOCH),
        RequestContext::new("sts:AssumeRole", "arn:aws:iam::123456789012:role/r")
            .with_principal(Principal::Service("ecs-tasks.amazonaws.com".into())),
    ];
    for kind in [PolicyKind::Identity, PolicyKind::Trust, PolicyKind::Resource] {
        if let Ok(policy) = Policy::parse(text, kind) {
            for r in &requests {
                let _ = evaluate(r, &[&policy]);
            }
        }
    }
});
