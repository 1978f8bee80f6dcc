//! The wire: LSP's base protocol (`Content-Length` framed JSON-RPC 2.0) over a byte stream.
//!
//! gbpc reads the stream itself rather than through `lsp-server`'s transport, which allocates
//! whatever a `Content-Length` header announces (`Content-Length: 1000000000000000` aborted the
//! server) and ends the session on the first message that is not a single well-formed JSON-RPC
//! object. Here:
//!
//! - nothing is allocated from a header alone: a body is read as it arrives, and a message
//!   longer than [`MAX_MESSAGE_BYTES`] (the policy file limit plus room for JSON escapes) is
//!   answered with an error at once and skipped without being stored;
//! - a header line is at most [`MAX_HEADER_LINE`] bytes and a header at most
//!   [`MAX_HEADER_BYTES`]; unknown header fields are ignored, a `Content-Type` other than
//!   JSON-RPC in UTF-8 makes the message an error;
//! - a body that is not JSON gets a Parse error (-32700), a batch (a JSON array; LSP has none)
//!   or an object that is not a request, notification or response an Invalid Request error
//!   (-32600), and so does a request whose id is neither a 32-bit integer nor a string (LSP's
//!   `integer | string`): `1.5` or `2^70` cannot be echoed back, so the answer has id `null`,
//!   as JSON-RPC asks. The server then goes on with the next message;
//! - only what loses the message boundaries ends the session: no or an unreadable
//!   `Content-Length`, two that disagree, an over-long header, or the input ending inside a
//!   message (a body shorter than announced). The server answers a Parse error when it still
//!   can, and stops with a reason ([`Incoming::End`]).
//!
//! The messages themselves are `lsp-server`'s types.

use std::io::{self, BufRead, Read, Write};

use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response, ResponseError};
use serde_json::Value;

use crate::syntax::MAX_FILE_BYTES;

/// The longest message body read: a document at the file size limit, with half as much again
/// for JSON escapes (`\n`, `\"`) and the envelope.
pub const MAX_MESSAGE_BYTES: u64 = (MAX_FILE_BYTES + MAX_FILE_BYTES / 2) as u64;
/// The longest header line.
pub const MAX_HEADER_LINE: usize = 8 * 1024;
/// The longest header (every line of one message's header together).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What the reader hands to the server, in the order of the input.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    /// A message that cannot be served: answer it with `error`, to `id` when the id could be
    /// read (`None`: id `null`), and go on. `tell_user`: also show the error to the user (the
    /// message was probably a document that is now missing).
    Invalid {
        id: Option<RequestId>,
        error: ResponseError,
        tell_user: bool,
    },
    /// The input ended: between two messages (`Ok`), or with the framing lost (`Err`: why).
    End(Result<(), String>),
}

/// What the server sends: a message, or an error answer whose request id is unknown.
#[derive(Debug)]
pub enum Outgoing {
    Message(Message),
    NullIdError(ResponseError),
}

impl From<Message> for Outgoing {
    fn from(m: Message) -> Outgoing {
        Outgoing::Message(m)
    }
}

impl From<Response> for Outgoing {
    fn from(r: Response) -> Outgoing {
        Outgoing::Message(Message::Response(r))
    }
}

fn response_error(code: ErrorCode, message: impl Into<String>) -> ResponseError {
    ResponseError {
        code: code as i32,
        message: message.into(),
        data: None,
    }
}

