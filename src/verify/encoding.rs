//! Strict decoding of signature values: lowercase hex and padded standard base64 only, as the
//! providers emit them. Anything else is malformed, never "close enough".

use base64::Engine as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hex" => Some(Self::Hex),
            "base64" => Some(Self::Base64),
            _ => None,
        }
    }

    /// Decodes `s`, refusing uppercase hex, odd lengths, url-safe or unpadded base64.
    pub fn decode(self, s: &str) -> Option<Vec<u8>> {
        match self {
            Self::Hex => {
                if s.bytes().any(|b| b.is_ascii_uppercase()) {
                    return None;
                }
                hex::decode(s).ok()
            }
            Self::Base64 => base64::engine::general_purpose::STANDARD.decode(s).ok(),
        }
    }

    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(bytes),
            Self::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_must_be_lowercase() {
        assert_eq!(Encoding::Hex.decode("ab01"), Some(vec![0xab, 0x01]));
        assert_eq!(Encoding::Hex.decode("AB01"), None);
        assert_eq!(Encoding::Hex.decode("abc"), None);
    }

    #[test]
    fn base64_must_be_padded_standard() {
        assert_eq!(Encoding::Base64.decode("AQ=="), Some(vec![1]));
        assert_eq!(Encoding::Base64.decode("AQ"), None);
        assert_eq!(Encoding::Base64.decode("-_8="), None);
    }
}
