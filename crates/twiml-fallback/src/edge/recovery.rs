//! Recovery: re-sending a verified fallback request to the primary that failed, and judging its
//! answer by the core's [`AnswerRules`] (the same Twilio rules the layer and `simulate` use).

use std::borrow::Cow;
use std::time::Duration;

use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderName, Method};

use super::effect::{OutboundRequest, Redirects, SendOutcome};
use super::log::{AnswerFrom, LogEvent, LogRecord, clip};
use super::{Edge, EdgeResponse, TEXT_CONTENT_TYPE, twiml_response};
use crate::config::UNKNOWN_CHANNEL_TWIML;
use crate::inbox::{Entry, Status};
use crate::incident::Notice;
use crate::signature::compute_signature;
use crate::twiml::{Accepted, AnswerRules, MAX_DOCUMENT_BYTES, TWIML_CONTENT_TYPE, resolve_relative_urls};
use crate::webhook::{Channel, FALLBACK_PARAMS, Params};

/// The User-Agent of recovery requests.
pub const RECOVERY_USER_AGENT: &str = concat!("twiml-fallback/", env!("CARGO_PKG_VERSION"), " (recovery)");

/// How the record says a call was not kept because the primary answered it on recovery.
const NOT_KEPT_RECOVERED: &str = "not kept: the app answered it on recovery";

/// How the record says a message the primary answered on recovery was kept: as `replayed`, so it
/// is in the inbox's history and never delivered again.
const KEPT_RECOVERED: &str = "kept as replayed: the app answered it on recovery";

/// [`SIGNATURE_HEADER`](crate::signature::SIGNATURE_HEADER) as a header name.
const SIGNATURE_HEADER_NAME: HeaderName = HeaderName::from_static("x-twilio-signature");

/// A webhook request as Twilio sends it: `params` in the query (GET, appended to what `url`
/// carries) or as a form body (POST), signed with `token` for the exact URL requested, never
/// following redirects, reading at most a TwiML document's 64 KB + 1 of the answer.
pub(crate) fn signed_webhook(
    token: &str,
    url: &str,
    method: Method,
    params: &Params,
    timeout: Duration,
    user_agent: &str,
) -> OutboundRequest {
    let is_get = method == Method::GET;
    let (url, body, signature) = if is_get {
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = if params.is_empty() {
            url.to_owned()
        } else {
            format!("{url}{separator}{}", params.to_form())
        };
        let signature = compute_signature(token, &url, []);
        (url, None, signature)
    } else {
        (
            url.to_owned(),
            Some(params.to_form()),
            compute_signature(token, url, params),
        )
    };
    let mut headers = vec![(SIGNATURE_HEADER_NAME, signature), (USER_AGENT, user_agent.to_owned())];
    if !is_get {
        headers.push((CONTENT_TYPE, "application/x-www-form-urlencoded".to_owned()));
    }
    OutboundRequest {
        method: if is_get { Method::GET } else { Method::POST },
        url,
        headers,
        body,
        timeout,
        max_answer_bytes: MAX_DOCUMENT_BYTES,
        redirects: Redirects::Never,
    }
}

/// A request to re-send to the failed primary, and what to answer depending on how it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// The request to send: the original parameters without `ErrorCode`/`ErrorUrl`, freshly
    /// signed for `ErrorUrl`, by the fallback request's method (in the query for a GET), under
    /// the configured deadline, reading at most 64 KB + 1 of the answer, never following
    /// redirects.
    pub request: OutboundRequest,
    /// The channel whose rules the answer must pass.
    pub channel: Channel,
    base_url: String,
    fallback: EdgeResponse,
    log: LogRecord,
    /// The inbox entry for this request, kept unless the primary answers it on recovery.
    pub(super) keep: Option<Box<Entry>>,
    /// The incident notice for this request: filed when the recovery fails.
    pub(super) notice: Option<Notice>,
}

/// The final answer after a recovery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryJudgement {
    /// What to answer Twilio.
    pub response: EdgeResponse,
    /// The request's one log record.
    pub log: LogRecord,
    /// The inbox entry to commit before answering: the request's — a message the primary
    /// answered as `replayed` (the app has it: replaying it would answer the person twice), a
    /// call the primary answered not at all.
    pub keep: Option<Box<Entry>>,
    /// The incident notice to file ([`Alerting::record`](crate::incident::Alerting::record)): the
    /// request's, when the primary still failed.
    pub notice: Option<Notice>,
    /// The origin whose open incident is over ([`primary_answered`](crate::incident::primary_answered)
    /// with [`ResolvedBy::Recovery`](crate::incident::ResolvedBy::Recovery)): the primary
    /// answered the recovery. A primary that answers with no incident open opens none: the caller
    /// never noticed.
    pub resolves: Option<String>,
}

impl RecoveryPlan {
    /// The record logged if the shell cannot perform the recovery at all.
    pub fn log(&self) -> &LogRecord {
        &self.log
    }

    /// The incident notice this request files if the recovery fails.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    /// The inbox entry to commit if the recovery is not performed.
    pub fn keep(&self) -> Option<&Entry> {
        self.keep.as_deref()
    }

    /// The answer to give if the recovery is not performed.
    pub fn fallback(&self) -> &EdgeResponse {
        &self.fallback
    }

    /// The deadline of the recovery request.
    pub fn timeout(&self) -> Duration {
        self.request.timeout
    }
}

