//! Positions in source text: byte offsets to 1-based lines and columns (in Unicode scalar
//! values, and in UTF-16 code units for the language server), and back.

/// Line starts of a text, for offset/position conversions in O(log lines).
#[derive(Clone, Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
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

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// The position of a byte offset (clamped to the text, and back to a char boundary).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(self.len);
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let prefix = text.get(start..offset).unwrap_or("");
        Position {
            line,
            col_bytes: offset - start,
            col_chars: prefix.chars().count(),
            col_utf16: prefix.encode_utf16().count(),
        }
    }

    /// The byte offset of a 0-based line and a UTF-16 column (as the language server sends
    /// them), clamped to the line.
    pub fn offset_utf16(&self, text: &str, line: usize, col_utf16: usize) -> usize {
        let Some(&start) = self.starts.get(line) else {
            return self.len;
        };
        let end = self.starts.get(line + 1).map_or(self.len, |&e| e);
        let mut units = 0;
        for (i, c) in text.get(start..end).unwrap_or("").char_indices() {
            if units >= col_utf16 || c == '\n' {
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
}
