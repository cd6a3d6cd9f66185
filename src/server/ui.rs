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
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(file.data.into_owned()),
    )
}

/// Answers every GET the API does not: an asset, or the app shell for client-side routes.
pub async fn ui(req: HttpRequest) -> HttpResponse {
    let path = req.path().trim_start_matches('/');
    if let Some(resp) = serve(path) {
        return resp;
    }
    // A missing file (has an extension, or lives under assets/) is a real 404.
    let last = path.rsplit('/').next().unwrap_or("");
    if path.starts_with("assets/") || last.contains('.') {
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
