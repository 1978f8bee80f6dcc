//! `gbpc fmt`: rewrite policies in canonical form (`gbpc::fmt`), or with `--check` say which
//! would change and how, without writing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Style, output};

#[derive(clap::Args)]
pub struct FmtArgs {
    /// Policy files to format in place, or `-` to read standard input and write the result to
    /// standard output.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Change nothing; exit 1 if a file is not formatted, printing its name and a diff.
    #[arg(long)]
    check: bool,
}

/// What happened to one file; the worst decides the exit code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Fine,
    /// Syntax errors, or `--check` found a difference.
    Failed,
    /// Could not read or write.
    Io,
}

pub fn run(args: FmtArgs, color: bool, json: bool) -> output::Outcome {
    let style = Style {
        color,
        json,
        sarif: false,
        json_stdout: false,
    };
    let mut worst = Outcome::Fine;
    for file in &args.files {
        // A failed write to standard output or error stops here (exit 2); a file that cannot
        // be read or written is reported and the others are still formatted.
        worst = worst.max(one(file, args.check, style)?);
    }
    Ok(match worst {
        Outcome::Fine => ExitCode::SUCCESS,
        Outcome::Failed => ExitCode::from(1),
        Outcome::Io => ExitCode::from(2),
    })
}

fn one(file: &Path, check: bool, style: Style) -> Result<Outcome, ExitCode> {
    let stdin = file.as_os_str() == "-";
    // Rewriting in place needs a regular file; `--check` only reads.
    let Ok(source) = super::read_file(file, !check && !stdin) else {
        return Ok(Outcome::Io);
    };
    let name = source.input.name.clone();
    let bytes = source.bytes;
    let src = match gbpc::syntax::decode(&bytes) {
        Ok(s) => s,
        Err(d) => {
            let lossy = String::from_utf8_lossy(&bytes).into_owned();
            super::report(&[d], &name, &lossy, style)?;
            return Ok(Outcome::Failed);
        }
    };
    let formatted = match gbpc::fmt::format(src) {
        Ok(f) => f,
        Err(errors) => {
            super::report_with_summary(&errors, errors.len(), &name, src, style)?;
            return Ok(Outcome::Failed);
        }
    };
    if check {
        if formatted == src {
            return Ok(Outcome::Fine);
        }
        output::out(&diff(&name, src, &formatted))?;
        return Ok(Outcome::Failed);
    }
    if stdin {
        output::out(&formatted)?;
        return Ok(Outcome::Fine);
    }
    if formatted == src {
        return Ok(Outcome::Fine);
    }
    // Through a symbolic link to the file it names, and only the file that was read.
    let Some(id) = source.input.id else {
        return Ok(Outcome::Io);
    };
    Ok(match output::rewrite(file, formatted.as_bytes(), id) {
        Ok(()) => Outcome::Fine,
        Err(_) => Outcome::Io,
    })
}

/// Lines of context around each change, and how many changes are shown.
const CONTEXT: usize = 3;
const MAX_HUNKS: usize = 5;
/// At most this many diff lines are printed per file.
const MAX_LINES: usize = 200;
/// Beyond this many differing lines (after the common head and tail), the middle is shown as
/// one replacement instead of a line-by-line diff (which costs their product).
const MAX_DIFF_LINES: usize = 4000;

/// A unified diff of the first differences between the file and its formatted text.
fn diff(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = line_ops(&a, &b);
    let mut out = format!("Diff in {name}:\n--- {name}\n+++ {name} (formatted)\n");
    // Indices into `ops` of the changes, grouped into hunks with context.
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        let lo = i.saturating_sub(CONTEXT);
        let hi = (i + CONTEXT + 1).min(ops.len());
        match hunks.last_mut() {
            Some(h) if lo <= h.1 => h.1 = hi,
            _ => hunks.push((lo, hi)),
        }
    }
    let mut printed = 0;
    for (k, &(lo, hi)) in hunks.iter().enumerate() {
        if k == MAX_HUNKS {
            out.push_str(&format!(
                "... and {} more changes\n",
                hunks.len() - MAX_HUNKS
            ));
            break;
        }
        let Some(first) = ops.get(lo) else { break };
        let (a0, b0) = first.positions();
        let slice = ops.get(lo..hi).unwrap_or(&[]);
        let alen = slice.iter().filter(|o| !matches!(o, Op::Add(..))).count();
        let blen = slice.iter().filter(|o| !matches!(o, Op::Del(..))).count();
        out.push_str(&format!(
            "@@ -{},{alen} +{},{blen} @@\n",
            a0 + usize::from(alen > 0),
            b0 + usize::from(blen > 0)
        ));
        for op in slice {
            if printed == MAX_LINES {
                out.push_str("... (the diff is cut here)\n");
                return out;
            }
            printed += 1;
            let (mark, line) = match op {
                Op::Same(i, _) => (' ', a.get(*i)),
                Op::Del(i, _) => ('-', a.get(*i)),
                Op::Add(_, j) => ('+', b.get(*j)),
            };
            let line = line.copied().unwrap_or("");
            out.push(mark);
            out.push_str(line.strip_suffix('\n').unwrap_or(line));
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file");
            }
            out.push('\n');
        }
    }
    out
}

/// One line of a diff, with its index in the old text and in the new text (for an added line,
/// the old index is where it goes, and the other way round).
#[derive(Clone, Copy)]
enum Op {
    Same(usize, usize),
    Del(usize, usize),
    Add(usize, usize),
}

impl Op {
    fn positions(self) -> (usize, usize) {
        match self {
            Op::Same(i, j) | Op::Del(i, j) | Op::Add(i, j) => (i, j),
        }
    }
}

/// Line operations turning `a` into `b`: common head and tail, and a longest common
/// subsequence of the middle when it is small enough.
fn line_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut ops: Vec<Op> = (0..head).map(|i| Op::Same(i, i)).collect();
    if am.len() + bm.len() > MAX_DIFF_LINES {
        ops.extend((0..am.len()).map(|i| Op::Del(head + i, head)));
        ops.extend((0..bm.len()).map(|j| Op::Add(head + am.len(), head + j)));
    } else {
        // lcs[i][j]: length of the longest common subsequence of am[i..] and bm[j..].
        let w = bm.len() + 1;
        let mut lcs = vec![0u32; (am.len() + 1) * w];
        for i in (0..am.len()).rev() {
            for j in (0..bm.len()).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < am.len() || j < bm.len() {
            if i < am.len() && j < bm.len() && am[i] == bm[j] {
                ops.push(Op::Same(head + i, head + j));
                i += 1;
                j += 1;
            } else if i < am.len() && (j == bm.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])
            {
                ops.push(Op::Del(head + i, head + j));
                i += 1;
            } else {
                ops.push(Op::Add(head + i, head + j));
                j += 1;
            }
        }
    }
    let (a_tail, b_tail) = (a.len() - tail, b.len() - tail);
    ops.extend((0..tail).map(|k| Op::Same(a_tail + k, b_tail + k)));
    ops
}
