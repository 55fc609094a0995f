//! The type of every value: a value of another type than its key takes (a number where a
//! duration is expected, a string where a mapping is) is one problem at its key, in the
//! operator's words, and loading goes on with the rest of the file.

use serde_json::Value;

use crate::config::file::{Leaf, List, Section};

use super::Validator;

/// A value as a problem shows it: `the number 9`, ``the string `abc` ``, `a list`.
pub(super) fn described(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string `{s}`"),
        Value::Number(n) => format!("the number {n}"),
        other => kind(other).to_string(),
    }
}

/// A value's type without its contents, for values that may be a secret.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Validator {
    /// Reports `got` at `key`, where `expected` is what the key takes (`a duration such as
    /// 9s`). Problems that follow from it at the same key are not reported.
    pub(super) fn wrong_type(&mut self, key: &str, expected: &str, got: &Value) {
        self.spoil(key, format!("expected {expected}, got {}", described(got)));
    }

    /// [`Validator::wrong_type`] for a key that may hold a secret: the value is not shown.
    pub(super) fn wrong_secret_type(&mut self, key: &str, expected: &str, got: &Value) {
        self.spoil(key, format!("expected {expected}, got {}", kind(got)));
    }

    /// Whether `key` already has a problem found before validation (a value of the wrong
    /// type, an unset environment variable): anything else wrong there follows from it.
    pub(super) fn spoiled(&self, key: &str) -> bool {
        self.spoiled.contains(key)
    }

    /// Whether any key under `key` (or `key` itself) is spoiled.
    pub(super) fn spoiled_within(&self, key: &str) -> bool {
        self.spoiled.iter().any(|k| {
            k.strip_prefix(key)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// A string: `None` when absent, or of another type (reported), or spoiled.
    pub(super) fn text(&mut self, key: &str, v: Leaf, expected: &str) -> Option<String> {
        match v? {
            _ if self.spoiled(key) => None,
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(key, expected, &other);
                None
            }
        }
    }

    /// [`Validator::text`] for a key that may hold a secret.
    pub(super) fn secret_text(&mut self, key: &str, v: Leaf) -> Option<String> {
        match v? {
            _ if self.spoiled(key) => None,
            Value::String(s) => Some(s),
            other => {
                self.wrong_secret_type(key, "a string", &other);
                None
            }
        }
    }

    /// `true` or `false` (YAML 1.2: no other spelling is a boolean).
    pub(super) fn flag(&mut self, key: &str, v: Leaf, default: bool) -> bool {
        match v {
            None => default,
            Some(Value::Bool(b)) => b,
            Some(_) if self.spoiled(key) => default,
            Some(other) => {
                self.wrong_type(key, "a boolean (true or false)", &other);
                default
            }
        }
    }

    /// A mapping: `None` when absent, or of another type (reported).
    pub(super) fn section<T>(
        &mut self,
        key: &str,
        s: Option<Section<T>>,
        expected: &str,
    ) -> Option<T> {
        match s? {
            Section::Given(t) => Some(t),
            Section::Wrong(v) => {
                self.wrong_type(key, expected, &v);
                None
            }
        }
    }

    /// [`Validator::section`] for a mapping that may hold a secret.
    pub(super) fn secret_section<T>(&mut self, key: &str, s: Option<Section<T>>) -> Option<T> {
        match s? {
            Section::Given(t) => Some(t),
            Section::Wrong(v) => {
                self.wrong_secret_type(key, "a secret such as {id: current, env: VAR}", &v);
                None
            }
        }
    }

    /// A list: `None` when absent, or of another type (reported).
    pub(super) fn list<T>(
        &mut self,
        key: &str,
        l: Option<List<T>>,
        expected: &str,
        secret: bool,
    ) -> Option<Vec<T>> {
        match l? {
            List::Given(items) => Some(items),
            List::Wrong(v) if secret => {
                self.wrong_secret_type(key, expected, &v);
                None
            }
            List::Wrong(v) => {
                self.wrong_type(key, expected, &v);
                None
            }
        }
    }
}
