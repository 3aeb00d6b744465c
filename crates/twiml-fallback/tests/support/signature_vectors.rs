//! The X-Twilio-Signature vectors of `tests/fixtures/sdk-signature-vectors.json` (the official
//! SDKs' test suites and DESIGN §3), for the tests that check them. Included with `#[path]` by
//! the signature unit tests, `sdk_signature_vectors.rs` and `layer.rs`, so every vector is written
//! down once.

// Each test crate including this module uses only part of it.
#![allow(dead_code)]

use serde_json::Value;

/// One vector: a request Twilio signed and the signature it carries.
#[derive(Clone, Debug)]
pub(crate) struct Vector {
    pub(crate) id: String,
    pub(crate) token: String,
    /// The URL requested, query string included.
    pub(crate) url: String,
    /// The form parameters, in the order given; `None` when the request has a JSON body or
    /// nothing but its URL.
    pub(crate) params: Option<Vec<(String, String)>>,
    /// The raw JSON body (checked through the URL's `bodySHA256`).
    pub(crate) body: Option<String>,
    /// The X-Twilio-Signature header.
    pub(crate) signature: String,
    /// Whether this crate must accept it.
    pub(crate) we_return: bool,
}

impl Vector {
    /// The parameters as an `application/x-www-form-urlencoded` body, in their order.
    pub(crate) fn form_body(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.params.as_deref().unwrap_or_default() {
            form.append_pair(key, value);
        }
        form.finish()
    }
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/sdk-signature-vectors.json")).expect("the fixture is JSON")
}

fn text(vector: &Value, field: &str) -> String {
    match vector[field].as_str() {
        Some(text) => text.to_owned(),
        None => panic!("vector {}: no {field}", vector["id"]),
    }
}

fn parse(vector: &Value) -> Vector {
    let params = vector["params"].as_array().map(|pairs| {
        pairs
            .iter()
            .map(|pair| match (pair[0].as_str(), pair[1].as_str()) {
                (Some(key), Some(value)) => (key.to_owned(), value.to_owned()),
                _ => panic!("vector {}: a parameter is not a [key, value] pair", vector["id"]),
            })
            .collect()
    });
    Vector {
        id: text(vector, "id"),
        token: text(vector, "token"),
        url: text(vector, "url"),
        params,
        body: vector["body"].as_str().map(str::to_owned),
        signature: text(vector, "signature"),
        we_return: vector["we_return"].as_bool().expect("we_return is a boolean"),
    }
}

/// Every vector, in the fixture's order.
pub(crate) fn all() -> Vec<Vector> {
    fixture()["vectors"]
        .as_array()
        .expect("a vectors array")
        .iter()
        .map(parse)
        .collect()
}

/// The vector named `id`.
pub(crate) fn by_id(id: &str) -> Vector {
    match all().into_iter().find(|vector| vector.id == id) {
        Some(vector) => vector,
        None => panic!("no vector {id:?} in the fixture"),
    }
}

/// The vectors DESIGN §3 states, in its order.
pub(crate) fn design() -> Vec<Vector> {
    let ids = fixture()["design"].as_array().expect("a design list").clone();
    ids.iter().map(|id| by_id(id.as_str().expect("an id"))).collect()
}
