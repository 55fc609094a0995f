//! What a scheme looks like on the wire, for the signature doctor (`crate::doctor`), which asks
//! after a failure what would have matched: the headers that mark a sender as this scheme, how
//! its signature values are laid out and encoded, the timestamp it signed, and which form of a
//! secret it MACs with. Verification itself does not use these.

use std::time::Duration;

use super::header::{single, timestamped_signatures};
use super::hmac::{GITHUB, MEDIACONVERT, SHOPIFY};
use super::standard::Names;
use super::{
    linear, mailgun, sendgrid, slack_zoom, standard, Encoding, Input, Keys, Scheme, Verifier,
};
use crate::secret::Secret;

/// How the signature values sit in their header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The whole value is `<prefix><encoded signature>` (`sha256=<hex>`, `v0=<hex>`, `<base64>`).
    Whole { prefix: String },
    /// A list split on `sep` whose signature items are `<key><kv><encoded signature>`
    /// (Stripe `t=..,v1=..`, Paddle `ts=..;h1=..`, Standard Webhooks `v1,<b64> v1,<b64>`).
    List {
        sep: char,
        key: &'static str,
        kv: char,
    },
}

/// Where and how a scheme sends its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFormat {
    /// Lowercase header names, preferred first: the first present is read.
    pub headers: Vec<String>,
    pub layout: Layout,
    pub encoding: Encoding,
    /// Bytes of one decoded signature.
    pub len: usize,
}

impl Scheme {
    /// The headers whose presence marks a request as this scheme's (lowercase); none for
    /// Mailgun, whose signature is in the body.
    pub fn signature_headers(&self) -> Vec<&str> {
        match self {
            Self::MediaConvert => vec!["x-mediaconvert-signature"],
            Self::GitHub => vec!["x-hub-signature-256", "x-hub-signature"],
            Self::Stripe => vec!["stripe-signature"],
            Self::StandardWebhooks => vec!["webhook-signature"],
            Self::Svix => vec!["svix-signature", "webhook-signature"],
            Self::Slack => vec!["x-slack-signature"],
            Self::Shopify => vec!["x-shopify-hmac-sha256", "shopify-hmac-sha256"],
            Self::Twilio => vec!["x-twilio-signature"],
            Self::GitLab => vec!["x-gitlab-token"],
            Self::Paddle => vec!["paddle-signature"],
            Self::Zoom => vec!["x-zm-signature"],
            Self::Linear => vec!["linear-signature"],
            Self::Mailgun => vec![],
            Self::SendGrid => vec!["x-twilio-email-event-webhook-signature"],
            Self::Hmac(spec) => {
                let mut h = vec![spec.header.as_str()];
                h.extend(spec.fallback_header.as_deref());
                h
            }
        }
    }

    /// How the signature is laid out and encoded; `None` where it is not an encoded MAC in a
    /// header (GitLab's token, Mailgun's body fields, SendGrid's DER signature).
    pub fn signature_format(&self) -> Option<SignatureFormat> {
        let whole = |headers: &[&str], prefix: &str, encoding, len| SignatureFormat {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            layout: Layout::Whole {
                prefix: prefix.to_string(),
            },
            encoding,
            len,
        };
        let list = |header: &[&str], sep, key, kv, encoding| SignatureFormat {
            headers: header.iter().map(|h| h.to_string()).collect(),
            layout: Layout::List { sep, key, kv },
            encoding,
            len: 32,
        };
        Some(match self {
            Self::MediaConvert => whole(&[&MEDIACONVERT.header], "sha256=", Encoding::Hex, 32),
            Self::GitHub => whole(&[&GITHUB.header], "sha256=", Encoding::Hex, 32),
            Self::Shopify => whole(
                &[&SHOPIFY.header, "shopify-hmac-sha256"],
                "",
                Encoding::Base64,
                32,
            ),
            Self::Linear => whole(&["linear-signature"], "", Encoding::Hex, 32),
            Self::Slack => whole(&["x-slack-signature"], "v0=", Encoding::Hex, 32),
            Self::Zoom => whole(&["x-zm-signature"], "v0=", Encoding::Hex, 32),
            Self::Twilio => whole(&["x-twilio-signature"], "", Encoding::Base64, 20),
            Self::Hmac(spec) => SignatureFormat {
                headers: std::iter::once(spec.header.clone())
                    .chain(spec.fallback_header.clone())
                    .collect(),
                layout: Layout::Whole {
                    prefix: spec.prefix.clone(),
                },
                encoding: spec.encoding,
                len: spec.algorithm.output_len(),
            },
            Self::Stripe => list(&["stripe-signature"], ',', "v1", '=', Encoding::Hex),
            Self::Paddle => list(&["paddle-signature"], ';', "h1", '=', Encoding::Hex),
            Self::StandardWebhooks => {
                list(&["webhook-signature"], ' ', "v1", ',', Encoding::Base64)
            }
            Self::Svix => list(
                &["svix-signature", "webhook-signature"],
                ' ',
                "v1",
                ',',
                Encoding::Base64,
            ),
            Self::GitLab | Self::Mailgun | Self::SendGrid => return None,
        })
    }

