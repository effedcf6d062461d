//! The version of the JSON documents tickcast writes: `receive --json`,
//! `broadcast --json`, `bench --json` and `impair --json` each print one
//! object whose first key is `"schema": JSON_SCHEMA`. A reader checks it
//! before trusting the other keys; `proto/PROTOCOL.md` ("JSON") lists them.
//!
//! The number changes when a key of any of those documents is removed,
//! renamed, or changes its meaning or unit. Adding a key does not change it:
//! readers ignore keys they do not know (the bench's own read-back of its
//! child processes does).

use serde::{Deserialize, Serialize};

/// The schema of every JSON document tickcast writes. Version 1: the
/// figures as `proto/PROTOCOL.md` ("JSON") lists them, latencies in µs, an
/// empty histogram `null`.
pub const JSON_SCHEMA: u32 = 1;

/// A JSON document with its schema first: `{"schema": 1, ...}` followed by
/// the keys of `document` (which must serialize as a map, as structs do).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versioned<T> {
    /// The document's schema: [`JSON_SCHEMA`] when written by this build.
    pub schema: u32,
    /// The document itself, its keys beside `schema`.
    #[serde(flatten)]
    pub document: T,
}

impl<T> Versioned<T> {
    /// `document`, marked with this build's [`JSON_SCHEMA`].
    pub fn new(document: T) -> Versioned<T> {
        Versioned {
            schema: JSON_SCHEMA,
            document,
        }
    }

    /// The document, if it has this build's schema; else the schema it has.
    pub fn current(self) -> Result<T, u32> {
        if self.schema == JSON_SCHEMA {
            Ok(self.document)
        } else {
            Err(self.schema)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        lost: u64,
        latency_us: Option<f64>,
    }

    #[test]
    fn the_schema_is_the_first_key_beside_the_documents_own() {
        let doc = Doc {
            lost: 3,
            latency_us: None,
        };
        let text = serde_json::to_string(&Versioned::new(&doc)).unwrap();
        assert_eq!(text, r#"{"schema":1,"lost":3,"latency_us":null}"#);
        let back: Versioned<Doc> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.current(), Ok(doc));
        let other: Versioned<Doc> =
            serde_json::from_str(r#"{"schema":2,"lost":0,"latency_us":1.5}"#).unwrap();
        assert_eq!(other.current(), Err(2));
        assert!(serde_json::from_str::<Versioned<Doc>>(r#"{"lost":0}"#).is_err());
    }
}
