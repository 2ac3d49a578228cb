//! The console's CSS and JavaScript, compiled into the binary.

use actix_web::{HttpRequest, HttpResponse};

use super::respond::not_found;

/// `/console/static/{file}`.
pub async fn asset(req: HttpRequest) -> HttpResponse {
    let (body, kind) = match req.match_info().get("file") {
        Some("console.css") => (
            include_str!("../../static/console/console.css"),
            "text/css; charset=utf-8",
        ),
        Some("console.js") => (
            include_str!("../../static/console/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return not_found(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}
