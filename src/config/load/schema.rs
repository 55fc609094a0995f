//! `routes[].schema`: compiled now, so a broken schema is a config problem.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::file::{ByFieldFile, SchemaFile};
use crate::schema::{Mode, Schema, Select, BUILTIN_NAMES};

use super::Validator;

impl Validator {
    pub(super) fn schema(&mut self, key: &str, f: SchemaFile) -> Option<Schema> {
        let given = [f.file.is_some(), f.builtin.is_some(), f.by_field.is_some()];
        let mode = self.text(&format!("{key}.mode"), f.mode, "enforce or shadow");
        let file = self.text(&format!("{key}.file"), f.file, "a file name");
        let builtin = self.text(
            &format!("{key}.builtin"),
            f.builtin,
            "the name of a builtin schema",
        );
        let by_field = self.section(
            &format!("{key}.by_field"),
            f.by_field,
            "a mapping such as {pointer: /type, schemas: {...}}",
        );
        let mode = match mode.as_deref() {
            None | Some("enforce") => Mode::Enforce,
            Some("shadow") => Mode::Shadow,
            Some(other) => {
                self.problem(
                    format!("{key}.mode"),
                    format!("`{other}` is not a mode; use enforce or shadow"),
                );
                Mode::Enforce
            }
        };
        let select = match given.iter().filter(|g| **g).count() {
            0 => {
                self.problem(key, "no schema; give one of file, builtin or by_field");
                None
            }
            1 => {
                if let Some(file) = &file {
                    self.schema_file(&format!("{key}.file"), file)
                        .map(Select::One)
                } else if let Some(name) = &builtin {
                    self.builtin(&format!("{key}.builtin"), name)
                        .map(Select::One)
                } else {
                    by_field.and_then(|b| self.by_field(&format!("{key}.by_field"), b))
                }
            }
            _ => {
                self.problem(
                    key,
                    "several schemas; give exactly one of file, builtin or by_field",
                );
                None
            }
        };
        Some(Schema {
            mode,
            select: select?,
        })
    }

    pub(super) fn builtin(&mut self, key: &str, name: &str) -> Option<crate::schema::Validator> {
        let Some(text) = crate::schema::builtin(name) else {
            self.problem(
                key,
                format!(
                    "unknown builtin schema `{name}`; use one of: {}",
                    BUILTIN_NAMES.join(", ")
                ),
            );
            return None;
        };
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| self.problem(key, format!("builtin schema `{name}` is broken: {e}")))
            .ok()?;
        crate::schema::compile(&doc)
            .map_err(|e| self.problem(key, format!("builtin schema `{name}` is broken: {e}")))
            .ok()
    }

    /// Reads and compiles a schema file, relative to the config file's directory.
    pub(super) fn schema_file(
        &mut self,
        key: &str,
        file: &str,
    ) -> Option<crate::schema::Validator> {
        let path = self.dir.join(file);
        let text = match self.read(&path) {
            Ok(t) => t,
            Err(e) => {
                self.problem(
                    key,
                    format!(
                        "cannot read schema file {} ({e}); paths are relative to the config file's directory",
                        path.display()
                    ),
                );
                return None;
            }
        };
        let doc: Value = match serde_json::from_slice(&text) {
            Ok(d) => d,
            Err(e) => {
                self.problem(
                    key,
                    format!("schema file {} is not JSON: {e}", path.display()),
                );
                return None;
            }
        };
        match crate::schema::compile(&doc) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(
                    key,
                    format!(
                        "schema file {} is not a usable JSON Schema: {e} ($ref may only point inside the file)",
                        path.display()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn by_field(&mut self, key: &str, b: ByFieldFile) -> Option<Select> {
        let pointer = self.text(
            &format!("{key}.pointer"),
            b.pointer,
            "a JSON pointer such as /type",
        );
        let default = self.text(&format!("{key}.default"), b.default, "a file name");
        let skey = format!("{key}.schemas");
        let listed = self.section(
            &skey,
            b.schemas,
            "a mapping such as {order.created: schemas/created.json}",
        );
        let mut files = Vec::new();
        for (value, file) in listed.unwrap_or_default() {
            // `${VAR}` problems name a map entry as `schemas.VALUE`.
            if self.spoiled(&format!("{skey}.{value}")) {
                continue;
            }
            let fkey = format!("{skey}[\"{value}\"]");
            if let Some(file) = self.text(&fkey, Some(file), "a file name") {
                files.push((value, fkey, file));
            }
        }
        let pointer = match pointer {
            Some(p) if p.starts_with('/') => Some(p),
            Some(p) => {
                self.problem(
                    format!("{key}.pointer"),
                    format!("`{p}` is not a JSON pointer; write e.g. /type"),
                );
                None
            }
            None => {
                self.problem(
                    format!("{key}.pointer"),
                    "missing; the JSON pointer of the field that names the event, e.g. /type",
                );
                None
            }
        };
        if files.is_empty() && !self.spoiled_within(&skey) {
            self.problem(
                &skey,
                "no schemas; map values of the field to schema files, e.g. {order.created: schemas/created.json}",
            );
        }
        let mut schemas = HashMap::new();
        let mut ok = !self.spoiled_within(&skey);
        for (value, fkey, file) in files {
            match self.schema_file(&fkey, &file) {
                Some(v) => {
                    schemas.insert(value, v);
                }
                None => ok = false,
            }
        }
        let default = match &default {
            Some(file) => {
                let v = self.schema_file(&format!("{key}.default"), file);
                ok &= v.is_some();
                v
            }
            None => None,
        };
        (ok && !schemas.is_empty()).then_some(())?;
        Some(Select::ByField {
            pointer: pointer?,
            schemas,
            default,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn schema_files_are_read_from_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(dir.path().join("schemas/s.json"), r#"{"required": ["a"]}"#).unwrap();
        let yaml = format!("{ROUTE}    schema: {{file: schemas/s.json, mode: shadow}}\n");
        let c = super::super::parse(&yaml, dir.path()).unwrap();
        let s = c.routes[0].schema.as_ref().unwrap();
        assert_eq!(s.mode, Mode::Shadow);
        assert!(s.check(br#"{"a": 1}"#).is_ok());
        assert!(s.check(b"{}").is_err());
        let p = problems(&yaml);
        assert!(
            p[0].starts_with("routes[0].schema.file: cannot read"),
            "{p:?}"
        );
    }
}
