//! Target tracking (reference §6): not yet.
