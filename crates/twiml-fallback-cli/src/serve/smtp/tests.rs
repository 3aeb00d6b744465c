//! The SMTP room against a fake relay on 127.0.0.1: what is sent, how it logs in, and what each
//! kind of failure means.

use std::time::Duration;

use twiml_fallback::config::{SmtpSecurity, SmtpUrl};
use twiml_fallback::incident::{Email, EmailOutcome};

use super::super::smtp_fake::{Behaviour, FakeSmtp};
use super::{Mailer, PasswordProblem};

fn url(security: SmtpSecurity, fake: &FakeSmtp, username: Option<&str>) -> SmtpUrl {
    SmtpUrl {
        security,
        host: "127.0.0.1".to_owned(),
        port: fake.addr.port(),
        username: username.map(str::to_owned),
    }
}

fn email(to: &[&str]) -> Email {
    Email {
        envelope_from: "alerts@example.com".to_owned(),
        to: to.iter().map(|to| (*to).to_owned()).collect(),
        subject: "[OPEN] test".to_owned(),
        text: "body".to_owned(),
        // A line starting with a dot: the transport must stuff it, the fake unstuffs it.
        mime:
            "From: alerts@example.com\r\nTo: ops@example.com\r\nSubject: [OPEN] test\r\n\r\nline one\r\n.dot line\r\n"
                .to_owned(),
    }
}

#[tokio::test]
async fn a_loopback_relay_gets_the_cores_bytes_and_envelope_without_a_login() {
    let fake = FakeSmtp::start(Behaviour::Accept).await;
    let (mailer, problem) = Mailer::new(&url(SmtpSecurity::Plain, &fake, None), None).expect("a mailer");
    assert_eq!(problem, None);
    assert!(!mailer.logs_in());
    assert!(mailer.relay().ends_with("(plain)"), "{}", mailer.relay());
    let sent = mailer.send(&email(&["ops@example.com", "oncall@example.com"])).await;
    assert_eq!(sent, EmailOutcome::Sent);
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].from, "alerts@example.com");
    assert_eq!(received[0].to, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(
        received[0].data,
        "From: alerts@example.com\r\nTo: ops@example.com\r\nSubject: [OPEN] test\r\n\r\nline one\r\n.dot line"
    );
    assert_eq!(received[0].auth, None);
}

#[tokio::test]
async fn it_logs_in_as_the_urls_user_with_the_password_from_the_environment() {
    let fake = FakeSmtp::start(Behaviour::Accept).await;
    let (mailer, problem) = Mailer::new(
        &url(SmtpSecurity::Plain, &fake, Some("alerts@example.com")),
        Some("s3cret"),
    )
    .expect("a mailer");
    assert_eq!(problem, None);
    assert!(mailer.logs_in());
    assert_eq!(mailer.send(&email(&["ops@example.com"])).await, EmailOutcome::Sent);
    assert_eq!(fake.received()[0].auth.as_deref(), Some("alerts@example.com:s3cret"));
}

#[tokio::test]
async fn a_user_without_a_password_is_refused_and_a_password_without_a_user_is_said() {
    let fake = FakeSmtp::start(Behaviour::Accept).await;
    let Err(error) = Mailer::new(&url(SmtpSecurity::Plain, &fake, Some("me")), None) else {
        panic!("a user without a password is refused");
    };
    assert!(
        error.contains("TWIML_FALLBACK_SMTP_PASSWORD") && error.contains("\"me\""),
        "{error}"
    );
    assert!(Mailer::new(&url(SmtpSecurity::Plain, &fake, Some("me")), Some("")).is_err());
    let (_, problem) = Mailer::new(&url(SmtpSecurity::Plain, &fake, None), Some("unused")).expect("a mailer");
    assert_eq!(problem, Some(PasswordProblem::Unused));
    let said = PasswordProblem::Unused.message();
    assert!(
        said.contains("without logging in") && !said.contains("unused"),
        "{said}"
    );
}

#[tokio::test]
async fn a_4xx_reply_is_worth_another_try_and_a_5xx_is_final() {
    let fake = FakeSmtp::start(Behaviour::Refuse(451)).await;
    let (mailer, _) = Mailer::new(&url(SmtpSecurity::Plain, &fake, None), None).expect("a mailer");
    let EmailOutcome::Transient(reason) = mailer.send(&email(&["ops@example.com"])).await else {
        panic!("451 is transient");
    };
    assert!(reason.contains("451") || reason.contains("transient"), "{reason}");
    fake.set(Behaviour::Refuse(550));
    assert!(
        matches!(
            mailer.send(&email(&["ops@example.com"])).await,
            EmailOutcome::Permanent(_)
        ),
        "550 is permanent"
    );
    assert_eq!(fake.attempts(), 2);
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn a_relay_that_never_answers_is_cut_off_at_the_deadline() {
    let fake = FakeSmtp::start(Behaviour::Hang).await;
    let (mailer, _) = Mailer::new(&url(SmtpSecurity::Plain, &fake, None), None).expect("a mailer");
    let started = std::time::Instant::now();
    let outcome = mailer
        .send_within(&email(&["ops@example.com"]), Duration::from_millis(300))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let EmailOutcome::Transient(reason) = outcome else {
        panic!("a timeout is transient: {outcome:?}");
    };
    assert!(reason.contains("did not finish within"), "{reason}");
}

#[tokio::test]
async fn no_relay_listening_is_transient() {
    let fake = FakeSmtp::start(Behaviour::Accept).await;
    // A port nobody listens on: bind one, note it, let it go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut nowhere = url(SmtpSecurity::Plain, &fake, None);
    nowhere.port = port;
    let (mailer, _) = Mailer::new(&nowhere, None).expect("a mailer");
    assert!(matches!(
        mailer.send(&email(&["ops@example.com"])).await,
        EmailOutcome::Transient(_)
    ));
}

#[tokio::test]
async fn starttls_is_required_never_skipped_when_the_relay_does_not_offer_it() {
    let fake = FakeSmtp::start(Behaviour::Accept).await;
    let (mailer, _) = Mailer::new(&url(SmtpSecurity::StartTls, &fake, Some("me")), Some("s3cret")).expect("a mailer");
    assert!(mailer.relay().ends_with("(starttls)"), "{}", mailer.relay());
    let outcome = mailer.send(&email(&["ops@example.com"])).await;
    assert!(matches!(outcome, EmailOutcome::Transient(_)), "{outcome:?}");
    assert_eq!(fake.attempts(), 0, "nothing was sent in plain text");
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn an_address_lettre_cannot_read_is_final() {
    let fake = FakeSmtp::start(Behaviour::Accept).await;
    let (mailer, _) = Mailer::new(&url(SmtpSecurity::Plain, &fake, None), None).expect("a mailer");
    let outcome = mailer.send(&email(&["not an address"])).await;
    assert!(matches!(outcome, EmailOutcome::Permanent(_)), "{outcome:?}");
    assert_eq!(fake.attempts(), 0);
}
