//! The output directory of `gbpc compile` without `--target`: written as a whole or not at all.
//!
//! - Everything is compiled first; only a successful compile writes.
//! - The new tree is written to a temporary directory beside the output directory, then swapped
//!   in with one `renameat2(RENAME_EXCHANGE)` (readers see the old tree or the new one, never a
//!   mix), and the old tree removed. Where the file system cannot exchange, the old directory is
//!   renamed aside first (a moment with no directory, never a mixed one). A failure before the
//!   swap leaves the old directory as it was and nothing else behind.
//! - gbpc only replaces what it wrote: the directory must not exist, be empty, or hold the
//!   marker file [`MARKER`] of an earlier run and nothing but the files that marker lists (and
//!   their directories). Anything else there (a file a person added, the policy itself) is a
//!   usage error and nothing is written. Files that appear during the swap are not deleted: the
//!   old tree is then kept aside and named.
//! - A symbolic link to a directory is followed (the directory it names is replaced).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output::{self, Identity, Input};

/// The marker file: its first line names gbpc, then one `file PATH` line per file written.
pub const MARKER: &str = ".gbpc-output";
const MARKER_HEAD: &str = "# gbpc output directory: `gbpc compile` replaces it as a whole.";

/// One file of the output directory: its path relative to the directory (`/`-separated, no
/// `..`), and its bytes.
pub struct OutFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The marker's text for these files.
fn marker_text(files: &[OutFile], about: &str) -> String {
    let mut s = format!(
        "{MARKER_HEAD}\n# {about}\n# Files added here by hand make gbpc refuse to replace the directory.\n"
    );
    for f in files {
        s.push_str(&format!("file {}\n", f.path));
    }
    s
}

/// The files an earlier marker lists, or `None` if the text is not a gbpc marker.
fn marker_files(text: &str) -> Option<BTreeSet<String>> {
    let mut lines = text.lines();
    if lines.next() != Some(MARKER_HEAD) {
        return None;
    }
    Some(
        lines
            .filter_map(|l| l.strip_prefix("file "))
            .map(str::to_string)
            .collect(),
    )
}

/// Every entry under `dir`, relative, `/`-separated, with whether it is a directory (symbolic
/// links are entries, not followed).
fn walk(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = stack.pop() {
        for e in std::fs::read_dir(&path)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push((e.path(), r.clone()));
            }
            out.push((r, ft.is_dir()));
        }
    }
    out.sort();
    Ok(out)
}

/// What is in the directory that gbpc did not write, by an earlier marker (`None`: no marker).
fn strangers(dir: &Path) -> io::Result<Vec<String>> {
    let entries = walk(dir)?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let listed = match std::fs::read_to_string(dir.join(MARKER)) {
        Ok(text) => marker_files(&text),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        // Not readable as text, or a directory: not a marker.
        Err(_) => None,
    };
    let Some(listed) = listed else {
        return Ok(entries.into_iter().map(|(p, _)| p).collect());
    };
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for f in &listed {
        let mut cur = f.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            dirs.insert(parent.to_string());
            cur = parent;
        }
    }
    Ok(entries
        .into_iter()
        .filter(|(p, is_dir)| {
            let known = if *is_dir {
                dirs.contains(p)
            } else {
                p == MARKER || listed.contains(p)
            };
            !known
        })
        .map(|(p, _)| p)
        .collect())
}

