//! The language server: editors get gbpc's diagnostics live (from the same checker and the same
//! diagnostic model as `gbpc check`), hover, go to definition, references, rename, the outline,
//! completion, formatting and quick fixes.
//!
//! One loop answers the client's messages in turn; documents are checked on a thread of their
//! own ([`worker`]), so that a request never waits for a check of a version the user has
//! already typed over:
//!
//! - a change is applied to the document's text at once and handed to the checking thread,
//!   which analyses only the latest version of each document (a burst of keystrokes on a 3 MB
//!   policy costs one or two checks, not one per keystroke) and abandons a check overtaken by
//!   a newer version between its steps; diagnostics are published for the latest version only;
//! - hover, go to definition, references, completion and code actions are answered at once
//!   from the last analysis: where the text has changed since, positions are mapped through
//!   the one changed region ([`doc::Shift`]), and inside that region (what is being typed)
//!   there is no answer until the new version is checked. Waiting instead would cost a whole
//!   check of a large policy per hover, and a fresh parse alone is more than half of one;
//! - the outline and rename need the whole current text: they wait for the analysis of the
//!   latest version (and are cancelled by `$/cancelRequest`); formatting reads the text only.
//!
//! Each analysis keeps the text, the diagnostics, a compact name index and the outline; the
//! checked model (for hover) is kept for the [`MODELS`] most recently used documents only and
//! rebuilt on demand for others.
//!
//! The wire is read by [`transport`], which bounds what it reads and answers malformed
//! messages instead of ending the session. `gbpc lsp` uses [`Connection::stdio`].
//!
//! Positions use UTF-16 columns unless the client offers UTF-8 in
//! `general.positionEncodings`. No request panics the server: malformed parameters get an
//! `InvalidParams` error, and a bug in a handler becomes an `InternalError` response.

mod complete;
mod doc;
mod edit;
mod hover;
mod index;
mod navigate;
mod transport;
mod worker;

use std::collections::HashMap;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response, ResponseError};
use lsp_types as lsp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::doc::{Doc, Encoding, Shift, Text};
use self::transport::{Incoming, Outgoing};
use crate::diag::{Diagnostic, Span};

pub use self::transport::MAX_MESSAGE_BYTES;

/// How many documents keep their checked model (the largest part of an analysis).
pub const MODELS: usize = 4;

/// How the session ended: `exit` after `shutdown` (exit status 0), or otherwise (status 1, as
/// the protocol asks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Clean,
    WithoutShutdown,
}

