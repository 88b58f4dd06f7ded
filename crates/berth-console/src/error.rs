//! What a page can fail with, shown as a page (or a JSON error for script calls).

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// berth refused or failed the call the page made.
    #[error(transparent)]
    Api(#[from] berth_client::ClientError),
    /// A change without a valid CSRF token or from another origin.
    #[error("this change did not come from the console's own page (CSRF check failed); reload the page and retry")]
    Csrf,
    /// A form value that cannot be used.
    #[error("{0}")]
    BadInput(String),
}
