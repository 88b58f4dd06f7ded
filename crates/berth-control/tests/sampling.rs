//! The task sampling pass over the in-memory driver: every running task of a service is read through
//! `Driver::task_stats` and, from its second reading on, becomes `AWS/ECS` samples per service and per cluster
//! (the values themselves are unit-tested in `sampling.rs`); a runtime that cannot be reached fails the pass.

use berth_control::{ControlConfig, UsageHistory};

mod common;

use common::Harness;

#[tokio::test]
async fn running_tasks_are_sampled_from_their_second_reading() {
    let w = Harness::new("sampling", |_| ControlConfig::default());
    w.create_express_roles().await;
    w.create_demo_service("web").await;
    w.settle().await;
    let ids = w.driver.running_ids();
    assert_eq!(ids.len(), 1, "one task runs");
    let mut history = UsageHistory::default();

    w.driver.set_usage(&ids[0], 1_000_000, 64 * 1024 * 1024);
    assert_eq!(w.control.sample_tasks_once(&mut history).await.expect("pass"), 0, "one reading gives no rate");
    w.driver.set_usage(&ids[0], 2_000_000, 64 * 1024 * 1024);
    // CPU and memory, for the service and for the cluster.
    assert_eq!(w.control.sample_tasks_once(&mut history).await.expect("pass"), 4);

    w.driver.stop_daemon();
    assert!(w.control.sample_tasks_once(&mut history).await.is_err(), "an unreachable runtime fails the pass");
    w.driver.start_daemon();
    assert_eq!(w.control.sample_tasks_once(&mut history).await.expect("pass"), 4, "the history survives it");
}