    /// The timestamp the request says it was signed at, in unix milliseconds, read the way
    /// verification reads it; `None` for schemes without one or when it cannot be read.
    pub fn signed_timestamp_ms(&self, input: &Input<'_>) -> Option<u64> {
        let h = input.headers;
        let secs = match self {
            Self::Stripe => {
                timestamped_signatures(single(h, "stripe-signature").ok()?, ',', "t", "v1", true)
                    .ok()?
                    .ts
            }
            Self::Paddle => {
                timestamped_signatures(single(h, "paddle-signature").ok()?, ';', "ts", "h1", false)
                    .ok()?
                    .ts
            }
            Self::StandardWebhooks => standard::timestamp(Names::STANDARD, h)?,
            Self::Svix => standard::timestamp(Names::SVIX, h)?,
            Self::Slack => slack_zoom::SLACK.timestamp(h)?,
            Self::Zoom => slack_zoom::ZOOM.timestamp(h)?,
            Self::SendGrid => sendgrid::timestamp(h)?,
            Self::Mailgun => mailgun::timestamp(input.body)?,
            Self::Linear => return linear::timestamp_ms(input.body),
            Self::Hmac(spec) => {
                let name = spec.timestamp_header.as_deref()?;
                super::timestamp::parse_digits(single(h, name).ok()?).ok()?
            }
            Self::MediaConvert | Self::GitHub | Self::Shopify | Self::Twilio | Self::GitLab => {
                return None
            }
        };
        Some(secs.saturating_mul(1000))
    }

    /// Whether `verify.secrets` are base64-decoded before they key the MAC (Standard Webhooks,
    /// Svix); the others MAC with the secret's text as given.
    pub fn decodes_secrets(&self) -> bool {
        matches!(self, Self::StandardWebhooks | Self::Svix)
    }

    /// Whether a change to the body changes the verdict: not for GitLab's token or Mailgun's
    /// signature fields, which do not cover the body.
    pub fn signs_body(&self) -> bool {
        !matches!(self, Self::GitLab | Self::Mailgun)
    }
}

impl Keys {
    /// The shared secrets, in the form the scheme MACs with.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// The first `n` keys: secrets first, then public keys, in the order given.
    pub fn first(&self, n: usize) -> Keys {
        let secrets: Vec<Secret> = self.secrets.iter().take(n).cloned().collect();
        let n = n - secrets.len();
        let ed25519: Vec<_> = self.ed25519.iter().take(n).cloned().collect();
        let n = n - ed25519.len();
        Keys {
            secrets,
            ed25519,
            p256: self.p256.iter().take(n).cloned().collect(),
        }
    }

    /// Keys of every kind.
    pub fn len(&self) -> usize {
        self.secrets.len() + self.ed25519.len() + self.p256.len()
    }
}

impl Verifier {
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The same scheme, URL and window with other keys, already in the form the scheme MACs
    /// with.
    pub fn with_keys(&self, keys: Keys) -> Verifier {
        Verifier {
            scheme: self.scheme.clone(),
            keys,
            window: self.window,
            public_url: self.public_url.clone(),
        }
    }

    /// The same verifier with a window that never closes: it tells "the signature is right"
    /// apart from "the timestamp is too far from now".
    pub fn at_any_time(mut self) -> Verifier {
        self.window = super::Window::new(Duration::MAX);
        self
    }
}
