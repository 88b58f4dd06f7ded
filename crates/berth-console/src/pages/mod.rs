//! The console's pages, one module per page.

use crate::AppState;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
}
