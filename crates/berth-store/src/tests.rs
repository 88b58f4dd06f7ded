use super::*;
use berth_core::status::{ServiceStatus, TaskStatus};

fn service(name: &str) -> ServiceRow {
    ServiceRow {
        id: 0,
        arn: format!("arn:aws:ecs:us-east-1:000000000000:service/default/{name}"),
        cluster: "default".into(),
        name: name.into(),
        status: ServiceStatus::Active,
        status_reason: None,
        express: true,
        infrastructure_role_arn: None,
        target_revision: "rev-1".into(),
        live_revision: Some("rev-1".into()),
        desired_count: 1,
        endpoint_host: format!("{name}.example"),
        created_at: 1.0,
        updated_at: 1.0,
    }
}

fn task(id: &str, service_id: i64) -> TaskRow {
    TaskRow {
        id: id.into(),
        arn: format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}"),
        cluster: "default".into(),
        service_id: Some(service_id),
        revision_arn: Some("rev-1".into()),
        task_definition_arn: "td".into(),
        started_by: None,
        desired_status: TaskStatus::Running,
        last_status: TaskStatus::Provisioning,
        ip: None,
        port: 80,
        created_at: 2.0,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        exit_code: None,
        drain_version: None,
    }
}

#[test]
fn active_names_are_unique_but_reusable_after_delete() {
    let mut s = Store::open_in_memory().expect("open");
    let id = s.tx(|t| t.service_insert(&service("web"))).expect("insert");
    let dup = s.tx(|t| t.service_insert(&service("web")));
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    s.tx(|t| {
        let mut row = t.service_by_id(id)?.expect("row");
        row.status = ServiceStatus::Draining;
        t.service_update(&row)
    })
    .expect("drain");
    let id2 = s.tx(|t| t.service_insert(&service("web"))).expect("reuse name");
    assert_ne!(id, id2);
    let found = s.tx(|t| t.service_by_name("default", "web")).expect("q").expect("some");
    assert_eq!(found.id, id2, "the ACTIVE one wins over the DRAINING one");
    assert_eq!(s.tx(|t| t.services_live(Some("default"))).expect("live").len(), 2);
}

#[test]
fn failed_transaction_leaves_nothing() {
    let mut s = Store::open_in_memory().expect("open");
    let r: std::result::Result<(), StoreError> = s.tx(|t| {
        t.service_insert(&service("a"))?;
        Err(StoreError::Corrupt("boom".into()))
    });
    assert!(r.is_err());
    assert!(s.tx(|t| t.services_live(None)).expect("q").is_empty());
}

#[test]
fn tasks_round_trip_and_filter() {
    let mut s = Store::open_in_memory().expect("open");
    let sid = s.tx(|t| t.service_insert(&service("web"))).expect("svc");
    s.tx(|t| {
        t.task_insert(&task("t1", sid))?;
        t.task_insert(&task("t2", sid))
    })
    .expect("tasks");
    let mut t1 = s.tx(|t| t.task_get("t1")).expect("get").expect("some");
    t1.last_status = TaskStatus::Stopped;
    t1.desired_status = TaskStatus::Stopped;
    t1.stopped_at = Some(10.0);
    t1.exit_code = Some(3);
    s.tx(|t| t.task_update(&t1)).expect("update");
    let by_arn = s.tx(|t| t.task_get(&t1.arn)).expect("get").expect("some");
    assert_eq!(by_arn, t1);
    assert_eq!(s.tx(|t| t.tasks_not_stopped()).expect("q").len(), 1);
    assert_eq!(s.tx(|t| t.tasks_in("default", Some(sid), Some(TaskStatus::Stopped))).expect("q").len(), 1);
    assert_eq!(s.tx(|t| t.tasks_stopped_since(sid, 5.0)).expect("q").len(), 1);
    assert_eq!(s.tx(|t| t.tasks_prune_stopped(11.0)).expect("q"), 1);
}

#[test]
fn task_definition_revisions_count_up_per_family() {
    let mut s = Store::open_in_memory().expect("open");
    for want in 1..=3 {
        let row = s
            .tx(|t| t.task_definition_register("default-web", |r| format!("td/default-web:{r}"), |a, _| a.into(), 1.0))
            .expect("register");
        assert_eq!(row.revision, want);
    }
    let latest = s.tx(|t| t.task_definition_by_family("default-web", None)).expect("q").expect("some");
    assert_eq!(latest.revision, 3);
    let second = s.tx(|t| t.task_definition_by_family("default-web", Some(2))).expect("q").expect("some");
    assert_eq!(second.arn, "td/default-web:2");
    assert_eq!(s.tx(|t| t.task_definitions(Some("default-web"), "ACTIVE")).expect("q").len(), 3);
    // The family is matched whole, as ECS's ListTaskDefinitions documents `familyPrefix`.
    assert!(s.tx(|t| t.task_definitions(Some("default-"), "ACTIVE")).expect("q").is_empty());
    let first = s.tx(|t| t.task_definition_by_family("default-web", Some(1))).expect("q").expect("some");
    s.tx(|t| t.task_definition_set_status(&first.arn, "INACTIVE", "{}")).expect("status");
    assert_eq!(s.tx(|t| t.task_definitions(None, "ACTIVE")).expect("q").len(), 2);
    let inactive = s.tx(|t| t.task_definitions(None, "INACTIVE")).expect("q");
    assert_eq!((inactive.len(), inactive[0].body.as_str()), (1, "{}"));
}

#[test]
fn tags_and_meta() {
    let mut s = Store::open_in_memory().expect("open");
    s.tx(|t| {
        t.tags_put("arn:x", &[("a".into(), "1".into()), ("b".into(), "2".into())])?;
        t.tags_put("arn:x", &[("a".into(), "3".into())])?;
        t.tags_remove("arn:x", &["b".into()])
    })
    .expect("tags");
    assert_eq!(s.tx(|t| t.tags_get("arn:x")).expect("q"), vec![("a".to_string(), "3".to_string())]);
    assert_eq!(s.tx(|t| t.next_counter("v")).expect("c"), 1);
    assert_eq!(s.tx(|t| t.next_counter("v")).expect("c"), 2);
}

#[test]
fn reopening_a_file_keeps_data_and_schema() {
    let dir = std::env::temp_dir().join(format!("berth-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("berth.db");
    {
        let mut s = Store::open(&path).expect("open");
        s.tx(|t| t.meta_set("k", "v")).expect("set");
    }
    let mut s = Store::open(&path).expect("reopen");
    assert_eq!(s.tx(|t| t.meta_get("k")).expect("get").as_deref(), Some("v"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn events_keep_the_newest_hundred() {
    let mut s = Store::open_in_memory().expect("open");
    let sid = s.tx(|t| t.service_insert(&service("web"))).expect("svc");
    s.tx(|t| {
        for i in 0..105 {
            t.event_add(sid, f64::from(i), &format!("event {i}"))?;
        }
        Ok::<_, StoreError>(())
    })
    .expect("events");
    let events = s.tx(|t| t.events(sid)).expect("q");
    assert_eq!(events.len(), 100);
    assert_eq!(events[0].2, "event 104");
    assert_eq!(events[99].2, "event 5");
}
