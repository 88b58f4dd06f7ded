//! The page frame every page shares: head (embedded CSS and JS), header with the identity and sign-out, main.

use maud::{DOCTYPE, Markup, html};

use crate::assets;
use crate::session::User;

/// A whole page: one `<h1>` belongs in `body`.
pub fn page(user: Option<&User>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · berth" }
                link rel="stylesheet" href=(assets::css_href());
                link rel="icon" type="image/svg+xml" href=(assets::icon_href());
                script src=(assets::js_href()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "berth" }
                    @if let Some(user) = user {
                        nav aria-label="Main" {
                            a href="/" { "Services" }
                            a href="/create" { "Create" }
                        }
                        div.identity {
                            span.who title=(format!("{} (account {})", user.arn, user.account)) { (user.name()) }
                            form method="post" action="/signout" {
                                (csrf_field(user))
                                button #signout type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form that changes something carries.
pub fn csrf_field(user: &User) -> Markup {
    html! { input type="hidden" name=(crate::csrf::FIELD) value=(user.csrf); }
}
