//! Local HTTP servers for tests: any axum router on a free port, and a recorder that answers
//! every request the same and keeps each one's `Authorization` header.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use serde_json::Value;

/// Serves `router` on a free local port; its base URL.
pub(crate) fn serve_router(runtime: &tokio::runtime::Runtime, router: Router) -> String {
    let addr: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    });
    format!("http://{addr}")
}

/// Starts a server answering every request with `answer`, recording each request's
/// `Authorization` header; returns its base URL and the record.
pub(crate) fn start_recorder(
    runtime: &tokio::runtime::Runtime,
    answer: Value,
) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = Arc::clone(&seen);
    let router = Router::new().fallback(move |request: Request| {
        let (record, answer) = (Arc::clone(&record), answer.clone());
        async move {
            let authorization = request
                .headers()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            record.lock().expect("record").push(authorization);
            axum::Json(answer)
        }
    });
    (serve_router(runtime, router), seen)
}
