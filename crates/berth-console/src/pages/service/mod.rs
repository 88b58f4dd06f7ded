//! The service page `GET /services/{cluster}/{name}` and everything it does: deployments (rollback, promote),
//! tasks (stop), charts, live logs and status (`logs.json`, `status.json`), events, and the resources berth created
//! for the service with their settings editable in place — every call through berth's public API as the user.

mod actions;
mod data;
mod edits;
mod live;
mod metrics;
mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/{cluster}/{name}", get(view::show))
        .route("/services/{cluster}/{name}/status.json", get(live::status))
        .route("/services/{cluster}/{name}/logs.json", get(live::logs))
        .route("/services/{cluster}/{name}/rollback", post(actions::rollback))
        .route("/services/{cluster}/{name}/promote", post(actions::promote))
        .route("/services/{cluster}/{name}/tasks/{task_id}/stop", post(actions::stop_task))
        .route("/services/{cluster}/{name}/health-check", post(edits::health_check))
        .route("/services/{cluster}/{name}/scaling", post(edits::scaling))
        .route("/services/{cluster}/{name}/rule-host", post(edits::rule_host))
        .route("/services/{cluster}/{name}/ingress", post(edits::ingress))
        .route("/services/{cluster}/{name}/alarm", post(edits::alarm))
        .route("/services/{cluster}/{name}/log-retention", post(edits::log_retention))
}

/// The page's own address.
fn page_path(cluster: &str, name: &str) -> String {
    format!("/services/{}/{}", encode(cluster), encode(name))
}

/// Back to the page with a notice (one of [`notice_text`]'s fixed codes, so a link cannot put words on the page).
fn back(cluster: &str, name: &str, done: &str) -> axum::response::Redirect {
    axum::response::Redirect::to(&format!("{}?done={done}", page_path(cluster, name)))
}

/// What a `?done=` code says.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "rollback" => "Rollback requested: the service goes back to its previous revision.",
        "promote" => "Promoted: the deployment continues without waiting for the rest of its bake.",
        "stop-task" => "Task stopped: the service starts a replacement.",
        "health-check" => "Health check updated.",
        "scaling" => "Scaling bounds updated.",
        "rule-host" => "Listener rule hosts updated.",
        "ingress" => "Security group rules updated.",
        "alarm" => "Alarm threshold updated.",
        "log-retention" => "Log retention updated.",
        _ => return None,
    })
}

/// A change's answer: back to the page with its notice, or the page again with berth's (or the form's) error on
/// top, so the user sees what was refused beside what they tried to change.
async fn outcome(
    state: &AppState,
    user: &crate::session::User,
    cluster: &str,
    name: &str,
    done: Result<axum::response::Redirect, crate::ConsoleError>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match done {
        Ok(redirect) => redirect.into_response(),
        Err(e) => view::render(state, user, cluster, name, &Default::default(), Some(e)).await,
    }
}

/// A path segment, percent-encoded (cluster and service names are `[A-Za-z0-9_-]`, but an ARN may come in).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(page_path("default", "web-1"), "/services/default/web-1");
        assert_eq!(encode("arn:aws:ecs:x/y z"), "arn%3Aaws%3Aecs%3Ax%2Fy%20z");
    }

    #[test]
    fn only_known_notices_are_shown() {
        assert!(notice_text("health-check").is_some());
        assert!(notice_text("<script>").is_none());
    }
}
