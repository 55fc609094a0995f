//! What the body may have looked like when it was signed: the received body with one known
//! alteration undone. At most [`MAX_CANDIDATES`] bodies, made one at a time (a large body is
//! never held in many copies), none equal to the body received or to an earlier one.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use super::json::{reprint, Escapes, Layout, Style};
use super::Alteration;

/// Newline and line-ending candidates (4), JSON styles (12), charsets (2).
pub const MAX_CANDIDATES: usize = 4 + JSON_STYLES.len() + 2;

/// The JSON styles tried, most common first.
const JSON_STYLES: [Style; 12] = {
    const fn s(layout: Layout, escapes: Escapes) -> Style {
        Style { layout, escapes }
    }
    use Escapes::{Ascii, Minimal, Slash};
    use Layout::{Compact, Pretty, Spaced};
    [
        s(Compact, Minimal),
        s(Pretty(2), Minimal),
        s(Spaced, Minimal),
        s(Pretty(4), Minimal),
        s(Compact, Ascii),
        s(Pretty(2), Ascii),
        s(Spaced, Ascii),
        s(Pretty(4), Ascii),
        s(Compact, Slash),
        s(Pretty(2), Slash),
        s(Spaced, Slash),
        s(Pretty(4), Slash),
    ]
};

/// One body to try, and what would have been done to it on the way.
pub struct Candidate {
    pub how: Alteration,
    /// Words for a person, e.g. "pretty-printed with 2 spaces".
    pub detail: String,
    pub body: Vec<u8>,
}

/// Calls `check` with each candidate in turn until it returns `true`; returns that candidate
/// and how many were checked.
pub fn find(body: &[u8], mut check: impl FnMut(&[u8]) -> bool) -> (Option<Candidate>, usize) {
    // Hashes of what was tried: public bytes, so a plain hash is fine.
    let hasher = RandomState::new();
    let mut seen: HashSet<u64> = HashSet::from([hasher.hash_one(body)]);
    let mut checked = 0;
    let mut offer = |c: Candidate| -> Option<Candidate> {
        if !seen.insert(hasher.hash_one(&c.body)) {
            return None;
        }
        checked += 1;
        check(&c.body).then_some(c)
    };
    let found = newlines(body)
        .into_iter()
        .find_map(&mut offer)
        .or_else(|| json(body).find_map(&mut offer))
        .or_else(|| charsets(body).into_iter().find_map(&mut offer));
    (found, checked)
}

/// Trailing newline added or removed, CRLF turned into LF or the other way.
fn newlines(body: &[u8]) -> Vec<Candidate> {
    let mut out = Vec::new();
    let crlf = body.windows(2).any(|w| w == b"\r\n");
    let bare_lf = body
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || body[i - 1] != b'\r'));
    let plain = |how, detail: &str, body| Candidate {
        how,
        detail: detail.to_string(),
        body,
    };
    // Added on the way: the body signed was without it.
    let stripped = body
        .strip_suffix(b"\r\n")
        .or_else(|| body.strip_suffix(b"\n"));
    if let Some(s) = stripped {
        out.push(plain(
            Alteration::TrailingNewlineAdded,
            "the body signed had no trailing newline",
            s.to_vec(),
        ));
    }
    // Removed on the way: the body signed ended with one.
    let newline: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    out.push(plain(
        Alteration::TrailingNewlineRemoved,
        "the body signed ended with a newline",
        [body, newline].concat(),
    ));
    if bare_lf {
        let mut lf = Vec::with_capacity(body.len() + body.len() / 16);
        for (i, b) in body.iter().enumerate() {
            if *b == b'\n' && (i == 0 || body[i - 1] != b'\r') {
                lf.push(b'\r');
            }
            lf.push(*b);
        }
        out.push(plain(
            Alteration::CrlfToLf,
            "the body signed had CRLF line endings",
            lf,
        ));
    }
    if crlf {
        let mut lf = Vec::with_capacity(body.len());
        for (i, b) in body.iter().enumerate() {
            if !(*b == b'\r' && body.get(i + 1) == Some(&b'\n')) {
                lf.push(*b);
            }
        }
        out.push(plain(
            Alteration::LfToCrlf,
            "the body signed had LF line endings",
            lf,
        ));
    }
    out
}

