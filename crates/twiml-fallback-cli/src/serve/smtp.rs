//! `serve`'s email: the core's [`Email`] sent through the SMTP relay of `[alerts.smtp] url`, by
//! `lettre`.
//!
//! The core decides everything about a message — its envelope, its MIME text, how the relay is
//! secured ([`SmtpSecurity`]: STARTTLS, implicit TLS, or plain text for a loopback relay only) —
//! and what an outcome means. This room only turns [`SmtpUrl`] into a `lettre` transport (with
//! the password from `TWIML_FALLBACK_SMTP_PASSWORD`, never logged), sends the bytes it is given
//! within a deadline, and reports how it went as an [`EmailOutcome`]: a reply `lettre` calls
//! permanent (5xx) is [`EmailOutcome::Permanent`], anything else — a 4xx, a timeout, a refused
//! connection, a failed TLS handshake — [`EmailOutcome::Transient`].

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use twiml_fallback::config::{SMTP_PASSWORD_VARIABLE, SmtpSecurity, SmtpUrl};
use twiml_fallback::incident::{Email, EmailOutcome, NOTIFY_TIMEOUT};

/// How long one email may take in all. `lettre`'s own timeout bounds each command (and the
/// connect), not the exchange: a relay that answers every command slowly is cut off here.
pub(crate) const SEND_DEADLINE: Duration = Duration::from_secs(NOTIFY_TIMEOUT.as_secs() * 3);

/// An SMTP relay, ready to send through.
pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port (security)`, for the start-up line.
    relay: String,
    /// Whether it logs in.
    logs_in: bool,
}

/// How the password stands, read once at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PasswordProblem {
    /// The password is set but the URL names no user: sent without logging in.
    Unused,
}

impl PasswordProblem {
    /// The start-up warning.
    pub(crate) fn message(self) -> String {
        match self {
            PasswordProblem::Unused => format!(
                "{SMTP_PASSWORD_VARIABLE} is set but [alerts.smtp] url names no user (smtp://USER@host): email is sent without logging in"
            ),
        }
    }
}

impl Mailer {
    /// The transport for `url`, logging in as its user with `password` (from
    /// [`SMTP_PASSWORD_VARIABLE`]). A user without a password is an error (it would fail every
    /// send); a password without a user is said as a [`PasswordProblem`].
    pub(crate) fn new(url: &SmtpUrl, password: Option<&str>) -> Result<(Self, Option<PasswordProblem>), String> {
        // lettre's rustls takes the process's default provider: the same ring provider as reqwest.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let password = password.filter(|password| !password.is_empty());
        let builder = match url.security {
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&url.host),
            SmtpSecurity::ImplicitTls => AsyncSmtpTransport::<Tokio1Executor>::relay(&url.host),
            // The core allows plain text only to a loopback host (a local relay, a test server).
            SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                url.host.as_str(),
            )),
        }
        .map_err(|error| format!("[alerts.smtp] url: cannot set up TLS for {}: {error}", url.host))?
        .port(url.port)
        .timeout(Some(NOTIFY_TIMEOUT));
        let (builder, problem) = match (&url.username, password) {
            (Some(user), Some(password)) => (
                builder.credentials(Credentials::new(user.clone(), password.to_owned())),
                None,
            ),
            (Some(user), None) => {
                return Err(format!(
                    "[alerts.smtp] url logs in as {user:?}, but {SMTP_PASSWORD_VARIABLE} is not set"
                ));
            }
            (None, Some(_)) => (builder, Some(PasswordProblem::Unused)),
            (None, None) => (builder, None),
        };
        let relay = format!("{}:{} ({})", url.host, url.port, url.security.as_str());
        Ok((
            Mailer {
                transport: builder.build(),
                relay,
                logs_in: url.username.is_some(),
            },
            problem,
        ))
    }

    /// `host:port (starttls|tls|plain)`.
    pub(crate) fn relay(&self) -> &str {
        &self.relay
    }

    /// Whether it logs in (the user name is in the URL; the password never leaves this room).
    pub(crate) fn logs_in(&self) -> bool {
        self.logs_in
    }

    /// Sends `email` as the core wrote it, within [`SEND_DEADLINE`].
    pub(crate) async fn send(&self, email: &Email) -> EmailOutcome {
        self.send_within(email, SEND_DEADLINE).await
    }

    async fn send_within(&self, email: &Email, deadline: Duration) -> EmailOutcome {
        let envelope = match envelope(email) {
            Ok(envelope) => envelope,
            Err(reason) => return EmailOutcome::Permanent(reason),
        };
        // lettre ends the data with CRLF . CRLF itself: the message's own last line end is that
        // first CRLF, so the relay gets exactly the core's bytes.
        let mime = email.mime.strip_suffix("\r\n").unwrap_or(&email.mime);
        match tokio::time::timeout(deadline, self.transport.send_raw(&envelope, mime.as_bytes())).await {
            Ok(Ok(_)) => EmailOutcome::Sent,
            Ok(Err(error)) => outcome_of(&error),
            Err(_) => EmailOutcome::Transient(format!(
                "the relay {} did not finish within {} s",
                self.relay,
                deadline.as_secs()
            )),
        }
    }
}

/// The envelope `lettre` sends: the core's sender and recipients, as `lettre` reads addresses.
fn envelope(email: &Email) -> Result<Envelope, String> {
    let from = email.envelope_from.parse::<Address>().map_err(|error| {
        format!(
            "the sender {:?} is not an address lettre accepts: {error}",
            email.envelope_from
        )
    })?;
    let to = email
        .to
        .iter()
        .map(|to| {
            to.parse::<Address>()
                .map_err(|error| format!("the recipient {to:?} is not an address lettre accepts: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to).map_err(|error| format!("no envelope: {error}"))
}

/// What a `lettre` error means for the core: a permanent (5xx) reply is final; anything else is
/// worth another try.
fn outcome_of(error: &lettre::transport::smtp::Error) -> EmailOutcome {
    let text = crate::http_client::describe(error);
    if error.is_permanent() {
        EmailOutcome::Permanent(text)
    } else {
        EmailOutcome::Transient(text)
    }
}

#[cfg(test)]
mod tests;
