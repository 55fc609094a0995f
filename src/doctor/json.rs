//! JSON written again in the styles senders, frameworks and proxies write it: compact,
//! `json.dumps`'s `", "`/`": "` separators, pretty-printed with 2 or 4 spaces, with `/` escaped as
//! `\/` (PHP), with non-ASCII as `\u` escapes (Python's `ensure_ascii`).
//!
//! The text is re-printed token by token, not through a tree: keys keep their order, numbers
//! keep their exact text, and nesting depth costs no stack (a body of a million `[` is walked
//! like any other). Input that is not JSON gives `None`.

/// Whitespace between tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{"a":1,"b":[1,2]}`: `JSON.stringify`, `json.dumps(separators=(",", ":"))`.
    Compact,
    /// `{"a": 1, "b": [1, 2]}`: Python's `json.dumps` default.
    Spaced,
    /// One item per line, indented by this many spaces, `": "` after keys.
    Pretty(usize),
}

/// How strings are escaped, beyond what JSON requires (`"`, `\`, control characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escapes {
    /// Nothing more: `/` and non-ASCII as they are (`JSON.stringify`).
    Minimal,
    /// `/` as `\/` (PHP's `json_encode`).
    Slash,
    /// Every non-ASCII character as `\uXXXX`, surrogate pairs beyond U+FFFF (Python's default).
    Ascii,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub layout: Layout,
    pub escapes: Escapes,
}

impl Style {
    /// Words for a person: "pretty-printed with 2 spaces, non-ASCII as \u escapes".
    pub fn describe(self) -> String {
        let layout = match self.layout {
            Layout::Compact => "compact".to_string(),
            Layout::Spaced => "with \", \" and \": \" separators (Python's json.dumps)".to_string(),
            Layout::Pretty(n) => format!("pretty-printed with {n} spaces"),
        };
        match self.escapes {
            Escapes::Minimal => layout,
            Escapes::Slash => format!("{layout}, `/` escaped as `\\/`"),
            Escapes::Ascii => format!("{layout}, non-ASCII as \\u escapes"),
        }
    }
}

/// `src` re-printed in `style`, or `None` if it is not JSON.
pub fn reprint(src: &[u8], style: Style) -> Option<Vec<u8>> {
    let mut p = Printer {
        src,
        i: 0,
        out: Vec::with_capacity(src.len() + src.len() / 4),
        style,
        stack: Vec::new(),
    };
    p.document()?;
    Some(p.out)
}

/// An open container: the byte that closes it.
type Open = u8;

struct Printer<'a> {
    src: &'a [u8],
    i: usize,
    out: Vec<u8>,
    style: Style,
    stack: Vec<Open>,
}