/// Why the session broke off.
#[derive(Debug)]
pub enum Broken {
    /// The output channel closed.
    Output,
    /// The input lost its message framing (a body shorter than announced, a missing
    /// `Content-Length`, ...) or could not be read.
    Input(String),
    /// A thread could not be started.
    Start(io::Error),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Output => f.write_str("the client connection closed"),
            Broken::Input(why) => write!(f, "the input is broken: {why}"),
            Broken::Start(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

impl std::error::Error for Broken {}

/// What the server's loop waits for.
enum Event {
    Client(Incoming),
    Checked(worker::Done),
}

/// The server's ends of a connection: messages to the client, and events (the client's
/// messages, the checking thread's results) to serve.
pub struct Connection {
    sender: Sender<Outgoing>,
    receiver: Receiver<Event>,
    events: Sender<Event>,
}

/// The writer thread of a stdio connection.
pub struct Io {
    writer: JoinHandle<io::Result<()>>,
}

impl Io {
    /// Wait until everything sent has been written (call after [`serve`] returned).
    pub fn join(self) -> io::Result<()> {
        self.writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")))
    }
}

impl Connection {
    /// Over standard input and output, with a reader and a writer thread. The reader thread
    /// is not joined: it may be blocked reading when the session ends.
    pub fn stdio() -> io::Result<(Connection, Io)> {
        let (events, receiver) = channel();
        let reader_events = events.clone();
        std::thread::Builder::new()
            .name("gbpc-lsp-read".to_string())
            .spawn(move || {
                let stdin = io::stdin();
                transport::read(stdin.lock(), |inc| {
                    reader_events.send(Event::Client(inc)).is_ok()
                });
            })?;
        let (sender, outgoing) = channel::<Outgoing>();
        let writer = std::thread::Builder::new()
            .name("gbpc-lsp-write".to_string())
            .spawn(move || {
                let stdout = io::stdout();
                let mut w = stdout.lock();
                for out in outgoing {
                    transport::write(&mut w, &out)?;
                }
                Ok(())
            })?;
        Ok((
            Connection {
                sender,
                receiver,
                events,
            },
            Io { writer },
        ))
    }
}

/// Serve one client on `conn` until it says `exit` or goes away.
pub fn serve(conn: Connection) -> Result<Exit, Broken> {
    let out = Out(conn.sender);
    let Some(enc) = handshake(&conn.receiver, &out)? else {
        return Ok(Exit::WithoutShutdown);
    };
    let events = conn.events;
    let worker = worker::spawn(move |done| events.send(Event::Checked(done)).is_ok())
        .map_err(Broken::Start)?;
    let mut server = Server {
        out: &out,
        enc,
        docs: HashMap::new(),
        worker,
        generation: 0,
        recent: Vec::new(),
        shutdown: false,
    };
    loop {
        let Ok(event) = conn.receiver.recv() else {
            return Ok(Exit::WithoutShutdown);
        };
        match event {
            Event::Client(Incoming::Message(Message::Request(req))) => server.request(req)?,
            Event::Client(Incoming::Message(Message::Notification(n))) if n.method == "exit" => {
                return Ok(if server.shutdown {
                    Exit::Clean
                } else {
                    Exit::WithoutShutdown
                });
            }
            Event::Client(Incoming::Message(Message::Notification(n))) => {
                let method = n.method.clone();
                let outcome = catch_unwind(AssertUnwindSafe(|| server.notification(n)));
                match outcome {
                    Ok(sent) => sent?,
                    Err(_) => {
                        out.show_error(&format!("gbpc: internal error while handling {method}"))?
                    }
                }
            }
            Event::Client(Incoming::Message(Message::Response(_))) => {} // no requests are sent
            Event::Client(Incoming::Invalid {
                id,
                error,
                tell_user,
            }) => out.invalid(id, error, tell_user)?,
            Event::Client(Incoming::End(Ok(()))) => return Ok(Exit::WithoutShutdown),
            Event::Client(Incoming::End(Err(why))) => return Err(Broken::Input(why)),
            Event::Checked(done) => server.checked(done)?,
        }
    }
}

/// The output.
struct Out(Sender<Outgoing>);

impl Out {
    fn send(&self, msg: impl Into<Outgoing>) -> Result<(), Broken> {
        self.0.send(msg.into()).map_err(|_| Broken::Output)
    }

    fn notify<N: lsp::notification::Notification>(&self, params: N::Params) -> Result<(), Broken> {
        self.send(transport::notification(N::METHOD, params))
    }

    fn show_error(&self, message: &str) -> Result<(), Broken> {
        self.notify::<lsp::notification::ShowMessage>(lsp::ShowMessageParams {
            typ: lsp::MessageType::ERROR,
            message: message.to_string(),
        })
    }

    /// Answer a message that could not be served.
    fn invalid(
        &self,
        id: Option<RequestId>,
        error: ResponseError,
        tell_user: bool,
    ) -> Result<(), Broken> {
        let message = error.message.clone();
        match id {
            Some(id) => self.send(Response {
                id,
                response_result: Err(error),
            })?,
            None => self.send(Outgoing::NullIdError(error))?,
        }
        if tell_user {
            self.show_error(&message)?;
        }
        Ok(())
    }
}

fn error(id: RequestId, code: ErrorCode, message: impl Into<String>) -> Response {
    Response::new_err(id, code as i32, message.into())
}

/// Wait for `initialize` and answer it; `None` if the client said `exit` or went away first.
fn handshake(events: &Receiver<Event>, out: &Out) -> Result<Option<Encoding>, Broken> {
    for event in events {
        let msg = match event {
            Event::Client(Incoming::Message(msg)) => msg,
            Event::Client(Incoming::Invalid {
                id,
                error,
                tell_user,
            }) => {
                out.invalid(id, error, tell_user)?;
                continue;
            }
            Event::Client(Incoming::End(Ok(()))) => return Ok(None),
            Event::Client(Incoming::End(Err(why))) => return Err(Broken::Input(why)),
            Event::Checked(_) => continue,
        };
        match msg {
            Message::Request(req) if req.method == "initialize" => {
                let params: lsp::InitializeParams = match serde_json::from_value(req.params) {
                    Ok(p) => p,
                    Err(e) => {
                        out.send(error(req.id, ErrorCode::InvalidParams, e.to_string()))?;
                        continue;
                    }
                };
                let offered = params
                    .capabilities
                    .general
                    .as_ref()
                    .and_then(|g| g.position_encodings.as_deref());
                let enc = Encoding::negotiate(offered);
                let result = lsp::InitializeResult {
                    capabilities: capabilities(enc),
                    server_info: Some(lsp::ServerInfo {
                        name: "gbpc".to_string(),
                        version: Some(env!("CARGO_PKG_VERSION").to_string()),
                    }),
                };
                out.send(ok(req.id, result))?;
                return Ok(Some(enc));
            }
            Message::Request(req) => {
                out.send(error(
                    req.id,
                    ErrorCode::ServerNotInitialized,
                    "the server is not initialized yet",
                ))?;
            }
            Message::Notification(n) if n.method == "exit" => return Ok(None),
            Message::Notification(_) | Message::Response(_) => {}
        }
    }
    Ok(None)
}

fn capabilities(enc: Encoding) -> lsp::ServerCapabilities {
    lsp::ServerCapabilities {
        position_encoding: Some(enc.kind()),
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(
            lsp::TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(lsp::TextDocumentSyncKind::FULL),
                ..Default::default()
            },
        )),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        definition_provider: Some(lsp::OneOf::Left(true)),
        references_provider: Some(lsp::OneOf::Left(true)),
        rename_provider: Some(lsp::OneOf::Right(lsp::RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_symbol_provider: Some(lsp::OneOf::Left(true)),
        document_formatting_provider: Some(lsp::OneOf::Left(true)),
        completion_provider: Some(lsp::CompletionOptions::default()),
        code_action_provider: Some(lsp::CodeActionProviderCapability::Options(
            lsp::CodeActionOptions {
                code_action_kinds: Some(vec![lsp::CodeActionKind::QUICKFIX]),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// A result serialized for a response; serializing lsp-types values cannot fail, but if it
/// did the client gets an error rather than the server a panic.
fn ok(id: RequestId, result: impl Serialize) -> Response {
    match serde_json::to_value(result) {
        Ok(v) => Response {
            id,
            response_result: Ok(v),
        },
        Err(e) => error(id, ErrorCode::InternalError, e.to_string()),
    }
}

/// Why a request failed: the JSON-RPC error code and a message for the user.
struct Failure(ErrorCode, String);

type Reply = Result<serde_json::Value, Failure>;

/// An open document: the latest text the client sent, and the last analysis.
struct Open {
    text: Arc<Text>,
    version: i32,
    /// The generation of `text`.
    generation: u64,
    /// The generation the document was opened with (analyses of older ones belong to an
    /// earlier opening of the same URI).
    opened: u64,
    /// The last analysis, and the generation of its text.
    analysis: Option<(u64, Box<Doc>)>,
    /// The generation whose diagnostics were published last.
    published: Option<u64>,
    /// A new analysis of the current generation was asked for, to rebuild a dropped model.
    rebuilding: bool,
    /// The generation whose analysis failed (a bug), if the last one did.
    failed: Option<u64>,
    /// Requests waiting for an analysis, in arrival order.
    waiting: Vec<Request>,
}

impl Open {
    /// The analysis, when it is of the current text.
    fn fresh(&self) -> Option<&Doc> {
        match &self.analysis {
            Some((g, doc)) if *g == self.generation => Some(doc),
            _ => None,
        }
    }
}

/// What a request needs to be answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// The current text only (formatting), or nothing (unknown methods).
    Text,
    /// Some analysis, mapped to the current text.
    Any,
    /// Some analysis with its checked model (hover).
    Model,
    /// The analysis of the current text (outline, rename).
    Fresh,
}

fn need(method: &str) -> Need {
    match method {
        "textDocument/hover" => Need::Model,
        "textDocument/definition"
        | "textDocument/references"
        | "textDocument/completion"
        | "textDocument/codeAction" => Need::Any,
        "textDocument/documentSymbol" | "textDocument/prepareRename" | "textDocument/rename" => {
            Need::Fresh
        }
        _ => Need::Text,
    }
}

/// The document a request is about (`None` if its parameters do not say).
fn request_uri(params: &serde_json::Value) -> Option<lsp::Uri> {
    let uri = params.get("textDocument")?.get("uri")?.as_str()?;
    uri.parse().ok()
}

struct Server<'a> {
    out: &'a Out,
    enc: Encoding,
    docs: HashMap<lsp::Uri, Open>,
    worker: Sender<worker::Order>,
    /// The last generation given to a text.
    generation: u64,
    /// Documents by use, the most recent last; only the last [`MODELS`] keep their model.
    recent: Vec<lsp::Uri>,
    shutdown: bool,
}

impl Server<'_> {
    fn request(&mut self, req: Request) -> Result<(), Broken> {
        let id = req.id.clone();
        if self.shutdown {
            return self.out.send(error(
                id,
                ErrorCode::InvalidRequest,
                "the server is shutting down",
            ));
        }
        if req.method == "shutdown" {
            self.shutdown = true;
            return self.out.send(ok(id, ()));
        }
        let need = need(&req.method);
        if need != Need::Text
            && let Some(uri) = request_uri(&req.params)
            && self.docs.contains_key(&uri)
        {
            self.touch(&uri);
            if let Some(open) = self.docs.get_mut(&uri) {
                let ready = match need {
                    Need::Text => true,
                    Need::Any => open.analysis.is_some(),
                    Need::Model => open
                        .analysis
                        .as_ref()
                        .is_some_and(|(_, doc)| doc.policy.is_some()),
                    Need::Fresh => open.fresh().is_some(),
                };
                if !ready {
                    if open.failed == Some(open.generation) {
                        return self.out.send(error(
                            id,
                            ErrorCode::InternalError,
                            "gbpc: internal error while checking this document",
                        ));
                    }
                    // A model dropped from the current analysis is rebuilt; otherwise the
                    // analysis of the current text is already on its way.
                    let current = open
                        .analysis
                        .as_ref()
                        .is_some_and(|(g, _)| *g == open.generation);
                    if need == Need::Model && current && !open.rebuilding {
                        open.rebuilding = true;
                        let job = worker::Job {
                            uri: uri.clone(),
                            generation: open.generation,
                            version: open.version,
                            text: open.text.clone(),
                        };
                        let _ = self.worker.send(worker::Order::Check(job));
                    }
                    open.waiting.push(req);
                    return Ok(());
                }
            }
        }
        let method = req.method.clone();
        let resp = match catch_unwind(AssertUnwindSafe(|| self.dispatch(req))) {
            Ok(Ok(value)) => Response {
                id,
                response_result: Ok(value),
            },
            Ok(Err(Failure(code, message))) => error(id, code, message),
            Err(_) => error(
                id,
                ErrorCode::InternalError,
                format!("gbpc: internal error while handling {method}"),
            ),
        };
        self.out.send(resp)
    }

    fn dispatch(&self, req: Request) -> Reply {
        let enc = self.enc;
        match req.method.as_str() {
            "textDocument/hover" => {
                let p: lsp::TextDocumentPositionParams = params(req.params)?;
                let (view, offset) = self.locate(&p.text_document.uri, p.position)?;
                let found = view.old_offset(offset).and_then(|at| {
                    let (text, span) = hover::hover(view.doc, at)?;
                    Some((text, view.span(span)?))
                });
                to_value(found.map(|(text, span)| lsp::Hover {
                    contents: lsp::HoverContents::Markup(lsp::MarkupContent {
                        kind: lsp::MarkupKind::Markdown,
                        value: text,
                    }),
                    range: Some(view.text.range(span, enc)),
                }))
            }
            "textDocument/definition" => {
                let p: lsp::TextDocumentPositionParams = params(req.params)?;
                let uri = &p.text_document.uri;
                let (view, offset) = self.locate(uri, p.position)?;
                let spans = view
                    .old_offset(offset)
                    .map(|at| navigate::definition(view.doc, at))
                    .unwrap_or_default();
                let locs = view.locations(uri, spans, enc);
                let found = match locs.len() {
                    0 => None,
                    1 => locs
                        .into_iter()
                        .next()
                        .map(lsp::GotoDefinitionResponse::Scalar),
                    _ => Some(lsp::GotoDefinitionResponse::Array(locs)),
                };
                to_value(found)
            }
            "textDocument/references" => {
                let p: lsp::ReferenceParams = params(req.params)?;
                let pos = &p.text_document_position;
                let uri = &pos.text_document.uri;
                let (view, offset) = self.locate(uri, pos.position)?;
                let spans = view
                    .old_offset(offset)
                    .map(|at| navigate::references(view.doc, at, p.context.include_declaration))
                    .unwrap_or_default();
                to_value(view.locations(uri, spans, enc))
            }
            "textDocument/prepareRename" => {
                let p: lsp::TextDocumentPositionParams = params(req.params)?;
                let (view, offset) = self.locate(&p.text_document.uri, p.position)?;
                let doc = view.fresh()?;
                match navigate::prepare_rename(doc, offset) {
                    Ok(found) => to_value(found.map(|(span, name)| {
                        lsp::PrepareRenameResponse::RangeWithPlaceholder {
                            range: doc.range(span, enc),
                            placeholder: name,
                        }
                    })),
                    Err(why) => Err(Failure(ErrorCode::RequestFailed, why)),
                }
            }
            "textDocument/rename" => {
                let p: lsp::RenameParams = params(req.params)?;
                let pos = &p.text_document_position;
                let uri = &pos.text_document.uri;
                let (view, offset) = self.locate(uri, pos.position)?;
                let doc = view.fresh()?;
                let edits = navigate::rename(doc, offset, &p.new_name)
                    .map_err(|why| Failure(ErrorCode::RequestFailed, why))?;
                let edits: Vec<lsp::TextEdit> = edits
                    .into_iter()
                    .map(|(span, new_text)| lsp::TextEdit {
                        range: doc.range(span, enc),
                        new_text,
                    })
                    .collect();
                to_value(lsp::WorkspaceEdit {
                    changes: Some(HashMap::from([(uri.clone(), edits)])),
                    ..Default::default()
                })
            }
            "textDocument/documentSymbol" => {
                let p: lsp::DocumentSymbolParams = params(req.params)?;
                let view = self.view(&p.text_document.uri)?;
                let doc = view.fresh()?;
                to_value(lsp::DocumentSymbolResponse::Nested(navigate::symbols(
                    doc, enc,
                )))
            }
            "textDocument/completion" => {
                let p: lsp::CompletionParams = params(req.params)?;
                let pos = &p.text_document_position;
                let (view, offset) = self.locate(&pos.text_document.uri, pos.position)?;
                let (replace, found) = complete::complete(&view.text.src, &view.doc.index, offset);
                let range = view.text.range(replace, enc);
                let items: Vec<lsp::CompletionItem> = found
                    .into_iter()
                    .map(|c| completion_item(c, range))
                    .collect();
                to_value(lsp::CompletionResponse::Array(items))
            }
            "textDocument/codeAction" => {
                let p: lsp::CodeActionParams = params(req.params)?;
                let uri = &p.text_document.uri;
                let view = self.view(uri)?;
                let wanted = p.context.only.as_ref().is_none_or(|only| {
                    only.iter().any(|k| {
                        lsp::CodeActionKind::QUICKFIX
                            .as_str()
                            .starts_with(k.as_str())
                    })
                });
                let actions = if wanted {
                    let range = view.text.span(p.range, enc);
                    match view.shift {
                        None => edit::code_actions(&view.doc.diags, view.text, uri, enc, range),
                        Some(shift) => {
                            let diags: Vec<Diagnostic> = view
                                .doc
                                .diags
                                .iter()
                                .filter_map(|d| shift.diagnostic_to_new(d))
                                .collect();
                            edit::code_actions(&diags, view.text, uri, enc, range)
                        }
                    }
                } else {
                    Vec::new()
                };
                to_value(actions)
            }
            "textDocument/formatting" => {
                let p: lsp::DocumentFormattingParams = params(req.params)?;
                let open = self.open(&p.text_document.uri)?;
                to_value(edit::format(&open.text, enc))
            }
            _ => Err(Failure(
                ErrorCode::MethodNotFound,
                format!("gbpc does not handle {}", req.method),
            )),
        }
    }

    fn open(&self, uri: &lsp::Uri) -> Result<&Open, Failure> {
        self.docs.get(uri).ok_or_else(|| {
            Failure(
                ErrorCode::InvalidParams,
                format!("{} is not open", uri.as_str()),
            )
        })
    }

    /// The document's latest text and last analysis (the request waited for one).
    fn view(&self, uri: &lsp::Uri) -> Result<View<'_>, Failure> {
        let open = self.open(uri)?;
        let Some((generation, doc)) = &open.analysis else {
            return Err(Failure(
                ErrorCode::InternalError,
                "gbpc: the document has not been checked".to_string(),
            ));
        };
        let shift = (*generation != open.generation && !Arc::ptr_eq(&doc.text, &open.text))
            .then(|| Shift::between(&doc.text.src, &open.text.src));
        Ok(View {
            text: &open.text,
            doc,
            shift,
        })
    }

    fn locate(&self, uri: &lsp::Uri, pos: lsp::Position) -> Result<(View<'_>, usize), Failure> {
        let view = self.view(uri)?;
        let offset = view.text.offset(pos, self.enc);
        Ok((view, offset))
    }

    /// Mark a document as used: the least recently used beyond [`MODELS`] drop their model.
    fn touch(&mut self, uri: &lsp::Uri) {
        if self.recent.last() != Some(uri) {
            self.recent.retain(|u| u != uri);
            self.recent.push(uri.clone());
        }
        while self.recent.len() > MODELS {
            let old = self.recent.remove(0);
            if let Some(Open {
                analysis: Some((_, doc)),
                ..
            }) = self.docs.get_mut(&old)
            {
                doc.policy = None;
            }
        }
    }

    /// A new text for a document: a new generation, to be checked.
    fn new_text(&mut self, uri: &lsp::Uri, text: String, version: i32) -> Option<u64> {
        self.generation += 1;
        let generation = self.generation;
        let text = Arc::new(Text::new(text));
        let job = worker::Job {
            uri: uri.clone(),
            generation,
            version,
            text: text.clone(),
        };
        let open = self.docs.get_mut(uri)?;
        open.text = text;
        open.version = version;
        open.generation = generation;
        open.rebuilding = false;
        let _ = self.worker.send(worker::Order::Check(job));
        self.touch(uri);
        Some(generation)
    }

    fn notification(&mut self, n: Notification) -> Result<(), Broken> {
        match n.method.as_str() {
            "textDocument/didOpen" => {
                let Ok(p) = serde_json::from_value::<lsp::DidOpenTextDocumentParams>(n.params)
                else {
                    return Ok(()); // a notification cannot be answered with an error
                };
                let d = p.text_document;
                let waiting = self
                    .docs
                    .remove(&d.uri)
                    .map(|o| o.waiting)
                    .unwrap_or_default();
                let open = Open {
                    text: Arc::new(Text::new(String::new())),
                    version: d.version,
                    generation: 0,
                    opened: self.generation + 1,
                    analysis: None,
                    published: None,
                    rebuilding: false,
                    failed: None,
                    waiting,
                };
                self.docs.insert(d.uri.clone(), open);
                self.new_text(&d.uri, d.text, d.version);
                Ok(())
            }
            "textDocument/didChange" => {
                let Ok(p) = serde_json::from_value::<lsp::DidChangeTextDocumentParams>(n.params)
                else {
                    return Ok(());
                };
                let uri = p.text_document.uri;
                let Some(open) = self.docs.get(&uri) else {
                    return Ok(());
                };
                let text = apply_changes(&open.text.src, p.content_changes, self.enc);
                self.new_text(&uri, text, p.text_document.version);
                Ok(())
            }
            "textDocument/didClose" => {
                let Ok(p) = serde_json::from_value::<lsp::DidCloseTextDocumentParams>(n.params)
                else {
                    return Ok(());
                };
                let uri = p.text_document.uri;
                let _ = self.worker.send(worker::Order::Forget(uri.clone()));
                self.recent.retain(|u| u != &uri);
                if let Some(open) = self.docs.remove(&uri) {
                    for req in open.waiting {
                        self.out.send(error(
                            req.id,
                            ErrorCode::RequestFailed,
                            format!("{} was closed", uri.as_str()),
                        ))?;
                    }
                }
                self.out.notify::<lsp::notification::PublishDiagnostics>(
                    lsp::PublishDiagnosticsParams {
                        uri,
                        diagnostics: Vec::new(),
                        version: None,
                    },
                )
            }
            "$/cancelRequest" => {
                let Ok(p) = serde_json::from_value::<lsp::CancelParams>(n.params) else {
                    return Ok(());
                };
                let id = match p.id {
                    lsp::NumberOrString::Number(n) => RequestId::from(n),
                    lsp::NumberOrString::String(s) => RequestId::from(s),
                };
                for open in self.docs.values_mut() {
                    if let Some(i) = open.waiting.iter().position(|r| r.id == id) {
                        open.waiting.remove(i);
                        return self
                            .out
                            .send(error(id, ErrorCode::RequestCanceled, "cancelled"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An analysis is done: keep it if it is newer than the one the document has, publish
    /// its diagnostics if it is of the current text, and serve the requests that waited.
    fn checked(&mut self, done: worker::Done) -> Result<(), Broken> {
        let uri = done.uri;
        let Some(open) = self.docs.get_mut(&uri) else {
            return Ok(()); // closed meanwhile
        };
        if done.generation < open.opened
            || open
                .analysis
                .as_ref()
                .is_some_and(|(g, _)| *g > done.generation)
        {
            return Ok(());
        }
        let Some(doc) = done.doc else {
            if done.generation == open.generation {
                open.failed = Some(done.generation);
                open.rebuilding = false;
                let waiting = std::mem::take(&mut open.waiting);
                self.out.show_error(&format!(
                    "gbpc: internal error while checking {}",
                    uri.as_str()
                ))?;
                for req in waiting {
                    self.request(req)?;
                }
            }
            return Ok(());
        };
        if done.generation == open.generation {
            open.rebuilding = false;
        }
        let publish = done.generation == open.generation && open.published != Some(open.generation);
        open.analysis = Some((done.generation, doc));
        if publish {
            open.published = Some(open.generation);
            self.publish(&uri)?;
        }
        self.touch(&uri);
        let waiting = self
            .docs
            .get_mut(&uri)
            .map(|o| std::mem::take(&mut o.waiting))
            .unwrap_or_default();
        for req in waiting {
            self.request(req)?;
        }
        Ok(())
    }

    fn publish(&self, uri: &lsp::Uri) -> Result<(), Broken> {
        let Some(doc) = self.docs.get(uri).and_then(|o| o.fresh()) else {
            return Ok(());
        };
        let diagnostics = doc
            .diags
            .iter()
            .map(|d| doc.text.to_lsp(d, uri, self.enc))
            .collect();
        self.out
            .notify::<lsp::notification::PublishDiagnostics>(lsp::PublishDiagnosticsParams {
                uri: uri.clone(),
                diagnostics,
                version: Some(doc.version),
            })
    }
}

/// What a request is answered from: the latest text, the last analysis, and how the text
/// changed since that analysis (`None`: it did not).
struct View<'a> {
    text: &'a Text,
    doc: &'a Doc,
    shift: Option<Shift>,
}

impl View<'_> {
    /// An offset of the latest text in the analysed one (`None`: in the changed region).
    fn old_offset(&self, at: usize) -> Option<usize> {
        match self.shift {
            None => Some(at),
            Some(s) => s.old_offset_of(at),
        }
    }

    /// A span of the analysed text in the latest one (`None`: touching the changed region).
    fn span(&self, span: Span) -> Option<Span> {
        match self.shift {
            None => Some(span),
            Some(s) => s.span_to_new(span),
        }
    }

    fn locations(&self, uri: &lsp::Uri, spans: Vec<Span>, enc: Encoding) -> Vec<lsp::Location> {
        spans
            .into_iter()
            .filter_map(|s| self.span(s))
            .map(|s| lsp::Location {
                uri: uri.clone(),
                range: self.text.range(s, enc),
            })
            .collect()
    }

    /// The analysis, which must be of the latest text (the request waited for it).
    fn fresh(&self) -> Result<&Doc, Failure> {
        match self.shift {
            None => Ok(self.doc),
            Some(_) => Err(Failure(
                ErrorCode::ContentModified,
                "gbpc: the document changed; try again".to_string(),
            )),
        }
    }
}

fn params<P: DeserializeOwned>(v: serde_json::Value) -> Result<P, Failure> {
    serde_json::from_value(v).map_err(|e| Failure(ErrorCode::InvalidParams, e.to_string()))
}

fn to_value(v: impl Serialize) -> Reply {
    serde_json::to_value(v).map_err(|e| Failure(ErrorCode::InternalError, e.to_string()))
}

fn completion_item(c: complete::Candidate, range: lsp::Range) -> lsp::CompletionItem {
    use self::index::Kind;
    let kind = match c.what {
        complete::What::Keyword => lsp::CompletionItemKind::KEYWORD,
        complete::What::IcmpType => lsp::CompletionItemKind::ENUM_MEMBER,
        complete::What::Name(Kind::Tenant) => lsp::CompletionItemKind::MODULE,
        complete::What::Name(Kind::Filter) => lsp::CompletionItemKind::STRUCT,
        complete::What::Name(Kind::Contract) => lsp::CompletionItemKind::INTERFACE,
        complete::What::Name(Kind::Group) => lsp::CompletionItemKind::CLASS,
        complete::What::Name(Kind::Endpoint) => lsp::CompletionItemKind::VARIABLE,
    };
    lsp::CompletionItem {
        text_edit: Some(lsp::CompletionTextEdit::Edit(lsp::TextEdit {
            range,
            new_text: c.label.clone(),
        })),
        label: c.label,
        kind: Some(kind),
        detail: Some(c.detail),
        ..Default::default()
    }
}

/// The text after a `didChange`: each change replaces a range, or the whole text when it has
/// none, in order (positions refer to the text as the previous change left it).
fn apply_changes(
    text: &str,
    changes: Vec<lsp::TextDocumentContentChangeEvent>,
    enc: Encoding,
) -> String {
    // `None` until a change: the old text is copied only if a range refers to it.
    let mut new: Option<String> = None;
    for change in changes {
        match change.range {
            None => new = Some(change.text),
            Some(range) => {
                let t = Text::new(new.take().unwrap_or_else(|| text.to_string()));
                let span = t.span(range, enc);
                let mut src = t.src;
                src.replace_range(span.start..span.end, &change.text);
                new = Some(src);
            }
        }
    }
    new.unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every handler at every position of every broken input, example and some hostile texts:
    /// nothing panics (the server would answer `InternalError`; here the test would fail).
    #[test]
    fn every_handler_survives_every_position() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut texts: Vec<String> = [
            "",
            "}",
            "tenant",
            "tenant t { group",
            "tenant t { group g extends",
            "tenant t { assert a -> b tcp/80 allow } tenant t { }",
            "tenant t { any { consumes t/ } }",
            "tenant \u{e9}\u{1F600} { filter \u{1F600} { tcp 80 } }\n\u{FEFF}",
            "tenant t { group g { select a=\"\u{1F600}\" provides c } contract c { subject s permit f",
            "tenant a { global contract c { subject s permit f } filter f { ip } }\ntenant b { group g { consumes a/c, a/, /c } assert x -> a/ tcp allow }",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for dir in ["tests/broken", "examples"] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let small = std::fs::metadata(&path).is_ok_and(|m| m.len() < 10_000);
                if path.extension().is_some_and(|x| x == "gbp") && small {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    texts.push(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
        assert!(texts.len() > 20, "the corpus was not found");
        let uri: lsp::Uri = "file:///t.gbp".parse().unwrap_or_else(|_| unreachable!());
        for text in &texts {
            let doc = Doc::new(text.clone(), 1);
            for enc in [Encoding::Utf8, Encoding::Utf16] {
                let _ = navigate::symbols(&doc, enc);
                let _ = edit::format(&doc.text, enc);
                for d in &doc.diags {
                    let _ = doc.text.to_lsp(d, &uri, enc);
                }
            }
            let bounds = (0..=text.len()).filter(|&i| text.is_char_boundary(i));
            for offset in bounds {
                let _ = hover::hover(&doc, offset);
                let _ = navigate::definition(&doc, offset);
                let _ = navigate::references(&doc, offset, true);
                let _ = navigate::prepare_rename(&doc, offset);
                let _ = navigate::rename(&doc, offset, "x-1");
                let _ = complete::complete(text, &doc.index, offset);
                let span = Span::new(offset, offset);
                let _ = edit::code_actions(&doc.diags, &doc.text, &uri, Encoding::Utf16, span);
            }
            // Positions from a client may be anywhere.
            for line in [0, 1, 2, 7, u32::MAX] {
                for character in [0, 1, 3, 5, 100, u32::MAX] {
                    for enc in [Encoding::Utf8, Encoding::Utf16] {
                        let at = doc.text.offset(lsp::Position { line, character }, enc);
                        assert!(text.is_char_boundary(at) && at <= text.len());
                    }
                }
            }
        }
    }

    /// Every span of an analysed version that the mapping carries into a newer version
    /// denotes the same text there, and every offset it carries back lands on the same text:
    /// for edits (insertions, deletions, replacements, multi-byte characters) at every place.
    #[test]
    fn the_mapping_between_versions_keeps_the_text_under_every_span() {
        let base = "tenant t { # \u{e9}\u{1F600}\n  contract web { subject s permit https }\n  group g { provides web }\n}\n";
        let edits = ["", "x", "\u{1F600}", "web, ", "\n\n", "}"];
        let bounds: Vec<usize> = (0..=base.len())
            .filter(|&i| base.is_char_boundary(i))
            .collect();
        for &at in &bounds {
            for &len in &[0usize, 1, 3, 12] {
                let Some(&end) = bounds.iter().find(|&&b| b >= at + len) else {
                    continue;
                };
                for ins in edits {
                    let new = format!("{}{ins}{}", &base[..at], &base[end..]);
                    let shift = Shift::between(base, &new);
                    for &s in &bounds {
                        for &e in bounds.iter().filter(|&&e| e >= s).take(8) {
                            if let Some(n) = shift.span_to_new(Span::new(s, e)) {
                                assert_eq!(
                                    new.get(n.start..n.end),
                                    Some(&base[s..e]),
                                    "{s}..{e} after {at}..{end} -> {ins:?}"
                                );
                            }
                        }
                    }
                    for o in (0..=new.len()).filter(|&i| new.is_char_boundary(i)) {
                        if let Some(b) = shift.old_offset_of(o) {
                            assert!(base.is_char_boundary(b), "{o} -> {b}");
                            // The same text before the cursor, or after it.
                            assert!(base[..b] == new[..o] || base[b..] == new[o..], "{o} -> {b}");
                        }
                    }
                    // Before the change everything maps.
                    if at > 0 {
                        assert_eq!(
                            shift.span_to_new(Span::new(0, at - 1)),
                            Some(Span::new(0, at - 1))
                        );
                    }
                }
            }
        }
    }

    /// A connection whose client end is a pair of channels.
    fn memory() -> (Connection, Sender<Event>, Receiver<Outgoing>) {
        let (events, receiver) = channel();
        let (sender, outgoing) = channel();
        let conn = Connection {
            sender,
            receiver,
            events: events.clone(),
        };
        (conn, events, outgoing)
    }

    /// The whole loop over an in-memory connection: initialize, a document, a request, and a
    /// clean shutdown.
    #[test]
    fn serves_a_session_in_memory() {
        let (server, to_server, from_server) = memory();
        let handle = std::thread::spawn(move || serve(server));
        let send = |m: Message| to_server.send(Event::Client(Incoming::Message(m))).is_ok();
        let recv = || match from_server.recv() {
            Ok(Outgoing::Message(m)) => Some(m),
            _ => None,
        };
        let req = |id: i32, method: &str, params: serde_json::Value| {
            Message::Request(Request {
                id: id.into(),
                method: method.to_string(),
                params,
            })
        };
        let note = |method: &str, params: serde_json::Value| {
            Message::Notification(Notification {
                method: method.to_string(),
                params,
            })
        };
        assert!(send(req(
            1,
            "initialize",
            serde_json::json!({ "capabilities": {} })
        )));
        assert!(matches!(recv(), Some(Message::Response(r)) if r.response_result.is_ok()));
        let open = serde_json::json!({ "textDocument": {
            "uri": "file:///t.gbp", "languageId": "gbp", "version": 1,
            "text": "tenant t { contract c { subject s permit nope } }" } });
        assert!(send(note("textDocument/didOpen", open)));
        let Some(Message::Notification(n)) = recv() else {
            unreachable!("no diagnostics")
        };
        assert_eq!(n.method, "textDocument/publishDiagnostics");
        assert!(n.params.to_string().contains("gbpc::E010"));
        assert!(send(req(2, "shutdown", serde_json::Value::Null)));
        assert!(matches!(recv(), Some(Message::Response(_))));
        assert!(send(note("exit", serde_json::Value::Null)));
        let exit = handle.join().ok().and_then(|r| r.ok());
        assert_eq!(exit, Some(Exit::Clean));
    }
}
