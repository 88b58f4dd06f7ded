//! AWS Signature Version 4: verification of incoming requests and a signer for berth's own clients and tests.
//!
//! Pure: no I/O, no clock (the caller passes "now"), no knowledge of services or protocols. The canonical
//! request is built exactly as AWS and botocore build it for every service except S3: the URI path is
//! normalised (dot segments and empty segments removed) and URI-encoded once more on top of the encoding it
//! has on the wire; the query string is decoded, re-encoded with RFC 3986 rules and sorted; header values are
//! trimmed with inner whitespace collapsed; the payload hash is the SHA-256 of the body.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method, Uri};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Credential;

type HmacSha256 = Hmac<Sha256>;

/// The only signing algorithm berth accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope terminator.
pub const TERMINATOR: &str = "aws4_request";
/// The longest a presigned URL may stay valid, in seconds (one week).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;
/// AWS's wording for a signature that does not verify.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Why a request did not authenticate. The protocol layer maps each kind onto its own error spelling
/// (`InvalidSignatureException` in JSON protocols, `SignatureDoesNotMatch` in Query, and so on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    Missing,
    /// The signature information is present but malformed or incomplete.
    #[error("{0}")]
    Incomplete(String),
    /// The access key is unknown, or the session token does not belong to it.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The temporary credential has expired.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// The request date is outside the allowed clock skew, or a presigned URL has expired.
    #[error("{0}")]
    Expired(String),
    /// The signature does not verify, or the credential scope is wrong.
    #[error("{0}")]
    InvalidSignature(String),
}

/// The credential scope a request was signed for: `yyyymmdd/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub date: String,
    pub region: String,
    pub service: String,
}

/// A request whose signature verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub access_key_id: String,
    pub credential: Credential,
    pub scope: Scope,
}

/// The signature information a request claims, before anything is checked against a secret.
#[derive(Debug)]
struct Claim {
    access_key_id: String,
    scope: Scope,
    signed_headers: String,
    signature: String,
    /// The request time in ISO 8601 basic format, as it goes into the string to sign.
    amz_date: String,
    date: OffsetDateTime,
    /// `X-Amz-Expires` of a presigned request.
    expires: Option<u64>,
    session_token: Option<String>,
    presigned: bool,
}

/// Verifies the SigV4 signature of a request.
///
/// `path` and `query` are taken raw from `uri` (as sent on the wire); `host` comes from the `Host` header,
/// or from the URI's authority for HTTP/2. `lookup` resolves an access key id to its credential.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    clock_skew: Duration,
    lookup: impl FnOnce(&str) -> Option<Credential>,
) -> Result<Verified, AuthError> {
    let query = parse_query(uri.query().unwrap_or(""));
    let claim = parse_claim(headers, &query)?;
    let now = OffsetDateTime::from(now);
    check_time(&claim, now, clock_skew)?;

    let credential = lookup(&claim.access_key_id).ok_or(AuthError::UnrecognizedClient)?;
    match (&credential.session_token, &claim.session_token) {
        (None, None) => {}
        (Some(expected), Some(given)) if berth_core::ids::constant_time_eq(expected.as_bytes(), given.as_bytes()) => {}
        _ => return Err(AuthError::UnrecognizedClient),
    }
    if let Some(expires_at) = credential.expires_at
        && OffsetDateTime::from(expires_at) <= now
    {
        return Err(AuthError::ExpiredToken);
    }

    let computed = hex::encode(Sha256::digest(body));
    let payload_hash = match headers.get("x-amz-content-sha256") {
        Some(v) if v.as_bytes().eq_ignore_ascii_case(computed.as_bytes()) => {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        }
        Some(_) => {
            return Err(AuthError::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
            ));
        }
        None => computed,
    };

    let canonical_query = canonical_query_string(&query, claim.presigned);
    let canonical_headers = canonical_headers(&claim.signed_headers, headers, uri);
    let creq = canonical_request(
        method.as_str(),
        &canonical_uri(uri.path()),
        &canonical_query,
        &canonical_headers,
        &claim.signed_headers,
        &payload_hash,
    );
    let sts = string_to_sign(&claim.amz_date, &claim.scope, &creq);
    let key = signing_key(&credential.secret_access_key, &claim.scope);
    let expected = hmac_sha256(&key, sts.as_bytes());
    let given = hex::decode(claim.signature.as_bytes()).unwrap_or_default();
    if !berth_core::ids::constant_time_eq(&expected, &given) {
        return Err(AuthError::InvalidSignature(SIGNATURE_MISMATCH.into()));
    }
    Ok(Verified { access_key_id: claim.access_key_id, credential, scope: claim.scope })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| AuthError::Incomplete(format!("The {name} header contains characters that are not ASCII."))),
    }
}

