//! The console's pages, one module per page.

mod create;
mod home;
pub mod service;
mod signin;

use crate::AppState;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().merge(signin::routes()).merge(home::routes()).merge(create::routes()).merge(service::routes())
}
