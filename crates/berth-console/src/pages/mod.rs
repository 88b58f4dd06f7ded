//! The console's pages, one module per page.

mod service;

use crate::AppState;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().merge(service::routes())
}
