//! Schemas shipped with hookgate, for senders whose payloads are documented. Each is also a
//! file under `schemas/` in the repository, to read or to copy and adapt.

/// Names accepted in `schema.builtin`.
pub const BUILTIN_NAMES: &[&str] = &["mediaconvert"];

/// The schema document of a builtin, by name.
pub fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "mediaconvert" => Some(include_str!("../../schemas/mediaconvert.json")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::schema::{compile, Failure, Mode, Schema, Select, Violation};

    fn mediaconvert() -> Schema {
        let doc: Value = serde_json::from_str(builtin("mediaconvert").unwrap()).unwrap();
        Schema {
            mode: Mode::Enforce,
            select: Select::One(compile(&doc).unwrap()),
        }
    }

    fn check(body: &str) -> Vec<Violation> {
        match mediaconvert().check(body.as_bytes()) {
            Ok(()) => vec![],
            Err(Failure::Invalid(v)) => v.into_vec(),
            Err(e) => panic!("{e}"),
        }
    }

    fn pointers(body: &str) -> Vec<String> {
        check(body).into_iter().map(|v| v.pointer).collect()
    }

    /// The events of the MediaConvert.io webhook guide, as published.
    const COMPLETED: &str = r#"{"job_id":"job_abc123xyz","status":"completed","job_type":"video","progress_percentage":100,"cost_micros":1575000,"cost_cents":158,"processing_time_seconds":45,"output_size_bytes":8192000,"input_format":"mp4","output_format":"webm","created_at":"2024-01-15T10:30:00Z","completed_at":"2024-01-15T10:31:15Z"}"#;
    const FAILED: &str = r#"{"job_id":"job_def456xyz","status":"failed","job_type":"video","progress_percentage":25,"error_message":"Input file corrupted or unreadable","error_code":"INVALID_INPUT","created_at":"2024-01-15T10:30:00Z","failed_at":"2024-01-15T10:30:45Z"}"#;
    const PROCESSING: &str = r#"{"job_id":"job_ghi789xyz","status":"processing","progress_percentage":67,"estimated_completion":"2024-01-15T10:32:00Z"}"#;
    /// The guide's curl test delivery.
    const SHORT: &str = r#"{"job_id":"job_test123","status":"completed","progress_percentage":100,"cost_micros":150000,"processing_time_seconds":45}"#;

    #[test]
    fn every_builtin_compiles() {
        for name in BUILTIN_NAMES {
            let doc: Value = serde_json::from_str(builtin(name).unwrap()).unwrap();
            compile(&doc).unwrap();
        }
        assert_eq!(builtin("nope"), None);
    }

    #[test]
    fn guide_events_are_valid() {
        for body in [COMPLETED, FAILED, PROCESSING, SHORT] {
            assert_eq!(check(body), vec![], "{body}");
        }
    }

    #[test]
    fn the_signed_vector_bodies_are_valid_when_complete() {
        // Pretty-printed with a trailing newline, as in the signature vectors.
        let body = "{\n  \"job_id\": \"job_abc123xyz\",\n  \"status\": \"processing\",\n  \"job_type\": \"video\",\n  \"progress_percentage\": 42,\n  \"created_at\": \"2024-01-15T10:30:00Z\"\n}\n";
        assert_eq!(check(body), vec![]);
    }

    #[test]
    fn extra_fields_are_allowed() {
        let body = r#"{"job_id":"j","status":"completed","new_field":{"any":"thing"},"thumbnail_urls":["a"]}"#;
        assert_eq!(check(body), vec![]);
    }

    #[test]
    fn broken_events_are_refused_at_the_right_place() {
        assert_eq!(
            pointers(&COMPLETED.replace(r#""status":"completed""#, r#""status":"exploded""#)),
            ["/status"]
        );
        assert_eq!(
            pointers(&COMPLETED.replace(
                r#""progress_percentage":100"#,
                r#""progress_percentage":101"#
            )),
            ["/progress_percentage"]
        );
        assert_eq!(
            pointers(&COMPLETED.replace(
                r#""progress_percentage":100"#,
                r#""progress_percentage":-1"#
            )),
            ["/progress_percentage"]
        );
        assert_eq!(
            pointers(&COMPLETED.replace(
                r#""created_at":"2024-01-15T10:30:00Z""#,
                r#""created_at":"15/01/2024 10:30""#
            )),
            ["/created_at"]
        );
        assert_eq!(
            pointers(&COMPLETED.replace(r#""cost_micros":1575000"#, r#""cost_micros":"1575000""#)),
            ["/cost_micros"]
        );
        assert_eq!(
            pointers(&COMPLETED.replace(
                r#""output_size_bytes":8192000"#,
                r#""output_size_bytes":81.5"#
            )),
            ["/output_size_bytes"]
        );
        let missing_job = check(&COMPLETED.replace(r#""job_id":"job_abc123xyz","#, ""));
        assert_eq!(missing_job.len(), 1);
        assert_eq!(missing_job[0].pointer, "");
        assert!(missing_job[0].message.contains("job_id"), "{missing_job:?}");
        assert_eq!(pointers(r#"[1,2]"#), [""]);
    }

    #[test]
    fn failed_events_need_error_message_and_code() {
        let no_code = check(&FAILED.replace(r#""error_code":"INVALID_INPUT","#, ""));
        assert_eq!(no_code.len(), 1, "{no_code:?}");
        assert!(no_code[0].message.contains("error_code"), "{no_code:?}");
        let neither = check(
            &FAILED
                .replace(r#""error_code":"INVALID_INPUT","#, "")
                .replace(
                    r#""error_message":"Input file corrupted or unreadable","#,
                    "",
                ),
        );
        assert_eq!(neither.len(), 2, "{neither:?}");
        // Only failed events need them.
        assert_eq!(check(PROCESSING), vec![]);
    }
}