impl Printer<'_> {
    fn document(&mut self) -> Option<()> {
        loop {
            if self.value()? {
                // A container was opened: its first item is the next value.
                continue;
            }
            // After a value: close containers, or a comma and the next value.
            loop {
                let Some(&close) = self.stack.last() else {
                    self.skip_ws();
                    return (self.i == self.src.len()).then_some(());
                };
                match self.next_token()? {
                    b',' => {
                        self.i += 1;
                        self.out.push(b',');
                        self.item_break();
                        if close == b'}' {
                            self.key()?;
                        }
                        break;
                    }
                    c if c == close => {
                        self.i += 1;
                        self.stack.pop();
                        self.line_break();
                        self.out.push(close);
                    }
                    _ => return None,
                }
            }
        }
    }

    /// One value; `true` when it opened a non-empty container (its first key read), whose
    /// items the caller reads next.
    fn value(&mut self) -> Option<bool> {
        let c = self.next_token()?;
        match c {
            b'{' | b'[' => {
                self.i += 1;
                let close = if c == b'{' { b'}' } else { b']' };
                self.out.push(c);
                if self.next_token()? == close {
                    self.i += 1;
                    self.out.push(close);
                    return Some(false);
                }
                self.stack.push(close);
                self.line_break();
                if close == b'}' {
                    self.key()?;
                }
                return Some(true);
            }
            b'"' => self.string()?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self
                    .src
                    .get(self.i)
                    .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    self.i += 1;
                }
                self.out.extend_from_slice(&self.src[start..self.i]);
            }
            _ => return None,
        }
        Some(false)
    }

    /// `"key"` and its separator.
    fn key(&mut self) -> Option<()> {
        if self.next_token()? != b'"' {
            return None;
        }
        self.string()?;
        if self.next_token()? != b':' {
            return None;
        }
        self.i += 1;
        self.out.push(b':');
        if self.style.layout != Layout::Compact {
            self.out.push(b' ');
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.src
            .get(self.i..self.i + word.len())
            .filter(|w| *w == word)?;
        self.i += word.len();
        self.out.extend_from_slice(word);
        Some(())
    }

    /// After an item's comma.
    fn item_break(&mut self) {
        match self.style.layout {
            Layout::Compact => {}
            Layout::Spaced => self.out.push(b' '),
            Layout::Pretty(_) => self.line_break(),
        }
    }

    /// A newline and the indent of the current depth (pretty layouts only).
    fn line_break(&mut self) {
        if let Layout::Pretty(n) = self.style.layout {
            self.out.push(b'\n');
            let width = n * self.stack.len();
            self.out.resize(self.out.len() + width, b' ');
        }
    }

    /// The next non-whitespace byte, not consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_ws();
        self.src.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self
            .src
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    /// A string, decoded and escaped again in the style.
    fn string(&mut self) -> Option<()> {
        self.i += 1;
        self.out.push(b'"');
        loop {
            let start = self.i;
            // Runs of plain ASCII are copied as they are.
            while self
                .src
                .get(self.i)
                .is_some_and(|b| *b >= 0x20 && *b < 0x80 && *b != b'"' && *b != b'\\' && *b != b'/')
            {
                self.i += 1;
            }
            self.out.extend_from_slice(&self.src[start..self.i]);
            let c = match *self.src.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    self.out.push(b'"');
                    return Some(());
                }
                b'\\' => self.escape()?,
                b'/' => {
                    self.i += 1;
                    '/'
                }
                b if b < 0x20 => return None,
                _ => self.utf8()?,
            };
            self.put(c);
        }
    }

    /// One UTF-8 character from the source.
    fn utf8(&mut self) -> Option<char> {
        let len = match self.src[self.i] {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return None,
        };
        let bytes = self.src.get(self.i..self.i + len)?;
        let c = std::str::from_utf8(bytes).ok()?.chars().next()?;
        self.i += len;
        Some(c)
    }

    /// A backslash escape, decoded.
    fn escape(&mut self) -> Option<char> {
        let e = *self.src.get(self.i + 1)?;
        self.i += 2;
        Some(match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                if (0xd800..0xdc00).contains(&hi) {
                    if self.src.get(self.i..self.i + 2)? != b"\\u" {
                        return None;
                    }
                    self.i += 2;
                    let lo = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))?
                } else {
                    char::from_u32(hi)?
                }
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.src.get(self.i..self.i + 4)?).ok()?;
        let v = u32::from_str_radix(digits, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    /// One decoded character, escaped in the style.
    fn put(&mut self, c: char) {
        let short = match c {
            '"' => Some(b'"'),
            '\\' => Some(b'\\'),
            '/' if self.style.escapes == Escapes::Slash => Some(b'/'),
            '\u{8}' => Some(b'b'),
            '\u{c}' => Some(b'f'),
            '\n' => Some(b'n'),
            '\r' => Some(b'r'),
            '\t' => Some(b't'),
            _ => None,
        };
        if let Some(s) = short {
            self.out.extend_from_slice(&[b'\\', s]);
        } else if (c as u32) < 0x20 || (!c.is_ascii() && self.style.escapes == Escapes::Ascii) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                self.out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
            }
        } else {
            let mut buf = [0u8; 4];
            self.out
                .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(layout: Layout, escapes: Escapes) -> Style {
        Style { layout, escapes }
    }

    const DOC: &str = r#" { "id" : "evt_1", "n":[1, -2.50e3 ,{}], "e":[], "u":"caf\u00e9 ☃ 😀 a/b", "t": true , "z":null} "#;

    #[test]
    fn layouts_as_python_and_javascript_write_them() {
        let got = |l| {
            String::from_utf8(reprint(DOC.as_bytes(), style(l, Escapes::Minimal)).unwrap()).unwrap()
        };
        assert_eq!(
            got(Layout::Compact),
            r#"{"id":"evt_1","n":[1,-2.50e3,{}],"e":[],"u":"café ☃ 😀 a/b","t":true,"z":null}"#
        );
        assert_eq!(
            got(Layout::Spaced),
            r#"{"id": "evt_1", "n": [1, -2.50e3, {}], "e": [], "u": "café ☃ 😀 a/b", "t": true, "z": null}"#
        );
        assert_eq!(
            got(Layout::Pretty(2)),
            "{\n  \"id\": \"evt_1\",\n  \"n\": [\n    1,\n    -2.50e3,\n    {}\n  ],\n  \"e\": [],\n  \"u\": \"café ☃ 😀 a/b\",\n  \"t\": true,\n  \"z\": null\n}"
        );
        assert!(got(Layout::Pretty(4)).contains("\n        -2.50e3,\n"));
    }

    #[test]
    fn escapes() {
        let got = |e| {
            String::from_utf8(reprint(DOC.as_bytes(), style(Layout::Compact, e)).unwrap()).unwrap()
        };
        assert!(got(Escapes::Slash).contains(r#"café ☃ 😀 a\/b"#));
        assert!(got(Escapes::Ascii).contains(r#""caf\u00e9 \u2603 \ud83d\ude00 a/b""#));
        let ctl = reprint(
            br#"["\u0001\n\"\\\/"]"#,
            style(Layout::Compact, Escapes::Minimal),
        )
        .unwrap();
        assert_eq!(ctl, br#"["\u0001\n\"\\/"]"#);
    }

    #[test]
    fn not_json_is_none() {
        let s = style(Layout::Compact, Escapes::Minimal);
        for bad in [
            &b""[..],
            b"{",
            b"[1,]",
            b"{\"a\" 1}",
            b"{1:2}",
            b"[1] x",
            b"tru",
            b"\"a\x01\"",
            b"\"\\ud800\"",
            b"\"\xff\"",
            b"[1}",
            b"a=1&b=2",
        ] {
            assert_eq!(reprint(bad, s), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let mut deep = vec![b'['; 1_000_000];
        deep.extend(vec![b']'; 1_000_000]);
        let s = style(Layout::Compact, Escapes::Minimal);
        assert_eq!(reprint(&deep, s).as_deref(), Some(&deep[..]));
    }

    #[test]
    fn round_trip_of_serde_output() {
        let v = serde_json::json!({"b": [1, {"c": "é/"}], "a": {"x": []}});
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        let compact = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            reprint(&pretty, style(Layout::Compact, Escapes::Minimal)).unwrap(),
            compact
        );
        assert_eq!(
            reprint(&compact, style(Layout::Pretty(2), Escapes::Minimal)).unwrap(),
            pretty
        );
    }
}
