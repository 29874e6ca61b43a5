//! The public disclosure page (公示) at `/`: static HTML, JS and CSS compiled into the binary
//! (no CDN; nodes run offline). The page's script fetches `/v1/disclosure` and `/v1/status`
//! and draws its charts as plain SVG.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

const NO_CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

pub async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), NO_CACHE], INDEX_HTML)
}

pub async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), NO_CACHE], APP_JS)
}

pub async fn style_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), NO_CACHE], STYLE_CSS)
}
