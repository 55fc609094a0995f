//! The signature doctor: after a verification failure, what would have matched.
//!
//! A 401 tells the sender nothing; the operator still needs to know why. [`Doctor::examine`]
//! tries a fixed list of explanations, cheapest first, and reports the first that matches as a
//! [`Diagnosis`] (docs/signature-doctor.md):
//!
//! 1. `wrong_scheme:<scheme>`: the route's signature headers are absent and another known
//!    provider's are present (no MAC);
//! 2. `clock_skew:<seconds>`: the request verifies as received once the timestamp window is
//!    lifted (the route's keys);
//! 3. `retired_secret:<id>`: it verifies under a secret listed in `verify.retired_secrets`;
//! 4. `secret_encoding`: it verifies under the route's secret in another form;
//! 5. `signature_encoding`: it verifies once the signature header is written as the scheme
//!    defines it (encoding, case, prefix);
//! 6. `body_altered:<how>`: it verifies over the body with one known alteration undone;
//! 7. `unknown`.
//!
//! Every candidate is checked by the route's own verifier ([`crate::verify`]), so every
//! comparison of secret-derived bytes is the verifier's constant-time one. The work is bounded:
//! at most [`MAX_KEYS`] of the route's keys and [`MAX_RETIRED`] retired secrets are used, and at
//! most [`MAX_KEY_CHECKS`] (candidate, key) pairs are checked per failure, each one MAC (two for
//! Twilio, which also tries the URL without its default port) or one signature check. A
//! signature header longer than [`MAX_SIGNATURE_HEADER`] is not examined, and a body larger than
//! [`MAX_ALTERED_BODY`] is not re-written. The module is pure:
//! no clock, no I/O; the caller passes `now` and decides when to spend the work.

mod body;
mod forms;
pub mod json;
mod signature;

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use crate::secret::Secret;
use crate::verify::{Input, Keys, Scheme, Verifier, VerifyError, SCHEME_NAMES};

/// The route's keys used by the doctor, in the order configured (secrets, then public keys).
pub const MAX_KEYS: usize = 3;
/// `verify.retired_secrets` per route at most (a config with more is refused).
pub const MAX_RETIRED: usize = 3;
/// Longer signature headers are not examined (bounds the entries of a signature list).
pub const MAX_SIGNATURE_HEADER: usize = 512;
/// Bodies up to this size are tried with alterations undone; larger ones are checked only as
/// received (their cost grows with the body: each candidate is a MAC over all of it).
pub const MAX_ALTERED_BODY: usize = 64 * 1024;
/// (candidate, key) pairs checked per failure at most: the request as received (K), retired
/// secrets (R), two other forms of each secret (2K), the rewritten signature (K), and
/// [`body::MAX_CANDIDATES`] bodies (18K), with K = [`MAX_KEYS`] and R = [`MAX_RETIRED`].
pub const MAX_KEY_CHECKS: usize =
    MAX_KEYS * (1 + forms::PER_SECRET + 1 + body::MAX_CANDIDATES) + MAX_RETIRED;

/// What changed a body on its way from the sender, as `body_altered:<how>` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alteration {
    TrailingNewlineAdded,
    TrailingNewlineRemoved,
    CrlfToLf,
    LfToCrlf,
    JsonReserialized,
    CharsetTranscoded,
}

impl Alteration {
    pub const ALL: [Self; 6] = [
        Self::TrailingNewlineAdded,
        Self::TrailingNewlineRemoved,
        Self::CrlfToLf,
        Self::LfToCrlf,
        Self::JsonReserialized,
        Self::CharsetTranscoded,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::TrailingNewlineAdded => "trailing_newline_added",
            Self::TrailingNewlineRemoved => "trailing_newline_removed",
            Self::CrlfToLf => "crlf_to_lf",
            Self::LfToCrlf => "lf_to_crlf",
            Self::JsonReserialized => "json_reserialized",
            Self::CharsetTranscoded => "charset_transcoded",
        }
    }
}

