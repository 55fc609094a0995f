//! The shared test vectors in `tests/vectors/*.json`.

use std::path::{Path, PathBuf};

use base64::Engine;

/// One case of a `tests/vectors/*.json` file.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub expected: String,
    pub secret: String,
    pub additional_secrets: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The clock the case was made for. The schemes the gateway tests run on vectors
    /// (mediaconvert, github) sign no timestamp, so none of them reads it.
    #[allow(dead_code)]
    pub now: Option<i64>,
}

impl Case {
    /// Header value, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Path of a vectors file.
pub fn vectors_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file)
}

/// The `signature_header` field of a vectors file.
pub fn vectors_signature_header(file: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_path(file)).expect("read vectors"))
            .expect("json");
    v["signature_header"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// All cases of a vectors file.
pub fn vectors(file: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(vectors_path(file)).expect("read vectors");
    let v: serde_json::Value = serde_json::from_str(&text).expect("vectors json");
    let b64 = base64::engine::general_purpose::STANDARD;
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            id: c["id"].as_str().expect("id").to_string(),
            expected: c["expected"].as_str().expect("expected").to_string(),
            secret: c["secret"].as_str().unwrap_or_default().to_string(),
            additional_secrets: c["additional_secrets"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            headers: c["headers"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            body: b64
                .decode(c["body_b64"].as_str().expect("body_b64"))
                .expect("body base64"),
            now: c["now"].as_i64(),
        })
        .collect()
}

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
