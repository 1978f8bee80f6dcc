//! Positions in source text, and the one notion of a line end.
//!
//! **Line ends.** A policy's lines end with LF or CRLF. Every other character that some reader
//! shows as a line break — a lone CR, VT (U+000B), FF (U+000C), NEL (U+0085), LINE SEPARATOR
//! (U+2028) and PARAGRAPH SEPARATOR (U+2029) — is an error ([`stray_line_breaks`]; the parser
//! reports each as `E006`), because editors, terminals and diff tools disagree on whether it
//! breaks the line, and a `#` comment that one tool ends there and another does not would hide
//! a rule. Where the language must decide before reporting (where a comment ends, where the
//! scanners of error recovery and completion see a new line), each of these characters ends the
//! line: nothing after one is ever taken as part of a comment.
//!
//! **Positions.** Line numbers and columns of every output (terminal diagnostics, JSON, the
//! language server, `explain`, the run report) come from [`LineIndex`], which counts lines as
//! the Language Server Protocol does: a line ends at LF, CRLF or a lone CR. In a policy gbpc
//! accepts there is no lone CR, so this is exactly "LF or CRLF"; in a rejected file it puts
//! the error where an editor that follows LSP shows it.

/// Line starts of a text, for offset/position conversions in O(log lines).
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
    /// Per line: only ASCII, so columns in characters and UTF-16 units are byte columns (a
    /// position on a 10 MB line then costs nothing to compute).
    ascii: Vec<bool>,
    len: usize,
}

/// A position: 0-based line, and columns counted three ways from the line start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub col_bytes: usize,
    pub col_chars: usize,
    pub col_utf16: usize,
}

impl Position {
    /// The line as people count it, from 1.
    pub fn line_no(&self) -> usize {
        self.line + 1
    }

    /// The column as people count it, in characters from 1.
    pub fn column_no(&self) -> usize {
        self.col_chars + 1
    }
}

/// `file:line:column` of a byte offset: how every text output names a place in a policy.
pub fn place(file: &str, text: &str, ix: &LineIndex, offset: usize) -> String {
    let pos = ix.position(text, offset);
    format!("{file}:{}:{}", pos.line_no(), pos.column_no())
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        let mut ascii = Vec::new();
        let mut line_ascii = true;
        for (i, &b) in bytes.iter().enumerate() {
            let end = match b {
                b'\n' => true,
                b'\r' => bytes.get(i + 1) != Some(&b'\n'),
                _ => {
                    line_ascii &= b.is_ascii();
                    false
                }
            };
            if end {
                starts.push(i + 1);
                ascii.push(line_ascii);
                line_ascii = true;
            }
        }
        ascii.push(line_ascii);
        LineIndex {
            starts,
            ascii,
            len: text.len(),
        }
    }

    /// The 0-based line of a byte offset (clamped to the text).
    pub fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.len);
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// The position of a byte offset (clamped to the text, and back to a char boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(self.len);
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_of(offset);
        let start = self.starts.get(line).copied().unwrap_or(0);
        // An offset inside a CRLF belongs to the line the CRLF ends: its column is past the
        // line's text, as for an offset on the LF.
        let col_bytes = offset - start;
        if self.ascii.get(line).copied().unwrap_or(false) {
            return Position {
                line,
                col_bytes,
                col_chars: col_bytes,
                col_utf16: col_bytes,
            };
        }
        let prefix = text.get(start..offset).unwrap_or("");
        Position {
            line,
            col_bytes,
            col_chars: prefix.chars().count(),
            col_utf16: prefix.encode_utf16().count(),
        }
    }

    /// The byte range of a 0-based line's text, without its line end (empty past the end).
    pub fn line_range(&self, text: &str, line: usize) -> (usize, usize) {
        let Some(&start) = self.starts.get(line) else {
            return (self.len, self.len);
        };
        let mut end = self.starts.get(line + 1).map_or(self.len, |&e| e);
        let bytes = text.as_bytes();
        if end > start && bytes.get(end - 1) == Some(&b'\n') {
            end -= 1;
        }
        if end > start && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        (start, end)
    }

    /// A 0-based line's text, without its line end.
    pub fn line_text<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let (s, e) = self.line_range(text, line);
        text.get(s..e).unwrap_or("")
    }

    /// The byte offset of a 0-based line and a UTF-16 column (as the language server sends
    /// them), clamped to the line's text.
    pub fn offset_utf16(&self, text: &str, line: usize, col_utf16: usize) -> usize {
        if line >= self.starts.len() {
            return self.len;
        }
        let (start, end) = self.line_range(text, line);
        let mut units = 0;
        for (i, c) in text.get(start..end).unwrap_or("").char_indices() {
            if units >= col_utf16 {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }

    pub fn line_count(&self) -> usize {
        self.starts.len()
    }
}

/// Characters that some reader shows as a line break: LF, CR, VT, FF, NEL, LS, PS.
pub fn is_vertical_space(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// The byte length of the vertical-space character that starts at byte `i`, if one does.
pub fn vertical_space_at(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i..)? {
        [b'\n' | b'\r' | 0x0B | 0x0C, ..] => Some(1),
        [0xC2, 0x85, ..] => Some(2),
        [0xE2, 0x80, 0xA8 | 0xA9, ..] => Some(3),
        _ => None,
    }
}

/// Where a `#` or `//` comment starting at byte `from` ends: at the first vertical-space
/// character after it (its line end, or a character some reader shows as one), or at the end
/// of the text.
pub fn comment_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if vertical_space_at(bytes, i).is_some() {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// Vertical space that is not a line end of the language: every CR not followed by LF, and
/// every VT, FF, NEL, LS and PS. Byte offsets and characters, in order.
pub fn stray_line_breaks(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let bytes = text.as_bytes();
    // Only these lead bytes can start one: a quick scan skips everything else.
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| matches!(b, b'\r' | 0x0B | 0x0C | 0xC2 | 0xE2))
        .filter_map(move |(i, &b)| {
            let c = match b {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => return None,
                b'\r' => '\r',
                0x0B => '\u{0B}',
                0x0C => '\u{0C}',
                _ => match vertical_space_at(bytes, i)? {
                    2 => '\u{85}',
                    _ if bytes.get(i + 2) == Some(&0xA8) => '\u{2028}',
                    _ => '\u{2029}',
                },
            };
            Some((i, c))
        })
}

/// The name of a vertical-space character, for messages.
pub fn vertical_space_name(c: char) -> &'static str {
    match c {
        '\n' => "a line feed (LF)",
        '\r' => "a carriage return (CR) that no line feed follows",
        '\u{0B}' => "a vertical tab (U+000B)",
        '\u{0C}' => "a form feed (U+000C)",
        '\u{85}' => "a next-line character (U+0085)",
        '\u{2028}' => "a line separator (U+2028)",
        '\u{2029}' => "a paragraph separator (U+2029)",
        _ => "a vertical-space character",
    }
}

