//! The HTTP surface: route table and the JSON error plumbing shared by every route.
//!
//! Imported by `server`, `console` and `cli` (the metrics registry only); see the layer
//! table in docs/architecture.md.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod authn;
pub mod body;
pub mod client_ip;
pub mod docs;
pub mod errors;
pub mod events;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod orgs;
pub mod pins;
pub mod rate_limit;
pub mod session_gate;
pub mod tokens;
pub mod verified;

use actix_web::web;
use apistos::web::{delete, get, head, patch, post, put, resource, ServiceConfig};

/// Registers every route under the app. Unknown paths and methods answer in the spec's
/// error shape (see [`errors`]).
pub fn configure(cfg: &mut ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(errors::json_config(max_body_bytes))
        .app_data(errors::query_config())
        .app_data(errors::path_config())
        .app_data(web::PayloadConfig::new(max_body_bytes))
        .service(
            resource("/v1/health")
                .route(get().to(health::health))
                .route(head().to(health::health))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/pins")
                .route(get().to(pins::list))
                .route(post().to(pins::add))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/pins/{requestid}")
                .route(get().to(pins::get))
                .route(post().to(pins::replace))
                .route(delete().to(pins::delete))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/tokens")
                .route(get().to(tokens::list))
                .route(post().to(tokens::create))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/tokens/{jti}")
                .route(delete().to(tokens::revoke))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/auth/login")
                .route(get().to(auth::login))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/auth/session")
                .route(post().to(auth::create_session))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/auth/logout")
                .route(post().to(auth::logout))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/users/me")
                .route(get().to(orgs::me))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/orgs")
                .route(get().to(orgs::list))
                .route(post().to(orgs::create))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/orgs/{org}/members")
                .route(get().to(orgs::members))
                .route(post().to(orgs::add_member))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/orgs/{org}/members/{member}")
                .route(patch().to(orgs::set_role))
                .route(delete().to(orgs::remove_member))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/nodes")
                .route(get().to(admin::nodes))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/nodes/{node}/drain")
                .route(post().to(admin::drain))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/nodes/{node}/cordon")
                .route(post().to(admin::cordon))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/nodes/{node}/uncordon")
                .route(post().to(admin::uncordon))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/maintenance")
                .route(get().to(admin::get_maintenance))
                .route(put().to(admin::put_maintenance))
                .route(delete().to(admin::delete_maintenance))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/rebalance")
                .route(get().to(admin::rebalance_plan))
                .route(post().to(admin::rebalance_apply))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/cache-stats")
                .route(get().to(admin::cache_stats))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/requeue")
                .route(post().to(admin::requeue))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/admin/audit")
                .route(get().to(admin::audit))
                .default_service(web::to(errors::method_not_allowed)),
        )
        .service(
            resource("/v1/ready")
                .route(get().to(health::ready))
                .route(head().to(health::ready))
                .default_service(web::to(errors::method_not_allowed)),
        );
}
