//! An SMS webhook behind the fallback layer: whatever the handler does, the sender gets a reply.
//!
//! ```text
//! cargo run -p twiml-fallback --example axum_sms
//! curl -si -d 'MessageSid=SM1&From=%2B14155550100&Body=status' http://127.0.0.1:3000/sms  # the app's answer, as text/xml
//! curl -s -d 'MessageSid=SM1&From=%2B14155550100&Body=crash'  http://127.0.0.1:3000/sms   # the fallback
//! ```

use axum::Router;
use axum::routing::post;
use twiml_fallback::layer::{FallbackLayer, TwilioParams};

/// A plain `String`: axum serves it as `text/plain`, which Twilio would send as raw XML; the layer
/// sees valid TwiML and serves it as `text/xml` (logging once that the handler should say so).
async fn sms(params: TwilioParams) -> String {
    let text = params.body().unwrap_or("").trim().to_lowercase();
    if text == "crash" {
        panic!("a bug in the order lookup"); // the layer answers with the fallback message instead
    }
    format!(
        "<Response><Message>Order status for {}: ready for pickup 🍰</Message></Response>",
        params.from().unwrap_or("you")
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/sms", post(sms)).layer(FallbackLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("SMS webhook on http://{}/sms", listener.local_addr()?);
    axum::serve(listener, app).await
}
