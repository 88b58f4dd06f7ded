//! Metric math (reference §2): not yet.