/// Why a signature failed, as far as the doctor can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// Another provider's signature headers, and none of the route's scheme.
    WrongScheme(&'static str),
    /// Right once a known alteration of the body is undone.
    BodyAltered(Alteration),
    /// Right with the route's secret in another form.
    SecretEncoding,
    /// Right once the signature is read in another encoding or with/without its prefix.
    SignatureEncoding,
    /// Right under a secret in `verify.retired_secrets` (its id).
    RetiredSecret(Arc<str>),
    /// Right, but signed this many seconds from now (negative: in the past), outside the window.
    ClockSkew(i64),
    /// Nothing explains it: a wrong secret or a forgery.
    Unknown,
    /// Not examined: the route's diagnosis budget was spent, or the doctor is off.
    Skipped,
}

impl Diagnosis {
    /// Every kind, as the metric label has it.
    pub const KINDS: [&'static str; 8] = [
        "wrong_scheme",
        "body_altered",
        "secret_encoding",
        "signature_encoding",
        "retired_secret",
        "clock_skew",
        "unknown",
        "skipped",
    ];

    /// The kind alone, for the metric label (never the scheme, the seconds or the key id).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongScheme(_) => "wrong_scheme",
            Self::BodyAltered(_) => "body_altered",
            Self::SecretEncoding => "secret_encoding",
            Self::SignatureEncoding => "signature_encoding",
            Self::RetiredSecret(_) => "retired_secret",
            Self::ClockSkew(_) => "clock_skew",
            Self::Unknown => "unknown",
            Self::Skipped => "skipped",
        }
    }

    /// What to change, in words.
    pub fn advice(&self) -> String {
        match self {
            Self::WrongScheme(s) => format!(
                "the request carries {s}'s signature headers: send it to a route with `scheme: {s}`, or set the route's scheme to {s}"
            ),
            Self::BodyAltered(Alteration::JsonReserialized) => "your framework re-serialized the JSON before it reached hookgate: forward the raw body (e.g. express.raw() instead of express.json(), the request's bytes instead of its parsed JSON)".into(),
            Self::BodyAltered(Alteration::TrailingNewlineAdded) => "a newline was added to the body on its way (a proxy, a WAF, `curl -d @file` or an editor): forward the body byte for byte (`curl --data-binary`)".into(),
            Self::BodyAltered(Alteration::TrailingNewlineRemoved) => "the body's trailing newline was stripped on its way: forward the body byte for byte, without trimming it".into(),
            Self::BodyAltered(Alteration::CrlfToLf | Alteration::LfToCrlf) => "the body's line endings were converted on its way (a text-mode transfer, a proxy rewriting bodies): forward the body byte for byte".into(),
            Self::BodyAltered(Alteration::CharsetTranscoded) => "the body was transcoded between UTF-8 and Latin-1 on its way (a proxy or framework converting charsets): forward the body as bytes, without charset conversion".into(),
            Self::SecretEncoding => "the sender and hookgate use the same secret in different forms: configure the secret exactly as the provider shows it, and have the sender use it the way the scheme defines (docs/schemes.md, Keys)".into(),
            Self::SignatureEncoding => "the signature is right but not written the way the scheme defines it: fix the sender's encoding or prefix (for scheme hmac, set verify.prefix and verify.encoding to what the sender sends)".into(),
            Self::RetiredSecret(id) => format!(
                "the sender still signs with `{id}`, a secret you rotated out: update the secret at the sender (or, until it catches up, move `{id}` back under verify.secrets)"
            ),
            Self::ClockSkew(s) => {
                let when = if *s < 0 {
                    format!("{} s in the past", s.unsigned_abs())
                } else {
                    format!("{s} s in the future")
                };
                format!("the signature is right but its timestamp is {when}, outside verify.tolerance: fix the sender's clock (NTP), look for delayed retries or replays, or raise verify.tolerance")
            }
            Self::Unknown => "nothing the doctor knows explains it: a wrong secret or a forgery. Check that the route's secret is the one the sender's settings show".into(),
            Self::Skipped => "not examined: the route's diagnosis budget (verify.diagnose_per_minute) was spent".into(),
        }
    }
}

