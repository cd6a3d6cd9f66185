//! The React web UI, embedded in the binary from `frontend/dist` (built by the set-up scripts).
//! Routes the UI owns get `index.html` (single-page app); missing assets get a 404; hashed
//! assets are cached for a year.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "frontend/dist"]
#[allow_missing = true]
struct Assets;

fn serve(path: &str) -> Option<HttpResponse> {
    let file = Assets::get(path)?;
    let hashed = path.starts_with("assets/");
    Some(
        HttpResponse::Ok()
            .content_type(file.metadata.mimetype())
            .insert_header((
                header::CACHE_CONTROL,
                if hashed {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                },
            ))
            .body(file.data.into_owned()),
    )
}

/// Answers every GET the API does not: an asset, or the app shell for client-side routes.
pub async fn ui(req: HttpRequest) -> HttpResponse {
    let path = req.path().trim_start_matches('/');
    if let Some(resp) = serve(path) {
        return resp;
    }
    // A missing file is a real 404: anything under assets/, or a top-level name with an
    // extension (favicon.ico). Deeper paths are the app's routes, dots and all
    // (`/lookup/example.com`, `/lookup/8.8.8.8`).
    if path.starts_with("assets/") || (!path.contains('/') && path.contains('.')) {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found");
    }
    serve("index.html").unwrap_or_else(|| {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("The web UI was not built into this binary (run scripts/build-ui.sh, then rebuild). The API is at /api/.")
    })
}
