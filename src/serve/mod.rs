//! `stride serve`: the web page. An HTTP server (axum on tokio) whose JSON API handlers parse
//! a request, call the library (the same functions the CLI calls) and render JSON; the page
//! itself (HTML, CSS, JS under `assets/`, embedded in the binary at build time) only renders
//! what the API returns. Binds 127.0.0.1 unless `--host` says otherwise, prints
//! `serving on http://HOST:PORT/` once it listens (the real port with `--port 0`), and stops
//! cleanly on Ctrl-C.
//!
//! Routes: `GET /` (the page), `GET /app.js`, `GET /app.css`, `POST /api/conv`,
//! `POST /api/conv-transpose`, `POST /api/pool`, `POST /api/rf`, `GET /api/runs`,
//! `POST /api/model`. Limits: see [`fields`].

mod analysis;
mod fields;
mod json;
mod model;
mod ops;

use axum::extract::rejection::JsonRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use fields::ApiError;
use serde_json::Value;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride serve                      # then open the printed address\n  \
  stride serve --port 0             # any free port\n  \
  stride serve --run runs/lenet5-20250101-120000\n\n\
Share a computation as a link: the page keeps its state in the address's fragment with the CLI's \
flag names, e.g. http://127.0.0.1:8000/#op=conv&input=[[4,5,2],[3,3,2],[4,3,4]]&kernel=[[1,0],[0,1]]&stride=1&padding=0")]
pub struct ServeArgs {
    /// Port to listen on (0 = any free port; the address printed says which).
    #[arg(long, value_name = "N", default_value_t = 8000)]
    port: u16,
    /// Address to bind: 127.0.0.1 (this machine only) unless you want others to reach the page.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: IpAddr,
    /// A run folder (from `stride train`) to show in the Model view; repeat for several.
    /// Without it the page lists the folders under ./runs.
    #[arg(long, value_name = "DIR")]
    run: Vec<PathBuf>,
    /// Folder with the Fashion-MNIST test set (MNIST-format IDX files) for the Model view's test images.
    #[arg(long, value_name = "DIR", default_value = stride::data::DEFAULT_DIR)]
    data: PathBuf,
}

/// What every handler may read: the run folders offered in the Model view.
pub struct AppState {
    pub runs: Vec<PathBuf>,
    /// Where the test images come from.
    pub data: PathBuf,
}

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// The router: the page, its assets and the API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/api/conv", post(|b| api(b, ops::conv)))
        .route("/api/conv-transpose", post(|b| api(b, ops::conv_transpose)))
        .route("/api/pool", post(|b| api(b, ops::pool)))
        .route("/api/rf", post(|b| api(b, analysis::rf)))
        .route("/api/runs", get(model::runs))
        .route("/api/model", post(model::model))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                field: String::new(),
                message: "no such page; open / for the page, or POST to /api/conv, /api/pool, ..."
                    .into(),
            }
        })
        .layer(DefaultBodyLimit::max(fields::MAX_BODY))
        .with_state(Arc::new(state))
}

async fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Runs one API call: the body's JSON (or the reason it was refused) → the handler → JSON.
/// The work is small and bounded by the limits, so it runs on the blocking pool.
async fn api(
    body: Result<Json<Value>, JsonRejection>,
    handler: fn(Value) -> Result<Value, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(rejected)?;
    tokio::task::spawn_blocking(move || handler(body))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            field: String::new(),
            message: format!("the computation failed: {e}"),
        })?
        .map(Json)
}

/// A body that is not JSON, too large, or sent without the JSON content type.
pub fn rejected(r: JsonRejection) -> ApiError {
    let status = r.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "the request is larger than the limit of {} bytes; use smaller tensors",
            fields::MAX_BODY
        )
    } else {
        format!(
            "the request body must be a JSON object of flag names and values: {}",
            r.body_text()
        )
    };
    let status = if status.is_client_error() {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError {
        status,
        field: String::new(),
        message,
    }
}

/// `stride serve`: binds, prints the address, serves until Ctrl-C.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    for dir in &a.run {
        if !dir.join(stride::checkpoint::FILE).is_file() {
            return Err(stride::Error::arg(
                "run",
                format!(
                    "{} has no {}; give a run folder made by stride train",
                    dir.display(),
                    stride::checkpoint::FILE
                ),
            )
            .into());
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(a.host, a.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            stride::Error::arg(
                "port",
                format!("cannot listen on {addr}: {e}; pick another --port (0 = any free port)"),
            )
        })?;
        let bound = listener.local_addr()?;
        // the handler is in place before the address is printed, so Ctrl-C right away still
        // stops cleanly
        let stop = stop_signal()?;
        println!("serving on http://{bound}/");
        std::io::stdout().flush()?;
        let state = AppState {
            runs: a.run,
            data: a.data,
        };
        axum::serve(listener, app(state))
            .with_graceful_shutdown(stop)
            .await?;
        println!("stopped");
        Ok(())
    })
}

/// A future that completes on Ctrl-C (SIGINT) or SIGTERM; the handlers are installed now.
#[cfg(unix)]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