impl Diagnosis {
    /// The check that found this diagnosis; `None` for `unknown` (every check ran, none
    /// matched) and `skipped` (none ran). The checks before it in [`Check::ORDER`] ran and
    /// did not match.
    pub fn found_by(&self) -> Option<Check> {
        Some(match self {
            Self::WrongScheme(_) => Check::OtherSchemes,
            Self::ClockSkew(_) => Check::AsReceived,
            Self::RetiredSecret(_) => Check::RetiredSecrets,
            Self::SecretEncoding => Check::SecretForms,
            Self::SignatureEncoding => Check::SignatureEncoding,
            Self::BodyAltered(_) => Check::BodyAlterations,
            Self::Unknown | Self::Skipped => return None,
        })
    }
}

/// The full value, as the log line has it: `clock_skew:-400`, `body_altered:json_reserialized`.
impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongScheme(s) => write!(f, "wrong_scheme:{s}"),
            Self::BodyAltered(a) => write!(f, "body_altered:{}", a.label()),
            Self::RetiredSecret(id) => write!(f, "retired_secret:{id}"),
            Self::ClockSkew(s) => write!(f, "clock_skew:{s}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Reads the value back from its [`fmt::Display`] form, as the journal keeps it, so the admin
/// API can show the advice of a recorded diagnosis.
impl std::str::FromStr for Diagnosis {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (kind, detail) = s.split_once(':').unwrap_or((s, ""));
        Ok(match (kind, detail) {
            ("wrong_scheme", d) => {
                Self::WrongScheme(SCHEME_NAMES.iter().copied().find(|n| *n == d).ok_or(())?)
            }
            ("body_altered", d) => Self::BodyAltered(
                Alteration::ALL
                    .into_iter()
                    .find(|a| a.label() == d)
                    .ok_or(())?,
            ),
            ("retired_secret", d) if !d.is_empty() => Self::RetiredSecret(d.into()),
            ("clock_skew", d) => Self::ClockSkew(d.parse().map_err(|_| ())?),
            ("secret_encoding", "") => Self::SecretEncoding,
            ("signature_encoding", "") => Self::SignatureEncoding,
            ("unknown", "") => Self::Unknown,
            ("skipped", "") => Self::Skipped,
            _ => return Err(()),
        })
    }
}

/// One of the explanations tried, in the order tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    OtherSchemes,
    AsReceived,
    RetiredSecrets,
    SecretForms,
    SignatureEncoding,
    BodyAlterations,
}

impl Check {
    /// The order an examination tries them in.
    pub const ORDER: [Self; 6] = [
        Self::OtherSchemes,
        Self::AsReceived,
        Self::RetiredSecrets,
        Self::SecretForms,
        Self::SignatureEncoding,
        Self::BodyAlterations,
    ];

    /// What was checked, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::OtherSchemes => "other providers' signature headers",
            Self::AsReceived => "the request as received, at any time (clock skew)",
            Self::RetiredSecrets => "the retired secrets (verify.retired_secrets)",
            Self::SecretForms => "the route's secrets in their other forms",
            Self::SignatureEncoding => {
                "the signature in the encoding and prefix the scheme defines"
            }
            Self::BodyAlterations => "the body with known alterations undone",
        }
    }
}

/// One step of an examination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub check: Check,
    /// Candidates made (bodies, secret forms, headers); 0 when the step did not apply.
    pub candidates: usize,
    pub matched: bool,
}

/// The outcome of one examination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub diagnosis: Diagnosis,
    /// What matched, in words (which JSON style, which form of which secret).
    pub detail: Option<String>,
    pub steps: Vec<Step>,
    /// (candidate, key) pairs checked: at most [`MAX_KEY_CHECKS`].
    pub key_checks: usize,
}

