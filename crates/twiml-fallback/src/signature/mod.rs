//! `X-Twilio-Signature`: compute and verify it the way all of Twilio's official SDKs do.
//!
//! Twilio signs every webhook with HMAC-SHA1 keyed by the account's auth token, over:
//!
//! 1. the exact URL it requested, query string included (never re-encoded here);
//! 2. for a form POST, every parameter sorted by key (byte order) as `key` + `value`, a repeated key
//!    contributing each of its distinct values in sorted order (the official SDKs drop exact
//!    duplicates; verification also accepts a signature over the duplicates kept); for a GET,
//!    nothing;
//! 3. for a JSON body, nothing either: the URL carries `bodySHA256=<hex sha256 of the body>`, which
//!    is checked separately.
//!
//! The result is base64 (standard alphabet, padded). Because Twilio is inconsistent about default
//! ports, verification also accepts the URL with its port removed, or with `:443`/`:80` added when
//! it had none; user info (`user:pass@`) and IPv6 hosts are kept as they are. Comparisons are constant
//! time, and several tokens can be accepted at once to rotate the auth token without downtime.
//!
//! Behind a proxy the URL a server sees is not the one Twilio signed: [`UrlPolicy`] rebuilds it from
//! the request as received, from a configured public base URL, or (only when asked) from
//! `X-Forwarded-Proto`/`X-Forwarded-Host`. When a signature does not match,
//! [`UrlPolicy::mismatch_hint`] reads the request's headers for signs of a proxy or tunnel and
//! names the fix ([`UrlHint`]).
//!
//! # Example
//!
//! ```
//! use twiml_fallback::signature::{compute_signature, Payload, SignatureVerifier};
//! use twiml_fallback::webhook::Params;
//!
//! let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
//! let params = Params::from_pairs([
//!     ("CallSid", "CA1234567890ABCDE"),
//!     ("Caller", "+14158675309"),
//!     ("Digits", "1234"),
//!     ("From", "+14158675309"),
//!     ("To", "+18005551212"),
//! ]);
//! let signature = compute_signature("12345", url, &params);
//! assert_eq!(signature, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
//!
//! // Verify with the current token and, during a rotation, the next one.
//! let verifier = SignatureVerifier::new("12345").with_token("67890");
//! assert!(verifier.verify(url, Payload::Form(&params), &signature).is_ok());
//! // Twilio sometimes signs with the default port spelled out; both forms verify.
//! assert!(verifier
//!     .verify("https://mycompany.com:443/myapp.php?foo=1&bar=2", Payload::Form(&params), &signature)
//!     .is_ok());
//! // Anything tampered does not.
//! assert!(verifier.verify(url, Payload::Form(&Params::new()), &signature).is_err());
//! ```

mod public_url;
mod url_hint;
pub(crate) mod url_variants;

pub use public_url::{Scheme, UrlPolicy, UrlPolicyError};
pub use url_hint::UrlHint;
pub use url_variants::{UrlVariant, url_variants};

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::webhook::Params;

/// The request header carrying Twilio's signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The query parameter Twilio adds to the URL when it sends a JSON body.
pub const BODY_HASH_PARAM: &str = "bodySHA256";

/// An account's auth token (or an API key secret). Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

impl From<&str> for AuthToken {
    fn from(token: &str) -> Self {
        Self::new(token)
    }
}

impl From<String> for AuthToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

/// What Twilio signed besides the URL.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// A GET (or any request whose parameters are all in the URL): the URL alone is signed.
    UrlOnly,
    /// A form POST: the URL plus the sorted parameters.
    Form(&'a Params),
    /// A JSON (or other raw) body: the URL alone is signed, and its `bodySHA256` must match the body.
    Body(&'a [u8]),
}

impl<'a> Payload<'a> {
    /// Picks the payload Twilio signs for a request: the URL alone for GET and HEAD, the body hash
    /// when the URL carries `bodySHA256`, otherwise the form parameters.
    pub fn for_request(method: &http::Method, url: &str, body: &'a [u8], params: &'a Params) -> Self {
        if method == http::Method::GET || method == http::Method::HEAD {
            Payload::UrlOnly
        } else if body_hash_param(url).is_some() {
            Payload::Body(body)
        } else {
            Payload::Form(params)
        }
    }
}

/// Why a signature did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// No token is configured, so nothing can be verified.
    NoToken,
    /// The request carried no `X-Twilio-Signature`.
    Missing,
    /// The signature did not match the URL and parameters under any accepted token or URL form.
    Mismatch,
    /// The signature matched, but the body's SHA-256 differs from the URL's `bodySHA256`.
    BodyHashMismatch,
    /// The payload is a body, but the URL has no `bodySHA256` parameter.
    BodyHashMissing,
}

