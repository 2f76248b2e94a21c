//! The operator dashboard: the files under `web/`, built into the binary so
//! that Pronto serves its own page with nothing else installed (no Node, no
//! CDN) and the page always matches the server's API.
//!
//! `GET /` redirects to `/dashboard`, which is `web/index.html`; the page
//! loads its styles, ES modules and audio worklets from
//! `/dashboard/assets/<path under web/>`. The HTML needs no sign-in: all the
//! data comes from `/api/*`.
//!
//! Every answer carries an ETag (a digest of the file, computed once) and
//! `Cache-Control: no-cache`, so a browser revalidates and gets a 304 until
//! a new build changes the file, and a strict Content-Security-Policy: the
//! page runs only its own scripts, talks only to its own origin, and cannot
//! be framed.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::http::AppState;

/// One embedded file: its path under `web/`, its bytes and its type.
struct Asset {
    path: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
            content_type: $type,
        }
    };
}

/// Every file of the dashboard. A test checks that each file under `web/`
/// is here, so a new one cannot be forgotten.
static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("js/agents.js", JS),
    asset!("js/api.js", JS),
    asset!("js/audio-out.js", JS),
    asset!("js/call-card.js", JS),
    asset!("js/call-page.js", JS),
    asset!("js/dialog.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/format.js", JS),
    asset!("js/health.js", JS),
    asset!("js/history.js", JS),
    asset!("js/listen.js", JS),
    asset!("js/live-store.js", JS),
    asset!("js/live.js", JS),
    asset!("js/main.js", JS),
    asset!("js/meter.js", JS),
    asset!("js/mulaw.js", JS),
    asset!("js/overview.js", JS),
    asset!("js/replay.js", JS),
    asset!("js/session.js", JS),
    asset!("js/step-in.js", JS),
    asset!("js/test-call.js", JS),
    asset!("js/transcript.js", JS),
    asset!("js/twilio.js", JS),
    asset!("js/waterfall.js", JS),
    asset!("js/worklets/capture.js", JS),
    asset!("js/worklets/player.js", JS),
];

/// Each asset's ETag, in the order of [`ASSETS`]: the first 16 hex digits
/// of its SHA-256, quoted. Computed once, on the first request.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = hex::encode(Sha256::digest(a.bytes));
            HeaderValue::from_str(&format!("\"{}\"", &digest[..16]))
                .expect("hex digits make a valid header value")
        })
        .collect()
});

/// Only the page's own scripts, styles and connections; replay audio from
/// blob URLs; canvases exported as data URLs; no framing (clickjacking).
const CSP: &str = "default-src 'self'; connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'; worker-src 'self'; frame-ancestors 'none'";

/// The dashboard's routes: `/`, `/dashboard` and its assets.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard", get(page))
        .route("/dashboard/assets/{*path}", get(asset))
}

async fn page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// The file at `path` under `web/`, a 304 when the browser has it already,
/// or a 404.
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.path == path) else {
        let mut response = (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
        secure(response.headers_mut());
        return response;
    };
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let mut response = if matches(request, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = asset.bytes.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag.clone());
    // Revalidate every time: a new build's files are picked up at once, and
    // an unchanged file costs a 304.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(h);
    response
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags match too,
/// as RFC 9110 asks for this comparison.
fn matches(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn web_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
    }

    fn files_under(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, base, out);
            } else {
                let relative = path.strip_prefix(base).unwrap();
                out.insert(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    fn table() -> BTreeSet<String> {
        ASSETS.iter().map(|a| a.path.to_string()).collect()
    }

    #[test]
    fn every_file_under_web_is_served() {
        let mut on_disk = BTreeSet::new();
        files_under(&web_dir(), &web_dir(), &mut on_disk);
        let table = table();
        let missing: Vec<_> = on_disk.difference(&table).collect();
        assert!(
            missing.is_empty(),
            "files under web/ missing from ASSETS in src/http/dashboard.rs: {missing:?}"
        );
        assert_eq!(table.len(), ASSETS.len(), "a file is listed twice");
    }

    /// The value of every `attr="..."` in `text`.
    fn attribute_values<'a>(text: &'a str, attr: &str) -> Vec<&'a str> {
        let needle = format!("{attr}=\"");
        text.match_indices(&needle)
            .filter_map(|(at, _)| {
                let rest = &text[at + needle.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn index_html_references_only_served_assets() {
        let html = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        assert_eq!(ASSETS[0].path, "index.html");
        let table = table();
        let mut local = 0;
        for url in attribute_values(html, "src")
            .into_iter()
            .chain(attribute_values(html, "href"))
        {
            if url.starts_with('#') || url.starts_with("data:") {
                continue;
            }
            let path = url.strip_prefix("/dashboard/assets/").unwrap_or_else(|| {
                panic!("index.html refers to {url}, which is not a dashboard asset")
            });
            assert!(
                table.contains(path),
                "index.html refers to {url}, not in ASSETS"
            );
            local += 1;
        }
        assert!(local >= 2, "index.html should load its CSS and its script");
    }

    /// Resolves `./x.js` or `../x.js` against the folder of `from`.
    fn resolve(from: &str, relative: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for piece in relative.split('/') {
            match piece {
                "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        parts.join("/")
    }

    #[test]
    fn module_imports_and_worklets_resolve_to_served_assets() {
        let table = table();
        let import =
            regex::Regex::new(r#"(?:from\s+|import\s*\(\s*|new URL\(\s*)"(\.{1,2}/[^"]+)""#)
                .unwrap();
        let mut checked = 0;
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            for capture in import.captures_iter(text) {
                let target = resolve(asset.path, &capture[1]);
                assert!(
                    table.contains(&target),
                    "{} imports {}, which is not in ASSETS",
                    asset.path,
                    &capture[1]
                );
                checked += 1;
            }
        }
        assert!(checked > 10, "the import scan found only {checked} imports");
    }

    #[test]
    fn etags_match_weakly_strongly_and_star() {
        let etag = ETAGS[0].clone();
        let mut h = HeaderMap::new();
        assert!(!matches(&h, &etag));
        h.insert(header::IF_NONE_MATCH, etag.clone());
        assert!(matches(&h, &etag));
        let weak = format!("\"other\", W/{}", etag.to_str().unwrap());
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&weak).unwrap());
        assert!(matches(&h, &etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"nope\""));
        assert!(!matches(&h, &etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&h, &etag));
    }

    #[test]
    fn serves_with_type_etag_and_security_headers() {
        let r = serve("js/main.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], JS);
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        let etag = h[header::ETAG].clone();

        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve("js/main.js", &again).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            serve("js/", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
