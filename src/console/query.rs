//! What a page request asks for in its query string.

use std::collections::HashMap;

use actix_web::HttpRequest;

/// The query string's fields (the last value of a repeated key).
pub fn query(req: &HttpRequest) -> HashMap<String, String> {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

/// The message a redirect left for the person (`?flash=`).
pub fn flash(req: &HttpRequest) -> Option<String> {
    query(req).remove("flash")
}