impl SignatureError {
    /// A short stable name for logs: `no-token`, `missing`, `mismatch`, `body-hash-mismatch`, …
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureError::NoToken => "no-token",
            SignatureError::Missing => "missing",
            SignatureError::Mismatch => "mismatch",
            SignatureError::BodyHashMismatch => "body-hash-mismatch",
            SignatureError::BodyHashMissing => "body-hash-missing",
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureError::NoToken => "no auth token is configured to verify X-Twilio-Signature",
            SignatureError::Missing => "the request has no X-Twilio-Signature header",
            SignatureError::Mismatch => "X-Twilio-Signature does not match the request",
            SignatureError::BodyHashMismatch => "the body does not match the URL's bodySHA256",
            SignatureError::BodyHashMissing => "a body was signed but the URL has no bodySHA256",
        })
    }
}

impl std::error::Error for SignatureError {}

/// Which token and which form of the URL a valid signature matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The index of the matching token, in the order they were given (0 = the first).
    pub token_index: usize,
    /// The form of the URL that matched.
    pub url_variant: UrlVariant,
}

/// Verifies `X-Twilio-Signature` against one or more auth tokens.
#[derive(Clone, Debug, Default)]
pub struct SignatureVerifier {
    tokens: Vec<AuthToken>,
    /// HMAC state already keyed with each token: cloning it skips the key schedule per request.
    keyed: Vec<KeyedMac>,
}

#[derive(Clone)]
struct KeyedMac(Hmac<Sha1>);

impl fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedMac(<redacted>)")
    }
}

impl KeyedMac {
    fn new(token: &AuthToken) -> Self {
        Self(
            <Hmac<Sha1> as KeyInit>::new_from_slice(token.expose().as_bytes())
                .expect("HMAC accepts keys of any length"),
        )
    }
}

impl SignatureVerifier {
    /// A verifier for one token.
    pub fn new(token: impl Into<AuthToken>) -> Self {
        Self::default().with_token(token)
    }

    /// A verifier for several tokens, tried in order (empty tokens are skipped).
    pub fn from_tokens<T: Into<AuthToken>>(tokens: impl IntoIterator<Item = T>) -> Self {
        tokens.into_iter().fold(Self::default(), Self::with_token)
    }

    /// Also accepts `token` (e.g. the secondary token during a rotation); an empty token is ignored.
    pub fn with_token(mut self, token: impl Into<AuthToken>) -> Self {
        let token = token.into();
        if !token.0.is_empty() {
            self.keyed.push(KeyedMac::new(&token));
            self.tokens.push(token);
        }
        self
    }

    /// The accepted tokens, in order.
    pub fn tokens(&self) -> &[AuthToken] {
        &self.tokens
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Checks `signature` for a request to `url` carrying `payload`.
    pub fn verify(&self, url: &str, payload: Payload<'_>, signature: &str) -> Result<Verified, SignatureError> {
        if self.tokens.is_empty() {
            return Err(SignatureError::NoToken);
        }
        let signature = signature.trim();
        if signature.is_empty() {
            return Err(SignatureError::Missing);
        }
        // A signature that is not 20 bytes of base64 cannot match; comparing against a zeroed
        // buffer keeps the work (and the timing) the same as for a well-formed wrong one.
        let (provided, well_formed) = match decode_signature(signature) {
            Some(bytes) => (bytes, true),
            None => ([0u8; 20], false),
        };
        let with_duplicates = match payload {
            Payload::Form(params) => SortedParams::new(params.iter()),
            Payload::UrlOnly | Payload::Body(_) => SortedParams::default(),
        };
        // The SDKs' form (duplicates dropped) first, then the duplicates kept.
        let distinct = with_duplicates.distinct();
        let forms: &[&SortedParams<'_>] = match &distinct {
            Some(distinct) => &[distinct, &with_duplicates],
            None => &[&with_duplicates],
        };
        let mut buffer = Vec::with_capacity(with_duplicates.signed_len(url) + 8);
        let mut matched = None;
        'search: for (url_variant, candidate) in url_variants(url) {
            for (token_index, keyed) in self.keyed.iter().enumerate() {
                for pairs in forms {
                    let expected = pairs.sign(keyed.0.clone(), &candidate, &mut buffer);
                    if bool::from(expected.ct_eq(&provided)) && well_formed {
                        matched = Some(Verified {
                            token_index,
                            url_variant,
                        });
                        break 'search;
                    }
                }
            }
        }
        let verified = matched.ok_or(SignatureError::Mismatch)?;
        if let Payload::Body(body) = payload {
            let Some(expected_hex) = body_hash_param(url) else {
                return Err(SignatureError::BodyHashMissing);
            };
            if !body_hash_matches(&expected_hex, body) {
                return Err(SignatureError::BodyHashMismatch);
            }
        }
        Ok(verified)
    }
}

