//! The metrics berth publishes itself: `AWS/ECS` CPU and memory from the tasks' samples, and `AWS/ApplicationELB`
//! from the proxies' per-interval reports, turned into [`crate::cloudwatch::ingest::Sample`]s.
