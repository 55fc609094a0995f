//! `telemetry`: OpenTelemetry traces over OTLP (docs/tracing.md).

use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::Validator;
use crate::config::file::{OtlpFile, TelemetryFile};
use crate::telemetry::OtlpSettings;

impl Validator {
    /// `None` when `telemetry.otlp` is absent: no tracing, and nothing built per request.
    pub(super) fn telemetry(&mut self, f: TelemetryFile) -> Option<OtlpSettings> {
        let otlp = self.section(
            "telemetry.otlp",
            f.otlp,
            "a mapping such as {endpoint: http://127.0.0.1:4318}",
        )?;
        Some(self.otlp(otlp))
    }

    fn otlp(&mut self, f: OtlpFile) -> OtlpSettings {
        let d = OtlpSettings::default();
        let endpoint = self
            .text(
                "telemetry.otlp.endpoint",
                f.endpoint,
                "a URL such as http://127.0.0.1:4318",
            )
            .and_then(|e| self.endpoint(e));
        match self
            .text("telemetry.otlp.protocol", f.protocol, "http/protobuf")
            .as_deref()
        {
            None | Some("http/protobuf") => {}
            Some("grpc") => self.problem(
                "telemetry.otlp.protocol",
                "grpc is not built in; use http/protobuf (a collector's port 4318)",
            ),
            Some(other) => self.problem(
                "telemetry.otlp.protocol",
                format!("`{other}` is not a protocol; use http/protobuf"),
            ),
        }
        let headers = self.otlp_headers(f.headers);
        let service_name = self.text("telemetry.otlp.service_name", f.service_name, "a name");
        if service_name.as_deref() == Some("") {
            self.problem("telemetry.otlp.service_name", "must not be empty");
        }
        let sample_ratio = match f.sample_ratio {
            None => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(r) if (0.0..=1.0).contains(&r) => Some(r),
                _ => {
                    self.problem(
                        "telemetry.otlp.sample_ratio",
                        format!("{n} is out of range; give a number from 0.0 (none) to 1.0 (every trace)"),
                    );
                    None
                }
            },
            Some(_) if self.spoiled("telemetry.otlp.sample_ratio") => None,
            Some(other) => {
                self.wrong_type(
                    "telemetry.otlp.sample_ratio",
                    "a number from 0.0 to 1.0",
                    &other,
                );
                None
            }
        };
        OtlpSettings {
            endpoint,
            headers,
            service_name,
            sample_ratio,
            trust_incoming_context: self.flag(
                "telemetry.otlp.trust_incoming_context",
                f.trust_incoming_context,
                d.trust_incoming_context,
            ),
            max_queue: self.count("telemetry.otlp.max_queue", f.max_queue, d.max_queue),
        }
    }

    /// The collector's base URL: http or https, a host, no query.
    fn endpoint(&mut self, e: String) -> Option<String> {
        let key = "telemetry.otlp.endpoint";
        let ok = e
            .parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
            .filter(|u| u.host().is_some_and(|h| !h.is_empty()))
            .filter(|u| u.query().is_none());
        if ok.is_none() {
            self.problem(
                key,
                format!("`{e}` is not a collector URL; give http://HOST:4318 or https://HOST[:PORT][/PATH] (traces go to <endpoint>/v1/traces)"),
            );
            return None;
        }
        if e.trim_end_matches('/').ends_with("/v1/traces") {
            self.problem(
                key,
                "give the collector's base URL without /v1/traces; hookgate appends it",
            );
        }
        Some(e)
    }

    fn otlp_headers(
        &mut self,
        s: Option<crate::config::file::Section<std::collections::BTreeMap<String, Value>>>,
    ) -> Vec<(String, String)> {
        let Some(map) = self.section(
            "telemetry.otlp.headers",
            s,
            "a mapping of header names to values, such as {authorization: \"Bearer ${TOKEN}\"}",
        ) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in map {
            let key = format!("telemetry.otlp.headers.{name}");
            let Some(value) = self.secret_text(&key, Some(v)) else {
                continue;
            };
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.problem(&key, "is not a valid header name");
            } else if HeaderValue::from_str(&value).is_err() {
                self.problem(&key, "the value has characters a header cannot carry");
            } else {
                out.push((name, value));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn absent_means_off() {
        let c = parse(ROUTE).unwrap_or_else(|p| panic!("{p:?}"));
        assert!(c.otlp.is_none());
    }

    #[test]
    fn the_documented_form_loads() {
        let c = parse(&format!("{ROUTE}telemetry:\n  otlp: {{endpoint: http://127.0.0.1:4318, protocol: http/protobuf, service_name: gw, sample_ratio: 0.5, trust_incoming_context: false, headers: {{authorization: Bearer x}}}}\n"))
            .unwrap_or_else(|p| panic!("{p:?}"));
        let o = c.otlp.unwrap_or_default();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(o.sample_ratio, Some(0.5));
        assert!(!o.trust_incoming_context);
        assert_eq!(
            o.headers,
            vec![("authorization".to_string(), "Bearer x".to_string())]
        );
        assert!(
            !format!("{o:?}").contains("Bearer"),
            "header values stay out of Debug"
        );
    }

    #[test]
    fn bad_values_name_their_key_and_fix() {
        let p = problems(&format!("{ROUTE}telemetry:\n  otlp: {{endpoint: 'ftp://x', protocol: grpc, sample_ratio: 2, trust_incoming_context: yes, max_queue: 0}}\n"));
        let all = p.join("\n");
        for key in [
            "endpoint",
            "protocol",
            "sample_ratio",
            "trust_incoming_context",
            "max_queue",
        ] {
            assert!(
                all.contains(&format!("telemetry.otlp.{key}")),
                "{key}: {all}"
            );
        }
        assert!(all.contains("http/protobuf"), "{all}");
        let p = problems(&format!(
            "{ROUTE}telemetry:\n  otlp: {{endpoint: 'http://c:4318/v1/traces'}}\n"
        ));
        assert!(p.join("\n").contains("without /v1/traces"), "{p:?}");
    }
}