fn invalid(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Incoming {
    Incoming::Invalid {
        id,
        error: response_error(code, message),
        tell_user: false,
    }
}

/// Read messages from `r` and hand each to `emit` until the input ends, `emit` returns false
/// (the server is gone), or an `exit` notification has been handed over. The last thing
/// handed over is an [`Incoming::End`] unless the reading stopped for one of the other two.
pub fn read(mut r: impl BufRead, mut emit: impl FnMut(Incoming) -> bool) {
    loop {
        let len = match read_header(&mut r) {
            Ok(Header::Eof) => {
                emit(Incoming::End(Ok(())));
                return;
            }
            Ok(Header::Length(len, problem)) => (len, problem),
            Ok(Header::Lost(why)) => return lose(&mut emit, why),
            Err(e) => {
                emit(Incoming::End(Err(format!("cannot read the input: {e}"))));
                return;
            }
        };
        let (len, problem) = len;
        if len > MAX_MESSAGE_BYTES {
            // Answered at once, then skipped without being kept.
            let tell = Incoming::Invalid {
                id: None,
                error: response_error(
                    ErrorCode::InvalidRequest,
                    format!(
                        "gbpc: a message of {len} bytes was ignored; the limit is \
                         {MAX_MESSAGE_BYTES} bytes (a policy file may have at most \
                         {MAX_FILE_BYTES} bytes)"
                    ),
                ),
                tell_user: true,
            };
            if !emit(tell) {
                return;
            }
            match io::copy(&mut (&mut r).take(len), &mut io::sink()) {
                Ok(n) if n == len => continue,
                Ok(n) => return lose(&mut emit, truncated(n, len)),
                Err(e) => {
                    emit(Incoming::End(Err(format!("cannot read the input: {e}"))));
                    return;
                }
            }
        }
        // Grows as the bytes arrive: a short body costs what it holds, not what it announced.
        let mut body = Vec::new();
        match (&mut r).take(len).read_to_end(&mut body) {
            Ok(n) if n as u64 == len => {}
            Ok(n) => return lose(&mut emit, truncated(n as u64, len)),
            Err(e) => {
                emit(Incoming::End(Err(format!("cannot read the input: {e}"))));
                return;
            }
        }
        let incoming = match problem {
            Some(why) => Some(invalid(None, ErrorCode::ParseError, format!("gbpc: {why}"))),
            None => parse(&body),
        };
        drop(body);
        let Some(incoming) = incoming else {
            continue;
        };
        let exit =
            matches!(&incoming, Incoming::Message(Message::Notification(n)) if n.method == "exit");
        if !emit(incoming) || exit {
            return;
        }
    }
}

/// The message boundaries are lost: answer a Parse error (the client may still listen), then
/// end.
fn lose(emit: &mut impl FnMut(Incoming) -> bool, why: String) {
    if emit(invalid(None, ErrorCode::ParseError, format!("gbpc: {why}"))) {
        emit(Incoming::End(Err(why)));
    }
}

fn truncated(got: u64, len: u64) -> String {
    format!(
        "the input ended inside a message: {got} of the {len} bytes its Content-Length announced"
    )
}

enum Header {
    /// The input ended before a message began.
    Eof,
    /// The body's length, and what is wrong with the message if something is (the body is
    /// still read, so that the next message is found).
    Length(u64, Option<String>),
    /// The message boundaries are lost: why.
    Lost(String),
}

/// Read one message header, up to and including its empty line.
fn read_header(r: &mut impl BufRead) -> io::Result<Header> {
    let mut len: Option<u64> = None;
    let mut problem: Option<String> = None;
    let mut fields = 0usize;
    let mut total = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut *r)
            .take(MAX_HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(if fields == 0 {
                Header::Eof
            } else {
                Header::Lost("the input ended inside a message header".to_string())
            });
        }
        if line.last() != Some(&b'\n') {
            return Ok(Header::Lost(if n > MAX_HEADER_LINE {
                format!("a header line is longer than {MAX_HEADER_LINE} bytes")
            } else {
                "the input ended inside a message header".to_string()
            }));
        }
        total += n;
        if total > MAX_HEADER_BYTES {
            return Ok(Header::Lost(format!(
                "a message header is longer than {MAX_HEADER_BYTES} bytes"
            )));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            if fields == 0 {
                continue; // a stray line end between messages
            }
            break;
        }
        fields += 1;
        let field = match std::str::from_utf8(&line) {
            Ok(s) => s,
            Err(_) => {
                problem.get_or_insert_with(|| "a header line is not text".to_string());
                continue;
            }
        };
        let Some((name, value)) = field.split_once(':') else {
            problem.get_or_insert_with(|| format!("a header line without a colon: {}", cut(field)));
            continue;
        };
        let value = value.trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            problem.get_or_insert_with(|| format!("a malformed header field name: {}", cut(name)));
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_length(value) else {
                return Ok(Header::Lost(format!(
                    "the Content-Length `{}` is not a byte count",
                    cut(value)
                )));
            };
            if len.is_some_and(|l| l != n) {
                return Ok(Header::Lost(
                    "two Content-Length headers announce different lengths".to_string(),
                ));
            }
            len = Some(n);
        } else if name.eq_ignore_ascii_case("content-type")
            && let Err(why) = content_type(value)
        {
            problem.get_or_insert(why);
        }
    }
    match len {
        Some(n) => Ok(Header::Length(n, problem)),
        None => Ok(Header::Lost(
            "a message header without Content-Length".to_string(),
        )),
    }
}

