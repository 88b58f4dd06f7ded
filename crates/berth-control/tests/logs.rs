//! CloudWatch Logs through the control plane: groups, streams, events (PutLogEvents' rules, GetLogEvents' tokens
//! followed to both ends, FilterLogEvents with patterns and paging), retention with an injected clock, tags, and
//! authorization of IAM users by resource and tags. No sockets: callers are resolved with `Control::identify`.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_certs::Ca;
use berth_control::{CallerIdentity, Control, ControlConfig};
use berth_core::{AwsError, ErrorCode};
use berth_model::logs::{self, Operation as Op, Output as Out};
use berth_runtime::memory::MemoryDriver;
use berth_store::Store;

mod common;

use common::user_with;

const DAY: i64 = 24 * 60 * 60 * 1000;

fn control() -> Arc<Control> {
    let driver = Arc::new(MemoryDriver::new());
    let ca = Arc::new(Ca::generate().expect("ca"));
    Control::new(ControlConfig::default(), Store::open_in_memory().expect("store"), driver, ca).expect("control")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

struct Logs {
    c: Arc<Control>,
    root: CallerIdentity,
}

impl Logs {
    fn new() -> Logs {
        let c = control();
        let root = CallerIdentity::root(c.account_id());
        Logs { c, root }
    }

    async fn call(&self, op: Op) -> Result<Out, AwsError> {
        self.c.handle_logs(&self.root, op).await
    }

    async fn ok(&self, op: Op) -> Out {
        let name = op.name();
        self.call(op).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn err(&self, op: Op) -> ErrorCode {
        let name = op.name();
        match self.call(op).await {
            Ok(out) => panic!("{name} succeeded: {out:?}"),
            Err(e) => e.code,
        }
    }

    async fn group(&self, name: &str) {
        self.ok(Op::CreateLogGroup(logs::CreateLogGroupRequest {
            log_group_name: Some(name.into()),
            ..Default::default()
        }))
        .await;
    }

    async fn stream(&self, group: &str, name: &str) {
        self.ok(Op::CreateLogStream(logs::CreateLogStreamRequest {
            log_group_name: Some(group.into()),
            log_stream_name: Some(name.into()),
        }))
        .await;
    }

    fn put_op(group: &str, stream: &str, events: &[(i64, &str)]) -> Op {
        Op::PutLogEvents(logs::PutLogEventsRequest {
            log_group_name: Some(group.into()),
            log_stream_name: Some(stream.into()),
            log_events: Some(
                events
                    .iter()
                    .map(|(t, m)| logs::InputLogEvent { timestamp: Some(*t), message: Some(m.to_string()) })
                    .collect(),
            ),
            ..Default::default()
        })
    }

    async fn put(&self, group: &str, stream: &str, events: &[(i64, &str)]) -> logs::PutLogEventsResponse {
        match self.ok(Self::put_op(group, stream, events)).await {
            Out::PutLogEvents(r) => r,
            other => panic!("{other:?}"),
        }
    }

    async fn get(&self, r: logs::GetLogEventsRequest) -> logs::GetLogEventsResponse {
        match self.ok(Op::GetLogEvents(r)).await {
            Out::GetLogEvents(r) => r,
            other => panic!("{other:?}"),
        }
    }

    async fn filter(&self, r: logs::FilterLogEventsRequest) -> logs::FilterLogEventsResponse {
        match self.ok(Op::FilterLogEvents(r)).await {
            Out::FilterLogEvents(r) => r,
            other => panic!("{other:?}"),
        }
    }

    async fn groups(&self, r: logs::DescribeLogGroupsRequest) -> logs::DescribeLogGroupsResponse {
        match self.ok(Op::DescribeLogGroups(r)).await {
            Out::DescribeLogGroups(r) => r,
            other => panic!("{other:?}"),
        }
    }

    async fn streams(&self, r: logs::DescribeLogStreamsRequest) -> logs::DescribeLogStreamsResponse {
        match self.ok(Op::DescribeLogStreams(r)).await {
            Out::DescribeLogStreams(r) => r,
            other => panic!("{other:?}"),
        }
    }

    async fn messages(&self, group: &str, stream: &str) -> Vec<String> {
        let r = self
            .get(logs::GetLogEventsRequest {
                log_group_name: Some(group.into()),
                log_stream_name: Some(stream.into()),
                start_from_head: Some(true),
                ..Default::default()
            })
            .await;
        r.events.unwrap_or_default().into_iter().filter_map(|e| e.message).collect()
    }

    async fn tags(&self, arn: &str) -> BTreeMap<String, String> {
        match self
            .ok(Op::ListTagsForResource(logs::ListTagsForResourceRequest { resource_arn: Some(arn.into()) }))
            .await
        {
            Out::ListTagsForResource(r) => r.tags.unwrap_or_default(),
            other => panic!("{other:?}"),
        }
    }

    fn arn(&self, group: &str) -> String {
        format!("arn:aws:logs:{}:{}:log-group:{group}", self.c.region(), self.c.account_id())
    }
}

fn names(r: &logs::DescribeLogGroupsResponse) -> Vec<String> {
    r.log_groups.iter().flatten().filter_map(|g| g.log_group_name.clone()).collect()
}

#[tokio::test]
async fn groups_are_created_described_paged_and_deleted() {
    let l = Logs::new();
    for g in ["/app/web", "/app/api", "/batch/Nightly", "/app/worker", "plain"] {
        l.group(g).await;
    }
    // Already exists; invalid names; the reserved prefix.
    let dup = Op::CreateLogGroup(logs::CreateLogGroupRequest {
        log_group_name: Some("/app/web".into()),
        ..Default::default()
    });
    assert_eq!(l.err(dup).await, ErrorCode::LogsResourceAlreadyExists);
    for bad in ["", "has space", "a:b", "aws/x", &"x".repeat(513)] {
        let op =
            Op::CreateLogGroup(logs::CreateLogGroupRequest { log_group_name: Some(bad.into()), ..Default::default() });
        assert_eq!(l.err(op).await, ErrorCode::InvalidParameter, "{bad:?}");
    }

    let all = l.groups(Default::default()).await;
    assert_eq!(names(&all), ["/app/api", "/app/web", "/app/worker", "/batch/Nightly", "plain"]);
    let web = all.log_groups.iter().flatten().find(|g| g.log_group_name.as_deref() == Some("/app/web")).expect("web");
    assert_eq!(web.arn.as_deref(), Some(format!("{}:*", l.arn("/app/web")).as_str()));
    assert_eq!(web.log_group_arn.as_deref(), Some(l.arn("/app/web").as_str()));
    assert_eq!((web.stored_bytes, web.retention_in_days), (Some(0), None));
    assert!(web.creation_time.is_some_and(|t| (t - now()).abs() < 60_000));
    assert_eq!(web.log_group_class, Some(logs::LogGroupClass::Standard));

    let prefixed = l
        .groups(logs::DescribeLogGroupsRequest { log_group_name_prefix: Some("/app/".into()), ..Default::default() })
        .await;
    assert_eq!(names(&prefixed), ["/app/api", "/app/web", "/app/worker"]);
    // The pattern is a case-insensitive substring.
    let pattern = l
        .groups(logs::DescribeLogGroupsRequest { log_group_name_pattern: Some("NIGHT".into()), ..Default::default() })
        .await;
    assert_eq!(names(&pattern), ["/batch/Nightly"]);
    let both = Op::DescribeLogGroups(logs::DescribeLogGroupsRequest {
        log_group_name_prefix: Some("/a".into()),
        log_group_name_pattern: Some("a".into()),
        ..Default::default()
    });
    assert_eq!(l.err(both).await, ErrorCode::InvalidParameter);
    let too_many = Op::DescribeLogGroups(logs::DescribeLogGroupsRequest { limit: Some(51), ..Default::default() });
    assert_eq!(l.err(too_many).await, ErrorCode::InvalidParameter);

    // Paging two at a time reaches every group once.
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = l
            .groups(logs::DescribeLogGroupsRequest { limit: Some(2), next_token: token.clone(), ..Default::default() })
            .await;
        assert!(page.log_groups.as_ref().is_some_and(|g| g.len() <= 2));
        seen.extend(names(&page));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, names(&all));

    l.ok(Op::DeleteLogGroup(logs::DeleteLogGroupRequest { log_group_name: Some("/app/web".into()) })).await;
    let gone = Op::DeleteLogGroup(logs::DeleteLogGroupRequest { log_group_name: Some("/app/web".into()) });
    assert_eq!(l.err(gone).await, ErrorCode::ResourceNotFound);
    assert!(!names(&l.groups(Default::default()).await).contains(&"/app/web".to_string()));
}

#[tokio::test]
async fn streams_are_named_ordered_and_paged() {
    let l = Logs::new();
    l.group("g").await;
    let t = now();
    for (s, last) in [("b", Some(t - 3000)), ("a", Some(t - 1000)), ("c", None), ("ecs/Main/1", Some(t - 2000))] {
        l.stream("g", s).await;
        if let Some(ts) = last {
            l.put("g", s, &[(ts, "x")]).await;
        }
    }
    let dup = Op::CreateLogStream(logs::CreateLogStreamRequest {
        log_group_name: Some("g".into()),
        log_stream_name: Some("a".into()),
    });
    assert_eq!(l.err(dup).await, ErrorCode::LogsResourceAlreadyExists);
    for bad in ["", "a:b", "a*"] {
        let op = Op::CreateLogStream(logs::CreateLogStreamRequest {
            log_group_name: Some("g".into()),
            log_stream_name: Some(bad.into()),
        });
        assert_eq!(l.err(op).await, ErrorCode::InvalidParameter, "{bad:?}");
    }
    let no_group = Op::CreateLogStream(logs::CreateLogStreamRequest {
        log_group_name: Some("nope".into()),
        log_stream_name: Some("s".into()),
    });
    assert_eq!(l.err(no_group).await, ErrorCode::ResourceNotFound);

    let list = |r: logs::DescribeLogStreamsResponse| -> Vec<String> {
        r.log_streams.into_iter().flatten().filter_map(|s| s.log_stream_name).collect()
    };
    let by_name =
        l.streams(logs::DescribeLogStreamsRequest { log_group_name: Some("g".into()), ..Default::default() }).await;
    let a = by_name.log_streams.iter().flatten().find(|s| s.log_stream_name.as_deref() == Some("a")).expect("a");
    assert_eq!(a.arn.as_deref(), Some(format!("{}:log-stream:a", l.arn("g")).as_str()));
    assert_eq!((a.first_event_timestamp, a.last_event_timestamp), (Some(t - 1000), Some(t - 1000)));
    assert_eq!(a.stored_bytes, Some(1));
    assert_eq!(list(by_name), ["a", "b", "c", "ecs/Main/1"]);
    // By last event time, newest first; by identifier (the ARN) instead of the name.
    let by_time = l
        .streams(logs::DescribeLogStreamsRequest {
            log_group_identifier: Some(l.arn("g")),
            order_by: Some(logs::OrderBy::LastEventTime),
            descending: Some(true),
            ..Default::default()
        })
        .await;
    assert_eq!(list(by_time), ["a", "ecs/Main/1", "b", "c"]);
    let prefixed = l
        .streams(logs::DescribeLogStreamsRequest {
            log_group_name: Some("g".into()),
            log_stream_name_prefix: Some("ecs/".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(list(prefixed), ["ecs/Main/1"]);
    let bad_order = Op::DescribeLogStreams(logs::DescribeLogStreamsRequest {
        log_group_name: Some("g".into()),
        log_stream_name_prefix: Some("ecs/".into()),
        order_by: Some(logs::OrderBy::LastEventTime),
        ..Default::default()
    });
    assert_eq!(l.err(bad_order).await, ErrorCode::InvalidParameter);
    let both = Op::DescribeLogStreams(logs::DescribeLogStreamsRequest {
        log_group_name: Some("g".into()),
        log_group_identifier: Some("g".into()),
        ..Default::default()
    });
    assert_eq!(l.err(both).await, ErrorCode::InvalidParameter);

    // Paging descending by time, one at a time.
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = l
            .streams(logs::DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                order_by: Some(logs::OrderBy::LastEventTime),
                descending: Some(true),
                limit: Some(1),
                next_token: token.clone(),
                ..Default::default()
            })
            .await;
        token = page.next_token.clone();
        seen.extend(list(page));
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["a", "ecs/Main/1", "b", "c"]);

    l.ok(Op::DeleteLogStream(logs::DeleteLogStreamRequest {
        log_group_name: Some("g".into()),
        log_stream_name: Some("a".into()),
    }))
    .await;
    let gone = Op::DeleteLogStream(logs::DeleteLogStreamRequest {
        log_group_name: Some("g".into()),
        log_stream_name: Some("a".into()),
    });
    assert_eq!(l.err(gone).await, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn put_log_events_applies_aws_rules() {
    let l = Logs::new();
    l.group("g").await;
    l.stream("g", "s").await;
    let t = now();
    let ok = l.put("g", "s", &[(t - 2, "one"), (t - 1, "two"), (t - 1, "three")]).await;
    assert!(ok.rejected_log_events_info.is_none());
    assert!(ok.next_sequence_token.is_some());
    // Too old (over 14 days), too new (3 hours ahead): skipped and reported; the rest stored.
    let hour = 3_600_000;
    let mixed = l.put("g", "s", &[(t - 14 * DAY - hour, "old"), (t - 14 * DAY + hour, "just in time")]).await;
    let info = mixed.rejected_log_events_info.expect("rejected");
    assert_eq!(info.too_old_log_event_end_index, Some(0));
    l.put("g", "s", &[(t, "now")]).await;
    let ahead = l.put("g", "s", &[(t + 1, "soon"), (t + 3 * 3_600_000, "future")]).await;
    assert_eq!(ahead.rejected_log_events_info.and_then(|i| i.too_new_log_event_start_index), Some(1));
    assert_eq!(l.messages("g", "s").await, ["just in time", "one", "two", "three", "now", "soon"]);

    // Whole-batch errors store nothing.
    for events in [vec![(t, "b"), (t - 1, "a")], vec![(t - DAY - 1, "a"), (t, "b")], vec![]] {
        let code = l.err(Logs::put_op("g", "s", &events)).await;
        assert_eq!(code, ErrorCode::InvalidParameter, "{events:?}");
    }
    assert_eq!(l.messages("g", "s").await.len(), 6);
    assert_eq!(l.err(Logs::put_op("g", "missing", &[(t, "x")])).await, ErrorCode::ResourceNotFound);
    assert_eq!(l.err(Logs::put_op("missing", "s", &[(t, "x")])).await, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn get_log_events_tokens_reach_both_ends() {
    let l = Logs::new();
    l.group("g").await;
    l.stream("g", "s").await;
    let t = now() - 60_000;
    let all: Vec<(i64, String)> = (0..25).map(|i| (t + i / 2, format!("event {i:02}"))).collect();
    let refs: Vec<(i64, &str)> = all.iter().map(|(t, m)| (*t, m.as_str())).collect();
    l.put("g", "s", &refs).await;
    let want: Vec<String> = all.iter().map(|(_, m)| m.clone()).collect();
    let msgs = |r: &logs::GetLogEventsResponse| -> Vec<String> {
        r.events.iter().flatten().filter_map(|e| e.message.clone()).collect()
    };
    let req = |token: Option<String>, head: bool| logs::GetLogEventsRequest {
        log_group_name: Some("g".into()),
        log_stream_name: Some("s".into()),
        limit: Some(10),
        next_token: token,
        start_from_head: Some(head),
        ..Default::default()
    };

    // From the head, forward: 10 + 10 + 5, then the same token back.
    let mut forward = Vec::new();
    let mut token: Option<String> = None;
    let mut reached_end = false;
    for _ in 0..10 {
        let page = l.get(req(token.clone(), true)).await;
        let next = page.next_forward_token.clone().expect("forward token");
        assert!(next.starts_with("f/"), "{next}");
        assert!(page.next_backward_token.as_deref().is_some_and(|b| b.starts_with("b/")));
        forward.extend(msgs(&page));
        if token.as_deref() == Some(next.as_str()) {
            assert!(msgs(&page).is_empty());
            reached_end = true;
            break;
        }
        token = Some(next);
    }
    assert!(reached_end);
    assert_eq!(forward, want);

    // The default reads the newest events; backward tokens walk to the start.
    let newest = l.get(req(None, false)).await;
    assert_eq!(msgs(&newest), want[15..].to_vec());
    let mut backward: Vec<Vec<String>> = vec![msgs(&newest)];
    let mut token = newest.next_backward_token.clone();
    reached_end = false;
    for _ in 0..10 {
        let page = l.get(req(token.clone(), false)).await;
        let next = page.next_backward_token.clone().expect("backward token");
        if token.as_deref() == Some(next.as_str()) {
            assert!(msgs(&page).is_empty());
            reached_end = true;
            break;
        }
        backward.push(msgs(&page));
        token = Some(next);
    }
    assert!(reached_end);
    backward.reverse();
    assert_eq!(backward.concat(), want);
    // Forward from the newest page's forward token: nothing new, the same token.
    let tail = l.get(req(newest.next_forward_token.clone(), true)).await;
    assert!(msgs(&tail).is_empty());
    assert_eq!(tail.next_forward_token, newest.next_forward_token);
    // New events appear at that token.
    l.put("g", "s", &[(t + 100, "late")]).await;
    let more = l.get(req(newest.next_forward_token.clone(), true)).await;
    assert_eq!(msgs(&more), ["late"]);

    // Time window (start inclusive, end exclusive), the ARN as identifier, bad tokens and limits.
    let window = l
        .get(logs::GetLogEventsRequest {
            log_group_identifier: Some(l.arn("g")),
            log_stream_name: Some("s".into()),
            start_time: Some(t + 2),
            end_time: Some(t + 4),
            start_from_head: Some(true),
            ..Default::default()
        })
        .await;
    assert_eq!(msgs(&window), ["event 04", "event 05", "event 06", "event 07"]);
    let mut bad = req(Some("f/nonsense".into()), true);
    assert_eq!(l.err(Op::GetLogEvents(bad.clone())).await, ErrorCode::InvalidParameter);
    bad.next_token = None;
    bad.limit = Some(10_001);
    assert_eq!(l.err(Op::GetLogEvents(bad.clone())).await, ErrorCode::InvalidParameter);
    bad.limit = None;
    bad.log_stream_name = Some("missing".into());
    assert_eq!(l.err(Op::GetLogEvents(bad)).await, ErrorCode::ResourceNotFound);
}

#[tokio::test]
async fn filter_log_events_by_pattern_streams_and_pages() {
    let l = Logs::new();
    l.group("g").await;
    let t = now() - 60_000;
    for s in ["ecs/Main/1", "ecs/Main/2", "other"] {
        l.stream("g", s).await;
    }
    l.put(
        "g",
        "ecs/Main/1",
        &[(t, "[ERROR 400] BAD REQUEST"), (t + 2, "INFO ok"), (t + 4, r#"{"level":"error","n":7}"#)],
    )
    .await;
    l.put("g", "ecs/Main/2", &[(t + 1, "[ERROR 419] MISSING ARGUMENTS"), (t + 3, "WARN slow")]).await;
    l.put("g", "other", &[(t + 5, "[ERROR 500] elsewhere")]).await;
    let run = |pattern: &str, prefix: Option<&str>| logs::FilterLogEventsRequest {
        log_group_name: Some("g".into()),
        filter_pattern: Some(pattern.into()),
        log_stream_name_prefix: prefix.map(Into::into),
        ..Default::default()
    };
    let msgs = |r: &logs::FilterLogEventsResponse| -> Vec<String> {
        r.events.iter().flatten().filter_map(|e| e.message.clone()).collect()
    };
    let errors = l.filter(run("ERROR", None)).await;
    assert_eq!(msgs(&errors), ["[ERROR 400] BAD REQUEST", "[ERROR 419] MISSING ARGUMENTS", "[ERROR 500] elsewhere"]);
    let e = &errors.events.as_ref().expect("events")[1];
    assert_eq!(e.log_stream_name.as_deref(), Some("ecs/Main/2"));
    assert_eq!(e.timestamp, Some(t + 1));
    assert!(e.ingestion_time.is_some() && e.event_id.as_ref().is_some_and(|id| !id.is_empty()));
    assert_eq!(msgs(&l.filter(run("ERROR -ARGUMENTS", Some("ecs/"))).await), ["[ERROR 400] BAD REQUEST"]);
    assert_eq!(msgs(&l.filter(run("?WARN ?INFO", None)).await), ["INFO ok", "WARN slow"]);
    assert_eq!(msgs(&l.filter(run("{ $.n > 5 }", None)).await), [r#"{"level":"error","n":7}"#]);
    assert_eq!(
        msgs(&l.filter(run("%^\\[ERROR [45]%", Some("ecs/"))).await),
        ["[ERROR 400] BAD REQUEST", "[ERROR 419] MISSING ARGUMENTS"]
    );
    assert_eq!(msgs(&l.filter(run("", None)).await).len(), 6);
    let named = l
        .filter(logs::FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            log_stream_names: Some(vec!["other".into()]),
            ..Default::default()
        })
        .await;
    assert_eq!(msgs(&named), ["[ERROR 500] elsewhere"]);
    let window = l
        .filter(logs::FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            start_time: Some(t + 1),
            end_time: Some(t + 3),
            ..Default::default()
        })
        .await;
    assert_eq!(msgs(&window), ["[ERROR 419] MISSING ARGUMENTS", "INFO ok"]);

    // Paging with a limit returns every match once.
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = l
            .filter(logs::FilterLogEventsRequest {
                log_group_name: Some("g".into()),
                limit: Some(2),
                next_token: token.clone(),
                ..Default::default()
            })
            .await;
        assert!(msgs(&page).len() <= 2);
        seen.extend(msgs(&page));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, msgs(&l.filter(run("", None)).await));

    for bad in ["%ERR(OR)%", "{ $.n > }", "\"open"] {
        let e = l.c.handle_logs(&l.root, Op::FilterLogEvents(run(bad, None))).await.expect_err(bad);
        assert_eq!(e.code, ErrorCode::InvalidParameter);
        assert!(e.message.contains("Invalid filter pattern"), "{}", e.message);
    }
    let both = Op::FilterLogEvents(logs::FilterLogEventsRequest {
        log_group_name: Some("g".into()),
        log_stream_names: Some(vec!["other".into()]),
        log_stream_name_prefix: Some("ecs".into()),
        ..Default::default()
    });
    assert_eq!(l.err(both).await, ErrorCode::InvalidParameter);
    assert_eq!(
        l.err(Op::FilterLogEvents(logs::FilterLogEventsRequest {
            log_group_name: Some("missing".into()),
            ..Default::default()
        }))
        .await,
        ErrorCode::ResourceNotFound
    );
}

#[tokio::test]
async fn retention_expires_events_on_the_control_planes_clock() {
    let l = Logs::new();
    l.group("g").await;
    l.stream("g", "s").await;
    let t = now();
    l.put("g", "s", &[(t - 3 * DAY, "three days")]).await;
    l.put("g", "s", &[(t - 2 * 3_600_000, "two hours"), (t, "now")]).await;
    for bad in [0, 2, 4, 10_000] {
        let op = Op::PutRetentionPolicy(logs::PutRetentionPolicyRequest {
            log_group_name: Some("g".into()),
            retention_in_days: Some(bad),
        });
        assert_eq!(l.err(op).await, ErrorCode::InvalidParameter, "{bad}");
    }
    let missing = Op::PutRetentionPolicy(logs::PutRetentionPolicyRequest {
        log_group_name: Some("missing".into()),
        retention_in_days: Some(1),
    });
    assert_eq!(l.err(missing).await, ErrorCode::ResourceNotFound);
    l.ok(Op::PutRetentionPolicy(logs::PutRetentionPolicyRequest {
        log_group_name: Some("g".into()),
        retention_in_days: Some(1),
    }))
    .await;
    // Already past the retention: gone at once.
    assert_eq!(l.messages("g", "s").await, ["two hours", "now"]);
    let g = l.groups(Default::default()).await.log_groups.unwrap_or_default().remove(0);
    assert_eq!(g.retention_in_days, Some(1));
    assert_eq!(g.stored_bytes, Some(("two hours".len() + "now".len()) as i64));
    // Events older than the retention are rejected as expired.
    let expired = l.put("g", "s", &[(t - DAY - 1000, "late"), (t - 1000, "fresh")]).await;
    assert_eq!(expired.rejected_log_events_info.and_then(|i| i.expired_log_event_end_index), Some(0));
    // A day later (the periodic pass with a later clock), the two-hour-old event has aged out too.
    assert_eq!(l.c.expire_log_events(t + DAY - 3 * 3_600_000).expect("expire"), 0);
    assert_eq!(l.c.expire_log_events(t + DAY - 3_600_000).expect("expire"), 1);
    assert_eq!(l.messages("g", "s").await, ["fresh", "now"]);
    // Without retention nothing expires.
    l.ok(Op::DeleteRetentionPolicy(logs::DeleteRetentionPolicyRequest { log_group_name: Some("g".into()) })).await;
    assert_eq!(l.c.expire_log_events(t + 3650 * DAY).expect("expire"), 0);
    assert_eq!(l.groups(Default::default()).await.log_groups.unwrap_or_default()[0].retention_in_days, None);
}

#[tokio::test]
async fn tags_on_log_groups() {
    let l = Logs::new();
    l.ok(Op::CreateLogGroup(logs::CreateLogGroupRequest {
        log_group_name: Some("g".into()),
        tags: Some(BTreeMap::from([("team".to_string(), "web".to_string())])),
        ..Default::default()
    }))
    .await;
    let arn = l.arn("g");
    assert_eq!(l.tags(&arn).await, BTreeMap::from([("team".to_string(), "web".to_string())]));
    l.ok(Op::TagResource(logs::TagResourceRequest {
        resource_arn: Some(format!("{arn}:*")),
        tags: Some(BTreeMap::from([("env".to_string(), "prod".to_string()), ("team".to_string(), "api".to_string())])),
    }))
    .await;
    assert_eq!(l.tags(&arn).await.get("team").map(String::as_str), Some("api"));
    l.ok(Op::UntagResource(logs::UntagResourceRequest {
        resource_arn: Some(arn.clone()),
        tag_keys: Some(vec!["env".into()]),
    }))
    .await;
    // The legacy operations see the same tags.
    l.ok(Op::TagLogGroup(logs::TagLogGroupRequest {
        log_group_name: Some("g".into()),
        tags: Some(BTreeMap::from([("legacy".to_string(), "yes".to_string())])),
    }))
    .await;
    let Out::ListTagsLogGroup(legacy) =
        l.ok(Op::ListTagsLogGroup(logs::ListTagsLogGroupRequest { log_group_name: Some("g".into()) })).await
    else {
        panic!("wrong output")
    };
    assert_eq!(legacy.tags.unwrap_or_default().keys().cloned().collect::<Vec<_>>(), ["legacy", "team"]);
    l.ok(Op::UntagLogGroup(logs::UntagLogGroupRequest {
        log_group_name: Some("g".into()),
        tags: Some(vec!["legacy".into()]),
    }))
    .await;
    assert_eq!(l.tags(&arn).await.len(), 1);

    let many: BTreeMap<String, String> = (0..50).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let op = Op::TagResource(logs::TagResourceRequest { resource_arn: Some(arn.clone()), tags: Some(many.clone()) });
    assert_eq!(l.err(op).await, ErrorCode::LogsTooManyTags);
    // TagLogGroup's model has no TooManyTagsException: the same limit is an invalid parameter there.
    let op = Op::TagLogGroup(logs::TagLogGroupRequest { log_group_name: Some("g".into()), tags: Some(many) });
    assert_eq!(l.err(op).await, ErrorCode::InvalidParameter);
    let reserved = Op::TagResource(logs::TagResourceRequest {
        resource_arn: Some(arn.clone()),
        tags: Some(BTreeMap::from([("aws:x".to_string(), "v".to_string())])),
    });
    assert_eq!(l.err(reserved).await, ErrorCode::InvalidParameter);
    let missing = Op::ListTagsForResource(logs::ListTagsForResourceRequest { resource_arn: Some(l.arn("nope")) });
    assert_eq!(l.err(missing).await, ErrorCode::ResourceNotFound);
    // A deleted group's tags go with it.
    l.ok(Op::DeleteLogGroup(logs::DeleteLogGroupRequest { log_group_name: Some("g".into()) })).await;
    l.group("g").await;
    assert!(l.tags(&arn).await.is_empty());
}

#[tokio::test]
async fn users_are_authorized_per_log_group_and_tag() {
    let l = Logs::new();
    l.group("/app/allowed").await;
    l.stream("/app/allowed", "s").await;
    l.group("/app/other").await;
    l.stream("/app/other", "s").await;
    l.ok(Op::CreateLogGroup(logs::CreateLogGroupRequest {
        log_group_name: Some("/app/tagged".into()),
        tags: Some(BTreeMap::from([("team".to_string(), "web".to_string())])),
        ..Default::default()
    }))
    .await;
    let account = l.c.account_id().to_string();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"logs:*","Resource":[
                "arn:aws:logs:*:{account}:log-group:/app/allowed",
                "arn:aws:logs:*:{account}:log-group:/app/allowed:log-stream:*"]}},
            {{"Effect":"Allow","Action":"logs:DescribeLogGroups","Resource":"arn:aws:logs:*:{account}:log-group:*"}},
            {{"Effect":"Allow","Action":["logs:GetLogEvents","logs:DescribeLogStreams"],"Resource":"*",
              "Condition":{{"StringEquals":{{"aws:ResourceTag/team":"web"}}}}}},
            {{"Effect":"Allow","Action":"logs:CreateLogGroup","Resource":"*",
              "Condition":{{"StringEquals":{{"aws:RequestTag/team":"web"}}}}}}
        ]}}"#
    );
    let user = user_with(&l.c, "dev", &policy).await;
    let t = now();
    let call = |op: Op| {
        let c = l.c.clone();
        let user = user.clone();
        async move { c.handle_logs(&user, op).await }
    };
    // Allowed on its own group and stream.
    call(Logs::put_op("/app/allowed", "s", &[(t, "mine")])).await.expect("put allowed");
    call(Op::GetLogEvents(logs::GetLogEventsRequest {
        log_group_name: Some("/app/allowed".into()),
        log_stream_name: Some("s".into()),
        ..Default::default()
    }))
    .await
    .expect("get allowed");
    call(Op::DescribeLogGroups(Default::default())).await.expect("describe groups");
    // Denied elsewhere, with AWS's wording naming the action and the resource.
    let denied = call(Logs::put_op("/app/other", "s", &[(t, "theirs")])).await.expect_err("put other");
    assert_eq!(denied.code, ErrorCode::AccessDenied);
    assert!(denied.message.contains("logs:PutLogEvents"), "{}", denied.message);
    assert!(denied.message.contains("log-group:/app/other:log-stream:s"), "{}", denied.message);
    let denied = call(Op::DeleteLogGroup(logs::DeleteLogGroupRequest { log_group_name: Some("/app/other".into()) }))
        .await
        .expect_err("delete other");
    assert_eq!(denied.code, ErrorCode::AccessDenied);
    // By the group's tag.
    call(Op::DescribeLogStreams(logs::DescribeLogStreamsRequest {
        log_group_name: Some("/app/tagged".into()),
        ..Default::default()
    }))
    .await
    .expect("tagged group");
    let denied = call(Op::DescribeLogStreams(logs::DescribeLogStreamsRequest {
        log_group_name: Some("/app/other".into()),
        ..Default::default()
    }))
    .await
    .expect_err("untagged group");
    assert_eq!(denied.code, ErrorCode::AccessDenied);
    // By the request's tag.
    let create = |tag: &str| {
        Op::CreateLogGroup(logs::CreateLogGroupRequest {
            log_group_name: Some(format!("/new/{tag}")),
            tags: Some(BTreeMap::from([("team".to_string(), tag.to_string())])),
            ..Default::default()
        })
    };
    call(create("web")).await.expect("create with the team tag");
    assert_eq!(call(create("ops")).await.expect_err("other tag").code, ErrorCode::AccessDenied);
    // Nothing was written by the denied calls.
    assert!(l.messages("/app/other", "s").await.is_empty());
    assert!(!names(&l.groups(Default::default()).await).contains(&"/new/ops".to_string()));
}

/// The messages of a live tail's updates until `n` arrived (the first message must be `sessionStart`).
async fn tailed(tail: &mut berth_control::logs::live_tail::LiveTail, n: usize) -> Vec<String> {
    use berth_control::logs::live_tail::LiveMessage;
    let first = tail.next().await.expect("sessionStart");
    assert!(matches!(first, LiveMessage::Event { event_type: "sessionStart", .. }), "{first:?}");
    let mut got = Vec::new();
    while got.len() < n {
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), tail.next()).await;
        match next.expect("an update within 5 s").expect("the session is open") {
            LiveMessage::Event { event_type: "sessionUpdate", payload } => {
                let u: logs::LiveTailSessionUpdate = serde_json::from_slice(&payload).expect("update json");
                got.extend(u.session_results.unwrap_or_default().into_iter().filter_map(|e| e.message));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

#[tokio::test]
async fn live_tail_sees_committed_events_and_is_authorized_per_group() {
    let l = Logs::new();
    for g in ["/tail/a", "/tail/b"] {
        l.group(g).await;
        l.stream(g, "s").await;
    }
    let account = l.c.account_id().to_string();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"logs:StartLiveTail","Resource":"arn:aws:logs:*:{account}:log-group:/tail/a"}}
        ]}}"#
    );
    let user = user_with(&l.c, "tailer", &policy).await;
    let request = |ids: &[&str]| logs::StartLiveTailRequest {
        log_group_identifiers: Some(ids.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    // Every group is authorized: one denied group denies the session.
    let denied = l.c.start_live_tail(&user, request(&["/tail/a", "/tail/b"])).expect_err("b is not allowed");
    assert_eq!(denied.code, ErrorCode::AccessDenied);
    assert!(denied.message.contains("logs:StartLiveTail"), "{}", denied.message);
    assert!(denied.message.contains("log-group:/tail/b"), "{}", denied.message);
    let missing = l.c.start_live_tail(&l.root, request(&["/tail/none"])).expect_err("unknown group");
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);

    let mut tail = l.c.start_live_tail(&user, request(&[&l.arn("/tail/a")])).expect("allowed on a");
    let t = now();
    l.put("/tail/a", "s", &[(t, "one")]).await;
    l.put("/tail/b", "s", &[(t, "not tailed")]).await;
    // Rejected by PutLogEvents' rules (too old): never stored, never tailed.
    let put = l.put("/tail/a", "s", &[(t - 15 * DAY, "too old")]).await;
    assert!(put.rejected_log_events_info.is_some());
    l.put("/tail/a", "s", &[(t, "two")]).await;
    assert_eq!(tailed(&mut tail, 2).await, ["one", "two"]);
}

