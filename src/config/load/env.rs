//! `${VAR}` in any string of the file, expanded before the file is read as a config.

use super::shown_key;

use serde_json::Value;

use crate::config::Problem;

/// The key a `${VAR}` problem is reported under: a document that is a lone string has none,
/// and its problem is the whole `file`'s.
fn env_key(file: &str, path: &str) -> String {
    if path.is_empty() {
        file.to_string()
    } else {
        path.to_string()
    }
}

/// Replaces `${VAR}` in every string with the variable's value.
pub(super) fn expand_env(
    value: &mut Value,
    file: &str,
    path: &mut String,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let Some(len) = rest[start..].find('}') else {
                    problems.push(Problem::new(env_key(file, path), "unclosed `${` in value"));
                    return;
                };
                let var = &rest[start + 2..start + len];
                match std::env::var(var) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => problems.push(Problem::new(
                        env_key(file, path),
                        format!(
                            "environment variable {var} is not set (used as ${{{var}}}); export it"
                        ),
                    )),
                }
                rest = &rest[start + len + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_env(item, file, path, problems);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(shown_key(k));
                expand_env(item, file, path, problems);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn env_expansion() {
        std::env::set_var("HOOKGATE_TEST_UPSTREAM_PORT", "4567");
        let c = parse(&ROUTE.replace("1/x", "${HOOKGATE_TEST_UPSTREAM_PORT}/x")).unwrap();
        assert_eq!(c.routes[0].upstream.authority.port_u16(), Some(4567));
        let p = problems(&ROUTE.replace("1/x", "${HOOKGATE_SURELY_UNSET_2}/x"));
        assert!(
            p[0].starts_with("routes[0].upstream: environment variable HOOKGATE_SURELY_UNSET_2"),
            "{p:?}"
        );
    }
}
