//! Where secrets come from: the environment, a file, or (tests and demos) the config itself.

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(String),
    Value,
}

/// Reads a secret from its source. File contents lose one trailing newline (`echo` and
/// Kubernetes Secret volumes both add one) and nothing else.
pub fn load(source: &SecretSource, inline: Option<&str>) -> Result<Vec<u8>, String> {
    match source {
        SecretSource::Env(var) => match std::env::var_os(var) {
            Some(v) if !v.is_empty() => Ok(v.into_encoded_bytes()),
            Some(_) => Err(format!(
                "environment variable {var} is empty; set it to the secret"
            )),
            None => Err(format!(
                "environment variable {var} is not set; export it or use `file:`"
            )),
        },
        SecretSource::File(path) => file_contents(path, std::fs::read(path)),
        SecretSource::Value => match inline {
            Some(v) if !v.is_empty() => Ok(v.as_bytes().to_vec()),
            _ => Err("`value` is empty; give the secret".to_string()),
        },
    }
}

/// A secret from what reading the file at `path` gave (the caller reads it, so it can remember
/// exactly which bytes the secret came from).
pub fn file_contents(path: &str, read: std::io::Result<Vec<u8>>) -> Result<Vec<u8>, String> {
    match read {
        Ok(mut bytes) => {
            if bytes.ends_with(b"\r\n") {
                bytes.truncate(bytes.len() - 2);
            } else if bytes.ends_with(b"\n") {
                bytes.truncate(bytes.len() - 1);
            }
            if bytes.is_empty() {
                Err(format!("secret file {path} is empty"))
            } else {
                Ok(bytes)
            }
        }
        Err(e) => Err(format!(
            "cannot read secret file {path}: {e}; check the path and its permissions"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_loses_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, b"abc\n").unwrap();
        let got = load(&SecretSource::File(p.display().to_string()), None).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let e = load(&SecretSource::Env("HOOKGATE_TEST_UNSET_VAR".into()), None).unwrap_err();
        assert!(e.contains("HOOKGATE_TEST_UNSET_VAR"));
    }
}
