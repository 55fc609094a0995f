//! One schema violation as the sender sees it: where, and a short message that never quotes
//! the payload's values (they may be large, or private).

use jsonschema::ValidationError;
use serde::Serialize;

/// Violations listed in a 422 at most; the rest would only make the answer larger.
pub const MAX_VIOLATIONS: usize = 10;

/// Longest message; schema-given lists (an `enum` of many values) are cut.
const MAX_MESSAGE: usize = 200;

/// Longest pointer: a payload can have arbitrarily long keys.
const MAX_POINTER: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer to the failing value (`""` for the whole document).
    pub pointer: String,
    pub message: String,
}

impl Violation {
    pub fn new(pointer: &str, message: &str) -> Self {
        let mut pointer = pointer.to_string();
        truncate(&mut pointer, MAX_POINTER);
        let mut message = message.to_string();
        truncate(&mut message, MAX_MESSAGE);
        Self { pointer, message }
    }

    /// The instance value is masked as `value`; only the schema's own words remain.
    pub fn from_error(e: &ValidationError<'_>) -> Self {
        Self::new(e.instance_path().as_str(), &e.masked().to_string())
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub(super) fn truncate(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_utf8() {
        let mut s = "é".repeat(300);
        truncate(&mut s, 200);
        assert!(s.len() <= 200);
        assert!(s.ends_with('…'));
        let mut short = "short".to_string();
        truncate(&mut short, 200);
        assert_eq!(short, "short");
    }
}
