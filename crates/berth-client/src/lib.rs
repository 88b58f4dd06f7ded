//! berth-client: how berth's own tools (the `berth` CLI and the web console) call berth's public AWS API.
//!
//! It owns finding credentials and the endpoint as every AWS tool does (environment, `~/.aws` profiles, a local
//! berth's data directory), signing with SigV4 (`aws-sigv4`, AWS's maintained signer), the HTTPS transport
//! (rustls on ring, trusting berth's CA), and the client side of the protocols: AWS JSON 1.1/1.0 and Query with
//! XML responses decoded by the generated wire schema. It must never know what an operation means, and never
//! reach berth any other way than its public API: no store, no control plane, no internal API.

#![forbid(unsafe_code)]

mod client;
mod credentials;
mod error;
mod protocol;
mod resolve;
mod service;
mod sign;
mod transport;

pub use client::{Client, Settings};
pub use credentials::Credentials;
pub use error::ClientError;
pub use resolve::{LocalBerth, Sources, is_local_berth, resolve};
pub use service::Service;