#[tokio::test]
async fn live_tail_sessions_are_limited_and_end_with_their_client() {
    use berth_control::logs::live_tail::MAX_SESSIONS;
    let l = Logs::new();
    l.group("/tail/limit").await;
    let request = || logs::StartLiveTailRequest {
        log_group_identifiers: Some(vec!["/tail/limit".to_string()]),
        ..Default::default()
    };
    let mut open: Vec<_> = (0..MAX_SESSIONS).map(|_| l.c.start_live_tail(&l.root, request()).expect("open")).collect();
    let over = l.c.start_live_tail(&l.root, request()).expect_err("one too many");
    assert_eq!(over.code, ErrorCode::LimitExceeded);
    // A client that goes away frees its session's place.
    open.pop();
    let mut again = Err(over);
    for _ in 0..100 {
        again = l.c.start_live_tail(&l.root, request());
        if again.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(again.is_ok(), "{again:?}");
}

#[tokio::test]
async fn log_groups_and_events_survive_a_restart() {
    let mut h = common::Harness::new("logs-restart", |_| ControlConfig::default());
    let t = now();
    let root = h.caller.clone();
    for op in [
        Op::CreateLogGroup(logs::CreateLogGroupRequest { log_group_name: Some("g".into()), ..Default::default() }),
        Op::CreateLogStream(logs::CreateLogStreamRequest {
            log_group_name: Some("g".into()),
            log_stream_name: Some("s".into()),
        }),
        Logs::put_op("g", "s", &[(t, "kept")]),
    ] {
        h.control.handle_logs(&root, op).await.expect("setup");
    }
    h.restart();
    let Out::GetLogEvents(r) = h
        .control
        .handle_logs(
            &root,
            Op::GetLogEvents(logs::GetLogEventsRequest {
                log_group_name: Some("g".into()),
                log_stream_name: Some("s".into()),
                ..Default::default()
            }),
        )
        .await
        .expect("get")
    else {
        panic!("wrong output")
    };
    assert_eq!(r.events.unwrap_or_default().into_iter().filter_map(|e| e.message).collect::<Vec<_>>(), ["kept"]);
}
