//! What a page request asks for in its query string.

use std::collections::HashMap;

use actix_web::HttpRequest;

/// The query string's fields (the last value of a repeated key).
pub fn query(req: &HttpRequest) -> HashMap<String, String> {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

/// The query string of the next page: this one's fields (without `before` and `flash`)
/// plus `extra`, in a stable order, so the same page always links the same URL.
pub fn next_page(q: &HashMap<String, String>, extra: &[(&str, String)]) -> String {
    let mut next: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| *k != "before" && *k != "flash")
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    next.sort();
    next.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    serde_urlencoded::to_string(next).unwrap_or_default()
}

/// The message a redirect left for the person (`?flash=`).
pub fn flash(req: &HttpRequest) -> Option<String> {
    query(req).remove("flash")
}