/// One route's doctor, built when the config loads: its verifiers with their keys decoded.
#[derive(Debug, Clone)]
pub struct Doctor {
    /// The route's first [`MAX_KEYS`] keys, with a window that never closes.
    keys: Verifier,
    /// Other forms of those secrets; ids index `forms`.
    forms: Verifier,
    /// For each form: the secret's id and the form in words.
    form_names: Vec<(Arc<str>, &'static str)>,
    /// `verify.retired_secrets`, decoded like `verify.secrets`, window never closing.
    retired: Verifier,
}

impl Doctor {
    /// The doctor for a route's verifier and its retired secrets (decoded for the scheme, at
    /// most [`MAX_RETIRED`] used).
    pub fn new(verifier: &Verifier, retired: Keys) -> Self {
        let keys = verifier.keys().first(MAX_KEYS);
        let mut form_secrets = Vec::new();
        let mut form_names = Vec::new();
        for secret in keys.secrets() {
            for (form, words) in forms::of(verifier.scheme(), secret) {
                form_secrets.push(Secret::new(form_names.len().to_string(), form));
                form_names.push((Arc::from(secret.id()), words));
            }
        }
        Self {
            forms: verifier
                .with_keys(Keys::from_secrets(form_secrets))
                .at_any_time(),
            keys: verifier.with_keys(keys).at_any_time(),
            form_names,
            retired: verifier.with_keys(retired.first(MAX_RETIRED)).at_any_time(),
        }
    }

    pub fn scheme(&self) -> &Scheme {
        self.keys.scheme()
    }

    /// Examines a request that failed verification with `error`.
    pub fn examine(&self, input: &Input<'_>, error: VerifyError) -> Report {
        let mut exam = Exam {
            report: Report {
                diagnosis: Diagnosis::Unknown,
                detail: None,
                steps: Vec::new(),
                key_checks: 0,
            },
        };
        exam.run(self, input, error);
        exam.report
    }
}

struct Exam {
    report: Report,
}

impl Exam {
    fn run(&mut self, doctor: &Doctor, input: &Input<'_>, error: VerifyError) {
        let scheme = doctor.scheme();

        // 1. Another provider's headers instead of the route's.
        let other = other_scheme(scheme, input.headers);
        if self.step(
            Check::OtherSchemes,
            usize::from(other.is_some()),
            other.is_some(),
        ) {
            if let Some(s) = other {
                return self.found(Diagnosis::WrongScheme(s), None);
            }
        }
        let too_long = scheme.signature_headers().iter().any(|h| {
            input
                .headers
                .get_all(*h)
                .iter()
                .any(|v| v.len() > MAX_SIGNATURE_HEADER)
        });
        if too_long {
            self.report.detail = Some(format!(
                "the signature header is longer than {MAX_SIGNATURE_HEADER} bytes and was not examined"
            ));
            return;
        }

        // 2. The request as received, at any time.
        let as_received = self.verify(&doctor.keys, input);
        let matched = as_received.is_ok();
        self.step(Check::AsReceived, 1, matched);
        if matched {
            let skew = scheme.signed_timestamp_ms(input).map(|ts| {
                let now_ms = i128::from(input.now) * 1000;
                let secs = (i128::from(ts) - now_ms) / 1000;
                i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
            });
            let timestamp = matches!(
                error,
                VerifyError::TimestampExpired | VerifyError::TimestampFuture
            );
            if let (true, Some(s)) = (timestamp, skew) {
                return self.found(Diagnosis::ClockSkew(s), None);
            }
            // Verifies as received with these keys and a closed window: nothing to explain.
            return;
        }

        // Nothing but the signature header itself changes whether it can be read.
        let unreadable = matches!(
            as_received,
            Err(VerifyError::MissingHeader | VerifyError::MalformedHeader)
        );

        // 3. A retired secret.
        let retired = doctor.retired.keys().len();
        if retired > 0 && !unreadable {
            let got = self.verify(&doctor.retired, input);
            self.step(Check::RetiredSecrets, retired, got.is_ok());
            if let Ok(id) = got {
                return self.found(Diagnosis::RetiredSecret(id), None);
            }
        }

        // 4. The route's secrets in other forms.
        let forms = doctor.forms.keys().len();
        if forms > 0 && !unreadable {
            let got = self.verify(&doctor.forms, input);
            self.step(Check::SecretForms, forms, got.is_ok());
            if let Ok(i) = got {
                let detail = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| doctor.form_names.get(i))
                    .map(|(id, words)| format!("secret `{id}` used as {words}"));
                return self.found(Diagnosis::SecretEncoding, detail);
            }
        }

