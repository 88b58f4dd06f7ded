//! `berth scale` and `berth rm` (in scale.rs and rm.rs, re-exported here); `rollback` and `promote` are in
//! rollback.rs.

pub use crate::rm::{RmArgs, rm};
pub use crate::scale::{ScaleArgs, scale};