/// Parameters in signing order: by key, then by value, bytewise.
#[derive(Clone, Default)]
struct SortedParams<'p> {
    pairs: Vec<(u64, &'p str, &'p str)>,
}

impl<'p> SortedParams<'p> {
    fn new(pairs: impl Iterator<Item = (&'p str, &'p str)>) -> Self {
        let mut pairs: Vec<(u64, &str, &str)> = pairs.map(|(key, value)| (prefix(key), key, value)).collect();
        // The big-endian first eight bytes of a key order like the key itself and tell most keys
        // apart, so sort by that integer, then settle runs of equal prefixes by the full strings.
        pairs.sort_unstable_by_key(|pair| pair.0);
        let mut start = 0;
        while start < pairs.len() {
            let end = start
                + pairs[start..]
                    .iter()
                    .take_while(|pair| pair.0 == pairs[start].0)
                    .count();
            if end - start > 1 {
                pairs[start..end].sort_unstable_by(|a, b| (a.1, a.2).cmp(&(b.1, b.2)));
            }
            start = end;
        }
        Self { pairs }
    }

    /// The same, with exact duplicate pairs removed (what the official SDKs sign); `None` when
    /// there are none.
    fn distinct(&self) -> Option<Self> {
        let duplicated = self.pairs.windows(2).any(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2);
        duplicated.then(|| {
            let mut pairs = self.pairs.clone();
            pairs.dedup_by(|a, b| a.1 == b.1 && a.2 == b.2);
            Self { pairs }
        })
    }

    /// HMAC over the URL and the pairs, fed as one contiguous buffer (one `update` is much cheaper
    /// than two per parameter).
    fn sign(&self, mut mac: Hmac<Sha1>, url: &str, buffer: &mut Vec<u8>) -> [u8; 20] {
        buffer.clear();
        buffer.extend_from_slice(url.as_bytes());
        for (_, key, value) in &self.pairs {
            buffer.extend_from_slice(key.as_bytes());
            buffer.extend_from_slice(value.as_bytes());
        }
        mac.update(buffer);
        mac.finalize().into_bytes().into()
    }

    fn signed_len(&self, url: &str) -> usize {
        url.len()
            + self
                .pairs
                .iter()
                .map(|(_, key, value)| key.len() + value.len())
                .sum::<usize>()
    }
}

fn prefix(key: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let len = key.len().min(8);
    bytes[..len].copy_from_slice(&key.as_bytes()[..len]);
    u64::from_be_bytes(bytes)
}

/// The signature Twilio sends for a form POST of `params` to `url` (pass an empty iterator for a
/// GET or a JSON body).
pub fn compute_signature<'a>(token: &str, url: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let keyed = KeyedMac::new(&AuthToken::new(token));
    let sorted = SortedParams::new(params.into_iter());
    let distinct = sorted.distinct();
    let pairs = distinct.as_ref().unwrap_or(&sorted);
    BASE64.encode(pairs.sign(keyed.0, url, &mut Vec::with_capacity(pairs.signed_len(url))))
}

/// The lowercase hex SHA-256 of a body, as Twilio puts it in `bodySHA256`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_signature(signature: &str) -> Option<[u8; 20]> {
    if signature.len() != 28 {
        return None;
    }
    let mut out = [0u8; 20];
    match BASE64.decode_slice(signature, &mut out) {
        Ok(20) => Some(out),
        _ => None,
    }
}

/// The `bodySHA256` value in the URL's query string, if any.
fn body_hash_param(url: &str) -> Option<String> {
    let query = crate::url::query(url)?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == BODY_HASH_PARAM)
        .map(|(_, value)| value.into_owned())
}

fn body_hash_matches(expected_hex: &str, body: &[u8]) -> bool {
    let Some(expected) = decode_hex_32(expected_hex) else {
        return false;
    };
    let actual: [u8; 32] = Sha256::digest(body).into();
    bool::from(actual.ct_eq(&expected))
}

fn decode_hex_32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.trim().as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
