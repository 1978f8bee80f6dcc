//! Everything the binary writes goes through here.
//!
//! - Standard output and standard error are written with fallible writes, never `println!`: a
//!   full stream, or a pipe whose reader went away, stops the command with exit 2 and a message
//!   on standard error (none for a broken pipe: the reader left on purpose, as `| head` does).
//! - Files (`compile -o`, `fmt` rewriting in place) are never destroyed or misdirected: a regular
//!   file, or a path that does not exist yet, is written to a temporary file beside it and renamed
//!   over it (readers see the old file or the whole new one); a symbolic link is resolved and the
//!   file it names written; a device node, FIFO or socket is written directly, in place (so
//!   `-o /dev/null` or `-o /dev/stdout` behave as users expect), never replaced; an output that is
//!   one of the command's input files (same device and inode: the same path, `./x.gbp`, a hard
//!   or symbolic link) is a usage error, and nothing is written.
//!
//! Every failure here is exit 2, with its message already written: callers propagate the
//! `ExitCode` of the `Err` with `?`.

use std::fs::{File, Metadata};
use std::io::{self, ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The exit status of a usage or I/O error.
pub const USAGE: u8 = 2;

/// A command's result: `Ok` its exit status; `Err` an early stop (usage, I/O, a policy with
/// errors) whose message is already written.
pub type Outcome = Result<ExitCode, ExitCode>;

/// The exit status of an outcome.
pub fn status(o: Outcome) -> ExitCode {
    o.unwrap_or_else(|c| c)
}

// ---- the standard streams ------------------------------------------------------------------

// A standard stream closed when gbpc starts (`>&-`) is not a case here: Rust's runtime opens
// /dev/null on descriptors 0-2 before `main`, so no file gbpc opens can take their place, and
// such a stream reads as empty and swallows what is written, as /dev/null does.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

fn write_stream(stream: Stream, bytes: &[u8]) -> io::Result<()> {
    match stream {
        Stream::Out => {
            let mut o = io::stdout().lock();
            o.write_all(bytes)?;
            o.flush()
        }
        Stream::Err => {
            let mut e = io::stderr().lock();
            e.write_all(bytes)?;
            e.flush()
        }
    }
}

/// Write to standard output. On failure the message goes to standard error (none for a broken
/// pipe) and the command stops with exit 2.
pub fn out(text: &str) -> Result<(), ExitCode> {
    out_bytes(text.as_bytes())
}

pub fn out_bytes(bytes: &[u8]) -> Result<(), ExitCode> {
    write_stream(Stream::Out, bytes).map_err(stdout_failed)
}

/// A write to standard output failed (for commands that stream it): the message on standard
/// error (none for a broken pipe) and exit 2.
pub fn stdout_failed(e: io::Error) -> ExitCode {
    if e.kind() != ErrorKind::BrokenPipe {
        let _ = write_stream(
            Stream::Err,
            format!("error: cannot write to standard output: {e}\n").as_bytes(),
        );
    }
    ExitCode::from(USAGE)
}

/// Write to standard error; if even that fails, the command stops with exit 2 (silently: there
/// is nowhere left to say it).
pub fn err(text: &str) -> Result<(), ExitCode> {
    write_stream(Stream::Err, text.as_bytes()).map_err(|_| ExitCode::from(USAGE))
}

/// A usage or I/O error: the message (one line, `error: ` prepended) and exit 2.
pub fn fail(message: &str) -> ExitCode {
    let _ = err(&format!("error: {message}\n"));
    ExitCode::from(USAGE)
}

// ---- files -----------------------------------------------------------------------------------

/// What identifies a file whatever the path to it: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    pub fn of(m: &Metadata) -> Self {
        Identity {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// A file the command read, for the identity check of outputs.
#[derive(Clone, Debug)]
pub struct Input {
    /// As the user named it (`<stdin>` for `-`).
    pub name: String,
    /// Set only for a regular file (standard input redirected from one included): writing to a
    /// device or FIFO that was also read destroys nothing.
    pub id: Option<Identity>,
}

/// Where an output goes, decided before anything is written.
#[derive(Debug)]
pub enum Dest {
    /// Standard output: no `-o`, `-o -`, or `-o` naming the file standard output already is
    /// (`/dev/stdout`, or the file the shell redirected it to).
    Stdout,
    /// Standard error (`-o /dev/stderr`).
    Stderr,
    /// A device node, FIFO or socket: opened and written in place, never replaced.
    Direct(PathBuf),
    /// A regular file (`existing`) or a path with nothing there yet (symbolic links resolved):
    /// a temporary file beside it, renamed over it.
    Replace {
        path: PathBuf,
        existing: Option<Metadata>,
    },
}

/// The identity of a standard stream.
fn stream_identity(stream: Stream) -> Option<Identity> {
    let fd = match stream {
        Stream::Out => io::stdout().as_fd().try_clone_to_owned(),
        Stream::Err => io::stderr().as_fd().try_clone_to_owned(),
    };
    let m = File::from(fd.ok()?).metadata().ok()?;
    Some(Identity::of(&m))
}

/// The identity of standard input if it is a regular file (`gbpc compile - < x.gbp`).
pub fn stdin_identity() -> Option<Identity> {
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let m = File::from(fd).metadata().ok()?;
    m.is_file().then(|| Identity::of(&m))
}

/// Follow the symbolic links of a path that names nothing yet (a dangling link): the path the
/// last link names, where the new file is created.
fn resolve_dangling(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p)?;
                p = if t.is_absolute() {
                    t
                } else {
                    p.parent().unwrap_or(Path::new("")).join(t)
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Decide where the output named `path` goes: `-` is standard output. A usage error (exit 2,
/// message written) when it is a directory or one of `inputs`.
pub fn destination(path: &Path, inputs: &[Input]) -> Result<Dest, ExitCode> {
    if path.as_os_str() == "-" {
        return Ok(Dest::Stdout);
    }
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) => {
            let id = Identity::of(&m);
            if let Some(i) = inputs.iter().find(|i| i.id == Some(id)) {
                return Err(fail(&format!(
                    "the output {shown} is the input {} (the same file): nothing was written",
                    i.name
                )));
            }
            if m.is_dir() {
                return Err(fail(&format!("cannot write {shown}: it is a directory")));
            }
            if stream_identity(Stream::Out) == Some(id) {
                return Ok(Dest::Stdout);
            }
            if stream_identity(Stream::Err) == Some(id) {
                return Ok(Dest::Stderr);
            }
            if !m.is_file() {
                return Ok(Dest::Direct(path.to_path_buf()));
            }
            // Through every symbolic link, to the file itself; it must still be the one seen.
            let real = std::fs::canonicalize(path)
                .map_err(|e| fail(&format!("cannot write {shown}: {e}")))?;
            match std::fs::metadata(&real) {
                Ok(r) if Identity::of(&r) == id => Ok(Dest::Replace {
                    path: real,
                    existing: Some(m),
                }),
                _ => Err(fail(&format!(
                    "cannot write {shown}: the file it names cannot be found by a path"
                ))),
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let target =
                resolve_dangling(path).map_err(|e| fail(&format!("cannot write {shown}: {e}")))?;
            Ok(Dest::Replace {
                path: target,
                existing: None,
            })
        }
        Err(e) => Err(fail(&format!("cannot write {shown}: {e}"))),
    }
}

/// Write `data` to a destination; `shown` names it in messages. On error nothing is left behind
/// for `Replace` (the old file, if any, is untouched); `Direct` may have received part of it.
pub fn write(dest: &Dest, data: &[u8], shown: &Path) -> Result<(), ExitCode> {
    let cannot = |e: io::Error| fail(&format!("cannot write {}: {e}", shown.display()));
    match dest {
        Dest::Stdout => out_bytes(data),
        Dest::Stderr => write_stream(Stream::Err, data).map_err(|_| ExitCode::from(USAGE)),
        Dest::Direct(path) => {
            // No create, no truncate: a device or FIFO is written as it is.
            let mut f = File::options().write(true).open(path).map_err(cannot)?;
            f.write_all(data).and_then(|_| f.flush()).map_err(cannot)
        }
        Dest::Replace { path, existing } => replace(path, existing.as_ref(), data).map_err(cannot),
    }
}

/// Rewrite a file in place (`gbpc fmt`): only a regular file (through symbolic links), and only
/// the one that was read (`read`, its identity when it was read): if the path now names another
/// file, nothing is written.
pub fn rewrite(path: &Path, data: &[u8], read: Identity) -> Result<(), ExitCode> {
    let shown = path.display();
    let real =
        std::fs::canonicalize(path).map_err(|e| fail(&format!("cannot write {shown}: {e}")))?;
    let m = std::fs::metadata(&real).map_err(|e| fail(&format!("cannot write {shown}: {e}")))?;
    if !m.is_file() || Identity::of(&m) != read {
        return Err(fail(&format!(
            "cannot write {shown}: it changed while it was being formatted; nothing was written"
        )));
    }
    replace(&real, Some(&m), data).map_err(|e| fail(&format!("cannot write {shown}: {e}")))
}

/// tempfile's errors end with the temporary file's path (`... at path "/d/.gbpc-x.tmp"`), a file
/// the user never saw: say which directory could not take it instead.
fn without_temp_path(e: io::Error, dir: &Path) -> io::Error {
    let text = e.to_string();
    let cause = text
        .rsplit_once(" at path ")
        .map_or(text.as_str(), |(c, _)| c);
    io::Error::new(
        e.kind(),
        format!("cannot create a file in {}: {cause}", dir.display()),
    )
}

/// A temporary file beside `path` with the new text, then renamed over it. A file replaced
/// keeps its permissions (and its owner, where gbpc may set it); a new one gets the mode a file
/// created by `>` would (0666 less the umask).
fn replace(path: &Path, existing: Option<&Metadata>, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gbpc-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| without_temp_path(e, dir))?;
    if let Some(m) = existing {
        // Owner first: changing it clears set-id bits, which the mode then restores. Only root
        // may give a file away; anyone else keeps their own ownership.
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid()));
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    // The last look before the rename: whatever is at the path now must still be a regular
    // file (or, for a new file, nothing), never a device or FIFO that appeared meanwhile.
    let now = match std::fs::symlink_metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    match (existing, now) {
        (Some(_), Some(n)) if n.is_file() => tmp.persist(path).map_err(|e| e.error)?,
        // Never clobber what appeared since the decision.
        (None, None) => tmp.persist_noclobber(path).map_err(|e| e.error)?,
        _ => {
            return Err(io::Error::other(
                "it changed while gbpc was writing; nothing was written",
            ));
        }
    };
    // Make the rename itself durable (best effort: not every file system syncs directories).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
