//! The console's CSS and JavaScript, embedded in the binary and served under names that carry their content
//! hash (so they can be cached for a year).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
const ICON: &str = include_str!("../assets/favicon.svg");

static CSS_NAME: LazyLock<String> = LazyLock::new(|| format!("console-{}.css", short_hash(CSS)));
static JS_NAME: LazyLock<String> = LazyLock::new(|| format!("console-{}.js", short_hash(JS)));
static ICON_NAME: LazyLock<String> = LazyLock::new(|| format!("favicon-{}.svg", short_hash(ICON)));
// The service page's own (pages/service/).
const SERVICE_CSS: &str = include_str!("../assets/service.css");
const SERVICE_JS: &str = include_str!("../assets/service.js");
static SERVICE_CSS_NAME: LazyLock<String> = LazyLock::new(|| format!("service-{}.css", short_hash(SERVICE_CSS)));
static SERVICE_JS_NAME: LazyLock<String> = LazyLock::new(|| format!("service-{}.js", short_hash(SERVICE_JS)));

fn short_hash(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    hex::encode(&d.as_ref()[..6])
}

pub fn css_href() -> String {
    format!("/assets/{}", *CSS_NAME)
}

pub fn js_href() -> String {
    format!("/assets/{}", *JS_NAME)
}

pub fn icon_href() -> String {
    format!("/assets/{}", *ICON_NAME)
}

/// `GET /favicon.ico`: browsers ask for it whatever the page says; the same icon.
pub async fn favicon() -> Response {
    serve(Path(ICON_NAME.clone())).await
}

pub fn service_css_href() -> String {
    format!("/assets/{}", *SERVICE_CSS_NAME)
}

pub fn service_js_href() -> String {
    format!("/assets/{}", *SERVICE_JS_NAME)
}

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, mime) = if file == *CSS_NAME {
        (CSS, "text/css; charset=utf-8")
    } else if file == *JS_NAME {
        (JS, "text/javascript; charset=utf-8")
    } else if file == *SERVICE_CSS_NAME {
        (SERVICE_CSS, "text/css; charset=utf-8")
    } else if file == *SERVICE_JS_NAME {
        (SERVICE_JS, "text/javascript; charset=utf-8")
    } else if file == *ICON_NAME {
        (ICON, "image/svg+xml")
    } else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], body)
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_carry_the_content_hash() {
        assert!(super::css_href().starts_with("/assets/console-") && super::css_href().ends_with(".css"));
        assert_ne!(super::short_hash("a"), super::short_hash("b"));
        assert_eq!(super::short_hash("a").len(), 12);
    }
}
