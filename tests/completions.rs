//! `gbpc completions SHELL` and `gbpc man`: generated from the command-line definition, without
//! the hidden differential-testing commands; the bash script completes in a real bash.
//! (zsh and fish load their scripts in scripts/e2e-completions.sh, which CI runs with both
//! shells installed.)

use std::process::{Command, Output};

fn gbpc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .args(args)
        .output()
        .expect("run gbpc")
}

fn stdout(args: &[&str]) -> String {
    let out = gbpc(args);
    assert!(
        out.status.success(),
        "gbpc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

const HIDDEN: &[&str] = &["__synth", "__k8s-fixture", "__eval-matrix"];

/// Every visible subcommand, from `gbpc --help`.
fn subcommands() -> Vec<String> {
    let help = stdout(&["--help"]);
    let mut v: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("a command list")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    v.sort();
    assert!(v.len() >= 12, "{v:?}");
    v
}

#[test]
fn every_shell_completes_every_visible_command_and_no_hidden_one() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&["completions", shell]);
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell}: no `{c}`");
        }
        for h in HIDDEN {
            assert!(!script.contains(h), "{shell}: the hidden `{h}` is offered");
        }
        // (fish writes options without their dashes: `-l message-format`.)
        for word in ["message-format", "sarif", "target", "nft", "k8s-deny"] {
            assert!(script.contains(word), "{shell}: no `{word}`");
        }
    }
    let bad = gbpc(&["completions", "tcsh"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// What bash offers after `words` (the last one being completed), with the generated script.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prog = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT={}\n_gbpc gbpc '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        line.len(),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &prog])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn bash_completes_commands_options_and_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("gbpc.bash");
    std::fs::write(&script, stdout(&["completions", "bash"])).expect("write script");

    let c = bash_complete(&script, &["gbpc", "c"]);
    assert_eq!(c, ["check", "compile", "completions"], "gbpc c<TAB>");
    let all = bash_complete(&script, &["gbpc", ""]);
    assert!(all.iter().all(|w| !w.starts_with("__")), "{all:?}");
    assert!(all.contains(&"lsp".to_string()), "{all:?}");
    let formats = bash_complete(&script, &["gbpc", "check", "--message-format", ""]);
    assert_eq!(formats, ["human", "json", "sarif"]);
    let targets = bash_complete(&script, &["gbpc", "compile", "--target", ""]);
    assert_eq!(targets, ["k8s", "nft"]);
    let shells = bash_complete(&script, &["gbpc", "completions", ""]);
    let shells: Vec<&String> = shells.iter().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(shells, ["bash", "fish", "zsh"]);
}

#[test]
fn man_pages_for_gbpc_and_every_visible_subcommand() {
    let page = stdout(&["man"]);
    assert!(
        page.contains(".TH gbpc 1"),
        "{}",
        &page[..page.len().min(400)]
    );
    for c in subcommands() {
        assert!(
            page.contains(&format!("gbpc\\-{}", c.replace('-', "\\-"))),
            "gbpc(1) lists {c}"
        );
    }
    for h in HIDDEN {
        assert!(
            !page.contains(&h.replace('-', "\\-")),
            "gbpc(1) shows the hidden `{h}`"
        );
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("man1");
    stdout(&["man", "--dir", out.to_str().expect("UTF-8 path")]);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("man dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = subcommands()
        .iter()
        .map(|c| format!("gbpc-{c}.1"))
        .collect();
    want.push("gbpc.1".into());
    want.sort();
    assert_eq!(files, want);
    let compile = std::fs::read_to_string(out.join("gbpc-compile.1")).expect("page");
    assert!(
        compile.contains(".TH gbpc-compile 1  \"gbpc 0.1.0\""),
        "{}",
        &compile[..compile.len().min(300)]
    );
    for opt in [
        "\\-\\-target",
        "\\-\\-k8s\\-deny",
        "\\-\\-message\\-format",
        "sarif",
    ] {
        assert!(compile.contains(opt), "gbpc-compile(1) documents {opt}");
    }

    // groff renders the pages without warnings (where it is installed, as on Debian).
    if let Ok(o) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(out.join("gbpc.1"))
        .arg(out.join("gbpc-compile.1"))
        .output()
    {
        assert!(
            o.status.success(),
            "groff: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "groff warns: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn man_dir_that_cannot_be_created_is_an_io_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = gbpc(&["man", "--dir", file.join("sub").to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create"));
}
