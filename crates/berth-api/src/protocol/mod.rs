//! The AWS wire protocols: which service and operation a request names, how its body becomes a typed
//! [`Request`](crate::Request), and how responses and errors are written back.
//!
//! Only AWS JSON 1.1 (`X-Amz-Target`) exists so far. Query/XML (ELBv2, IAM, STS: a form-encoded `Action=`
//! body) and the EC2 protocol become further [`Protocol`] variants, detected from the headers before the
//! request is authenticated so that even authentication errors come back in the caller's protocol.

pub(crate) mod json;

use berth_core::AwsError;
use bytes::Bytes;

use crate::sigv4::AuthError;
use crate::{Request, Response};

/// An AWS service berth serves on this endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Ecs,
}

impl Service {
    /// The SigV4 signing name the credential scope must carry.
    pub(crate) fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => berth_model::ecs::SIGNING_NAME,
        }
    }
}

/// Which service and operation a request is for, known before its body is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) service: Service,
    pub(crate) operation: String,
}

/// A wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// AWS JSON 1.1: `POST /`, `X-Amz-Target: Prefix.Operation`, JSON body.
    Json,
}

impl Protocol {
    /// Guesses the protocol from the headers alone (the request is not authenticated yet).
    pub(crate) fn detect(_parts: &http::request::Parts) -> Protocol {
        Protocol::Json
    }

    /// The protocol's spelling of an authentication failure.
    pub(crate) fn auth_error(self, e: &AuthError) -> AwsError {
        match self {
            Protocol::Json => json::auth_error(e),
        }
    }

    /// Names the service and operation. Runs after authentication.
    pub(crate) fn route(self, parts: &http::request::Parts, _body: &[u8]) -> Result<Route, AwsError> {
        match self {
            Protocol::Json => json::route(parts),
        }
    }

    /// Decodes the body into the typed request of `route`.
    pub(crate) fn decode(self, route: &Route, body: &[u8]) -> Result<Request, AwsError> {
        match self {
            Protocol::Json => json::decode(route, body),
        }
    }

    /// Writes a successful response.
    pub(crate) fn encode(self, response: &Response, request_id: &str) -> http::Response<Bytes> {
        match self {
            Protocol::Json => json::encode(response, request_id),
        }
    }

    /// Writes an error response.
    pub(crate) fn encode_error(self, error: &AwsError, request_id: &str) -> http::Response<Bytes> {
        match self {
            Protocol::Json => json::encode_error(error, request_id),
        }
    }
}