/// A header value shown in a message: at most 60 characters.
fn cut(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A `token` character of an HTTP header field name (RFC 9110).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The protocol's content type is `application/vscode-jsonrpc; charset=utf-8` (`utf8` is
/// accepted too, as the specification asks); `application/json` is taken as the same.
fn content_type(value: &str) -> Result<(), String> {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "application/vscode-jsonrpc" && media != "application/json" {
        return Err(format!(
            "the Content-Type `{}` is not application/vscode-jsonrpc",
            cut(value)
        ));
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
        {
            let cs = v.trim().trim_matches('"').to_ascii_lowercase();
            if cs != "utf-8" && cs != "utf8" {
                return Err(format!(
                    "the charset `{}` is not supported; messages are UTF-8",
                    cut(v.trim())
                ));
            }
        }
    }
    Ok(())
}

/// A message from its body; `None` for what needs no answer (a response the server cannot
/// use: it sends no requests).
fn parse(body: &[u8]) -> Option<Incoming> {
    let body = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            return Some(invalid(
                None,
                ErrorCode::ParseError,
                format!(
                    "gbpc: the message is not UTF-8 (byte {} is not)",
                    e.valid_up_to()
                ),
            ));
        }
    };
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(invalid(
                None,
                ErrorCode::ParseError,
                format!("gbpc: the message is not JSON: {e}"),
            ));
        }
    };
    Some(classify(value))
}

/// A JSON value as a request, a notification or a response, or why it is none.
fn classify(value: Value) -> Incoming {
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return invalid(
                None,
                ErrorCode::InvalidRequest,
                "gbpc: batches (JSON arrays) are not part of the Language Server Protocol; \
                 send one message at a time",
            );
        }
        _ => {
            return invalid(
                None,
                ErrorCode::InvalidRequest,
                "gbpc: a message must be a JSON object",
            );
        }
    };
    let id = obj.remove("id");
    let method = obj.remove("method");
    let params = obj.remove("params").unwrap_or(Value::Null);
    match (id, method) {
        (Some(id), Some(Value::String(method))) => match request_id(id) {
            Ok(id) => Incoming::Message(Message::Request(Request { id, method, params })),
            Err(why) => invalid(None, ErrorCode::InvalidRequest, why),
        },
        (None, Some(Value::String(method))) => {
            Incoming::Message(Message::Notification(Notification { method, params }))
        }
        (id, Some(_)) => invalid(
            id.and_then(|id| request_id(id).ok()),
            ErrorCode::InvalidRequest,
            "gbpc: the method must be a string",
        ),
        (None, None) => invalid(
            None,
            ErrorCode::InvalidRequest,
            "gbpc: the message is not a request, a notification or a response",
        ),
        (Some(id), None) => {
            if obj.contains_key("result") || obj.contains_key("error") {
                // A response; the server sends no requests, so it is kept only if well-formed.
                obj.insert("id".to_string(), id);
                match serde_json::from_value::<Response>(Value::Object(obj)) {
                    Ok(r) => Incoming::Message(Message::Response(r)),
                    Err(_) => invalid(
                        None,
                        ErrorCode::InvalidRequest,
                        "gbpc: a malformed response",
                    ),
                }
            } else {
                invalid(
                    request_id(id).ok(),
                    ErrorCode::InvalidRequest,
                    "gbpc: a request needs a method",
                )
            }
        }
    }
}

/// LSP request ids are `integer` (32-bit) or `string`.
fn request_id(id: Value) -> Result<RequestId, String> {
    let bad = |shown: &str| {
        Err(format!(
            "gbpc: the request id {shown} is neither a 32-bit integer nor a string, as LSP \
             requires"
        ))
    };
    match id {
        Value::String(s) => Ok(RequestId::from(s)),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Ok(RequestId::from(i)),
            None => bad(&cut(&n.to_string())),
        },
        Value::Null => bad("null"),
        other => bad(&cut(&other.to_string())),
    }
}

