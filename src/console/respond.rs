//! What a console handler answers: a rendered page, a redirect (with a message), or a
//! [`PageError`] — the sign-in redirect, `Not found`, `Refused` or an error page.

use actix_web::{
    cookie::Cookie,
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use askama::Template;

use super::views;
use crate::{auth::session, error::Error};

/// What a handler returns: its page, or the page shown instead.
pub type Page = std::result::Result<HttpResponse, PageError>;

/// A console page that cannot be shown, as the page a person sees instead. It is the
/// rejection of the [`Viewer`](super::viewer::Viewer) and
/// [`CsrfForm`](super::form::CsrfForm) extractors, and what handlers return early with.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session that can act: a 303 to the sign-in page.
    #[error("not signed in")]
    SignIn,
    /// Nothing here, or nothing this person may see: `404 Not found`.
    #[error("not found")]
    NotFound,
    /// A form posted without a valid CSRF token: `403 Refused`.
    #[error("refused: no valid CSRF token")]
    Refused,
    /// Something went wrong: [`error_page`].
    #[error(transparent)]
    Failed(#[from] Error),
}

impl PageError {
    /// What a person sees when their session cannot act: sign in again, or `Not found`.
    pub fn session(e: Error) -> Self {
        match e {
            Error::Unauthorized(_) | Error::KeyRefused(_) => Self::SignIn,
            Error::Forbidden(_) | Error::NotFound(_) => Self::NotFound,
            e => Self::Failed(e),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::SEE_OTHER,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Refused => StatusCode::FORBIDDEN,
            Self::Failed(e) => error_status(e),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn => redirect("/console/sign-in"),
            Self::NotFound => not_found(),
            Self::Refused => refused(),
            Self::Failed(e) => error_page(e),
        }
    }
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A 303 back to `to` with a message for the person.
pub fn redirect_with(to: &str, message: &str) -> HttpResponse {
    let sep = if to.contains('?') { '&' } else { '?' };
    let encoded = serde_urlencoded::to_string([("flash", message)]).unwrap_or_default();
    redirect(&format!("{to}{sep}{encoded}"))
}

/// Back to `to` with what was done, or with `failed` and why.
pub fn back_to(to: &str, outcome: crate::error::Result<String>, failed: &str) -> HttpResponse {
    match outcome {
        Ok(done) => redirect_with(to, &done),
        Err(e) => redirect_with(to, &format!("{failed}: {}", e.public_details())),
    }
}

/// Renders `page` as HTML with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("X-Frame-Options", "DENY"))
            .insert_header(("Referrer-Policy", "same-origin"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page");
            HttpResponse::InternalServerError().body("The page could not be rendered.")
        }
    }
}

/// The `Not found` page (also for things the person may not see).
pub fn not_found() -> HttpResponse {
    render(
        StatusCode::NOT_FOUND,
        &views::Message::new(
            "Not found",
            "There is nothing here, or you do not have access to it.",
        ),
    )
}

/// A form posted without a valid CSRF token.
pub fn refused() -> HttpResponse {
    render(
        StatusCode::FORBIDDEN,
        &views::Message::new(
            "Refused",
            "This form has expired or did not come from this site. Reload the page and try again.",
        ),
    )
}

/// The status of [`error_page`]: what the person may not see is not there.
fn error_status(e: &Error) -> StatusCode {
    match e.status_code() {
        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => StatusCode::NOT_FOUND,
        status => status,
    }
}

/// An error as a page a person understands.
pub fn error_page(e: &Error) -> HttpResponse {
    let status = error_status(e);
    if status == StatusCode::NOT_FOUND {
        return not_found();
    }
    render(
        status,
        &views::Message::new("Something went wrong", &e.public_details()),
    )
}

/// Unknown console paths.
pub async fn fallback() -> HttpResponse {
    not_found()
}

/// The session cookie cleared.
pub fn cleared_cookie() -> Cookie<'static> {
    let mut c = Cookie::build(session::COOKIE, "").path("/").finish();
    c.make_removal();
    c
}
