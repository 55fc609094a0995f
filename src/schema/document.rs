//! The payload as the schema check reads it: parsed in place from the body's bytes, strings
//! borrowed wherever they have no escapes, objects kept as lists of members.
//!
//! serde_json's `Value` costs a `String` per key and per string and a B-tree per object, and
//! building and dropping it was the largest cost of the whole check. jsonschema validates any
//! representation that implements its [`Json`] trait; this is one that allocates a `Vec` per
//! object or array and copies only strings with escapes.
//!
//! A key that appears twice counts once, with its last value, as in `Value` (and in the
//! parsers of most backends): what the schema checks is what the backend will read.

use std::borrow::Cow;
use std::fmt;

use jsonschema::json::{cmp, Array, Json, Node, NodeIdentity, Object};
use jsonschema::types::JsonType;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// One JSON value, borrowing the text it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Document<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Document<'a>>),
    /// Members in the order they last appeared; each key once.
    Object(Vec<(Cow<'a, str>, Document<'a>)>),
}

impl<'a> Document<'a> {
    /// Parses `bytes` as one JSON document (serde_json's parser and its nesting limit).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The value at a JSON pointer (RFC 6901), as `Value::pointer` finds it.
    pub fn pointer(&self, pointer: &str) -> Option<&Self> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |node, token| {
            let token: Cow<str> = if token.contains('~') {
                token.replace("~1", "/").replace("~0", "~").into()
            } else {
                token.into()
            };
            match node {
                Self::Object(members) => members
                    .iter()
                    .find(|(name, _)| *name == token)
                    .map(|(_, v)| v),
                Self::Array(items) => index(&token).and_then(|i| items.get(i)),
                _ => None,
            }
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The same value as serde_json's `Value`: for errors and `const`/`enum` on containers.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::String(s) => Value::String(s.to_string()),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
            Self::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// An array index as RFC 6901 writes it: digits, no leading zero.
fn index(token: &str) -> Option<usize> {
    let leading_zero = token.len() > 1 && token.starts_with('0');
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    (digits && !leading_zero)
        .then(|| token.parse().ok())
        .flatten()
}

impl<'de> Deserialize<'de> for Document<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Document::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Document::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Document::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Document::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Number::from_f64(n)
            .map(Document::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Document::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Document::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Document::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Document::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Document<'de>)> = Vec::new();
        while let Some(Key(name)) = map.next_key()? {
            let value = map.next_value()?;
            members.push((name, value));
        }
        keep_last(&mut members);
        Ok(Document::Object(members))
    }
}

/// Drops every member whose key appears again later.
fn keep_last<T>(members: &mut Vec<(Cow<'_, str>, T)>) {
    let repeated = if members.len() <= 32 {
        (1..members.len()).any(|i| members[..i].iter().any(|(k, _)| *k == members[i].0))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        !members.iter().all(|(k, _)| seen.insert(k.as_ref()))
    };
    if !repeated {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    let mut keep: Vec<bool> = members
        .iter()
        .rev()
        .map(|(k, _)| seen.insert(k.as_ref()))
        .collect();
    keep.reverse();
    let mut flags = keep.into_iter();
    members.retain(|_| flags.next().unwrap_or(false));
}

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// [`Document`] as jsonschema's representation of an instance.
pub struct InPlace;

impl Json for InPlace {
    type Node<'a> = &'a Document<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();

    // A members pass over a `Vec` is as cheap as the linear lookups it replaces.
    const KEYS_PER_LOOKUP: usize = 1;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(Self::Node<'_>) -> T) -> T {
        f(&Document::String(Cow::Borrowed(string)))
    }
}

impl<'a> Node<'a, InPlace> for &'a Document<'a> {
    type Object = Members<'a>;
    type Array = Items<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<Members<'a>> {
        match self {
            Document::Object(members) => Some(Members(members)),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<Items<'a>> {
        match self {
            Document::Array(items) => Some(Items(items)),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            Document::String(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self {
            Document::Number(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self {
            Document::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Document::Null)
    }

    fn json_type(&self) -> JsonType {
        match self {
            Document::Null => JsonType::Null,
            Document::Bool(_) => JsonType::Boolean,
            Document::Number(_) => JsonType::Number,
            Document::String(_) => JsonType::String,
            Document::Array(_) => JsonType::Array,
            Document::Object(_) => JsonType::Object,
        }
    }

    /// `enum` and `const` on a string or a number, the common case, without building a `Value`.
    fn equals_value(&self, expected: &Value) -> bool {
        match (self, expected) {
            (Document::String(s), Value::String(e)) => s == e,
            (Document::String(_), _) | (_, Value::String(_)) => false,
            (Document::Bool(b), Value::Bool(e)) => b == e,
            (Document::Null, Value::Null) => true,
            _ => cmp::equal(&self.to_value(), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(Document::to_value(self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(
            std::ptr::from_ref::<Document>(self) as usize
        ))
    }
}

/// An object's members.
#[derive(Clone, Copy)]
pub struct Members<'a>(&'a [(Cow<'a, str>, Document<'a>)]);

pub struct MembersIter<'a>(std::slice::Iter<'a, (Cow<'a, str>, Document<'a>)>);

impl<'a> Iterator for MembersIter<'a> {
    type Item = (&'a str, &'a Document<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<'a> Object<'a, InPlace> for Members<'a> {
    type Node = &'a Document<'a>;
    type MemberName = &'a str;
    type MembersIter = MembersIter<'a>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, key: &Box<str>) -> Option<&'a Document<'a>> {
        self.0
            .iter()
            .find(|(name, _)| name.as_ref() == key.as_ref())
            .map(|(_, v)| v)
    }

    fn members(&self) -> MembersIter<'a> {
        MembersIter(self.0.iter())
    }
}

/// An array's elements.
#[derive(Clone, Copy)]
pub struct Items<'a>(&'a [Document<'a>]);

impl<'a> Array<'a, InPlace> for Items<'a> {
    type Node = &'a Document<'a>;
    type ElementsIter = std::slice::Iter<'a, Document<'a>>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn elements(&self) -> std::slice::Iter<'a, Document<'a>> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn same_as_value(text: &str) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(doc.to_value(), value, "{text}");
    }

    #[test]
    fn reads_what_value_reads() {
        for text in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-2,"g":1.5e3,"h":""}"#,
            r#"[1, "two", {"three": 3}, [], {}]"#,
            r#""esc\"aped\u00e9\n""#,
            r#"{"k\u00e9y": "v"}"#,
            "18446744073709551615",
            "-9223372036854775808",
            "0.1",
            "null",
        ] {
            same_as_value(text);
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let doc = Document::parse(br#"{"plain":"text","esc":"a\nb"}"#).unwrap();
        let Document::Object(members) = &doc else {
            panic!("{doc:?}")
        };
        assert!(matches!(members[0].0, Cow::Borrowed("plain")));
        assert!(matches!(
            &members[0].1,
            Document::String(Cow::Borrowed("text"))
        ));
        assert!(matches!(&members[1].1, Document::String(Cow::Owned(s)) if s == "a\nb"));
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_value_does() {
        same_as_value(r#"{"status":"completed","n":1,"status":"failed"}"#);
        let doc = Document::parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(
            doc,
            Document::Object(vec![
                ("b".into(), Document::Number(2.into())),
                ("a".into(), Document::Number(3.into())),
            ])
        );
        // Past 32 members the check takes another way; the outcome is the same.
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str("\"k3\":\"last\"}");
        same_as_value(&text);
        let doc = Document::parse(text.as_bytes()).unwrap();
        assert_eq!(doc.pointer("/k3"), Some(&Document::String("last".into())));
    }

    #[test]
    fn not_json_and_too_deep_are_errors() {
        for bad in [
            &b"a=1"[..],
            b"{\"a\":1} x",
            b"\xff\xfe",
            b"{\"a\":",
            b"[1,]",
        ] {
            assert!(Document::parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Document::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        let text = r#"{"a/b":{"m~n":[10,20]},"type":"order.created","":1}"#;
        let doc = Document::parse(text.as_bytes()).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        for p in [
            "",
            "/type",
            "/a~1b",
            "/a~1b/m~0n",
            "/a~1b/m~0n/1",
            "/a~1b/m~0n/01",
            "/a~1b/m~0n/2",
            "/",
            "/missing",
            "type",
            "/type/x",
        ] {
            assert_eq!(
                doc.pointer(p).map(Document::to_value),
                value.pointer(p).cloned(),
                "{p}"
            );
        }
    }

    #[test]
    fn enum_and_const_compare_without_a_value() {
        let doc = Document::parse(br#"["completed", 100, 1.0, true, null, {"a":[1]}]"#).unwrap();
        let Document::Array(items) = &doc else {
            panic!()
        };
        let eq = |i: usize, v: Value| Node::equals_value(&&items[i], &v);
        assert!(eq(0, json!("completed")));
        assert!(!eq(0, json!("failed")));
        assert!(!eq(0, json!(1)));
        assert!(eq(1, json!(100.0)), "numbers compare as numbers");
        assert!(eq(2, json!(1)));
        assert!(!eq(1, json!("100")));
        assert!(eq(3, json!(true)));
        assert!(eq(4, Value::Null));
        assert!(eq(5, json!({"a": [1]})));
        assert!(!eq(5, json!({"a": [2]})));
    }

    /// The same schema over the same instances gives the same verdicts and the same failing
    /// pointers read in place as read into `Value`, across the keywords a payload schema uses.
    #[test]
    fn validates_as_value_does() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": {"id": {"type": "string", "pattern": "^[a-z]+_[0-9a-z]+$", "maxLength": 20}},
            "type": "object",
            "required": ["id", "status"],
            "properties": {
                "id": {"$ref": "#/$defs/id"},
                "status": {"enum": ["completed", "failed", 3, null]},
                "kind": {"const": {"a": [1, 2]}},
                "n": {"type": "integer", "minimum": 0, "exclusiveMaximum": 100, "multipleOf": 5},
                "ratio": {"type": "number", "maximum": 1.5},
                "at": {"type": "string", "format": "date-time"},
                "tags": {
                    "type": "array", "items": {"type": "string", "minLength": 2},
                    "minItems": 1, "maxItems": 3, "uniqueItems": true,
                    "contains": {"const": "main"}
                },
                "pair": {"prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": false},
                "meta": {
                    "type": "object",
                    "propertyNames": {"maxLength": 4},
                    "patternProperties": {"^x-": {"type": "string"}},
                    "minProperties": 1, "maxProperties": 2
                },
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "any": {"anyOf": [{"type": "null"}, {"minimum": 10}]},
                "not_empty": {"not": {"const": ""}}
            },
            "dependentRequired": {"n": ["ratio"]},
            "if": {"properties": {"status": {"const": "failed"}}},
            "then": {"required": ["error"]},
            "unevaluatedProperties": false
        });
        let by_value = jsonschema::options()
            .offline()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let in_place = super::super::compile(&schema).unwrap();
        let instances = [
            r#"{"id":"job_1","status":"completed"}"#,
            r#"{"id":"JOB","status":"done"}"#,
            r#"{"id":"job_1","status":3,"kind":{"a":[1,2]},"n":10,"ratio":1.0}"#,
            r#"{"id":"job_1","status":null,"kind":{"a":[2,1]},"n":7}"#,
            r#"{"id":"job_1","status":"failed"}"#,
            r#"{"id":"job_1","status":"failed","error":"x"}"#,
            r#"{"id":"job_1","status":"completed","at":"2024-01-15T10:30:00Z","tags":["main","ab"]}"#,
            r#"{"id":"job_1","status":"completed","at":"yesterday","tags":["ab","ab","c","d"]}"#,
            r#"{"id":"job_1","status":"completed","pair":[1,true],"meta":{"x-ab":"v"}}"#,
            r#"{"id":"job_1","status":"completed","pair":[1,true,3],"meta":{"x-ab":1,"long-name":2,"c":3}}"#,
            r#"{"id":"job_1","status":"completed","either":"s","any":null,"not_empty":"a"}"#,
            r#"{"id":"job_1","status":"completed","either":1.5,"any":3,"not_empty":""}"#,
            r#"{"id":"job_1","status":"completed","n":100.0,"ratio":2}"#,
            r#"{"id":"job_1","status":"completed","extra":true}"#,
            r#"{"id":"job_1","status":"completed","status":"nope"}"#,
            r#"{"id":"job_\u0031","status":"compl\u0065ted"}"#,
            r#"[1,2,3]"#,
            r#""just a string""#,
        ];
        let mut valid = 0;
        for text in instances {
            let value: Value = serde_json::from_str(text).unwrap();
            let doc = Document::parse(text.as_bytes()).unwrap();
            assert_eq!(by_value.is_valid(&value), in_place.is_valid(&doc), "{text}");
            valid += usize::from(in_place.is_valid(&doc));
            let pointers = |errors: Vec<String>| {
                let mut errors = errors;
                errors.sort();
                errors
            };
            let a = by_value
                .iter_errors(&value)
                .map(|e| e.instance_path().to_string())
                .collect();
            let b = in_place
                .iter_errors(&doc)
                .map(|e| e.instance_path().to_string())
                .collect();
            assert_eq!(pointers(a), pointers(b), "{text}");
        }
        // Both verdicts occur: the comparison is not all passes or all failures.
        assert_eq!(valid, 6, "valid instances");
    }
}
