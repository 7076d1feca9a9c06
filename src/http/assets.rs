//! The dashboard: files under `static/`, embedded in the binary at build time (rust-embed).
//!
//! Served with a strict Content-Security-Policy and `nosniff`. `/` is `index.html`. The assets
//! hold no log data, so they need no token; every data route does.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// Content-Security-Policy of every page and asset.
pub const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; \
                       img-src 'self' data:; script-src 'self'; object-src 'none'; \
                       base-uri 'none'; frame-ancestors 'none'";

/// Serves an embedded file, or 404.
pub async fn serve(req: HttpRequest) -> HttpResponse {
    let path = req.match_info().query("path").trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = Assets::get(path) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found\n");
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            mime.essence_str().to_owned()
                + if mime.type_() == "text" || mime.subtype() == "javascript" {
                    "; charset=utf-8"
                } else {
                    ""
                },
        ))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body_of(file.data))
}

/// The embedded bytes without a copy (in a release build they are in the binary; a debug build
/// reads them from disk).
fn body_of(data: std::borrow::Cow<'static, [u8]>) -> actix_web::web::Bytes {
    match data {
        std::borrow::Cow::Borrowed(bytes) => actix_web::web::Bytes::from_static(bytes),
        std::borrow::Cow::Owned(bytes) => actix_web::web::Bytes::from(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, web, App};

    #[actix_web::test]
    async fn every_module_of_the_dashboard_is_served_as_javascript_under_the_csp() {
        let app = test::init_service(App::new().route("/{path:.*}", web::get().to(serve))).await;
        let modules: Vec<String> = Assets::iter()
            .filter(|name| name.ends_with(".js"))
            .map(|name| name.into_owned())
            .collect();
        // The entry point and the modules it imports (a module script of another type is
        // refused by the browser: the page would be blank).
        for name in [
            "app.js",
            "view.js",
            "transport.js",
            "store.js",
            "render.js",
            "filter.js",
        ] {
            assert!(
                modules.iter().any(|m| m == name),
                "{name} missing from {modules:?}"
            );
        }
        for name in &modules {
            let response = test::call_service(
                &app,
                test::TestRequest::get()
                    .uri(&format!("/{name}"))
                    .to_request(),
            )
            .await;
            assert_eq!(response.status(), 200, "{name}");
            let headers = response.headers();
            assert_eq!(
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                Some("text/javascript; charset=utf-8"),
                "{name}"
            );
            assert_eq!(
                headers
                    .get(header::CONTENT_SECURITY_POLICY)
                    .and_then(|v| v.to_str().ok()),
                Some(CSP),
                "{name}"
            );
        }
    }
}