/// The body's JSON written in each style, when it is JSON.
fn json(body: &[u8]) -> impl Iterator<Item = Candidate> + '_ {
    let is_json = matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    );
    let styles = if is_json { &JSON_STYLES[..] } else { &[] };
    styles.iter().map_while(move |style| {
        // Not JSON after all: no style will do.
        reprint(body, *style).map(|b| Candidate {
            how: Alteration::JsonReserialized,
            detail: format!("the JSON signed was {}", style.describe()),
            body: b,
        })
    })
}

/// UTF-8 read as Latin-1 and the other way: what a transcoding proxy does.
fn charsets(body: &[u8]) -> Vec<Candidate> {
    let mut out = Vec::new();
    if body.is_ascii() {
        return out;
    }
    // Received as UTF-8, signed as Latin-1 (or double-encoded): every character fits a byte.
    if let Ok(text) = std::str::from_utf8(body) {
        let latin1: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
        if let Some(bytes) = latin1 {
            out.push(Candidate {
                how: Alteration::CharsetTranscoded,
                detail: "the body signed was Latin-1 and arrived as UTF-8".into(),
                body: bytes,
            });
        }
    }
    // Received as Latin-1, signed as UTF-8.
    let utf8: String = body.iter().map(|b| char::from(*b)).collect();
    out.push(Candidate {
        how: Alteration::CharsetTranscoded,
        detail: "the body signed was UTF-8 and arrived as Latin-1".into(),
        body: utf8.into_bytes(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every candidate, in order.
    fn all(body: &[u8]) -> Vec<Candidate> {
        let mut seen = Vec::new();
        let (found, n) = find(body, |b| {
            seen.push(b.to_vec());
            false
        });
        assert!(found.is_none());
        assert_eq!(n, seen.len());
        assert!(n <= MAX_CANDIDATES, "{n}");
        let mut out = Vec::new();
        for b in seen {
            let (c, _) = find(body, |x| x == b);
            out.push(c.unwrap());
        }
        out
    }

    fn has(cands: &[Candidate], how: Alteration, body: &[u8]) -> bool {
        cands.iter().any(|c| c.how == how && c.body == body)
    }

    #[test]
    fn newline_alterations_are_undone() {
        let c = all(b"a=1\n");
        assert!(has(&c, Alteration::TrailingNewlineAdded, b"a=1"));
        assert!(has(&c, Alteration::TrailingNewlineRemoved, b"a=1\n\n"));
        assert!(has(&c, Alteration::CrlfToLf, b"a=1\r\n"));
        let c = all(b"x\r\ny\r\n");
        assert!(has(&c, Alteration::TrailingNewlineAdded, b"x\r\ny"));
        assert!(has(
            &c,
            Alteration::TrailingNewlineRemoved,
            b"x\r\ny\r\n\r\n"
        ));
        assert!(has(&c, Alteration::LfToCrlf, b"x\ny\n"));
        assert!(!c.iter().any(|c| c.how == Alteration::CrlfToLf));
    }

    #[test]
    fn json_styles_and_charsets() {
        let signed = "{\"a\":\"é/\",\"b\":[1]}".as_bytes();
        let received = b"{\n  \"a\": \"\\u00e9\\/\",\n  \"b\": [\n    1\n  ]\n}";
        let c = all(received);
        assert!(has(&c, Alteration::JsonReserialized, signed));
        let latin1 = b"{\"a\":\"caf\xe9\"}";
        let c = all("{\"a\":\"café\"}".as_bytes());
        assert!(has(&c, Alteration::CharsetTranscoded, latin1));
        let c = all(latin1);
        assert!(has(
            &c,
            Alteration::CharsetTranscoded,
            "{\"a\":\"café\"}".as_bytes()
        ));
    }

    #[test]
    fn duplicates_and_the_body_itself_are_not_tried_twice() {
        let c = all(b"[1]");
        let bodies: HashSet<&[u8]> = c.iter().map(|c| &c.body[..]).collect();
        assert_eq!(bodies.len(), c.len());
        assert!(!bodies.contains(&b"[1]"[..]));
        // Compact ASCII JSON: only 3 layouts differ from it.
        assert_eq!(
            c.iter()
                .filter(|c| c.how == Alteration::JsonReserialized)
                .count(),
            2
        );
    }
}