fn query_param<'a>(query: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    query.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| v.as_slice())
}

const PRESIGN_PARAMS: [&str; 5] =
    ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders"];

fn parse_claim(headers: &HeaderMap, query: &[(Vec<u8>, Vec<u8>)]) -> Result<Claim, AuthError> {
    let authorization = header_str(headers, "authorization")?;
    let presigned = query_param(query, "X-Amz-Algorithm").is_some()
        || query_param(query, "X-Amz-Credential").is_some()
        || query_param(query, "X-Amz-Signature").is_some();
    match (authorization, presigned) {
        (None, false) => Err(AuthError::Missing),
        (Some(_), true) => Err(AuthError::Incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization \
             header should be specified."
                .into(),
        )),
        (Some(auth), false) => parse_header_claim(auth, headers),
        (None, true) => parse_query_claim(query),
    }
}

fn parse_header_claim(auth: &str, headers: &HeaderMap) -> Result<Claim, AuthError> {
    let (algorithm, rest) = auth.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((auth, ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported authorization type '{algorithm}': berth accepts only '{ALGORITHM}'. Authorization={auth}"
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else { continue };
        let v = v.trim().to_string();
        match k.trim() {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let amz_date = header_str(headers, "x-amz-date")?;
    let http_date = header_str(headers, "date")?;
    let mut missing = Vec::new();
    for (name, value) in [("Credential", &credential), ("Signature", &signature), ("SignedHeaders", &signed_headers)] {
        if value.as_deref().is_none_or(str::is_empty) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if amz_date.is_none() && http_date.is_none() {
        missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into());
    }
    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, missing.is_empty())
    else {
        return Err(AuthError::Incomplete(format!("{} Authorization={auth}", missing.join(" "))));
    };
    let (amz_date, date) = match (amz_date, http_date) {
        (Some(d), _) => (d.to_string(), parse_basic_iso(d).ok_or_else(|| bad_date(d))?),
        (None, Some(d)) => {
            let date = parse_http_date(d).ok_or_else(|| bad_date(d))?;
            (format_basic_iso(date), date)
        }
        (None, None) => return Err(AuthError::Missing),
    };
    let session_token = header_str(headers, "x-amz-security-token")?.map(str::to_string);
    finish_claim(credential, signed_headers, signature, amz_date, date, None, session_token, false)
}

fn parse_query_claim(query: &[(Vec<u8>, Vec<u8>)]) -> Result<Claim, AuthError> {
    let get = |name: &str| query_param(query, name).map(|v| String::from_utf8_lossy(v).into_owned());
    let missing: Vec<String> = PRESIGN_PARAMS
        .iter()
        .filter(|p| get(p).is_none_or(|v| v.is_empty()))
        .map(|p| format!("AWS query-string parameters must include '{p}'."))
        .collect();
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!("{} Re-examine the query-string parameters.", missing.join(" "))));
    }
    let value = |name: &str| get(name).unwrap_or_default();
    let algorithm = value("X-Amz-Algorithm");
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!("X-Amz-Algorithm only supports '{ALGORITHM}', not '{algorithm}'.")));
    }
    let amz_date = value("X-Amz-Date");
    let date = parse_basic_iso(&amz_date).ok_or_else(|| bad_date(&amz_date))?;
    let expires = match get("X-Amz-Expires") {
        None => None,
        Some(e) => {
            let n: u64 = e
                .parse()
                .map_err(|_| AuthError::Incomplete(format!("X-Amz-Expires should be a number, not '{e}'.")))?;
            if n > MAX_PRESIGN_EXPIRES {
                return Err(AuthError::Incomplete(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
                )));
            }
            Some(n)
        }
    };
    finish_claim(
        value("X-Amz-Credential"),
        value("X-Amz-SignedHeaders"),
        value("X-Amz-Signature"),
        amz_date,
        date,
        expires,
        get("X-Amz-Security-Token"),
        true,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish_claim(
    credential: String,
    signed_headers: String,
    signature: String,
    amz_date: String,
    date: OffsetDateTime,
    expires: Option<u64>,
    session_token: Option<String>,
    presigned: bool,
) -> Result<Claim, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts.as_slice() else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \
             '{credential}'"
        )));
    };
    if access_key_id.is_empty() {
        return Err(AuthError::Incomplete(format!("Credential has an empty access key id: '{credential}'")));
    }
    if *terminator != TERMINATOR {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }
    let request_day = amz_date.get(..8).unwrap_or("");
    if *scope_date != request_day {
        return Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{scope_date}' != '{request_day}', from '{amz_date}'."
        )));
    }
    if !signed_headers.split(';').any(|h| h.eq_ignore_ascii_case("host")) {
        return Err(AuthError::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    Ok(Claim {
        access_key_id: access_key_id.to_string(),
        scope: Scope { date: scope_date.to_string(), region: region.to_string(), service: service.to_string() },
        signed_headers,
        signature,
        amz_date,
        date,
        expires,
        session_token,
        presigned,
    })
}

fn bad_date(value: &str) -> AuthError {
    AuthError::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

fn check_time(claim: &Claim, now: OffsetDateTime, skew: Duration) -> Result<(), AuthError> {
    let minutes = skew.as_secs() / 60;
    let date = format_basic_iso(claim.date);
    let later = now + skew;
    if claim.date > later {
        return Err(AuthError::Expired(format!(
            "Signature not yet current: {date} is still later than {} ({} + {minutes} min.)",
            format_basic_iso(later),
            format_basic_iso(now)
        )));
    }
    match claim.expires {
        Some(expires) => {
            let oldest = now - Duration::from_secs(expires);
            if claim.date < oldest {
                return Err(AuthError::Expired(format!(
                    "Signature expired: {date} is now earlier than {} ({} - {expires} sec.)",
                    format_basic_iso(oldest),
                    format_basic_iso(now)
                )));
            }
        }
        None => {
            let earlier = now - skew;
            if claim.date < earlier {
                return Err(AuthError::Expired(format!(
                    "Signature expired: {date} is now earlier than {} ({} - {minutes} min.)",
                    format_basic_iso(earlier),
                    format_basic_iso(now)
                )));
            }
        }
    }
    Ok(())
}

/// SigV4's basic ISO 8601 form, `yyyymmddThhmmssZ`, always UTC.
const BASIC_ISO: &[time::format_description::BorrowedFormatItem<'_>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// Parses `yyyymmddThhmmssZ`: exactly those sixteen characters (no sign or wider year).
pub fn parse_basic_iso(s: &str) -> Option<OffsetDateTime> {
    let digits_where_due = s.bytes().enumerate().all(|(i, c)| matches!(i, 8 | 15) || c.is_ascii_digit());
    if s.len() != 16 || !digits_where_due {
        return None;
    }
    Some(time::PrimitiveDateTime::parse(s, BASIC_ISO).ok()?.assume_utc())
}

/// Formats `yyyymmddThhmmssZ` (UTC).
pub fn format_basic_iso(t: OffsetDateTime) -> String {
    // Only fails for components an `OffsetDateTime` lacks, which the description does not use.
    t.to_offset(time::UtcOffset::UTC).format(BASIC_ISO).unwrap_or_default()
}

/// Parses an HTTP `Date` header: `Tue, 10 Oct 2023 00:30:00 GMT` (RFC 7231), also with `-0000`/`+0000`.
fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let mut parts: Vec<&str> = s.split_ascii_whitespace().collect();
    if parts.first().is_some_and(|p| p.ends_with(',')) {
        parts.remove(0);
    }
    let [day, month, year, hms, zone] = parts.as_slice() else { return None };
    if !matches!(*zone, "GMT" | "UTC" | "Z" | "+0000" | "-0000") {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month_index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))?;
    let month = time::Month::try_from(u8::try_from(month_index + 1).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let mut hms = hms.split(':').map(|p| p.parse::<u8>().ok());
    let t = time::Time::from_hms(hms.next()??, hms.next()??, hms.next()??).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// Splits a raw query string into percent-decoded pairs (`+` decodes to a space), skipping empty pieces.
fn parse_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (berth_core::percent::decode_form(k.as_bytes()), berth_core::percent::decode_form(v.as_bytes()))
        })
        .collect()
}

