//! How a name from the input is shown to a person: one line of printable text, whatever
//! bytes the name holds.
//!
//! Names in layers are bytes. Shown raw, a newline splits one path over two lines, an escape
//! sequence recolours or rewrites the terminal, and bytes that are not UTF-8 turn into U+FFFD
//! so that two names look alike. [`quote`] writes them the way GNU tar does (its `escape`
//! quoting style, as `ls -b` without the space): printable UTF-8 as it is, a backslash doubled,
//! `\n`, `\t` and the other C escapes, and every other control character or byte that is not
//! UTF-8 as a three-digit octal escape (`\033`, `\377`). The mapping is one-to-one, so two
//! names never show alike. Every message, listing and progress line shows names through it.

use std::borrow::Cow;
use std::fmt::Write;

/// `name` as one line of printable text, escaped as GNU tar escapes it.
pub fn quote(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    quote_into(&mut out, name);
    out
}

/// A path of this system (a target, an archive, `$TMPDIR`) quoted like a name from the
/// input: it may hold the same bytes.
pub fn quote_path(path: &std::path::Path) -> String {
    quote(path.as_os_str().as_encoded_bytes())
}

/// Appends `name`, escaped as [`quote`] does, to `out`.
pub fn quote_into(out: &mut String, name: &[u8]) {
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if is_unprintable(c) => escape_char(out, c),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            octal(out, b);
        }
    }
}

/// A message made printable: control characters escaped as [`quote`] escapes them, the rest
/// (backslashes included) left alone, so that text already quoted passes unchanged. The last
/// guard before a line reaches a terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unprintable) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unprintable(c) {
            escape_char(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters a terminal acts on or that break a line: the C0 and C1 controls, DEL, the
/// Unicode line and paragraph separators, and the marks that reorder text (bidi controls).
fn is_unprintable(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\x0b' => out.push_str("\\v"),
        '\x0c' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        c => {
            let mut buf = [0u8; 4];
            for &b in c.encode_utf8(&mut buf).as_bytes() {
                octal(out, b);
            }
        }
    }
}

fn octal(out: &mut String, b: u8) {
    let _ = write!(out, "\\{b:03o}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_unchanged() {
        assert_eq!(quote(b"usr/bin/perl"), "usr/bin/perl");
        assert_eq!(
            quote("día/ファイル with space".as_bytes()),
            "día/ファイル with space"
        );
    }

    #[test]
    fn controls_and_bad_bytes_are_escaped_as_gnu_tar_does() {
        assert_eq!(quote(b"a\nb"), "a\\nb");
        assert_eq!(quote(b"\x1b[31mred"), "\\033[31mred");
        assert_eq!(quote(b"tab\there\r"), "tab\\there\\r");
        assert_eq!(quote(b"back\\slash"), "back\\\\slash");
        assert_eq!(quote(b"\xff\xfe"), "\\377\\376");
        assert_eq!(quote(b"del\x7f"), "del\\177");
        // C1 control U+009B (CSI) and a right-to-left override.
        assert_eq!(quote("x\u{9b}y".as_bytes()), "x\\302\\233y");
        assert_eq!(quote("\u{202e}txt".as_bytes()), "\\342\\200\\256txt");
    }

    #[test]
    fn quoting_is_one_to_one() {
        // The lossy way shows both as "a\u{FFFD}"; quoted they differ.
        assert_ne!(quote(b"a\xff"), quote(b"a\xfe"));
        // A name that spells an escape is not the name that holds the byte.
        assert_ne!(quote(b"a\\n"), quote(b"a\n"));
    }

    #[test]
    fn printable_leaves_quoted_text_alone() {
        let q = quote(b"we\\ird\n");
        assert_eq!(printable(&q), q);
        assert_eq!(printable("bad\x1b[2Jline\n"), "bad\\033[2Jline\\n");
    }
}
