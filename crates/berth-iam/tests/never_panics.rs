//! Parsing and evaluating mutated documents never panics (the fuzz target's property, run deterministically).

use berth_iam::{Policy, PolicyKind, Principal, RequestContext, evaluate, managed};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SAMPLES: &[&str] = &[
    r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["ecs:*","logs:Put*"],"Resource":"arn:aws:logs:*:*:log-group:${aws:username}/*","Condition":{"StringLike":{"aws:ResourceTag/team":"${aws:PrincipalTag/team, 'x'}"},"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"NumericLessThanEquals":{"ecs:count":5},"Bool":{"aws:SecureTransport":true},"Null":{"aws:RequestTag/x":"false"},"ArnLike":{"aws:SourceArn":"arn:aws:ecs:*:*:service/*"}}},{"Effect":"Deny","NotAction":"iam:*","NotResource":["arn:aws:s3:::b/*"]}]}"#,
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:role/r"],"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x${*}${?}${$}"}}}}"#,
    r#"{"Statement":{"Effect":"Deny","NotPrincipal":"*","Action":"*","Resource":"*"}}"#,
];

const SPICE: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "*",
    "?",
    "${",
    "}",
    "${aws:username",
    "\\u0000",
    "null",
    "true",
    "1e999",
    "-",
    "ForAllValues:",
    "IfExists",
    "arn:",
    "::::::",
    "\u{1F600}",
    "İ",
    "\n",
    "\"Statement\"",
    "\"Effect\"",
];

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut s: Vec<char> = input.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(5) {
            0 if !s.is_empty() => {
                let end = (at + rng.below(8)).min(s.len());
                s.drain(at.min(end)..end);
            }
            1 => {
                let spice = SPICE[rng.below(SPICE.len())];
                for (i, c) in spice.chars().enumerate() {
                    s.insert((at + i).min(s.len()), c);
                }
            }
            2 if !s.is_empty() => {
                let i = at.min(s.len() - 1);
                s[i] = char::from_u32(rng.below(0x80) as u32).unwrap_or('x');
            }
            3 => s.truncate(at),
            _ => {
                let from = rng.below(s.len());
                let chunk: Vec<char> = s.iter().skip(from).take(rng.below(40)).copied().collect();
                for (i, c) in chunk.into_iter().enumerate() {
                    s.insert((at + i).min(s.len()), c);
                }
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn mutated_documents_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut samples: Vec<&str> = SAMPLES.to_vec();
    samples.extend(managed::ALL.iter().map(|p| p.document));
    let requests = [
        RequestContext::new("ecs:CreateService", "arn:aws:logs:us-east-1:123456789012:log-group:bob/x")
            .with_key("aws:username", "bob")
            .with_multi_key("aws:TagKeys", ["a"])
            .with_key("aws:SourceIp", "10.1.2.3")
            .with_now(std::time::UNIX_EPOCH),
        RequestContext::new("sts:AssumeRole", "*").with_principal(Principal::Service("ecs-tasks.amazonaws.com".into())),
        RequestContext::new("", ""),
    ];
    let mut parsed = 0;
    for i in 0..4000 {
        let base = samples[i % samples.len()];
        let doc = mutate(&mut rng, base);
        for kind in [PolicyKind::Identity, PolicyKind::Trust, PolicyKind::Resource] {
            if let Ok(p) = Policy::parse(&doc, kind) {
                parsed += 1;
                for r in &requests {
                    let _ = evaluate(r, &[&p]);
                }
            }
        }
    }
    // Some mutations must survive parsing, or the evaluation half is not exercised.
    assert!(parsed > 100, "only {parsed} mutated documents parsed");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let doc = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Policy::parse(&doc, PolicyKind::Identity).is_err());
    let cond = format!(
        r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"StringEquals":{{"a:b":{}1{}}}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(Policy::parse(&cond, PolicyKind::Identity).is_err());
}
