//! Payload schemas (stage 6, docs/payload-schemas.md): JSON Schema (drafts 7 and 2020-12) checked after the
//! signature, so unsigned junk costs no parsing.
//!
//! Schemas are compiled when the config loads, offline: `$ref` resolves only inside the schema
//! itself, never over the network or from other files. `format` is asserted (a `date-time` that
//! is not one fails), which JSON Schema leaves optional by default.

mod builtin;
mod document;
mod violation;

use std::collections::HashMap;

use serde_json::Value;

use self::document::{Document, InPlace};

pub use self::builtin::{builtin, BUILTIN_NAMES};
pub use self::violation::{Violation, MAX_VIOLATIONS};

/// A compiled schema, checking payloads read in place ([`document`]).
pub type Validator = jsonschema::Validator<InPlace>;

/// `schema.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse what fails: 400 not JSON, 422 schema violation.
    Enforce,
    /// Count and log what fails, forward it anyway: to try a schema on live traffic.
    Shadow,
}

impl Mode {
    /// The `mode` label of `hookgate_schema_failures_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Shadow => "shadow",
        }
    }
}

/// Which schema applies to a payload.
#[derive(Debug, Clone)]
pub enum Select {
    /// One schema for every payload (`file` or `builtin`).
    One(Validator),
    /// Chosen by the string at `pointer` (e.g. the event type); `default` for other values.
    ByField {
        pointer: String,
        schemas: HashMap<String, Validator>,
        default: Option<Validator>,
    },
}

/// A route's compiled schema.
#[derive(Debug, Clone)]
pub struct Schema {
    pub mode: Mode,
    pub select: Select,
}

/// Why a payload failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("body is not JSON")]
    NotJson,
    #[error("{} schema violation(s)", .0.len())]
    Invalid(Box<[Violation]>),
}

/// Compiles one schema document, offline, with `format` asserted. The draft comes from
/// `$schema` (2020-12 when absent).
pub fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::options_for::<InPlace>()
        .offline()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| {
            let mut m = e.to_string();
            violation::truncate(&mut m, 300);
            m
        })
}

impl Schema {
    /// Checks a payload's bytes: not JSON, or the violations of the schema that applies.
    pub fn check(&self, body: &[u8]) -> Result<(), Failure> {
        let doc = Document::parse(body).map_err(|_| Failure::NotJson)?;
        let validator = match &self.select {
            Select::One(v) => v,
            Select::ByField {
                pointer,
                schemas,
                default,
            } => {
                let chosen = doc
                    .pointer(pointer)
                    .and_then(Document::as_str)
                    .and_then(|k| schemas.get(k))
                    .or(default.as_ref());
                match chosen {
                    Some(v) => v,
                    None => {
                        return Err(Failure::Invalid(Box::new([Violation::new(
                            pointer,
                            "no schema for this value and no default",
                        )])))
                    }
                }
            }
        };
        let violations: Box<[Violation]> = validator
            .iter_errors(&doc)
            .take(MAX_VIOLATIONS)
            .map(|e| Violation::from_error(&e))
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Failure::Invalid(violations))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(v: Value) -> Schema {
        Schema {
            mode: Mode::Enforce,
            select: Select::One(compile(&v).unwrap()),
        }
    }

    fn violations(s: &Schema, v: Value) -> Vec<Violation> {
        match s.check(&serde_json::to_vec(&v).unwrap()) {
            Ok(()) => vec![],
            Err(Failure::Invalid(v)) => v.into_vec(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn not_json_is_its_own_failure() {
        let s = schema(json!({}));
        for body in [&b"a=1"[..], b"", b"\xff\xfe", b"{\"a\": 1} trailing"] {
            assert_eq!(s.check(body), Err(Failure::NotJson));
        }
    }

    #[test]
    fn formats_are_asserted_in_both_drafts() {
        for draft in [
            "http://json-schema.org/draft-07/schema#",
            "https://json-schema.org/draft/2020-12/schema",
        ] {
            let s = schema(json!({
                "$schema": draft,
                "properties": {"at": {"type": "string", "format": "date-time"}}
            }));
            assert_eq!(
                violations(&s, json!({"at": "2024-01-15T10:30:00Z"})),
                vec![]
            );
            let v = violations(&s, json!({"at": "2024-13-45 nope"}));
            assert_eq!(v.len(), 1, "{draft}");
            assert_eq!(v[0].pointer, "/at");
            assert!(v[0].message.contains("date-time"), "{}", v[0].message);
        }
    }

    #[test]
    fn draft7_keywords_follow_draft7() {
        // `dependencies` is a draft-7 keyword (split into two in 2019-09).
        let s = schema(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "dependencies": {"a": ["b"]}
        }));
        assert_eq!(violations(&s, json!({"a": 1})).len(), 1);
        assert_eq!(violations(&s, json!({"a": 1, "b": 2})), vec![]);
    }

    #[test]
    fn at_most_ten_violations() {
        let props: serde_json::Map<String, Value> = (0..30)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        let s = schema(json!({"properties": props}));
        let body: serde_json::Map<String, Value> =
            (0..30).map(|i| (format!("p{i}"), json!(i))).collect();
        assert_eq!(violations(&s, Value::Object(body)).len(), MAX_VIOLATIONS);
    }

    #[test]
    fn messages_do_not_echo_payload_values() {
        let s = schema(json!({
            "properties": {
                "status": {"enum": ["completed", "failed"]},
                "n": {"type": "integer"},
                "at": {"format": "date-time"}
            },
            "additionalProperties": false
        }));
        let big = "x".repeat(100_000);
        let v = violations(&s, json!({"status": big, "n": big, "at": big, "extra": 1}));
        assert_eq!(v.len(), 4, "{v:?}");
        for violation in &v {
            assert!(!violation.message.contains("xxxx"), "{violation:?}");
            assert!(violation.message.len() <= 200, "{violation:?}");
        }
    }

    #[test]
    fn by_field_chooses_by_pointer_then_default() {
        let created = compile(&json!({"required": ["order_id"]})).unwrap();
        let any = compile(&json!({"required": ["type"]})).unwrap();
        let s = Schema {
            mode: Mode::Enforce,
            select: Select::ByField {
                pointer: "/type".into(),
                schemas: HashMap::from([("order.created".into(), created.clone())]),
                default: Some(any),
            },
        };
        assert_eq!(
            violations(&s, json!({"type": "order.created", "order_id": 1})),
            vec![]
        );
        let v = violations(&s, json!({"type": "order.created"}));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("order_id"), "{v:?}");
        // Another value, a non-string value, or no value: the default applies.
        assert_eq!(violations(&s, json!({"type": "order.paid"})), vec![]);
        assert_eq!(violations(&s, json!({"type": 7})), vec![]);
        assert_eq!(violations(&s, json!({"kind": "x"})).len(), 1);

        let strict = Schema {
            mode: Mode::Enforce,
            select: Select::ByField {
                pointer: "/type".into(),
                schemas: HashMap::from([("order.created".into(), created)]),
                default: None,
            },
        };
        let v = violations(&strict, json!({"type": "order.paid"}));
        assert_eq!(
            v,
            vec![Violation::new(
                "/type",
                "no schema for this value and no default"
            )]
        );
    }

    #[test]
    fn unresolvable_ref_does_not_compile() {
        let e = compile(&json!({"$ref": "#/$defs/missing"})).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        assert!(compile(&json!({"$ref": "https://example.com/s.json"})).is_err());
        assert!(compile(&json!({"$ref": "other.json"})).is_err());
        assert!(compile(&json!({"type": "no-such-type"})).is_err());
    }
}
