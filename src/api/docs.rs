//! `/v1/docs`: Swagger UI served from the binary (no CDN). Assets are swagger-ui-dist
//! 5.35.0 from the npm registry, vendored under `static/swagger-ui/` (Apache-2.0).

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>anchorage API</title>
  <link rel="stylesheet" href="/v1/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/v1/docs/swagger-ui-bundle.js"></script>
  <script src="/v1/docs/init.js"></script>
</body>
</html>
"#;

/// `validatorUrl: null`: otherwise Swagger UI calls validator.swagger.io.
const INIT_JS: &str = r##"window.ui = SwaggerUIBundle({
  url: "/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null
});
"##;

const BUNDLE_JS: &[u8] = include_bytes!("../../static/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../static/swagger-ui/swagger-ui.css");

fn asset(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, content_type))
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(86_400),
        ]))
        .body(body)
}

/// Plain actix routes, registered on the `actix_web::App` that `.build()` returns.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/docs",
        web::get().to(|| async {
            HttpResponse::Ok()
                .content_type(ContentType::html())
                .body(INDEX_HTML)
        }),
    )
    .route(
        "/v1/docs/init.js",
        web::get().to(|| async { asset("text/javascript; charset=utf-8", INIT_JS.as_bytes()) }),
    )
    .route(
        "/v1/docs/swagger-ui-bundle.js",
        web::get().to(|| async { asset("text/javascript; charset=utf-8", BUNDLE_JS) }),
    )
    .route(
        "/v1/docs/swagger-ui.css",
        web::get().to(|| async { asset("text/css; charset=utf-8", CSS) }),
    );
}
