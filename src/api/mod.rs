//! The HTTP surface: route table and the JSON error plumbing shared by every route.

pub mod body;
pub mod errors;
pub mod health;
pub mod pins;
pub mod tokens;

use actix_web::web;

/// Registers every route under the app. Unknown paths and methods answer in the spec's
/// error shape (see [`errors`]).
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(errors::json_config(max_body_bytes))
        .app_data(errors::query_config())
        .app_data(errors::path_config())
        .app_data(web::PayloadConfig::new(max_body_bytes))
        .service(
            web::resource("/v1/health")
                .route(web::get().to(health::health))
                .route(web::head().to(health::health))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            web::resource("/v1/pins")
                .route(web::get().to(pins::list))
                .route(web::post().to(pins::add))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            web::resource("/v1/pins/{requestid}")
                .route(web::get().to(pins::get))
                .route(web::post().to(pins::replace))
                .route(web::delete().to(pins::delete))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            web::resource("/v1/tokens")
                .route(web::get().to(tokens::list))
                .route(web::post().to(tokens::create))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            web::resource("/v1/tokens/{jti}")
                .route(web::delete().to(tokens::revoke))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            web::resource("/v1/ready")
                .route(web::get().to(health::ready))
                .route(web::head().to(health::ready))
                .default_service(web::to(errors::method_not_allowed)),
        );
}
