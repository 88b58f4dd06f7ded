//! Sign-in with an access key (checked with STS GetCallerIdentity as that key) and sign-out.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use berth_client::{Credentials, Service};
use http::{StatusCode, header};
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::alert;
use crate::layout::page;
use crate::session::{self, MaybeUser, User};
use crate::{AppState, ConsoleError};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/signin", get(form).post(sign_in)).route("/signout", post(sign_out))
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
}

fn signin_page(access_key_id: &str, error: Option<&ConsoleError>) -> Markup {
    page(
        None,
        "Sign in",
        html! {
            h1 { "Sign in to berth" }
            p.lead { "Use an access key: the root user's (in berth's data directory, file " code { "credentials" }
                     ") or an IAM user's. Everything you do here is done as that identity." }
            @if let Some(e) = error { (alert(e)) }
            form #signin-form .card method="post" action="/signin" {
                label for="access_key_id" { "Access key ID" }
                input #access_key_id name="access_key_id" type="text" autocomplete="username" required
                    spellcheck="false" autocapitalize="off" value=(access_key_id);
                label for="secret_access_key" { "Secret access key" }
                input #secret_access_key name="secret_access_key" type="password" autocomplete="current-password"
                    required;
                button #signin .primary type="submit" { "Sign in" }
            }
        },
    )
}

async fn form(MaybeUser(user): MaybeUser) -> Response {
    if user.is_some() {
        return Redirect::to("/").into_response();
    }
    signin_page("", None).into_response()
}

async fn sign_in(State(state): State<AppState>, Form(f): Form<SignIn>) -> Response {
    let access_key_id = f.access_key_id.trim().to_string();
    let secret_access_key = f.secret_access_key.trim().to_string();
    if access_key_id.is_empty() || secret_access_key.is_empty() {
        let e = ConsoleError::BadInput("enter both the access key ID and the secret access key".into());
        return (StatusCode::BAD_REQUEST, signin_page(&access_key_id, Some(&e))).into_response();
    }
    let credentials = Credentials { access_key_id: access_key_id.clone(), secret_access_key, session_token: None };
    let client = state.inner.api.with_credentials(credentials.clone());
    let identity = match client.call_value(Service::Sts, "GetCallerIdentity", serde_json::json!({})).await {
        Ok(v) => v,
        Err(e) => {
            let status = match &e {
                berth_client::ClientError::Api { .. } => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_GATEWAY,
            };
            return (status, signin_page(&access_key_id, Some(&ConsoleError::Api(e)))).into_response();
        }
    };
    let arn = identity.get("Arn").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let account = identity.get("Account").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    if arn.is_empty() {
        let e = ConsoleError::Internal("berth's GetCallerIdentity answer had no Arn".into());
        return (StatusCode::BAD_GATEWAY, signin_page(&access_key_id, Some(&e))).into_response();
    }
    let id = match state.inner.sessions.create(credentials, arn.clone(), account) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    tracing::info!(%arn, "console sign-in");
    ([(header::SET_COOKIE, session::set_cookie(&state, &id))], Redirect::to("/")).into_response()
}

async fn sign_out(State(state): State<AppState>, user: User) -> Response {
    state.inner.sessions.remove(&user.session_id);
    ([(header::SET_COOKIE, session::clear_cookie())], Redirect::to("/signin")).into_response()
}
