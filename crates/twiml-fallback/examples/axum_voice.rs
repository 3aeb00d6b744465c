//! A voice webhook behind the fallback layer, with Twilio's signature checked first when
//! `TWILIO_AUTH_TOKEN` is set (forged requests get 403; genuine failures get the fallback).
//!
//! ```text
//! cargo run -p twiml-fallback --example axum_voice
//! curl -s -d 'CallSid=CA1&Digits=1' http://127.0.0.1:3000/voice   # the app's menu
//! curl -s -d 'CallSid=CA1&Digits=9' http://127.0.0.1:3000/voice   # the app times out: fallback at 5 s
//! ```

use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use twiml_fallback::Channel;
use twiml_fallback::layer::{FallbackLayer, TwilioParams, ValidateTwilioSignatureLayer};
use twiml_fallback::signature::SignatureVerifier;

async fn voice(params: TwilioParams) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    if params.get("Digits") == Some("9") {
        tokio::time::sleep(Duration::from_secs(60)).await; // a stuck database call
    }
    let menu = r#"<Response><Gather numDigits="1"><Say voice="Polly.Joanna">Press 1 for opening hours.</Say></Gather></Response>"#;
    ([(CONTENT_TYPE, "text/xml")], menu)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let fallback = FallbackLayer::new()
        .channel(Channel::Voice)
        .deadline(Duration::from_secs(5));
    let mut app = Router::new().route("/voice", post(voice)).layer(fallback);
    if let Ok(token) = std::env::var("TWILIO_AUTH_TOKEN") {
        // Outside the fallback layer, so a forged request gets 403 rather than friendly TwiML.
        app = app.layer(ValidateTwilioSignatureLayer::new(SignatureVerifier::new(token)));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("voice webhook on http://{}/voice", listener.local_addr()?);
    axum::serve(listener, app).await
}
