//! The admin console: server-rendered pages (askama templates in `templates/console/`,
//! CSS and a little JS in `static/console/`, all compiled into the binary) over the same
//! domain functions the JSON API uses. A page needs a signed-in session; it acts in the
//! org named by `?org=` (or the person's only org) with their role there — so a member
//! never sees another org or the cluster pages. Every form carries a CSRF token derived
//! from the session secret, and the authn middleware also checks the `Origin` of every
//! cookie-authenticated POST.
//!
//! One file per page (`sign_in`, `pins`, `tokens`, `orgs`, `cluster`, `audit`), and what
//! they share: the [`viewer::Viewer`] extractor (who is looking, and what they may do),
//! the [`form::CsrfForm`] extractor (a posted form, its CSRF token checked), the
//! responses in [`respond`], the templates' data in [`views`].

mod assets;
mod audit;
mod cluster;
mod form;
mod orgs;
mod pins;
mod query;
mod respond;
mod sign_in;
mod tokens;
mod viewer;
mod views;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(sign_in::index))
            .route("/", web::get().to(sign_in::index))
            .route("/sign-in", web::get().to(sign_in::page))
            .route("/sign-in", web::post().to(sign_in::with_token))
            .route("/sign-out", web::post().to(sign_in::sign_out))
            .route("/pins", web::get().to(pins::page))
            .route("/pins", web::post().to(pins::add))
            .route("/pins/{id}/delete", web::post().to(pins::delete))
            .route("/pins/{id}/replace", web::post().to(pins::replace))
            .route("/tokens", web::get().to(tokens::page))
            .route("/tokens", web::post().to(tokens::create))
            .route("/tokens/{jti}/revoke", web::post().to(tokens::revoke))
            .route("/orgs", web::get().to(orgs::page))
            .route("/orgs", web::post().to(orgs::create))
            .route("/orgs/{org}/members", web::post().to(orgs::members))
            .route(
                "/orgs/{org}/members/{member}/{action}",
                web::post().to(orgs::members),
            )
            .route("/cluster", web::get().to(cluster::page))
            .route(
                "/cluster/nodes/{node}/{action}",
                web::post().to(cluster::node),
            )
            .route("/cluster/maintenance", web::post().to(cluster::maintenance))
            .route("/cluster/rebalance", web::post().to(cluster::rebalance))
            .route("/audit", web::get().to(audit::page))
            .route("/static/{file}", web::get().to(assets::asset))
            .default_service(web::to(respond::fallback)),
    );
}
