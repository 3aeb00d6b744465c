//! Rendering a configured answer to the TwiML document the endpoint serves; the loader
//! validates the result once, at load.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::{Config, VoiceContent};
//!
//! let config = Config::from_toml("[voice]\nplay = \"https://cdn.example.com/sorry.mp3\"\nloop = 2").unwrap();
//! assert!(matches!(config.voice().content, VoiceContent::Play { .. }));
//! assert!(config.voice().twiml.ends_with(
//!     r#"<Response><Play loop="2">https://cdn.example.com/sorry.mp3</Play></Response>"#
//! ));
//! ```

use super::{MessagingContent, VoiceContent};
use crate::twiml::{self, Message, Play, Say};

pub(super) fn render_voice(content: &VoiceContent) -> String {
    match content {
        VoiceContent::Say {
            text,
            voice,
            language,
            loop_count,
        } => {
            let mut say = Say::new(text.clone());
            if let Some(voice) = voice {
                say = say.voice(voice.clone());
            }
            if let Some(language) = language {
                say = say.language(language.clone());
            }
            if let Some(times) = loop_count {
                say = say.loop_count(*times);
            }
            twiml::Response::new().verb(say).to_xml()
        }
        VoiceContent::Play { url, loop_count } => {
            let mut play = Play::new(url.clone());
            if let Some(times) = loop_count {
                play = play.loop_count(*times);
            }
            twiml::Response::new().verb(play).to_xml()
        }
        VoiceContent::Twiml(twiml) => twiml.clone(),
    }
}

pub(super) fn render_messaging(content: &MessagingContent) -> String {
    match content {
        MessagingContent::Message { text, media } if media.is_empty() => {
            twiml::Response::new().verb(Message::new(text.clone())).to_xml()
        }
        MessagingContent::Message { text, media } => {
            let mut message = if text.is_empty() {
                Message::new("")
            } else {
                Message::with_body(text.clone())
            };
            for url in media {
                message = message.media(url.clone());
            }
            twiml::Response::new().verb(message).to_xml()
        }
        MessagingContent::Twiml(twiml) => twiml.clone(),
    }
}