        // 5. The signature written as the scheme defines it.
        if let Some((headers, note)) = rewritten_signature(scheme, input.headers) {
            let candidate = Input {
                headers: &headers,
                ..*input
            };
            let ok = self.verify(&doctor.keys, &candidate).is_ok();
            self.step(Check::SignatureEncoding, 1, ok);
            if ok {
                return self.found(Diagnosis::SignatureEncoding, Some(note));
            }
        } else {
            self.step(Check::SignatureEncoding, 0, false);
        }

        // 6. The body with one alteration undone; not for schemes that do not sign it.
        let too_large = input.body.len() > MAX_ALTERED_BODY;
        if too_large {
            self.report.detail = Some(format!(
                "the body is larger than {} KiB: alterations were not tried",
                MAX_ALTERED_BODY / 1024
            ));
        }
        if scheme.signs_body() && !unreadable && !too_large {
            let keys = doctor.keys.keys().len();
            let mut checks = 0;
            let (found, made) = body::find(input.body, |b| {
                checks += keys;
                let candidate = Input { body: b, ..*input };
                doctor.keys.verify(&candidate).is_ok()
            });
            self.report.key_checks += checks;
            self.step(Check::BodyAlterations, made, found.is_some());
            if let Some(c) = found {
                self.found(Diagnosis::BodyAltered(c.how), Some(c.detail));
            }
        } else {
            self.step(Check::BodyAlterations, 0, false);
        }
    }

    /// Records a step; returns whether it matched.
    fn step(&mut self, check: Check, candidates: usize, matched: bool) -> bool {
        self.report.steps.push(Step {
            check,
            candidates,
            matched,
        });
        matched
    }

    fn found(&mut self, diagnosis: Diagnosis, detail: Option<String>) {
        self.report.diagnosis = diagnosis;
        self.report.detail = detail;
    }

    /// One candidate request against one verifier: the id of the key that matched.
    fn verify(&mut self, verifier: &Verifier, input: &Input<'_>) -> Result<Arc<str>, VerifyError> {
        self.report.key_checks += verifier.keys().len();
        verifier.verify(input).map(|v| v.key_id)
    }
}

/// The first other scheme whose signature headers are present, when none of the route's are.
fn other_scheme(route: &Scheme, headers: &HeaderMap) -> Option<&'static str> {
    let present = |s: &Scheme| {
        s.signature_headers()
            .iter()
            .any(|h| headers.contains_key(*h))
    };
    if present(route) {
        return None;
    }
    SCHEME_NAMES
        .iter()
        .filter_map(|n| Scheme::builtin(n))
        .filter(|s| s.name() != route.name())
        .find(|s| present(s))
        .map(|s| s.name())
}

/// The headers with the signature header rewritten in the scheme's own form, and what differed.
fn rewritten_signature(scheme: &Scheme, headers: &HeaderMap) -> Option<(HeaderMap, String)> {
    let format = scheme.signature_format()?;
    let name = format
        .headers
        .iter()
        .find(|h| headers.contains_key(h.as_str()))?;
    let mut values = headers.get_all(name.as_str()).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (fixed, note) = signature::canonical(&format, value)?;
    let mut out = headers.clone();
    out.insert(
        http::HeaderName::from_bytes(name.as_bytes()).ok()?,
        HeaderValue::from_str(&fixed).ok()?,
    );
    Some((out, note))
}

#[cfg(test)]
mod tests;
