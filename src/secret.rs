//! A secret that cannot leak by accident: its `Debug` never shows the bytes.

use std::fmt;
use std::sync::Arc;

/// A loaded secret. `Debug` and `Display` never show the bytes, so a secret that ends up in a
/// log line, an error or a panic message shows as `Secret(id, <redacted>)`.
#[derive(Clone)]
pub struct Secret {
    id: Arc<str>,
    bytes: Arc<[u8]>,
}

impl Secret {
    pub fn new(id: impl Into<Arc<str>>, bytes: impl Into<Arc<[u8]>>) -> Self {
        Self {
            id: id.into(),
            bytes: bytes.into(),
        }
    }

    /// The operator's name for this secret (`current`, `previous`, ...): safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret material. Only verification and signing code should call this.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("current", b"hunter2".to_vec());
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("current"));
    }
}
