//! The service page (`/services/{cluster}/{name}`): the console-service helper's.

use crate::AppState;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
}
