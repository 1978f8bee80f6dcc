//! `gbpc lsp`: the language server (`gbpc::lsp`) over standard input and output.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct LspArgs {
    /// Talk over standard input and output (the only transport; accepted because editors'
    /// generic clients often pass it).
    #[arg(long)]
    stdio: bool,
}

/// Serve until the client says `exit`: status 0 after `shutdown`, 1 otherwise (as the protocol
/// asks), 2 if the connection broke (the output closed, or the input lost its message framing).
pub fn run(args: LspArgs) -> ExitCode {
    let _ = args.stdio;
    let (conn, io) = match gbpc::lsp::Connection::stdio() {
        Ok(c) => c,
        Err(e) => return super::output::fail(&format!("gbpc lsp: cannot start: {e}")),
    };
    // `serve` drops the connection when it returns, which lets the writer thread finish
    // sending and stop.
    let outcome = gbpc::lsp::serve(conn);
    let written = io.join();
    match (outcome, written) {
        (Ok(gbpc::lsp::Exit::Clean), Ok(())) => ExitCode::SUCCESS,
        (Ok(gbpc::lsp::Exit::WithoutShutdown), Ok(())) => ExitCode::from(1),
        // The client went away (a closed pipe): exit 2 quietly, as every command does.
        (_, Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(super::output::USAGE)
        }
        (Ok(_), Err(e)) => super::output::fail(&format!("gbpc lsp: cannot write: {e}")),
        (Err(e), _) => super::output::fail(&format!("gbpc lsp: {e}")),
    }
}
