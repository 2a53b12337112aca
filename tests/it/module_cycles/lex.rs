//! A small Rust tokenizer for the module-cycle test: identifiers and the punctuation a path or a
//! module item is made of (`::`, `{`, `}`, `;`, `,`, `*`, `<`, `(`, `)`, `#`, `[`, `]`). Comments
//! (line, nested block, doc), string literals (plain, byte, C, raw with any number of `#`) and
//! char literals are skipped so a path inside them is never read as an import; lifetimes are
//! skipped too. Numbers and every other character are dropped: the graph needs none of them.
//! Limits: macro bodies are read as ordinary tokens (a `crate::x` inside `macro_rules!` counts).

/// One token of a Rust source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword (`use`, `mod`, `crate`, `super`, `self`, `pub`, a name); a raw
    /// identifier `r#name` is given without its `r#`.
    Ident(String),
    /// `::`
    PathSep,
    /// Any other single punctuation character the graph needs.
    Punct(char),
}

/// The tokens of `src`, comments and literals skipped.
pub fn tokenize(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            i = skip_block_comment(&c, i);
        } else if ch == '"' {
            i = skip_string(&c, i + 1);
        } else if ch == '\'' {
            i = skip_char_or_lifetime(&c, i);
        } else if ch.is_alphabetic() || ch == '_' {
            if let Some(end) = raw_string_start(&c, i) {
                i = skip_raw_string(&c, end);
                continue;
            }
            if (ch == 'b' || ch == 'c') && next == Some('"') {
                i = skip_string(&c, i + 2);
                continue;
            }
            if ch == 'b' && next == Some('\'') {
                i = skip_char_or_lifetime(&c, i + 1);
                continue;
            }
            let start = if ch == 'r' && next == Some('#') {
                i + 2
            } else {
                i
            };
            let mut j = start;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            out.push(Tok::Ident(c[start..j].iter().collect()));
            i = j.max(i + 1);
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch == ':' && next == Some(':') {
            out.push(Tok::PathSep);
            i += 2;
        } else {
            if "{};,*<()#[]".contains(ch) {
                out.push(Tok::Punct(ch));
            }
            i += 1;
        }
    }
    out
}

/// Past the end of the block comment opening at `i` (nested comments counted).
fn skip_block_comment(c: &[char], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Past the closing quote of a string whose contents start at `i` (escapes honoured).
fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Past a char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`) starting at `i`.
fn skip_char_or_lifetime(c: &[char], i: usize) -> usize {
    if c.get(i + 1) == Some(&'\\') {
        // Past the backslash and the escaped character, then to the closing quote.
        let mut j = i + 3;
        while j < c.len() && c[j] != '\'' {
            j += 1;
        }
        return j + 1;
    }
    if c.get(i + 2) == Some(&'\'') {
        return i + 3;
    }
    // A lifetime: the quote, then its name is read as an ordinary identifier and dropped here.
    let mut j = i + 1;
    while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
        j += 1;
    }
    j
}

/// When a raw string (`r"`, `r#"`, `br#"`, `cr"`) starts at `i`: the index of its first `#` or `"`.
fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    let j = match (c[i], c.get(i + 1)) {
        ('r', _) => i + 1,
        ('b' | 'c', Some('r')) => i + 2,
        _ => return None,
    };
    let mut k = j;
    while c.get(k) == Some(&'#') {
        k += 1;
    }
    (c.get(k) == Some(&'"') && (k > j || c.get(j) == Some(&'"'))).then_some(j)
}

/// Past the end of a raw string whose `#`s (or opening quote) start at `j`.
fn skip_raw_string(c: &[char], j: usize) -> usize {
    let mut hashes = 0;
    let mut k = j;
    while c.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    k += 1; // the opening quote
    while k < c.len() {
        if c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#')) {
            return k + 1 + hashes;
        }
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokenize(src)
            .into_iter()
            .filter_map(|t| match t {
                Tok::Ident(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_strings_and_chars_hide_their_paths() {
        let src = r####"
            // use crate::hid_a;
            /* use crate::hid_b; /* nested crate::hid_c */ still comment */
            let s = "crate::hid_d \" crate::hid_e";
            let r = r#"crate::hid_f " crate::hid_g"#;
            let v = b"crate::hid_h";
            let q = '"'; let e = '\''; let l: &'static str = x;
            use crate::real;
        "####;
        let ids = idents(src);
        for hidden in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            let hidden = format!("hid_{hidden}");
            assert!(!ids.contains(&hidden), "{hidden} leaked: {ids:?}");
        }
        assert!(ids.contains(&"real".to_string()));
        assert!(
            !ids.contains(&"static".to_string()),
            "a lifetime is not a name"
        );
    }

    #[test]
    fn paths_are_identifiers_and_separators() {
        assert_eq!(
            tokenize("use super::{a, b::*};"),
            vec![
                Tok::Ident("use".into()),
                Tok::Ident("super".into()),
                Tok::PathSep,
                Tok::Punct('{'),
                Tok::Ident("a".into()),
                Tok::Punct(','),
                Tok::Ident("b".into()),
                Tok::PathSep,
                Tok::Punct('*'),
                Tok::Punct('}'),
                Tok::Punct(';'),
            ]
        );
    }
}