/// Write one message with its header, and flush it.
pub fn write(w: &mut impl Write, out: &Outgoing) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct JsonRpc<'a, T: serde::Serialize> {
        jsonrpc: &'static str,
        #[serde(flatten)]
        msg: &'a T,
    }
    #[derive(serde::Serialize)]
    struct NullId<'a> {
        id: Option<()>,
        error: &'a ResponseError,
    }
    let body = match out {
        Outgoing::Message(m) => serde_json::to_vec(&JsonRpc {
            jsonrpc: "2.0",
            msg: m,
        }),
        Outgoing::NullIdError(error) => serde_json::to_vec(&JsonRpc {
            jsonrpc: "2.0",
            msg: &NullId { id: None, error },
        }),
    }
    .map_err(io::Error::other)?;
    write!(w, "Content-Length: {}\r\n\r\n", body.len())?;
    w.write_all(&body)?;
    w.flush()
}

/// A notification to the client (parameters that do not serialize are sent as `null`; the
/// lsp-types values the server sends always do).
pub fn notification(method: &str, params: impl serde::Serialize) -> Outgoing {
    Outgoing::Message(Message::Notification(Notification {
        method: method.to_string(),
        params: serde_json::to_value(params).unwrap_or(Value::Null),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the reader hands over for this input, as short strings.
    fn events(input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        read(input, |inc| {
            out.push(match inc {
                Incoming::Message(Message::Request(r)) => format!("request {} {}", r.id, r.method),
                Incoming::Message(Message::Notification(n)) => format!("notification {}", n.method),
                Incoming::Message(Message::Response(r)) => format!("response {}", r.id),
                Incoming::Invalid { id, error, .. } => format!(
                    "invalid {} {}",
                    id.map_or("null".to_string(), |i| i.to_string()),
                    error.code
                ),
                Incoming::End(Ok(())) => "end".to_string(),
                Incoming::End(Err(why)) => format!("lost: {why}"),
            });
            true
        });
        out
    }

    fn framed(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn messages_and_invalid_messages() {
        let input = [
            framed(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            framed(r#"{"jsonrpc":"2.0","id":"a","method":"m"}"#),
            framed(r#"{"jsonrpc":"2.0","method":"n","params":{}}"#),
            framed(r#"{"jsonrpc":"2.0","id":7,"result":null}"#),
            framed("{"),
            framed("[1,2]"),
            framed("[]"),
            framed("42"),
            framed("{}"),
            framed(r#"{"id":1.5,"method":"m"}"#),
            framed(r#"{"id":1180591620717411303424,"method":"m"}"#),
            framed(r#"{"id":2147483648,"method":"m"}"#),
            framed(r#"{"id":null,"method":"m"}"#),
            framed(r#"{"id":[],"method":"m"}"#),
            framed(r#"{"id":3,"method":4}"#),
            framed(r#"{"id":3}"#),
            framed(r#"{"id":-2147483648,"method":"m"}"#),
            framed(r#"{"jsonrpc":"2.0","method":"exit"}"#),
            framed(r#"{"jsonrpc":"2.0","method":"after-exit"}"#),
        ]
        .concat();
        assert_eq!(
            events(input.as_bytes()),
            [
                "request 1 initialize",
                "request \"a\" m",
                "notification n",
                "response 7",
                "invalid null -32700",
                "invalid null -32600",
                "invalid null -32600",
                "invalid null -32600",
                "invalid null -32600",
                "invalid null -32600",
                "invalid null -32600",
                "invalid null -32600",
                "invalid null -32600",
                "invalid null -32600",
                "invalid 3 -32600",
                "invalid 3 -32600",
                "request -2147483648 m",
                "notification exit",
            ]
        );
    }

    #[test]
    fn headers() {
        let body = r#"{"method":"n"}"#;
        let n = body.len();
        let cases: Vec<(String, Vec<&str>)> = vec![
            // Bare line ends, any case, extra fields, stray line ends between messages.
            (
                format!(
                    "content-length:{n}\nX-Other: y\n\n{body}\r\n{}",
                    framed(body)
                ),
                vec!["notification n", "notification n", "end"],
            ),
            (
                format!(
                    "Content-Type: application/vscode-jsonrpc; charset=utf8\r\nContent-Length: {n}\r\n\r\n{body}"
                ),
                vec!["notification n", "end"],
            ),
            // A bad field or content type: the message is an error, the next one is read.
            (
                format!(
                    "Content-Type: text/plain\r\nContent-Length: {n}\r\n\r\n{body}{}",
                    framed(body)
                ),
                vec!["invalid null -32700", "notification n", "end"],
            ),
            (
                format!(
                    "Content-Type: application/vscode-jsonrpc; charset=latin1\r\nContent-Length: {n}\r\n\r\n{body}"
                ),
                vec!["invalid null -32700", "end"],
            ),
            (
                format!(
                    "garbage\r\nContent-Length: {n}\r\n\r\n{body}{}",
                    framed(body)
                ),
                vec!["invalid null -32700", "notification n", "end"],
            ),
            (
                format!("Content-Length: {n}\r\nContent-Length: {n}\r\n\r\n{body}"),
                vec!["notification n", "end"],
            ),
            // Framing lost: an answer, then the end.
            (
                format!("Content-Length: {n}\r\nContent-Length: 3\r\n\r\n{body}"),
                vec![
                    "invalid null -32700",
                    "lost: two Content-Length headers announce different lengths",
                ],
            ),
            (
                format!("X: y\r\n\r\n{body}"),
                vec![
                    "invalid null -32700",
                    "lost: a message header without Content-Length",
                ],
            ),
            (
                format!("Content-Length: -1\r\n\r\n{body}"),
                vec![
                    "invalid null -32700",
                    "lost: the Content-Length `-1` is not a byte count",
                ],
            ),
            (
                "Content-Length: 99999999999999999999999\r\n\r\n".to_string(),
                vec![
                    "invalid null -32700",
                    "lost: the Content-Length `99999999999999999999999` is not a byte count",
                ],
            ),
            (
                "Content-Length: 10\r\n".to_string(),
                vec![
                    "invalid null -32700",
                    "lost: the input ended inside a message header",
                ],
            ),
            (
                "Content-Len".to_string(),
                vec![
                    "invalid null -32700",
                    "lost: the input ended inside a message header",
                ],
            ),
            (
                format!("{}\r\n", "x".repeat(MAX_HEADER_LINE + 10)),
                vec![
                    "invalid null -32700",
                    "lost: a header line is longer than 8192 bytes",
                ],
            ),
            (
                "X: y\r\n".repeat(MAX_HEADER_BYTES / 6 + 1),
                vec![
                    "invalid null -32700",
                    "lost: a message header is longer than 65536 bytes",
                ],
            ),
            // A body shorter than announced.
            (
                "Content-Length: 100\r\n\r\n{\"a\":".to_string(),
                vec![
                    "invalid null -32700",
                    "lost: the input ended inside a message: 5 of the 100 bytes its Content-Length announced",
                ],
            ),
            (String::new(), vec!["end"]),
            ("\r\n\r\n".to_string(), vec!["end"]),
        ];
        for (input, want) in cases {
            assert_eq!(events(input.as_bytes()), want, "{input:.80?}");
        }
    }

    #[test]
    fn an_oversized_message_is_answered_and_skipped_without_being_stored() {
        let huge = MAX_MESSAGE_BYTES + 1;
        // Announced, then the input ends: answered, then lost.
        let input = format!("Content-Length: {huge}\r\n\r\n{{}}");
        let got = events(input.as_bytes());
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], "invalid null -32600");
        assert_eq!(got[1], "invalid null -32700");
        assert!(got[2].starts_with("lost: the input ended inside a message: 2 of"));
        // Sent in full: skipped, and the next message is read. A reader that yields the bytes
        // without storing them stands for the client.
        let head = format!("Content-Length: {huge}\r\n\r\n");
        let tail = framed(r#"{"method":"n"}"#);
        let stream = head
            .as_bytes()
            .chain(io::repeat(b' ').take(huge))
            .chain(tail.as_bytes());
        let mut out = Vec::new();
        read(io::BufReader::new(stream), |inc| {
            out.push(matches!(inc, Incoming::Message(_)));
            true
        });
        assert_eq!(out, [false, true, false]);
        // 10^15 bytes announced: no allocation (the test would abort otherwise).
        let got = events(b"Content-Length: 1000000000000000\r\n\r\n{}");
        assert_eq!(got[0], "invalid null -32600");
    }

    /// splitmix64, for the property test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Streams of messages of every kind the reader tells apart, each with the event it must
    /// produce, ended cleanly or by a piece that loses the framing: the reader hands over
    /// exactly the expected events. Then the same streams with bytes changed, cut or
    /// inserted at random: it never panics and always ends with an end event.
    #[test]
    fn every_stream_gives_the_expected_events() {
        let mut rng = Rng(7);
        for round in 0..3000 {
            let mut input = Vec::new();
            let mut want: Vec<String> = Vec::new();
            for _ in 0..rng.below(6) {
                let id = rng.below(1000);
                let (bytes, event) = match rng.below(9) {
                    0 => (
                        framed(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#)),
                        format!("request {id} m"),
                    ),
                    1 => (
                        framed(&format!(
                            r#"{{"jsonrpc":"2.0","id":"s{id}","method":"m","params":[1]}}"#
                        )),
                        format!("request \"s{id}\" m"),
                    ),
                    2 => (
                        framed(r#"{"jsonrpc":"2.0","method":"n","params":{"a":"\u00e9"}}"#),
                        "notification n".to_string(),
                    ),
                    3 => (
                        framed(&format!(r#"{{"id":{id}.5,"method":"m"}}"#)),
                        "invalid null -32600".to_string(),
                    ),
                    4 => (
                        framed(&format!("[{{\"id\":{id},\"method\":\"m\"}}]")),
                        "invalid null -32600".to_string(),
                    ),
                    5 => (
                        framed(&"{".repeat(rng.below(300) + 1)),
                        "invalid null -32700".to_string(),
                    ),
                    6 => (
                        format!("X-A: b\r\nContent-Type: text/html\r\n{}", framed("{}")),
                        "invalid null -32700".to_string(),
                    ),
                    7 => (
                        format!("\r\n{}", framed(&format!(r#"{{"id":{id},"result":{{}}}}"#))),
                        format!("response {id}"),
                    ),
                    _ => (
                        framed(&format!(
                            "{:width$}{{\"method\":\"n\"}}",
                            "",
                            width = rng.below(100)
                        )),
                        "notification n".to_string(),
                    ),
                };
                input.extend_from_slice(bytes.as_bytes());
                want.push(event);
            }
            match rng.below(4) {
                0 => {
                    input.extend_from_slice(b"Content-Length: 50\r\n\r\n{}");
                    want.push("invalid null -32700".to_string());
                    want.push("lost: the input ended inside a message: 2 of the 50 bytes its Content-Length announced".to_string());
                }
                1 => {
                    input.extend_from_slice(b"Content-Type: application/json\r\n\r\n{}");
                    want.push("invalid null -32700".to_string());
                    want.push("lost: a message header without Content-Length".to_string());
                }
                _ => want.push("end".to_string()),
            }
            assert_eq!(events(&input), want, "round {round}");
            // Mutated: changed, cut or inserted bytes.
            for _ in 0..3 {
                let mut bytes = input.clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(bytes.len() + 1);
                    match rng.below(3) {
                        0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                        1 => bytes.truncate(at),
                        _ => bytes.insert(at, b"\r\n:{}[]\"0 9aZ\xff"[rng.below(14)]),
                    }
                }
                let got = events(&bytes);
                let last = got.last().map(String::as_str).unwrap_or("");
                assert!(
                    last == "end" || last.starts_with("lost: "),
                    "round {round}: {got:?} for {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }

    #[test]
    fn writes_messages_and_null_id_errors() {
        let mut buf = Vec::new();
        let err = response_error(ErrorCode::ParseError, "bad");
        assert!(write(&mut buf, &Outgoing::NullIdError(err)).is_ok());
        let r = Response::new_err(RequestId::from(4), -32601, "no".to_string());
        assert!(write(&mut buf, &r.into()).is_ok());
        let text = String::from_utf8(buf).unwrap_or_default();
        let a = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#;
        let b = r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"no"}}"#;
        assert_eq!(
            text,
            format!(
                "Content-Length: {}\r\n\r\n{a}Content-Length: {}\r\n\r\n{b}",
                a.len(),
                b.len()
            )
        );
    }
}
