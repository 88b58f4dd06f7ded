//! SigV4 signing of outgoing requests with `aws-sigv4`, AWS's maintained signer.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::{ClientError, Credentials};

/// Signs `request` in place (headers `x-amz-date`, `x-amz-security-token` and `authorization`) for `service` in
/// `region` at `time`. Every header already on the request (host, content-type, x-amz-target) is signed.
pub(crate) fn sign_request(
    request: &mut http::Request<bytes::Bytes>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), ClientError> {
    let failed = |e: &dyn std::fmt::Display| ClientError::Config(format!("cannot sign the request: {e}"));
    let identity: Identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "berth-client",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| Ok((k.as_str(), v.to_str().map_err(|e| failed(&e))?)))
        .collect::<Result<Vec<_>, ClientError>>()?;
    let uri = request.uri().to_string();
    let signable =
        SignableRequest::new(request.method().as_str(), uri, headers.into_iter(), SignableBody::Bytes(request.body()))
            .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| failed(&e))?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
