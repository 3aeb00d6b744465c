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

use std::cell::Cell;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::KeyInit;
use hmac::block_api::HmacCore;
use hmac::digest::array::Array;
use hmac::digest::block_api::{Block, Buffer, FixedOutputCore, UpdateCore};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::webhook::{Params, Span};

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
struct KeyedMac(HmacCore<Sha1>);

impl fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedMac(<redacted>)")
    }
}

impl KeyedMac {
    fn new(token: &AuthToken) -> Self {
        Self(
            <HmacCore<Sha1> as KeyInit>::new_from_slice(token.expose().as_bytes())
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
        let no_params = Params::new();
        let params = match payload {
            Payload::Form(params) => params,
            Payload::UrlOnly | Payload::Body(_) => &no_params,
        };
        let mut batch = Batch::new();
        // The first token over the URL as given is what nearly every request matches: its MAC
        // is computed while the pairs are put in order, when that takes one pass.
        let mut buffer = OrderBuffer::new();
        let (sorted, first_mac) = SortedParams::new_signing(params, &mut buffer, &self.keyed[0].0, url, &mut batch);
        // The SDKs' form (duplicates dropped) first, then the duplicates kept.
        let forms: &[bool] = if sorted.duplicated { &[true, false] } else { &[false] };
        // `skip_first`: the first try (token 0, the first form) was computed already.
        let mut attempt = |url_variant, candidate: &str, mut skip_first: bool| {
            for (token_index, keyed) in self.keyed.iter().enumerate() {
                for &drop_duplicates in forms {
                    if std::mem::take(&mut skip_first) {
                        continue;
                    }
                    let expected = sorted.sign(&keyed.0, candidate, drop_duplicates, &mut batch);
                    if bool::from(signature_is(&expected, signature)) {
                        return Some(Verified {
                            token_index,
                            url_variant,
                        });
                    }
                }
            }
            None
        };
        let first = Verified {
            token_index: 0,
            url_variant: UrlVariant::AsGiven,
        };
        // `url_variants` yields the URL as given first; that one is tried without the iterator.
        let matched = first_mac
            .filter(|mac| bool::from(signature_is(mac, signature)))
            .map(|_| first)
            .or_else(|| attempt(UrlVariant::AsGiven, url, first_mac.is_some()))
            .or_else(|| {
                url_variants(url)
                    .skip(1)
                    .find_map(|(url_variant, candidate)| attempt(url_variant, &candidate, false))
            });
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

/// Up to this many parameters, sorting them needs no allocation (a Twilio webhook has 10–40).
const INLINE_PAIRS: usize = 32;

/// A parameter: key and value.
type Pair<'p> = (&'p [u8], &'p [u8]);

/// Parameters in signing order: by key, then by value, bytewise. The pairs stay where they are
/// (a request's [`Params`], read in place); only their order is kept here.
///
/// What gets sorted is one `u64` per pair: the key's first eight bytes as a big-endian integer
/// (which orders like the key itself and tells most keys apart), its lowest bits replaced by the
/// pair's index. Sorting those eight-byte integers is much cheaper than sorting the pairs. Runs
/// that tie on the rest of the prefix are then settled by the full strings; exact duplicates can
/// only sit inside such runs, so when no two keys share a prefix one pass over the sorted integers
/// says there are none. Up to [`INLINE_PAIRS`] pairs, the order of the last request of the same
/// size is tried first ([`fill_in_remembered_order`]), and the sort runs only when it does not fit.
struct SortedParams<'p> {
    /// The [`Params`]' text: each key followed by its value.
    text: &'p [u8],
    /// Where each pair lies in `text`.
    spans: &'p [Span],
    /// The sort keys in signing order, in an [`OrderBuffer`].
    order: &'p mut [u64],
    /// The low bits of a sort key holding the pair's index.
    index_mask: u64,
    /// Whether some pair occurs twice (key and value alike).
    duplicated: bool,
}

/// Where [`SortedParams`] keeps its sort keys: on the caller's stack up to [`INLINE_PAIRS`]
/// (a [`SortedParams`] holding them itself would be copied whole each time it is returned),
/// past that on the heap.
struct OrderBuffer {
    inline: [u64; INLINE_PAIRS],
    spilled: Vec<u64>,
}

impl OrderBuffer {
    fn new() -> Self {
        Self {
            inline: [0; INLINE_PAIRS],
            spilled: Vec::new(),
        }
    }
}

/// How many signing orders each thread remembers, one per parameter count modulo this.
const REMEMBERED_ORDERS: usize = 4;

thread_local! {
    /// The signing order (pair indexes) of the last request this thread verified with as many
    /// parameters as the slot's count, and that count.
    static REMEMBERED: [Cell<(u8, [u8; INLINE_PAIRS])>; REMEMBERED_ORDERS] =
        const { [const { Cell::new((0, [0; INLINE_PAIRS])) }; REMEMBERED_ORDERS] };
}

/// Fills `order` with the sort keys of `pairs` in the signing order remembered for their count,
/// if that is their signing order (the keys rise), and says whether two of them tie on their
/// prefix. Twilio sends each kind of webhook's parameters in the same order every time, so this
/// usually replaces the sort. Nothing is trusted from the memory: `pairs.len()` rising sort keys
/// carry as many distinct indexes below `pairs.len()` (their low bits), so they are all the pairs,
/// and in the one order that sorts them. `each` sees every pair as it is placed, in that order;
/// what it saw counts only if the order is confirmed and nothing ties.
fn fill_in_remembered_order(
    text: &[u8],
    spans: &[Span],
    prefix_mask: u64,
    order: &mut [u64],
    mut each: impl FnMut(&[u8]),
) -> Option<bool> {
    let (len, remembered) = REMEMBERED.with(|slots| slots[spans.len() % REMEMBERED_ORDERS].get());
    if usize::from(len) != spans.len() {
        return None;
    }
    let mut previous = None;
    let mut tied = false;
    for (slot, &index) in order.iter_mut().zip(&remembered) {
        let span = spans.get(usize::from(index))?;
        let key_and_value = text.get(span.start..span.end)?;
        let key = &key_and_value[..span.value_start - span.start];
        let sort_key = (prefix(key) & prefix_mask) | u64::from(index);
        if let Some(previous) = previous {
            if previous >= sort_key {
                return None;
            }
            tied |= (previous ^ sort_key) & prefix_mask == 0;
        }
        previous = Some(sort_key);
        *slot = sort_key;
        each(key_and_value);
    }
    Some(tied)
}

/// Whether two neighbours in the sorted `order` share their prefix. Usually no two keys do, and
/// one pass says so. (Word by word: wide loads of words the sort has just stored one by one would
/// stall.)
fn any_tied(order: &[u64], prefix_mask: u64) -> bool {
    order.windows(2).any(|w| (w[0] ^ w[1]) & prefix_mask == 0)
}

/// Remembers the signing order `order` (sorted sort keys, at most [`INLINE_PAIRS`]) for its count.
fn remember_order(order: &[u64], index_mask: u64) {
    let mut remembered = [0u8; INLINE_PAIRS];
    for (index, sort_key) in remembered.iter_mut().zip(order) {
        *index = (sort_key & index_mask) as u8;
    }
    // At most INLINE_PAIRS: the count fits a byte.
    let len = order.len() as u8;
    REMEMBERED.with(|slots| slots[order.len() % REMEMBERED_ORDERS].set((len, remembered)));
}

/// The bits needed for an index below `len`.
fn index_mask(len: usize) -> u64 {
    let bits = usize::BITS - len.saturating_sub(1).leading_zeros();
    1u64.checked_shl(bits).map_or(u64::MAX, |bit| bit - 1)
}

impl<'p> SortedParams<'p> {
    /// Sorts the pairs of `params`, their sort keys kept in `buffer`.
    fn new(params: &'p Params, buffer: &'p mut OrderBuffer) -> Self {
        Self::sort(params, buffer, |_| {}).0
    }

    /// Sorts the pairs of `params` and, when the order remembered for their count fits them (the
    /// usual case), signs them in the same pass with `keyed` over `url`: the MAC
    /// [`SortedParams::sign`] would give without dropping duplicates (there are none then). `None`
    /// when the pairs had to be sorted, or tied on a prefix.
    fn new_signing(
        params: &'p Params,
        buffer: &'p mut OrderBuffer,
        keyed: &HmacCore<Sha1>,
        url: &str,
        batch: &mut Batch,
    ) -> (Self, Option<[u8; 20]>) {
        let mut mac = keyed.clone();
        batch.len = 0;
        batch.push(&mut mac, url.as_bytes());
        let (sorted, signed_in_order) = Self::sort(params, buffer, |key_and_value| batch.push(&mut mac, key_and_value));
        let mac = signed_in_order.then(|| batch.finish(mac));
        (sorted, mac)
    }

    /// Sorts the pairs of `params` into `buffer`, handing them to `each` in signing order if the
    /// remembered order fits; says whether what `each` saw is the signing order (it fit, and no
    /// two keys tie on their prefix).
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn sort(params: &'p Params, buffer: &'p mut OrderBuffer, each: impl FnMut(&[u8])) -> (Self, bool) {
        let (text, spans) = (params.text().as_bytes(), params.spans());
        let index_mask = index_mask(spans.len());
        let prefix_mask = !index_mask;
        let sort_keys = spans
            .iter()
            .enumerate()
            .map(|(index, span)| (prefix(&text[span.start..span.value_start]) & prefix_mask) | index as u64);
        let (order, tied, remembered) = if spans.len() <= INLINE_PAIRS {
            let order = &mut buffer.inline[..spans.len()];
            match fill_in_remembered_order(text, spans, prefix_mask, order, each) {
                Some(tied) => (order, tied, true),
                None => {
                    for (slot, sort_key) in order.iter_mut().zip(sort_keys) {
                        *slot = sort_key;
                    }
                    order.sort_unstable();
                    remember_order(order, index_mask);
                    let tied = any_tied(order, prefix_mask);
                    (order, tied, false)
                }
            }
        } else {
            buffer.spilled = sort_keys.collect();
            buffer.spilled.sort_unstable();
            let tied = any_tied(&buffer.spilled, prefix_mask);
            (&mut buffer.spilled[..], tied, false)
        };
        let mut sorted = Self {
            text,
            spans,
            order,
            index_mask,
            duplicated: false,
        };
        if tied {
            sorted.settle_runs();
        }
        (sorted, remembered && !tied)
    }

    /// The span of the pair a sort key stands for.
    fn span(&self, sort_key: u64) -> Span {
        self.spans[(sort_key & self.index_mask) as usize]
    }

    /// Sorts each run of equal prefixes by the full key, then value, and notes exact duplicates.
    #[inline(never)]
    fn settle_runs(&mut self) {
        let (text, spans, index_mask) = (self.text, self.spans, self.index_mask);
        let prefix_mask = !index_mask;
        let order = &mut *self.order;
        let pair = |sort_key: u64| pair_of(text, spans[(sort_key & index_mask) as usize]);
        let mut start = 0;
        while start < order.len() {
            let run_prefix = order[start] & prefix_mask;
            let end = start
                + 1
                + order[start + 1..]
                    .iter()
                    .take_while(|slot| *slot & prefix_mask == run_prefix)
                    .count();
            if end - start > 1 {
                let run = &mut order[start..end];
                run.sort_unstable_by(|&a, &b| pair(a).cmp(&pair(b)));
                self.duplicated |= run.windows(2).any(|w| pair(w[0]) == pair(w[1]));
            }
            start = end;
        }
    }

    /// HMAC over the URL and the pairs (each exact duplicate once, if asked), copied into
    /// `batch` and fed to the MAC two blocks at a time: far cheaper than two `update`s per
    /// parameter, and no larger buffer to allocate or to fill before hashing starts.
    fn sign(&self, keyed: &HmacCore<Sha1>, url: &str, drop_duplicates: bool, batch: &mut Batch) -> [u8; 20] {
        let mut mac = keyed.clone();
        batch.len = 0;
        batch.push(&mut mac, url.as_bytes());
        // Without duplicates, dropping them changes nothing.
        let drop_duplicates = drop_duplicates && self.duplicated;
        let mut previous = None;
        for &sort_key in self.order.iter() {
            let span = self.span(sort_key);
            if drop_duplicates {
                let pair = pair_of(self.text, span);
                if previous == Some(pair) {
                    continue;
                }
                previous = Some(pair);
            }
            batch.push(&mut mac, &self.text[span.start..span.end]);
        }
        batch.finish(mac)
    }
}

/// The key and the value `span` points at in `text`.
fn pair_of(text: &[u8], span: Span) -> Pair<'_> {
    (&text[span.start..span.value_start], &text[span.value_start..span.end])
}

/// How many SHA-1 blocks are gathered before they are fed to the MAC.
const BATCH_BLOCKS: usize = 2;
const BATCH: usize = 64 * BATCH_BLOCKS;

/// The bytes being signed, gathered on the stack into whole blocks for the MAC's block-level
/// API (which hashes them in place: no second copy into the MAC's own buffer).
struct Batch {
    blocks: [Block<HmacCore<Sha1>>; BATCH_BLOCKS],
    len: usize,
}

impl Batch {
    fn new() -> Self {
        Self {
            blocks: Default::default(),
            len: 0,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        Array::slice_as_flattened_mut(&mut self.blocks)
    }

    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn push(&mut self, mac: &mut HmacCore<Sha1>, data: &[u8]) {
        let len = self.len;
        if data.len() < BATCH - len {
            copy_short(&mut self.bytes()[len..len + data.len()], data);
            self.len = len + data.len();
        } else {
            self.push_and_flush(mac, data);
        }
    }

    #[inline(never)]
    fn push_and_flush(&mut self, mac: &mut HmacCore<Sha1>, data: &[u8]) {
        let len = self.len;
        let (now, mut data) = data.split_at(BATCH - len);
        copy_short(&mut self.bytes()[len..], now);
        mac.update_blocks(&self.blocks);
        // A long value: its whole blocks go to the MAC straight from where they are.
        let (blocks, rest) = Array::slice_as_chunks(data);
        mac.update_blocks(blocks);
        data = rest;
        copy_short(&mut self.bytes()[..data.len()], data);
        self.len = data.len();
    }

    /// The MAC over everything pushed.
    fn finish(&mut self, mut mac: HmacCore<Sha1>) -> [u8; 20] {
        let full = self.len / 64;
        mac.update_blocks(&self.blocks[..full]);
        let tail = &Array::slice_as_flattened(&self.blocks)[full * 64..self.len];
        let mut buffer = Buffer::<HmacCore<Sha1>>::new(tail);
        let mut out = Default::default();
        mac.finalize_fixed_core(&mut buffer, &mut out);
        out.into()
    }
}

/// `dst.copy_from_slice(src)`, with the lengths of most keys and values (up to 64 bytes) done in
/// two overlapping fixed-size moves rather than a call to `memcpy`.
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    fn both<const N: usize>(dst: &mut [u8], src: &[u8]) {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
            *d = *s;
        }
    }
    match src.len() {
        0 => {}
        1..4 => {
            let n = src.len();
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..8 => both::<4>(dst, src),
        8..=16 => both::<8>(dst, src),
        17..=32 => both::<16>(dst, src),
        33..=64 => both::<32>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// The key's first eight bytes as a big-endian integer, zero-padded. A shorter key is read in
/// registers (two overlapping loads), not through a padded copy on the stack: a wide load of bytes
/// just stored one by one stalls the CPU.
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
fn prefix(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    if let Some(first) = bytes.first_chunk::<8>() {
        u64::from_be_bytes(*first)
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // 4–7 bytes: the last four land at bytes n-4..n of the eight, overlapping the first four.
        (u64::from(u32::from_be_bytes(*head)) << 32) | (u64::from(u32::from_be_bytes(*tail)) << (8 * (8 - n)))
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        // 1–3 bytes: the first, middle and last byte (for 1 or 2 bytes some of them coincide).
        let middle = bytes[n / 2];
        (u64::from(first) << 56) | (u64::from(middle) << (56 - 8 * (n / 2))) | (u64::from(last) << (56 - 8 * (n - 1)))
    } else {
        0
    }
}

/// The signature Twilio sends for a form POST of `params` to `url` (pass an empty iterator for a
/// GET or a JSON body).
pub fn compute_signature<'a>(token: &str, url: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let keyed = KeyedMac::new(&AuthToken::new(token));
    let params = Params::from_pairs(params);
    let mut buffer = OrderBuffer::new();
    let sorted = SortedParams::new(&params, &mut buffer);
    BASE64.encode(sorted.sign(&keyed.0, url, true, &mut Batch::new()))
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

/// Whether `signature` is `mac` in base64, without a branch on their contents: the MAC is
/// encoded (cheaper than decoding what was sent, and the same for a signature that is not base64
/// at all), the bytes' differences are OR-ed together, and `subtle` compares the result with zero.
fn signature_is(mac: &[u8; 20], signature: &str) -> subtle::Choice {
    let mut encoded = [0u8; 28];
    let written = BASE64.encode_slice(mac, &mut encoded);
    debug_assert_eq!(written, Ok(28), "20 bytes are 28 characters of base64");
    let Ok(signature) = <&[u8; 28]>::try_from(signature.as_bytes()) else {
        return subtle::Choice::from(0);
    };
    let difference = encoded
        .iter()
        .zip(signature)
        .fold(0u8, |difference, (x, y)| difference | (x ^ y));
    difference.ct_eq(&0)
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
