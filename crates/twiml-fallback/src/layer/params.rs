//! The webhook parameters the fallback layer parsed, for handlers to read.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::webhook::{Channel, Params, channel_of_form};

/// Twilio's webhook parameters as the fallback layer read them, put in the request's extensions
/// (and, with the `axum` feature, an extractor). They are decoded on first use, so a handler that
/// never looks costs nothing; clones share the decoded result, and the layer, judging the answer,
/// reads the channel from it rather than scanning the form a second time. Everything [`Params`]
/// offers is here too, typed structs included ([`Params::deserialize`]).
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use twiml_fallback::layer::TwilioParams;
///
/// async fn sms(params: TwilioParams) -> String {
///     format!("hello {}", params.from().unwrap_or("stranger"))
/// }
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct TwilioParams {
    raw: Bytes,
    /// Shared by the clones: the handler's and the layer's.
    found: Arc<Found>,
    complete: bool,
}

/// What is worked out from the raw parameters on first use.
#[derive(Debug, Default)]
struct Found {
    params: OnceLock<Params>,
    /// The layer's explicit channel, else the one the parameters show: read from the decoded
    /// parameters when the handler has decoded them, else from the raw form.
    channel: OnceLock<Option<Channel>>,
}

impl TwilioParams {
    /// `raw` is a form body or a query string (both `application/x-www-form-urlencoded`);
    /// `channel` the layer's explicit one, if it has one.
    pub(crate) fn new(raw: Bytes, channel: Option<Channel>, complete: bool) -> Self {
        let found = Found::default();
        if let Some(channel) = channel {
            let _ = found.channel.set(Some(channel));
        }
        Self {
            raw,
            found: Arc::new(found),
            complete,
        }
    }

    /// The parameters (decoded now if no one has yet).
    pub fn params(&self) -> &Params {
        self.found.params.get_or_init(|| Params::from_form(&self.raw))
    }

    /// The channel: the layer's explicit one, else the one the parameters show.
    pub fn channel(&self) -> Option<Channel> {
        *self.found.channel.get_or_init(|| match self.found.params.get() {
            Some(params) => params.channel(),
            None => channel_of_form(&self.raw),
        })
    }

    /// `false` when the body was over the layer's limit and was passed on unread (the parameters
    /// then come from the query string only).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The parameters, owned.
    pub fn into_params(self) -> Params {
        self.params().clone()
    }
}

impl From<Params> for TwilioParams {
    /// Already-parsed parameters (the channel detected from them), e.g. to call a handler in a
    /// test without the layer.
    fn from(params: Params) -> Self {
        Self {
            raw: Bytes::new(),
            found: Arc::new(Found {
                channel: OnceLock::from(params.channel()),
                params: OnceLock::from(params),
            }),
            complete: true,
        }
    }
}

impl PartialEq for TwilioParams {
    fn eq(&self, other: &Self) -> bool {
        self.params() == other.params() && self.channel() == other.channel() && self.complete == other.complete
    }
}

impl Eq for TwilioParams {}

impl Deref for TwilioParams {
    type Target = Params;

    fn deref(&self) -> &Params {
        self.params()
    }
}

#[cfg(feature = "axum")]
mod extract {
    use axum_core::extract::FromRequestParts;
    use axum_core::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;

    use super::TwilioParams;

    /// [`TwilioParams`] was extracted from a request the fallback layer did not see.
    #[derive(Clone, Copy, Debug)]
    pub struct MissingTwilioParams;

    impl IntoResponse for MissingTwilioParams {
        fn into_response(self) -> Response {
            let message = "TwilioParams needs twiml_fallback::layer::FallbackLayer around this route";
            (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
        }
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    impl<S: Send + Sync> FromRequestParts<S> for TwilioParams {
        type Rejection = MissingTwilioParams;

        async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<TwilioParams>()
                .cloned()
                .ok_or(MissingTwilioParams)
        }
    }
}

#[cfg(feature = "axum")]
pub use extract::MissingTwilioParams;
