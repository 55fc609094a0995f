//! Verification and signing keys, decoded once (at config load, or when `sign` starts) so a
//! bad key is a config error naming its key path, never a per-request failure.

use std::sync::Arc;

use base64::Engine as _;

use crate::secret::Secret;

/// The keys of one route, by kind. Which kinds a scheme uses is decided by the scheme.
#[derive(Clone, Default)]
pub struct Keys {
    /// HMAC keys and shared tokens, already in the form the scheme MACs with.
    pub(super) secrets: Vec<Secret>,
    /// Standard Webhooks `v1a` public keys.
    pub(super) ed25519: Vec<(Arc<str>, ed25519_dalek::VerifyingKey)>,
    /// SendGrid's ECDSA P-256 public keys.
    pub(super) p256: Vec<(Arc<str>, p256::ecdsa::VerifyingKey)>,
}

impl Keys {
    /// Symmetric secrets only, used as given (the signature doctor's other forms of a secret).
    pub fn from_secrets(secrets: Vec<Secret>) -> Self {
        Self {
            secrets,
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.ed25519.is_empty() && self.p256.is_empty()
    }

    /// The ids of every key, in the order given.
    #[cfg(test)]
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .map(Secret::id)
            .chain(self.ed25519.iter().map(|(id, _)| &**id))
            .chain(self.p256.iter().map(|(id, _)| &**id))
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("secrets", &self.secrets)
            .field(
                "ed25519",
                &self.ed25519.iter().map(|k| &k.0).collect::<Vec<_>>(),
            )
            .field("p256", &self.p256.iter().map(|k| &k.0).collect::<Vec<_>>())
            .finish()
    }
}

/// What `hookgate sign` signs with.
pub enum SigningKey {
    /// A shared secret, exactly as the provider shows it (decoded by the scheme if it must be).
    Secret(Vec<u8>),
    /// Standard Webhooks `v1a`.
    Ed25519(ed25519_dalek::SigningKey),
    /// SendGrid.
    P256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// A private key file's text: `whsk_<base64 32-byte seed>` (Ed25519, the Standard Webhooks
    /// form) or a PEM P-256 key (`BEGIN PRIVATE KEY` PKCS#8, or `BEGIN EC PRIVATE KEY` SEC1).
    pub fn private_key(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(b64) = text.strip_prefix("whsk_") {
            let seed: [u8; 32] = lenient_base64(b64)
                .and_then(|b| b.try_into().ok())
                .ok_or("a whsk_ key is base64 of a 32-byte Ed25519 seed")?;
            return Ok(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)));
        }
        if text.starts_with("-----BEGIN PRIVATE KEY-----") {
            use p256::pkcs8::DecodePrivateKey;
            return p256::ecdsa::SigningKey::from_pkcs8_pem(text)
                .map(Self::P256)
                .map_err(|_| "not a PKCS#8 P-256 private key".to_string());
        }
        if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            return p256::SecretKey::from_sec1_pem(text)
                .map(|k| Self::P256(k.into()))
                .map_err(|_| "not a SEC1 P-256 private key".to_string());
        }
        Err("unknown private key format; give whsk_<base64> (Ed25519) or a PEM P-256 key".into())
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Secret(_) => "a shared secret (--secret)",
            Self::Ed25519(_) => "an Ed25519 key",
            Self::P256(_) => "a P-256 key",
        }
    }
}

/// Standard base64, padded or not: secrets and keys are pasted by hand, and the official
/// libraries disagree on padding, so config parsing accepts both.
pub(super) fn lenient_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{
        general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig,
    };
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).ok().filter(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_accepts_both_paddings() {
        assert_eq!(lenient_base64("AQ=="), Some(vec![1]));
        assert_eq!(lenient_base64("AQ"), Some(vec![1]));
        assert_eq!(lenient_base64("-_8="), None);
        assert_eq!(lenient_base64(""), None);
    }

    #[test]
    fn private_key_forms() {
        let k = SigningKey::private_key("whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n");
        assert!(matches!(k, Ok(SigningKey::Ed25519(_))));
        assert!(SigningKey::private_key("whsk_AAAA").is_err());
        assert!(SigningKey::private_key("hello").is_err());
        use p256::pkcs8::EncodePrivateKey;
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pem = sk.to_pkcs8_pem(Default::default()).unwrap();
        assert!(matches!(
            SigningKey::private_key(&pem),
            Ok(SigningKey::P256(_))
        ));
        let sec1 = p256::SecretKey::from_slice(&[7u8; 32])
            .unwrap()
            .to_sec1_pem(Default::default())
            .unwrap();
        assert!(matches!(
            SigningKey::private_key(&sec1),
            Ok(SigningKey::P256(_))
        ));
    }
}