/// `text` with every stray line break replaced by a line feed (preceded by spaces for the
/// multi-byte ones), so that byte offsets are unchanged: what the parser reads after it has
/// reported them, so that the rest of the file is read line by line as an editor shows it.
/// `None` when there is none (the common case: no copy).
pub fn with_stray_line_breaks_as_lf(text: &str) -> Option<String> {
    let mut it = stray_line_breaks(text).peekable();
    it.peek()?;
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (i, c) in it {
        out.push_str(text.get(at..i).unwrap_or(""));
        let n = c.len_utf8();
        out.extend(std::iter::repeat_n(' ', n - 1));
        out.push('\n');
        at = i + n;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Some(out)
}

/// A count and its noun, plural unless the count is 1: `1 error`, `2 warnings`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// At most `n` characters of `s`, with `…` when something was cut.
pub fn ellipsis(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_three_ways() {
        let t = "ab\n\u{e9}\u{1F600}x\n";
        let ix = LineIndex::new(t);
        let p = ix.position(t, t.find('x').unwrap_or(0));
        assert_eq!(
            (p.line, p.col_bytes, p.col_chars, p.col_utf16),
            (1, 6, 2, 3)
        );
        assert_eq!(ix.offset_utf16(t, 1, 3), t.find('x').unwrap_or(0));
        assert_eq!(ix.offset_utf16(t, 9, 0), t.len());
    }

    #[test]
    fn lines_end_as_the_language_server_counts_them() {
        let t = "a\nb\r\nc\rd\u{2028}e\u{0B}f";
        let ix = LineIndex::new(t);
        assert_eq!(ix.line_count(), 4);
        let lines: Vec<&str> = (0..4).map(|l| ix.line_text(t, l)).collect();
        assert_eq!(lines, ["a", "b", "c", "d\u{2028}e\u{0B}f"]);
        assert_eq!(ix.position(t, t.find('d').unwrap_or(0)).line, 3);
        // A column past the text of a CRLF line stops before the CR.
        assert_eq!(ix.offset_utf16(t, 1, 9), 3);
    }

    #[test]
    fn stray_line_breaks_and_their_replacement() {
        let t = "a\r\nb\rc\u{85}d\u{2028}e\u{2029}f\u{0B}\u{0C}\u{2026}";
        let found: Vec<(usize, char)> = stray_line_breaks(t).collect();
        let chars: Vec<char> = found.iter().map(|x| x.1).collect();
        assert_eq!(
            chars,
            ['\r', '\u{85}', '\u{2028}', '\u{2029}', '\u{0B}', '\u{0C}']
        );
        let lf = with_stray_line_breaks_as_lf(t).unwrap_or_default();
        assert_eq!(lf.len(), t.len());
        assert_eq!(lf, "a\r\nb\nc \nd  \ne  \nf\n\n\u{2026}");
        assert_eq!(with_stray_line_breaks_as_lf("a\r\nb\n"), None);
        assert_eq!(comment_end("# x\u{2028}y", 0), 3);
        assert_eq!(ellipsis("123456789", 4), "1234…");
        assert_eq!(ellipsis("1234", 4), "1234");
    }
}