fn list(v: &[String]) -> String {
    let shown: Vec<&str> = v.iter().take(5).map(String::as_str).collect();
    let more = if v.len() > 5 {
        format!(" and {} more", v.len() - 5)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// Write `files` as the directory `dir` (see the module documentation). `about` goes into the
/// marker (the source and its hash); `inputs` are the command's input files, which must not be
/// inside `dir`.
pub fn write(dir: &Path, files: &[OutFile], about: &str, inputs: &[Input]) -> Result<(), ExitCode> {
    let shown = dir.display().to_string();
    let fail = |m: String| output::fail(&format!("cannot write {shown}: {m}"));
    // The directory itself, through symbolic links.
    let (target, existing) = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            let real = std::fs::canonicalize(dir).map_err(|e| fail(e.to_string()))?;
            (real, Some(m))
        }
        Ok(_) => return Err(fail("it exists and is not a directory".into())),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if std::fs::symlink_metadata(dir).is_ok() {
                return Err(fail(
                    "it is a symbolic link to nothing; remove it or name another --out-dir".into(),
                ));
            }
            (dir.to_path_buf(), None)
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    if existing.is_some() {
        // An input inside the directory would be destroyed with it.
        for e in walk(&target).map_err(|e| fail(e.to_string()))? {
            let Ok(m) = std::fs::metadata(target.join(&e.0)) else {
                continue;
            };
            if let Some(i) = inputs.iter().find(|i| i.id == Some(Identity::of(&m))) {
                return Err(output::fail(&format!(
                    "the output directory {shown} holds the input {} ({}): nothing was written",
                    i.name, e.0
                )));
            }
        }
        let extra = strangers(&target).map_err(|e| fail(e.to_string()))?;
        if !extra.is_empty() {
            return Err(output::fail(&format!(
                "{shown} holds files gbpc did not write ({}): gbpc replaces its output directory as a whole, so it only replaces an empty one or its own; move them, or name another --out-dir. Nothing was written",
                list(&extra)
            )));
        }
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| fail("it names no directory".into()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.gbpc-"))
        .permissions(std::fs::Permissions::from_mode(0o777))
        .tempdir_in(&parent)
        .map_err(|e| {
            fail(format!(
                "cannot create a directory in {}: {e}",
                parent.display()
            ))
        })?;
    if let Some(m) = &existing {
        let _ = std::fs::set_permissions(
            tmp.path(),
            std::fs::Permissions::from_mode(m.permissions().mode() & 0o7777),
        );
    }
    let mut all: Vec<(String, &[u8])> = files
        .iter()
        .map(|f| (f.path.clone(), f.bytes.as_slice()))
        .collect();
    let marker = marker_text(files, about);
    all.push((MARKER.to_string(), marker.as_bytes()));
    for (rel, bytes) in &all {
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(fail(format!("bad file name {rel}")));
        }
        let path = tmp.path().join(rel);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| fail(e.to_string()))?;
        }
        let mut f = File::create(&path).map_err(|e| fail(e.to_string()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| fail(e.to_string()))?;
    }
    swap(tmp, &target, &parent, &name, existing.is_some()).map_err(fail)
}

/// Put the written tree at `target`: exchange with the old one (or rename into place when there
/// is none), then remove the old tree unless something gbpc did not write appeared in it.
fn swap(
    tmp: tempfile::TempDir,
    target: &Path,
    parent: &Path,
    name: &str,
    existed: bool,
) -> Result<(), String> {
    use nix::fcntl::{RenameFlags, renameat2};
    let dirfd = File::open(parent).map_err(|e| e.to_string())?;
    let tmp_name = tmp
        .path()
        .file_name()
        .map(|n| n.to_os_string())
        .ok_or("no temporary name")?;
    if !existed {
        match renameat2(
            &dirfd,
            tmp_name.as_os_str(),
            &dirfd,
            name,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {
                let _ = tmp.keep();
            }
            Err(nix::errno::Errno::EEXIST) => {
                return Err("it appeared while gbpc was writing; nothing was written".into());
            }
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
                if std::fs::symlink_metadata(target).is_ok() {
                    return Err("it appeared while gbpc was writing; nothing was written".into());
                }
                let path = tmp.keep();
                std::fs::rename(&path, target).map_err(|e| {
                    let _ = std::fs::remove_dir_all(&path);
                    e.to_string()
                })?;
            }
            Err(e) => return Err(e.desc().to_string()),
        }
        let _ = dirfd.sync_all();
        return Ok(());
    }
    // The old tree ends up at `old` (the temporary name), the new one at `target`.
    let old: PathBuf = match renameat2(
        &dirfd,
        tmp_name.as_os_str(),
        &dirfd,
        name,
        RenameFlags::RENAME_EXCHANGE,
    ) {
        Ok(()) => tmp.keep(),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            // No exchange on this file system: the old tree aside, then the new one in.
            let aside = tempfile::Builder::new()
                .prefix(&format!(".{name}.gbpc-old-"))
                .tempdir_in(parent)
                .map_err(|e| e.to_string())?
                .keep();
            std::fs::remove_dir(&aside).map_err(|e| e.to_string())?;
            std::fs::rename(target, &aside).map_err(|e| e.to_string())?;
            let new = tmp.keep();
            if let Err(e) = std::fs::rename(&new, target) {
                let _ = std::fs::rename(&aside, target);
                let _ = std::fs::remove_dir_all(&new);
                return Err(e.to_string());
            }
            aside
        }
        Err(e) => return Err(e.desc().to_string()),
    };
    let _ = dirfd.sync_all();
    match strangers(&old) {
        Ok(extra) if extra.is_empty() => {
            let _ = std::fs::remove_dir_all(&old);
        }
        _ => {
            let _ = output::err(&format!(
                "warning: files appeared in {} while gbpc replaced it; the previous contents are kept at {}\n",
                target.display(),
                old.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip() {
        let files = vec![
            OutFile {
                path: "kustomization.yaml".into(),
                bytes: vec![],
            },
            OutFile {
                path: "k8s/shop.yaml".into(),
                bytes: vec![],
            },
        ];
        let text = marker_text(&files, "compiled from x.gbp");
        let got = marker_files(&text).unwrap();
        assert_eq!(
            got,
            BTreeSet::from([
                "kustomization.yaml".to_string(),
                "k8s/shop.yaml".to_string()
            ])
        );
        assert_eq!(marker_files("file x\n"), None);
    }
}
