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
/// asks), 2 if the connection broke.
pub fn run(args: LspArgs) -> ExitCode {
    let _ = args.stdio;
    let (conn, io) = lsp_server::Connection::stdio();
    let outcome = gbpc::lsp::serve(&conn);
    // Closing our end lets the writer thread finish sending and stop.
    drop(conn);
    let io_result = io.join();
    match (outcome, io_result) {
        (Ok(gbpc::lsp::Exit::Clean), Ok(())) => ExitCode::SUCCESS,
        (Ok(gbpc::lsp::Exit::WithoutShutdown), Ok(())) => ExitCode::from(1),
        // The client went away (a closed pipe): exit 2 quietly, as every command does.
        (Ok(_), Err(e)) | (Err(_), Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(super::output::USAGE)
        }
        (Ok(_), Err(e)) | (Err(_), Err(e)) => super::output::fail(&format!("gbpc lsp: {e}")),
        (Err(e), Ok(())) => super::output::fail(&format!("gbpc lsp: {e}")),
    }
}
