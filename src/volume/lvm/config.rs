//! The LVM2 metadata text format: nested `name { ... }` sections of `key = value` settings, where
//! a value is a string, an integer or a `[ ... ]` list of them. Parsing is bounded in depth and
//! works on at most the metadata area's bytes.

use std::collections::BTreeMap;

/// Deepest section nesting accepted (real metadata uses 5).
const MAX_DEPTH: usize = 32;

/// A setting's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `"text"`.
    Str(String),
    /// `123`.
    Int(i64),
    /// `[ "a", 1 ]`.
    List(Vec<Value>),
}

/// A section: its settings and subsections, by name, in name order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    /// `key = value` settings.
    pub values: BTreeMap<String, Value>,
    /// `name { ... }` subsections.
    pub sections: BTreeMap<String, Section>,
}

impl Section {
    /// Integer setting.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.values.get(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// String setting.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.values.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// List setting.
    pub fn list(&self, key: &str) -> Option<&[Value]> {
        match self.values.get(key) {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Int(i64),
    Eq,
    Open,
    Close,
    LBracket,
    RBracket,
    Comma,
}

fn tokenize(text: &[u8]) -> Result<Vec<Tok>, String> {
    let mut out = vec![];
    let mut i = 0usize;
    while let Some(&c) = text.get(i) {
        let single = match c {
            b'=' => Some(Tok::Eq),
            b'{' => Some(Tok::Open),
            b'}' => Some(Tok::Close),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = single {
            out.push(t);
            i += 1;
            continue;
        }
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0 => i += 1,
            b'#' => {
                while text.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                let mut s = vec![];
                loop {
                    match text.get(i) {
                        None => return Err("unterminated string".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            if let Some(&n) = text.get(i + 1) {
                                s.push(n);
                            }
                            i += 2;
                        }
                        Some(&b) => {
                            s.push(b);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(String::from_utf8_lossy(&s).into_owned()));
            }
            _ => {
                let start = i;
                while text.get(i).is_some_and(|&c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'+')
                }) {
                    i += 1;
                }
                if i == start {
                    return Err(format!("unexpected byte {c:#04x} at offset {i}"));
                }
                let w = String::from_utf8_lossy(&text[start..i]).into_owned();
                match w.parse::<i64>() {
                    Ok(n) => out.push(Tok::Int(n)),
                    Err(_) => out.push(Tok::Word(w)),
                }
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: std::vec::IntoIter<Tok>,
    peeked: Option<Tok>,
}

impl Parser {
    fn next(&mut self) -> Option<Tok> {
        self.peeked.take().or_else(|| self.toks.next())
    }
    fn peek(&mut self) -> Option<&Tok> {
        if self.peeked.is_none() {
            self.peeked = self.toks.next();
        }
        self.peeked.as_ref()
    }

    fn section(&mut self, depth: usize, top: bool) -> Result<Section, String> {
        if depth > MAX_DEPTH {
            return Err(format!("sections nested deeper than {MAX_DEPTH}"));
        }
        let mut sec = Section::default();
        loop {
            let name = match self.next() {
                None if top => return Ok(sec),
                None => return Err("missing `}`".into()),
                Some(Tok::Close) if !top => return Ok(sec),
                Some(Tok::Word(w)) => w,
                Some(Tok::Int(n)) => n.to_string(),
                Some(t) => return Err(format!("expected a name, found {t:?}")),
            };
            match self.next() {
                Some(Tok::Eq) => {
                    let v = self.value()?;
                    sec.values.insert(name, v);
                }
                Some(Tok::Open) => {
                    let s = self.section(depth + 1, false)?;
                    sec.sections.insert(name, s);
                }
                t => return Err(format!("expected `=` or `{{` after `{name}`, found {t:?}")),
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::Str(s)),
            Some(Tok::Int(n)) => Ok(Value::Int(n)),
            Some(Tok::Word(w)) => Ok(Value::Str(w)),
            Some(Tok::LBracket) => {
                let mut items = vec![];
                loop {
                    match self.peek() {
                        Some(Tok::RBracket) => {
                            self.next();
                            return Ok(Value::List(items));
                        }
                        Some(Tok::Comma) => {
                            self.next();
                        }
                        None => return Err("missing `]`".into()),
                        _ => match self.next() {
                            Some(Tok::Str(s)) => items.push(Value::Str(s)),
                            Some(Tok::Int(n)) => items.push(Value::Int(n)),
                            Some(Tok::Word(w)) => items.push(Value::Str(w)),
                            t => return Err(format!("unexpected {t:?} in a list")),
                        },
                    }
                }
            }
            t => Err(format!("expected a value, found {t:?}")),
        }
    }
}

/// Parse metadata text into its top-level section.
pub fn parse(text: &[u8]) -> Result<Section, String> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks: toks.into_iter(),
        peeked: None,
    };
    p.section(0, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"vg0 {
id = "abc-def"
seqno = 3
format = "lvm2" # informational
status = ["RESIZEABLE", "READ", "WRITE"]
extent_size = 8192
physical_volumes {
pv0 {
id = "Q1"
pe_start = 2048
pe_count = 10
}
}
logical_volumes {
root {
segment_count = 1
segment1 {
start_extent = 0
extent_count = 4
type = "striped"
stripe_count = 1 # linear
stripes = [
"pv0", 0
]
}
}
}
}
contents = "Text Format Volume Group"
version = 1
"#;

    #[test]
    fn parses_real_shaped_metadata() {
        let top = parse(SAMPLE.as_bytes()).unwrap();
        let vg = &top.sections["vg0"];
        assert_eq!(vg.int("extent_size"), Some(8192));
        assert_eq!(vg.str("format"), Some("lvm2"));
        let seg = &vg.sections["logical_volumes"].sections["root"].sections["segment1"];
        assert_eq!(
            seg.list("stripes").unwrap(),
            &[Value::Str("pv0".into()), Value::Int(0)]
        );
        assert_eq!(top.int("version"), Some(1));
    }

    #[test]
    fn rejects_broken_text_without_panicking() {
        for bad in [
            "a {",
            "a = ",
            "a = [1, 2",
            "a = \"x",
            "{",
            "a b",
            "}",
            "a = ]",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let deep = "a {".repeat(100);
        assert!(parse(deep.as_bytes()).unwrap_err().contains("deeper"));
    }
}