impl Edge {
    /// The recovery plan for a verified request, when the configuration asks for one and
    /// `ErrorUrl` is allowlisted; records in `record` why there is none otherwise.
    pub(super) fn recovery_plan(
        &self,
        record: &mut LogRecord,
        is_get: bool,
        params: &Params,
        token_index: usize,
        channel: Option<Channel>,
        fallback: &EdgeResponse,
    ) -> Option<RecoveryPlan> {
        let recovery = self.config.recovery()?;
        let error_url = params.get("ErrorUrl").filter(|url| !url.is_empty())?;
        let Some(channel) = channel else {
            record.recovery = Some("skipped: unknown channel".to_owned());
            return None;
        };
        if let Err(refusal) = recovery.allows(error_url) {
            record.recovery = Some(format!("refused: {refusal}"));
            return None;
        }
        let base_url = crate::url::without_fragment(error_url).to_owned();
        let replay = params.without(&FALLBACK_PARAMS);
        let token = self.verifier.tokens().get(token_index)?.expose();
        record.recovery = Some("attempted".to_owned());
        Some(RecoveryPlan {
            request: signed_webhook(
                token,
                &base_url,
                if is_get { Method::GET } else { Method::POST },
                &replay,
                Duration::from_millis(recovery.timeout_ms),
                RECOVERY_USER_AGENT,
            ),
            channel,
            base_url,
            fallback: fallback.clone(),
            log: record.clone(),
            keep: None,
            notice: None,
        })
    }

    /// Judges the primary's answer to a recovery request by the core's [`AnswerRules`]: relayed
    /// when Twilio would run it (TwiML with relative URLs resolved against the primary's URL,
    /// plain text, a messaging "no reply"), else the planned fallback.
    pub fn judge_recovery(&self, plan: &RecoveryPlan, outcome: SendOutcome<'_>) -> RecoveryJudgement {
        let mut log = plan.log.clone();
        let verdict = match outcome {
            SendOutcome::TimedOut => Err(format!("failed: no answer within {} ms", plan.timeout().as_millis())),
            SendOutcome::NotSent(reason) | SendOutcome::Failed(reason) => Err(format!("failed: {}", clip(reason))),
            SendOutcome::Answered {
                status,
                content_type,
                body,
            } => AnswerRules::for_channel(Some(plan.channel))
                .check(status, content_type, body)
                .map_err(|rejection| format!("rejected: {}", clip(&rejection.to_string())))
                .and_then(|accepted| relayable(plan, &accepted, body)),
        };
        match verdict {
            Ok(response) => {
                log.event = LogEvent::Recovered;
                log.answer = AnswerFrom::Recovered;
                log.recovery = Some("relayed the primary's answer".to_owned());
                // A message the app answered is kept as replayed (never delivered again); a call
                // the app answered was not missed.
                let keep = plan
                    .keep
                    .clone()
                    .filter(|entry| entry.channel == Channel::Messaging)
                    .map(|mut entry| {
                        entry.status = Status::Replayed;
                        entry
                    });
                if plan.keep.is_some() {
                    log.inbox = Some(if keep.is_some() {
                        KEPT_RECOVERED
                    } else {
                        NOT_KEPT_RECOVERED
                    });
                }
                RecoveryJudgement {
                    response,
                    log,
                    keep,
                    notice: None,
                    resolves: plan.notice.as_ref().map(|notice| notice.origin.clone()),
                }
            }
            Err(reason) => {
                log.recovery = Some(reason);
                RecoveryJudgement {
                    response: plan.fallback.clone(),
                    log,
                    keep: plan.keep.clone(),
                    notice: plan.notice.clone(),
                    resolves: None,
                }
            }
        }
    }
}

/// What the endpoint relays of an answer the recovered primary gave, as Twilio would run it:
/// TwiML with its relative URLs resolved against the primary's URL (and checked again once
/// rebased), plain text as plain text, a messaging `204` as an empty `<Response/>`. Audio is not
/// relayed (the planned fallback answers instead): the endpoint's answers are text.
fn relayable(plan: &RecoveryPlan, accepted: &Accepted, body: &[u8]) -> Result<EdgeResponse, String> {
    match accepted {
        Accepted::NoReply => Ok(twiml_response(UNKNOWN_CHANNEL_TWIML.to_owned())),
        Accepted::Audio => Err("not relayed: an audio answer (the endpoint relays TwiML and text)".to_owned()),
        Accepted::PlainText => {
            let text = std::str::from_utf8(body).map_err(|_| "rejected: plain text that is not UTF-8".to_owned())?;
            Ok(EdgeResponse {
                status: http::StatusCode::OK,
                content_type: TEXT_CONTENT_TYPE,
                body: text.to_owned(),
            })
        }
        Accepted::Twiml { .. } => {
            let text = std::str::from_utf8(body).map_err(|_| "rejected: not UTF-8".to_owned())?;
            let resolved = resolve_relative_urls(text, &plan.base_url);
            if resolved.len() > MAX_DOCUMENT_BYTES {
                return Err("rejected: over 64 KB once its relative URLs are resolved".to_owned());
            }
            // What is relayed is checked, not only what was received.
            if matches!(resolved, Cow::Owned(_)) {
                AnswerRules::for_channel(Some(plan.channel))
                    .check(http::StatusCode::OK, Some(TWIML_CONTENT_TYPE), resolved.as_bytes())
                    .map_err(|rejection| format!("rejected once rebased: {}", clip(&rejection.to_string())))?;
            }
            Ok(twiml_response(resolved.into_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::SIGNATURE_HEADER;

    #[test]
    fn the_signature_header_name_is_twilios() {
        assert!(SIGNATURE_HEADER_NAME.as_str().eq_ignore_ascii_case(SIGNATURE_HEADER));
    }
}