/// Removes `.`/`..` and empty segments as botocore's `remove_dot_segments` does.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !out.is_empty() { "/" } else { "" };
    format!("{first}{}{last}", out.join("/"))
}

/// The canonical URI of a raw (wire-encoded) path, for every service but S3.
pub fn canonical_uri(raw_path: &str) -> String {
    berth_core::percent::encode(normalize_path(raw_path).as_bytes(), true)
}

fn canonical_query_string(query: &[(Vec<u8>, Vec<u8>)], presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !(presigned && k == b"X-Amz-Signature"))
        .map(|(k, v)| (berth_core::percent::encode(k, false), berth_core::percent::encode(v, false)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// `name:value` lines for the signed headers, in the order they were signed. Values are trimmed, runs of
/// whitespace collapse to one space, and repeated headers join with `,`.
fn canonical_headers(signed_headers: &str, headers: &HeaderMap, uri: &Uri) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, name) in signed_headers.split(';').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() && name.eq_ignore_ascii_case("host") {
            if let Some(authority) = uri.authority() {
                out.extend_from_slice(authority.as_str().as_bytes());
            }
            continue;
        }
        for (j, v) in values.enumerate() {
            if j > 0 {
                out.push(b',');
            }
            trim_all(v.as_bytes(), &mut out);
        }
    }
    out
}

fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    let mut first = true;
    for word in value.split(|c| c.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(word);
        first = false;
    }
}

fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &[u8],
    signed_headers: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + canonical_headers.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_headers);
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

fn string_to_sign(amz_date: &str, scope: &Scope, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}/{}/{}/{TERMINATOR}\n{}",
        scope.date,
        scope.region,
        scope.service,
        hex::encode(Sha256::digest(canonical_request))
    )
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail; an all-zero MAC would simply never verify.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else { return [0; 32] };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn signing_key(secret: &str, scope: &Scope) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Keys a client signs with.
#[derive(Debug, Clone, Copy)]
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// Where and when a request is signed.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub credentials: SigningCredentials<'a>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// Headers a signer leaves out, as botocore does (hop-by-hop and ones proxies rewrite).
const UNSIGNED_HEADERS: [&str; 6] = ["authorization", "user-agent", "expect", "connection", "x-amzn-trace-id", "te"];

/// Signs a request in place with an `Authorization` header: sets `x-amz-date`, `x-amz-security-token` for
/// temporary credentials and `host` (from the URI) when absent, then signs every header present.
pub fn sign(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    params: &SigningParams<'_>,
) -> Result<(), http::header::InvalidHeaderValue> {
    let amz_date = format_basic_iso(OffsetDateTime::from(params.time));
    let scope = Scope {
        date: amz_date[..8].to_string(),
        region: params.region.to_string(),
        service: params.service.to_string(),
    };
    headers.remove(http::header::AUTHORIZATION);
    headers.insert("x-amz-date", HeaderValue::from_str(&amz_date)?);
    if let Some(token) = params.credentials.session_token {
        headers.insert("x-amz-security-token", HeaderValue::from_str(token)?);
    }
    if !headers.contains_key(http::header::HOST)
        && let Some(authority) = uri.authority()
    {
        headers.insert(http::header::HOST, HeaderValue::from_str(authority.as_str())?);
    }
    let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).filter(|k| !UNSIGNED_HEADERS.contains(k)).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");
    let query = parse_query(uri.query().unwrap_or(""));
    let creq = canonical_request(
        method.as_str(),
        &canonical_uri(uri.path()),
        &canonical_query_string(&query, false),
        &canonical_headers(&signed_headers, headers, uri),
        &signed_headers,
        &hex::encode(Sha256::digest(body)),
    );
    let signature = hex::encode(hmac_sha256(
        &signing_key(params.credentials.secret_access_key, &scope),
        string_to_sign(&amz_date, &scope, &creq).as_bytes(),
    ));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}/{}/{}/{TERMINATOR}, SignedHeaders={signed_headers}, Signature={signature}",
        params.credentials.access_key_id, scope.date, scope.region, scope.service
    );
    headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&authorization)?);
    Ok(())
}

