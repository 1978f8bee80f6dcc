//! `gbpc completions SHELL` and `gbpc man [--dir DIR]`: shell completion scripts and man pages,
//! generated from the command-line definition itself (clap_complete, clap_mangen), so they
//! cannot drift from the real options. Hidden subcommands (`__synth` and friends) appear in
//! neither.

use std::path::PathBuf;
use std::process::ExitCode;

use super::output::{self, Outcome};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write gbpc.1 and one page per subcommand (gbpc-check.1, ...) into this directory
    /// instead of printing gbpc.1 to standard output.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Print the completion script of `shell` for the command `cmd`.
pub fn completions(args: CompletionsArgs, cmd: clap::Command) -> Outcome {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut visible(&cmd), "gbpc", &mut out);
    emit(&out)
}

/// `cmd` without its hidden subcommands (clap_complete would offer them): the same name,
/// version, about, arguments and visible subcommands.
fn visible(full: &clap::Command) -> clap::Command {
    let mut cmd = clap::Command::new("gbpc").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    for arg in full.get_arguments() {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}

/// The man pages of `cmd`: gbpc(1), and gbpc-NAME(1) for every visible subcommand.
pub fn man(args: ManArgs, cmd: clap::Command) -> Outcome {
    // Built, subcommands carry their display names (`gbpc-check`), which name their pages.
    let mut cmd = cmd.name("gbpc").disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = args.dir else {
        let page = render(&page(cmd))
            .map_err(|e| output::fail(&format!("cannot render the man page: {e}")))?;
        return emit(&page);
    };
    let mut pages = vec![page(cmd.clone())];
    pages.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| page(s.clone())),
    );
    // Render every page before writing any, so that a failure leaves nothing behind.
    let mut rendered = Vec::new();
    for page in &pages {
        let text = render(page)
            .map_err(|e| output::fail(&format!("cannot render {}: {e}", page.get_filename())))?;
        rendered.push((page.get_filename(), text));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| output::fail(&format!("cannot create {}: {e}", dir.display())))?;
    // Each page as `-o` writes: a regular file replaced atomically (readers see the old page or
    // the new one), a link written through, a device or FIFO written directly.
    for (file, text) in rendered {
        let path = dir.join(file);
        let dest = output::destination(&path, &[])?;
        output::write(&dest, &text, &path)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A page, its footer naming gbpc and its version (a subcommand's own name otherwise).
fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(concat!("gbpc ", env!("CARGO_PKG_VERSION")))
}

fn render(page: &clap_mangen::Man) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    page.render(&mut out)?;
    Ok(out)
}

fn emit(bytes: &[u8]) -> Outcome {
    output::out_bytes(bytes)?;
    Ok(ExitCode::SUCCESS)
}
