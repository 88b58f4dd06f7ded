//! berth-core: the domain words of berth (ARNs, ids, names, statuses, defaults, Fargate sizing rules, wildcard
//! patterns) and the one exhaustive mapping from error codes to AWS wire codes and HTTP statuses.
//!
//! It owns pure rules and values only. It must never do I/O, never know a wire protocol's framing, and never
//! depend on another berth crate: every other crate may depend on it. Dates, percent-encoding, hex and UUIDs are
//! spelled here once, on the `time`, `percent-encoding`, `hex` and `uuid` crates.

pub mod arn;
pub mod cidr;
pub mod error;
pub mod ids;
pub mod percent;
pub mod sizing;
pub mod status;
pub mod time;
pub mod wildcard;

pub use arn::Arn;
pub use error::{AwsError, ErrorCode};
