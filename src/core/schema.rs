//! The version of the JSON documents tickcast writes: `receive --json`,
//! `broadcast --json`, `bench --json` and `impair --json` each print one
//! object whose first key is `"schema": JSON_SCHEMA`. A reader checks it
//! before trusting the other keys; `proto/PROTOCOL.md` ("JSON") lists them,
//! and `proto/receiver.schema.json` and `proto/broadcaster.schema.json`
//! define the receiver's and the broadcaster's key by key (JSON Schema
//! draft 2020-12). Tests hold the reference's output to those files
//! (the test-only `check` module).
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

/// A small checker of the JSON Schema subset `proto/*.schema.json` use,
/// for the tests that hold the reference's JSON to those files. It knows
/// `type`, `properties`, `required`, `additionalProperties` (a bool),
/// `$ref` (to `#/$defs/...`), `oneOf`, `const`, `enum`, `minimum` and
/// `maximum`, and takes `$schema`, `$id`, `$defs`, `title` and
/// `description` as annotations; any other keyword is an error, so a
/// schema cannot state a rule no test checks. (The `jsonschema` crate
/// would check all of draft 2020-12, at the cost of dozens of crates,
/// regex engines and URL handling among them, for tests that need ten
/// keywords.)
#[cfg(test)]
pub(crate) mod check {
    use serde_json::Value;

    /// `proto/receiver.schema.json`, built into the test (the core reads
    /// no files).
    pub(crate) const RECEIVER: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/receiver.schema.json"
    ));
    /// `proto/broadcaster.schema.json`.
    pub(crate) const BROADCASTER: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/broadcaster.schema.json"
    ));

    /// A schema file's text, parsed.
    pub(crate) fn load(text: &str) -> Value {
        serde_json::from_str(text).expect("a schema file is JSON")
    }

    /// Checks that `doc`, an object, has exactly the keys `schema`'s
    /// `properties` lists, that each is `required`, and that `doc` is valid
    /// against `schema`. The error names the path of the first violation.
    pub(crate) fn exactly(schema: &Value, doc: &Value) -> Result<(), String> {
        let props = schema["properties"].as_object().ok_or("no properties")?;
        let keys: Vec<&String> = doc.as_object().ok_or("not an object")?.keys().collect();
        let listed: Vec<&String> = props.keys().collect();
        let (mut a, mut b) = (keys.clone(), listed.clone());
        a.sort();
        b.sort();
        if a != b {
            let extra: Vec<_> = keys.iter().filter(|k| !props.contains_key(**k)).collect();
            let missing: Vec<_> = listed.iter().filter(|k| !keys.contains(k)).collect();
            return Err(format!(
                "keys not in the schema: {extra:?}; in the schema, not in the JSON: {missing:?}"
            ));
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .ok_or("no required")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if let Some(k) = listed.iter().find(|k| !required.contains(&k.as_str())) {
            return Err(format!("{k} is listed but not required"));
        }
        valid(schema, schema, doc, "$")
    }

    /// Whether `doc` is valid against `node`, a (sub)schema of `root`.
    pub(crate) fn valid(root: &Value, node: &Value, doc: &Value, at: &str) -> Result<(), String> {
        let node = node
            .as_object()
            .ok_or(format!("{at}: schema is not an object"))?;
        for (k, rule) in node {
            match k.as_str() {
                "$schema" | "$id" | "$defs" | "title" | "description" => {}
                "type" => {
                    let types: Vec<&str> = match rule {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => return Err(format!("{at}: bad type {rule}")),
                    };
                    if !types.iter().any(|t| is_type(t, doc)) {
                        return Err(format!("{at}: {doc} is not {types:?}"));
                    }
                }
                "properties" => {
                    let props = rule.as_object().ok_or(format!("{at}: bad properties"))?;
                    if let Some(obj) = doc.as_object() {
                        for (name, sub) in props {
                            if let Some(v) = obj.get(name) {
                                valid(root, sub, v, &format!("{at}.{name}"))?;
                            }
                        }
                    }
                }
                "required" => {
                    if let Some(obj) = doc.as_object() {
                        for name in rule.as_array().into_iter().flatten() {
                            let name = name.as_str().unwrap_or_default();
                            if !obj.contains_key(name) {
                                return Err(format!("{at}: {name} is missing"));
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    let allowed = rule.as_bool().ok_or(format!("{at}: only a bool here"))?;
                    if let (false, Some(obj)) = (allowed, doc.as_object()) {
                        let listed = node.get("properties").and_then(Value::as_object);
                        if let Some(extra) = obj
                            .keys()
                            .find(|k| !listed.is_some_and(|l| l.contains_key(*k)))
                        {
                            return Err(format!("{at}: {extra} is not allowed"));
                        }
                    }
                }
                "$ref" => {
                    let name = rule
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .ok_or(format!("{at}: only #/$defs/ refs"))?;
                    valid(root, &root["$defs"][name], doc, at)?;
                }
                "oneOf" => {
                    let subs = rule.as_array().ok_or(format!("{at}: bad oneOf"))?;
                    let ok = subs
                        .iter()
                        .filter(|s| valid(root, s, doc, at).is_ok())
                        .count();
                    if ok != 1 {
                        return Err(format!("{at}: {doc} matches {ok} of oneOf"));
                    }
                }
                "const" if rule != doc => return Err(format!("{at}: {doc} is not {rule}")),
                "const" => {}
                "enum" => {
                    if !rule.as_array().is_some_and(|vs| vs.contains(doc)) {
                        return Err(format!("{at}: {doc} is not one of {rule}"));
                    }
                }
                "minimum" | "maximum" => {
                    let (Some(bound), Some(v)) = (rule.as_f64(), doc.as_f64()) else {
                        continue; // applies to numbers only
                    };
                    if (k == "minimum" && v < bound) || (k == "maximum" && v > bound) {
                        return Err(format!("{at}: {doc} is beyond its {k} {rule}"));
                    }
                }
                other => return Err(format!("{at}: keyword {other} is not checked here")),
            }
        }
        Ok(())
    }

    fn is_type(t: &str, v: &Value) -> bool {
        match t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            _ => false,
        }
    }

    #[test]
    fn the_checker_refuses_what_breaks_a_rule() {
        let schema: Value = serde_json::from_str(
            r##"{"type": "object",
                "properties": {
                    "n": {"type": "integer", "minimum": 0},
                    "l": {"oneOf": [{"$ref": "#/$defs/s"}, {"type": "null"}]}},
                "required": ["n", "l"],
                "$defs": {"s": {"type": "object", "properties": {"p": {"type": "number"}},
                                "required": ["p"], "additionalProperties": false}}}"##,
        )
        .unwrap();
        let doc = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(exactly(&schema, &doc(r#"{"n": 1, "l": null}"#)), Ok(()));
        assert_eq!(
            exactly(&schema, &doc(r#"{"n": 1, "l": {"p": 1.5}}"#)),
            Ok(())
        );
        for bad in [
            r#"{"n": 1}"#,
            r#"{"n": 1, "l": null, "x": 0}"#,
            r#"{"n": -1, "l": null}"#,
            r#"{"n": 1.5, "l": null}"#,
            r#"{"n": 1, "l": {"p": "x"}}"#,
            r#"{"n": 1, "l": {"p": 1, "q": 2}}"#,
            r#"{"n": 1, "l": 3}"#,
        ] {
            assert!(exactly(&schema, &doc(bad)).is_err(), "{bad}");
        }
        let unknown = doc(r#"{"type": "string", "pattern": "^a$"}"#);
        assert!(valid(&unknown, &unknown, &doc(r#""a""#), "$").is_err());
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