/// Presigns a request: returns the path and query to send (with the `X-Amz-*` parameters and the signature),
/// signing only `host`, which is taken from `uri`'s authority.
pub fn presign(method: &Method, uri: &Uri, body: &[u8], params: &SigningParams<'_>, expires: Duration) -> String {
    let amz_date = format_basic_iso(OffsetDateTime::from(params.time));
    let scope = Scope {
        date: amz_date[..8].to_string(),
        region: params.region.to_string(),
        service: params.service.to_string(),
    };
    let credential =
        format!("{}/{}/{}/{}/{TERMINATOR}", params.credentials.access_key_id, scope.date, scope.region, scope.service);
    let mut query = uri.query().unwrap_or("").to_string();
    let mut add = |k: &str, v: &str| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("{k}={}", berth_core::percent::encode(v.as_bytes(), false)));
    };
    add("X-Amz-Algorithm", ALGORITHM);
    add("X-Amz-Credential", &credential);
    add("X-Amz-Date", &amz_date);
    add("X-Amz-Expires", &expires.as_secs().to_string());
    add("X-Amz-SignedHeaders", "host");
    if let Some(token) = params.credentials.session_token {
        add("X-Amz-Security-Token", token);
    }
    let mut headers = HeaderMap::new();
    if let Some(a) = uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
        headers.insert(http::header::HOST, a);
    }
    let creq = canonical_request(
        method.as_str(),
        &canonical_uri(uri.path()),
        &canonical_query_string(&parse_query(&query), true),
        &canonical_headers("host", &headers, uri),
        "host",
        &hex::encode(Sha256::digest(body)),
    );
    let signature = hex::encode(hmac_sha256(
        &signing_key(params.credentials.secret_access_key, &scope),
        string_to_sign(&amz_date, &scope, &creq).as_bytes(),
    ));
    format!("{}?{query}&X-Amz-Signature={signature}", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Principal;

    fn cred(secret: &str, token: Option<&str>) -> Credential {
        Credential {
            secret_access_key: secret.into(),
            principal: Principal {
                arn: "arn:aws:iam::123456789012:root".into(),
                account: "123456789012".into(),
                user_id: "123456789012".into(),
            },
            session_token: token.map(str::to_string),
            expires_at: None,
        }
    }

    fn at(s: &str) -> SystemTime {
        parse_basic_iso(s).map(SystemTime::from).expect("time")
    }

    const SKEW: Duration = Duration::from_secs(900);

    /// The worked example of the AWS SigV4 documentation (IAM ListUsers), an anchor independent of botocore.
    #[test]
    fn aws_documentation_example() {
        let uri: Uri = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08".parse().expect("uri");
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            ),
        );
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let v = verify(&Method::GET, &uri, &headers, b"", at("20150830T123600Z"), SKEW, |k| {
            (k == "AKIDEXAMPLE").then(|| cred(secret, None))
        })
        .expect("verifies");
        assert_eq!(v.scope, Scope { date: "20150830".into(), region: "us-east-1".into(), service: "iam".into() });

        // And our signer produces the same signature.
        let mut h2 = HeaderMap::new();
        h2.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        let params = SigningParams {
            credentials: SigningCredentials {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: secret,
                session_token: None,
            },
            region: "us-east-1",
            service: "iam",
            time: at("20150830T123600Z"),
        };
        sign(&Method::GET, &uri, &mut h2, b"", &params).expect("sign");
        assert_eq!(h2.get("authorization"), headers.get("authorization"));
    }

    #[test]
    fn path_normalisation_matches_botocore() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("/a/./b/../c", "/a/c"),
            ("//a//b/", "/a/b/"),
            ("/a%20b", "/a%2520b"),
            ("/a b", "/a%20b"),
            ("/a:b@c$", "/a%3Ab%40c%24"),
            ("/..", "/"),
            ("/~x", "/~x"),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_uri(raw), want, "{raw}");
        }
    }

    #[test]
    fn query_canonicalisation() {
        let q = parse_query("b=2&a=%7e+x&a=1&c&&X-Amz-Signature=zz");
        assert_eq!(canonical_query_string(&q, false), "X-Amz-Signature=zz&a=1&a=~%20x&b=2&c=");
        assert_eq!(canonical_query_string(&q, true), "a=1&a=~%20x&b=2&c=");
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("  a   b \t c  "));
        h.append("x-a", HeaderValue::from_static("d"));
        h.insert("host", HeaderValue::from_static("h"));
        let uri: Uri = "/".parse().expect("uri");
        assert_eq!(canonical_headers("host;x-a", &h, &uri), b"host:h\nx-a:a b c,d");
    }

    fn signed(time: &str, token: Option<&str>) -> (Uri, HeaderMap) {
        let uri: Uri = "https://ecs.us-east-1.amazonaws.com/".parse().expect("uri");
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.ListClusters"));
        let params = SigningParams {
            credentials: SigningCredentials {
                access_key_id: "AKID",
                secret_access_key: "secret",
                session_token: token,
            },
            region: "us-east-1",
            service: "ecs",
            time: at(time),
        };
        sign(&Method::POST, &uri, &mut h, b"{}", &params).expect("sign");
        (uri, h)
    }

    fn check(uri: &Uri, h: &HeaderMap, body: &[u8], now: &str, c: Option<Credential>) -> Result<Verified, AuthError> {
        verify(&Method::POST, uri, h, body, at(now), SKEW, |_| c)
    }

    #[test]
    fn errors() {
        let now = "20231010T003000Z";
        let (uri, h) = signed(now, None);
        assert!(check(&uri, &h, b"{}", now, Some(cred("secret", None))).is_ok());
        assert!(
            matches!(check(&uri, &h, b"{ }", now, Some(cred("secret", None))), Err(AuthError::InvalidSignature(m)) if m == SIGNATURE_MISMATCH)
        );
        assert!(matches!(check(&uri, &h, b"{}", now, Some(cred("other", None))), Err(AuthError::InvalidSignature(_))));
        assert_eq!(check(&uri, &h, b"{}", now, None).map(|_| ()), Err(AuthError::UnrecognizedClient));
        // A long-term key must not come with a token; a temporary one must come with its own.
        assert_eq!(
            check(&uri, &h, b"{}", now, Some(cred("secret", Some("tok")))).map(|_| ()),
            Err(AuthError::UnrecognizedClient)
        );
        let (uri_t, h_t) = signed(now, Some("tok"));
        assert!(check(&uri_t, &h_t, b"{}", now, Some(cred("secret", Some("tok")))).is_ok());
        assert_eq!(
            check(&uri_t, &h_t, b"{}", now, Some(cred("secret", None))).map(|_| ()),
            Err(AuthError::UnrecognizedClient)
        );
        assert_eq!(
            check(&uri_t, &h_t, b"{}", now, Some(cred("secret", Some("other")))).map(|_| ()),
            Err(AuthError::UnrecognizedClient)
        );
        let mut expired = cred("secret", Some("tok"));
        expired.expires_at = Some(at("20231010T002959Z"));
        assert_eq!(check(&uri_t, &h_t, b"{}", now, Some(expired)).map(|_| ()), Err(AuthError::ExpiredToken));

        // Clock skew, both ways, in AWS's words.
        let (uri_old, h_old) = signed("20231010T000000Z", None);
        assert_eq!(
            check(&uri_old, &h_old, b"{}", now, Some(cred("secret", None))).map(|_| ()),
            Err(AuthError::Expired(
                "Signature expired: 20231010T000000Z is now earlier than 20231010T001500Z (20231010T003000Z - 15 min.)"
                    .into()
            ))
        );
        assert!(check(&uri_old, &h_old, b"{}", "20231010T001500Z", Some(cred("secret", None))).is_ok());
        let (uri_new, h_new) = signed("20231010T010000Z", None);
        assert_eq!(
            check(&uri_new, &h_new, b"{}", now, Some(cred("secret", None))).map(|_| ()),
            Err(AuthError::Expired(
                "Signature not yet current: 20231010T010000Z is still later than 20231010T004500Z (20231010T003000Z + 15 min.)"
                    .into()
            ))
        );
    }

    #[test]
    fn malformed_authorization() {
        let now = "20231010T003000Z";
        let (uri, h) = signed(now, None);
        let auth = h.get("authorization").and_then(|v| v.to_str().ok()).expect("auth").to_string();
        let with = |auth: &str, drop_date: bool| {
            let mut h = h.clone();
            h.insert("authorization", HeaderValue::from_str(auth).expect("hv"));
            if drop_date {
                h.remove("x-amz-date");
            }
            check(&uri, &h, b"{}", now, Some(cred("secret", None)))
        };
        let incomplete = |r: Result<Verified, AuthError>| match r {
            Err(AuthError::Incomplete(m)) => m,
            other => panic!("expected Incomplete, got {other:?}"),
        };
        let m = incomplete(with("AWS4-HMAC-SHA256 Credential=AKID/20231010/us-east-1/ecs/aws4_request", false));
        assert!(
            m.contains("requires 'Signature' parameter") && m.contains("requires 'SignedHeaders' parameter"),
            "{m}"
        );
        let m = incomplete(with(&auth, true));
        assert!(m.contains("'X-Amz-Date' or a 'Date' header"), "{m}");
        let m = incomplete(with(&auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"), false));
        assert!(m.contains("AWS4-HMAC-SHA512"), "{m}");
        let m = incomplete(with(&auth.replace("AKID/", "AKID/x/"), false));
        assert!(m.contains("5 slash-delimited"), "{m}");
        let m = incomplete(with(&auth.replace("SignedHeaders=host;", "SignedHeaders="), false));
        assert!(m.contains("'Host'"), "{m}");
        let r = with(&auth.replace("/20231010/", "/20231011/"), false);
        assert!(
            matches!(r, Err(AuthError::InvalidSignature(m)) if m.contains("Date in Credential scope does not match"))
        );
        let r = with(&auth.replace("aws4_request", "aws5_request"), false);
        assert!(matches!(r, Err(AuthError::InvalidSignature(m)) if m.contains("terminator")));
        let mut bad_date = h.clone();
        bad_date.insert("x-amz-date", HeaderValue::from_static("2023-10-10T00:30:00Z"));
        let m = incomplete(check(&uri, &bad_date, b"{}", now, Some(cred("secret", None))));
        assert!(m.contains("ISO-8601 'basic format'"), "{m}");
        assert_eq!(
            check(&uri, &HeaderMap::new(), b"{}", now, Some(cred("secret", None))).map(|_| ()),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn presigned_round_trip_and_expiry() {
        let uri: Uri = "https://ecs.us-east-1.amazonaws.com/?Action=List%20It".parse().expect("uri");
        let params = SigningParams {
            credentials: SigningCredentials {
                access_key_id: "AKID",
                secret_access_key: "secret",
                session_token: Some("t"),
            },
            region: "us-east-1",
            service: "ecs",
            time: at("20231010T003000Z"),
        };
        let pq = presign(&Method::GET, &uri, b"", &params, Duration::from_secs(60));
        let signed: Uri = format!("https://ecs.us-east-1.amazonaws.com{pq}").parse().expect("uri");
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("ecs.us-east-1.amazonaws.com"));
        let run =
            |now: &str| verify(&Method::GET, &signed, &h, b"", at(now), SKEW, |_| Some(cred("secret", Some("t"))));
        assert!(run("20231010T003100Z").is_ok());
        assert!(matches!(run("20231010T003101Z"), Err(AuthError::Expired(m)) if m.starts_with("Signature expired")));
        assert!(
            matches!(run("20231010T001400Z"), Err(AuthError::Expired(m)) if m.starts_with("Signature not yet current"))
        );
        let mut both = h.clone();
        both.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 x"));
        let r = verify(&Method::GET, &signed, &both, b"", at("20231010T003000Z"), SKEW, |_| None);
        assert!(matches!(r, Err(AuthError::Incomplete(m)) if m.contains("Only one auth mechanism")));
        let partial: Uri = "https://h/?X-Amz-Algorithm=AWS4-HMAC-SHA256".parse().expect("uri");
        let r = verify(&Method::GET, &partial, &h, b"", at("20231010T003000Z"), SKEW, |_| None);
        assert!(matches!(r, Err(AuthError::Incomplete(m)) if m.contains("must include 'X-Amz-Credential'")));
    }

    #[test]
    fn http_date_header() {
        let d = parse_http_date("Tue, 10 Oct 2023 00:30:00 GMT").expect("date");
        assert_eq!(format_basic_iso(d), "20231010T003000Z");
        assert!(parse_http_date("Tue, 10 Oct 2023 00:30:00 -0000").is_some());
        assert!(parse_http_date("Tue, 10 Oct 2023 00:30:00 +0200").is_none());
        assert!(parse_basic_iso("20231310T003000Z").is_none());
        assert!(parse_basic_iso("2023101OT003000Z").is_none());
    }
}
