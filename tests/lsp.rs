//! The language server as an editor meets it: `gbpc lsp` runs as a process and the tests speak
//! JSON-RPC to it over stdio with Content-Length framing. Responses are snapshotted, one
//! snapshot per scenario. Also the JSON diagnostics of `gbpc check --message-format json`.
//!
//! Every read has a timeout, and the server process is killed when a test fails.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::snapshot;

const TIMEOUT: Duration = Duration::from_secs(30);
const URI: &str = "file:///work/policy.gbp";

/// A running `gbpc lsp`; killed on drop (a failing test leaves no process behind).
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<Value>,
    /// Notifications that arrived while waiting for a response.
    queued: Vec<Value>,
    next_id: i64,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read one framed message; `None` at the end of the stream or on a framing error.
fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut buf = vec![0; len?];
    r.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

impl Server {
    fn start() -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbpc"));
        cmd.arg("lsp");
        Server::spawn(cmd)
    }

    /// `gbpc lsp` whose address space is limited to `mib` MiB (`ulimit -v`): an attempt to
    /// allocate what a header announces fails in the server, not on the machine.
    fn start_limited(mib: u64) -> Server {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            &format!("ulimit -v {} && exec \"$0\" lsp", mib * 1024),
            env!("CARGO_BIN_EXE_gbpc"),
        ]);
        Server::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start gbpc lsp: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(msg) = read_message(&mut r) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Server {
            stdin: child.stdin.take(),
            child,
            rx,
            queued: Vec::new(),
            next_id: 1,
        }
    }

    /// Started and initialized with these client capabilities; returns the initialize result.
    fn initialized(capabilities: Value) -> (Server, Value) {
        let mut s = Server::start();
        let init = s.result(
            "initialize",
            json!({ "processId": null, "rootUri": null, "capabilities": capabilities }),
        );
        s.notify("initialized", json!({}));
        (s, init)
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    /// Bytes as they are, framing included.
    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("stdin closed"));
        stdin
            .write_all(bytes)
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write to the server: {e}"));
    }

    /// The next message that is not a notification (an answer, possibly with id null).
    fn answer(&mut self) -> Value {
        loop {
            let msg = self.recv();
            if msg.get("method").is_none() {
                return msg;
            }
            self.queued.push(msg);
        }
    }

    /// A field of /proc/PID/status in bytes (VmRSS, VmHWM).
    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|e| panic!("cannot read the server's status: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// Close stdin without `exit` and wait for the exit status.
    fn hang_up(mut self) -> i32 {
        self.stdin.take();
        self.wait()
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn recv(&mut self) -> Value {
        self.rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no message from the server within {TIMEOUT:?}: {e}"))
    }

    /// The whole response (with `result` or `error`) to a request.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let msg = self.recv();
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            self.queued.push(msg);
        }
    }

    /// The result of a request that must succeed.
    fn result(&mut self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params);
        assert!(resp.get("error").is_none(), "{method} failed: {resp}");
        resp.get("result").cloned().unwrap_or(Value::Null)
    }

    /// The parameters of the next notification with this method.
    fn notification(&mut self, method: &str) -> Value {
        if let Some(i) = self.queued.iter().position(|m| m["method"] == method) {
            return self.queued.remove(i)["params"].take();
        }
        loop {
            let msg = self.recv();
            if msg["method"] == method {
                return msg["params"].clone();
            }
            self.queued.push(msg);
        }
    }

    fn open(&mut self, text: &str) -> Value {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": URI, "languageId": "gbp", "version": 1, "text": text } }),
        );
        self.notification("textDocument/publishDiagnostics")
    }

    fn change(&mut self, version: i32, text: &str) -> Value {
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": URI, "version": version },
                "contentChanges": [{ "text": text }],
            }),
        );
        self.notification("textDocument/publishDiagnostics")
    }

    /// Send `exit` (after `shutdown` or not), close stdin and wait for the exit status.
    fn exit(mut self) -> i32 {
        self.notify("exit", Value::Null);
        self.stdin.take();
        self.wait()
    }

    fn wait(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.code().unwrap_or(-1),
                Ok(None) if start.elapsed() < TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => panic!("gbpc lsp did not exit within {TIMEOUT:?}"),
                Err(e) => panic!("cannot wait for gbpc lsp: {e}"),
            }
        }
    }

    fn shutdown_and_exit(mut self) -> i32 {
        let resp = self.request("shutdown", Value::Null);
        assert_eq!(resp["result"], Value::Null, "{resp}");
        assert!(resp.get("error").is_none(), "{resp}");
        self.exit()
    }
}

/// The LSP position (UTF-16 columns) of the `nth` occurrence of `needle` in `text`, plus
/// `delta` bytes.
fn pos(text: &str, needle: &str, nth: usize, delta: usize) -> Value {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .map(|(i, _)| i + delta)
        .unwrap_or_else(|| panic!("`{needle}` #{nth} is not in the text"));
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({
        "line": text[..at].matches('\n').count(),
        "character": text[line_start..at].encode_utf16().count(),
    })
}

fn at(text: &str, needle: &str, nth: usize, delta: usize) -> Value {
    json!({ "textDocument": { "uri": URI }, "position": pos(text, needle, nth, delta) })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A transcript of several requests: a heading for each, then the JSON answer.
struct Transcript(String);

impl Transcript {
    fn add(&mut self, what: &str, v: &Value) {
        self.0.push_str(&format!("=== {what}\n{}\n\n", pretty(v)));
    }
}

/// A clean policy: two tenants, a global contract, inheritance, endpoints, assertions.
const POLICY: &str = "# gbpc language server test policy
tenant shared {
  filter dns { udp 53; tcp 53 }
  global contract dns { subject lookup permit dns }
  group resolvers {
    select app=dns
    address 198.18.9.0/24
    endpoint ns1 198.18.9.53
    provides dns
  }
}

tenant shop {
  filter https { tcp 443 }
  filter postgres { tcp 5432 }
  contract web { subject tls permit https }
  contract db { subject sql permit postgres log }
  group web {
    select app=shop, tier=web
    address 198.18.1.0/24
    endpoint web1 198.18.1.10
    provides web
    consumes db
  }
  group web-canary extends web {
    select app=shop, tier=web-canary
    address 198.18.2.0/24
    endpoint canary1 198.18.2.10
  }
  group db isolated {
    select app=shop, tier=db
    address 198.18.3.0/24
    endpoint db1 198.18.3.10
    provides db
  }
  external internet {
    address 0.0.0.0/0 except 198.18.0.0/15
    consumes web
  }
  any { consumes shared/dns }
  assert web1 -> db1 tcp/5432 allow
  assert canary1 -> db1 tcp/5432 allow
  assert 203.0.113.7 -> web1 tcp/443 allow
  assert web1 -> shared/ns1 udp/53 allow
}
";

/// A broken policy: an undefined filter (with a did-you-mean fix), a duplicate (with related
/// information), and a syntax error in one declaration that hides nothing else.
const BROKEN: &str = "tenant shop {
  filter https { tcp 443 }
  filter https { tcp 8443 }
  contract web { subject tls permit htps }
  group web { select app=web provides web }
  group broken { select app=x provides }
  group client { select app=client consumes web }
}
";

const FIXED: &str = "tenant shop {
  filter https { tcp 443 }
  contract web { subject tls permit https }
  group web { select app=web address 198.18.1.0/24 provides web }
  group client { select app=client address 198.18.2.0/24 consumes web }
}
";

fn codes(diags: &Value) -> Vec<String> {
    diags["diagnostics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lsp_initialize_and_exit() {
    let (s, mut init) = Server::initialized(json!({}));
    assert_eq!(init["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    init["serverInfo"]["version"] = json!("[version]");
    snapshot!("lsp-initialize", &pretty(&init));
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-16");
    assert_eq!(s.shutdown_and_exit(), 0);
}

#[test]
fn lsp_diagnostics_follow_edits() {
    let (mut s, _) = Server::initialized(json!({}));
    let broken = s.open(BROKEN);
    snapshot!("lsp-diagnostics-broken", &pretty(&broken));
    let codes = codes(&broken);
    // The syntax error in `group broken` leaves the other declarations' diagnostics.
    for code in ["gbpc::E001", "gbpc::E010", "gbpc::E011"] {
        assert!(codes.iter().any(|c| c == code), "{code} missing: {codes:?}");
    }
    assert_eq!(broken["version"], 1);
    let fixed = s.change(2, FIXED);
    assert_eq!(fixed["diagnostics"], json!([]), "{fixed}");
    assert_eq!(fixed["version"], 2);
    // Break it again, then close it: closing clears the diagnostics.
    let again = s.change(3, BROKEN);
    assert_eq!(again["diagnostics"], broken["diagnostics"]);
    s.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": URI } }),
    );
    let closed = s.notification("textDocument/publishDiagnostics");
    assert_eq!(closed["diagnostics"], json!([]));
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// A burst of edits: the last diagnostics published are those of the last version, and the
/// outline (which waits for the check of the latest text) and a hover after it see the latest
/// text.
#[test]
fn lsp_requests_after_a_burst_see_the_latest_edit() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(FIXED);
    for v in 2..=40 {
        let text = if v % 2 == 0 { BROKEN } else { FIXED };
        s.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": URI, "version": v },
                "contentChanges": [{ "text": text }],
            }),
        );
    }
    // Version 40 is BROKEN: its subject permits `htps`, FIXED's `https`.
    let outline = s.result(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": URI } }),
    );
    assert!(outline.to_string().contains("permit htps"), "{outline}");
    let mut last = Value::Null;
    while last["version"] != 40 {
        last = s.notification("textDocument/publishDiagnostics");
        assert!(last["version"].as_i64().unwrap_or(0) <= 40, "{last}");
    }
    assert!(codes(&last).contains(&"gbpc::E001".to_string()), "{last}");
    // `htps` is a reference in BROKEN (in FIXED the line reads `https`).
    let hover = s.result("textDocument/hover", at(BROKEN, "htps", 0, 1));
    let text = hover["contents"]["value"].as_str().unwrap_or("");
    assert!(text.contains("`htps` is not defined"), "{hover}");
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// A policy of `n` groups in one tenant (as scripts/gen-policy.py makes them): large enough
/// that checking it takes a while.
fn big_policy(n: usize) -> String {
    let mut out = String::from("tenant scale {\n  filter web { tcp 80 }\n");
    for k in 0..n {
        out.push_str(&format!("  contract c{k} {{ subject s permit web }}\n"));
    }
    for i in 0..n {
        out.push_str(&format!(
            "  group g{i} {{\n    select app=g{i}\n    address 198.18.{}.{}/30\n    endpoint e{i} 198.18.{}.{}\n    provides c{i}\n    consumes c{}\n  }}\n",
            i / 64,
            (i % 64) * 4,
            i / 64,
            (i % 64) * 4 + 1,
            (i + 1) % n
        ));
    }
    out.push_str("}\n");
    out
}

/// Keystrokes sent back to back on a large policy: only the latest version is checked and
/// published, a hover is answered (from the previous check, positions mapped) while the check
/// runs instead of after it, and an outline request waiting for the check can be cancelled.
#[test]
fn lsp_a_burst_of_edits_is_checked_once_and_hovers_do_not_wait() {
    let text = big_policy(1000);
    let (mut s, _) = Server::initialized(json!({}));
    assert_eq!(codes(&s.open(&text)), Vec::<String>::new());
    // Typing into a comment at the end; the groups above do not move.
    let last = 21;
    for v in 2..=last {
        let typed = format!("{text}# {}", "x".repeat(v as usize));
        s.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": URI, "version": v },
                "contentChanges": [{ "text": typed }],
            }),
        );
    }
    let hover = s.result("textDocument/hover", at(&text, "group g1 ", 0, 6));
    let published = |s: &Server| {
        s.queued
            .iter()
            .filter(|m| m["method"] == "textDocument/publishDiagnostics")
            .map(|m| m["params"]["version"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        published(&s),
        Vec::<Value>::new(),
        "the hover waited for the check"
    );
    let value = hover["contents"]["value"].as_str().unwrap_or("");
    assert!(value.starts_with("**group** `scale/g1`"), "{hover}");
    assert_eq!(hover["range"]["start"], pos(&text, "group g1 ", 0, 6));
    // In the text being typed there is nothing to answer from yet.
    let typed_at = json!({ "line": text.lines().count(), "character": 4 });
    let inside = s.result(
        "textDocument/hover",
        json!({ "textDocument": { "uri": URI }, "position": typed_at }),
    );
    assert_eq!(inside, Value::Null);
    // The outline waits for the check of the latest text; cancelled, it is answered at once.
    let id = s.next_id;
    s.next_id += 1;
    s.send(
        &json!({ "jsonrpc": "2.0", "id": id, "method": "textDocument/documentSymbol",
        "params": { "textDocument": { "uri": URI } } }),
    );
    s.notify("$/cancelRequest", json!({ "id": id }));
    let cancelled = s.answer();
    assert_eq!(cancelled["id"], id, "{cancelled}");
    assert_eq!(cancelled["error"]["code"], -32800, "{cancelled}");
    assert_eq!(published(&s), Vec::<Value>::new());
    // Only the last version's diagnostics are published, and nothing after them.
    let diags = s.notification("textDocument/publishDiagnostics");
    assert_eq!(diags["version"], last, "{diags}");
    let down = s.request("shutdown", Value::Null);
    assert!(down.get("error").is_none(), "{down}");
    assert_eq!(published(&s), Vec::<Value>::new());
    assert_eq!(s.exit(), 0);
}

/// Memory per open document: the analysis keeps the text, the diagnostics, a compact name
/// index and the outline, and the checked model only for the few most recently used
/// documents; not the syntax tree and a model per document (scripts/bench-lsp.sh prints the
/// figures).
#[test]
fn lsp_open_documents_keep_little_memory() {
    let text = big_policy(300);
    let (mut s, _) = Server::initialized(json!({}));
    // One document first, so that the allocator's pools are set up before measuring.
    let uri = |d: usize| format!("file:///work/copy{d}.gbp");
    let open = |s: &mut Server, d: usize| {
        s.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri(d), "languageId": "gbp", "version": 1, "text": text } }),
        );
    };
    open(&mut s, 0);
    s.notification("textDocument/publishDiagnostics");
    let before = s.status("VmRSS");
    let docs = 16;
    for d in 1..=docs {
        open(&mut s, d);
    }
    for _ in 1..=docs {
        s.notification("textDocument/publishDiagnostics");
    }
    // A hover on a document whose model was dropped has it rebuilt.
    let hover = s.result(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri(1) }, "position": pos(&text, "group g7 ", 0, 6) }),
    );
    assert!(hover.to_string().contains("g7"), "{hover}");
    let per_doc = s.status("VmRSS").saturating_sub(before) / docs as u64;
    // Resident memory, allocator slack included: 10 to 23 times the text now, 56 before.
    let limit = 35 * text.len() as u64;
    assert!(
        per_doc < limit,
        "{per_doc} bytes per open document of {} bytes (limit {limit})",
        text.len()
    );
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// A Content-Length far beyond the limit is answered at once and the body is not stored: the
/// server, limited to 1 GiB of address space, stays small. The input then ends inside the
/// announced body: the framing is lost, and the server stops with status 2.
#[test]
fn lsp_huge_content_length_is_refused_without_allocating() {
    for huge in ["1000000000000000", "4000000000"] {
        let mut s = Server::start_limited(1024);
        s.result("initialize", json!({ "capabilities": {} }));
        s.send_raw(format!("Content-Length: {huge}\r\n\r\n{{}}").as_bytes());
        let answer = s.answer();
        assert_eq!(answer["id"], Value::Null, "{answer}");
        assert_eq!(answer["error"]["code"], -32600, "{answer}");
        let shown = s.notification("window/showMessage");
        assert!(
            shown["message"].as_str().unwrap_or("").contains(huge),
            "{shown}"
        );
        // 16 MiB of the body: read (the pipe holds 64 KiB) and dropped.
        s.send_raw(&vec![b' '; 16 << 20]);
        let peak = s.status("VmHWM");
        assert!(peak < 100 << 20, "{huge}: the server grew to {peak} bytes");
        assert_eq!(s.hang_up(), 2, "{huge}");
    }
}

/// What is not one JSON-RPC message gets the JSON-RPC error, and the server goes on: a body
/// that is not JSON (-32700), a batch, something that is no message, and request ids that
/// are neither 32-bit integers nor strings (-32600, id null).
#[test]
fn lsp_malformed_messages_get_errors_and_the_server_goes_on() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(POLICY);
    let mut t = Transcript(String::new());
    for (what, body) in [
        ("not JSON", b"{\"jsonrpc\": \"2.0\", \"id\": 1,".to_vec()),
        ("not UTF-8", b"{\"method\": \"\xff\"}".to_vec()),
        ("plain text", b"hello".to_vec()),
        (
            "a batch",
            br#"[{"jsonrpc":"2.0","id":90,"method":"shutdown"}]"#.to_vec(),
        ),
        ("an empty batch", b"[]".to_vec()),
        ("a number", b"42".to_vec()),
        ("an empty object", b"{}".to_vec()),
        (
            "id 1.5",
            br#"{"jsonrpc":"2.0","id":1.5,"method":"shutdown"}"#.to_vec(),
        ),
        (
            "id 2^70",
            br#"{"jsonrpc":"2.0","id":1180591620717411303424,"method":"shutdown"}"#.to_vec(),
        ),
        (
            "id 2^31",
            br#"{"jsonrpc":"2.0","id":2147483648,"method":"shutdown"}"#.to_vec(),
        ),
        (
            "id null",
            br#"{"jsonrpc":"2.0","id":null,"method":"shutdown"}"#.to_vec(),
        ),
        (
            "id true",
            br#"{"jsonrpc":"2.0","id":true,"method":"shutdown"}"#.to_vec(),
        ),
        (
            "a method that is not a string",
            br#"{"jsonrpc":"2.0","id":91,"method":7}"#.to_vec(),
        ),
        (
            "a request without a method",
            br#"{"jsonrpc":"2.0","id":92}"#.to_vec(),
        ),
    ] {
        let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        framed.extend_from_slice(&body);
        s.send_raw(&framed);
        let answer = s.answer();
        t.add(what, &answer);
        // Every one is answered, and none of the `shutdown`s above was taken.
        let still = s.result("textDocument/hover", at(POLICY, "db1 tcp", 0, 0));
        assert!(still.is_object(), "{what}: {still}");
    }
    snapshot!("lsp-malformed-messages", &t.0);
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// Framing errors: a body shorter than announced and then the end of the input, or a header
/// without Content-Length: a Parse error, and the server stops with status 2 (it cannot find
/// the next message). Header lines it can skip do not stop it.
#[test]
fn lsp_lost_framing_ends_the_session_with_status_2() {
    for (what, bytes) in [
        ("a short body", "Content-Length: 100\r\n\r\n{\"jsonrpc\":"),
        (
            "no Content-Length",
            "Content-Type: application/vscode-jsonrpc\r\n\r\n{}",
        ),
        ("a header cut off", "Content-Len"),
    ] {
        let (mut s, _) = Server::initialized(json!({}));
        s.send_raw(bytes.as_bytes());
        if what != "no Content-Length" {
            s.stdin.take();
        }
        let answer = s.answer();
        assert_eq!(answer["error"]["code"], -32700, "{what}: {answer}");
        assert_eq!(answer["id"], Value::Null, "{what}: {answer}");
        assert_eq!(s.hang_up(), 2, "{what}");
    }
    // An unknown header field and a bad Content-Type: the message is refused, not the session.
    let (mut s, _) = Server::initialized(json!({}));
    let body = r#"{"jsonrpc":"2.0","id":5,"method":"shutdown"}"#;
    s.send_raw(
        format!(
            "X-Editor: test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let answer = s.answer();
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    s.send_raw(
        format!(
            "content-length: {}\r\ncontent-type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let answer = s.answer();
    assert_eq!(answer["id"], 5, "{answer}");
    assert_eq!(answer["result"], Value::Null, "{answer}");
    assert_eq!(s.exit(), 0);
}

#[test]
fn lsp_incremental_changes_apply_in_order() {
    let (mut s, _) = Server::initialized(json!({}));
    let broken = s.open(BROKEN);
    assert!(codes(&broken).contains(&"gbpc::E010".to_string()));
    // Two ranged changes in one notification: fix the typo, then drop the broken group.
    let typo = pos(BROKEN, "htps", 0, 0);
    let typo_end = pos(BROKEN, "htps", 0, 4);
    let group_start = pos(BROKEN, "  group broken", 0, 0);
    let group_end = pos(BROKEN, "  group client", 0, 0);
    s.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": URI, "version": 2 },
            "contentChanges": [
                { "range": { "start": typo, "end": typo_end }, "text": "https" },
                { "range": { "start": group_start, "end": group_end }, "text": "" },
            ],
        }),
    );
    let after = s.notification("textDocument/publishDiagnostics");
    let codes = codes(&after);
    assert!(
        !codes.iter().any(|c| c == "gbpc::E010" || c == "gbpc::E001"),
        "{after}"
    );
    assert!(codes.iter().any(|c| c == "gbpc::E011"), "{after}");
    assert_eq!(s.shutdown_and_exit(), 0);
}

#[test]
fn lsp_hover() {
    let (mut s, _) = Server::initialized(json!({}));
    assert_eq!(codes(&s.open(POLICY)), Vec::<String>::new());
    let mut t = Transcript(String::new());
    for (what, needle, nth) in [
        (
            "group web-canary (inherits from web)",
            "web-canary extends",
            0,
        ),
        ("group db (its declaration)", "db isolated", 0),
        ("contract db (in consumes)", "consumes db", 0),
        (
            "global contract shared/dns (qualified, name part)",
            "dns }\n  assert",
            0,
        ),
        ("tenant shared (qualified, tenant part)", "shared/dns", 0),
        ("filter postgres (in a subject)", "postgres log", 0),
        ("endpoint db1 (in an assertion)", "db1 tcp", 0),
        ("endpoint ns1 of another tenant", "ns1 udp", 0),
        ("any", "any {", 0),
        ("an assertion's verdict", "allow", 1),
        ("external group internet", "internet {", 0),
    ] {
        let offset = if needle.starts_with("consumes") {
            "consumes ".len()
        } else {
            0
        };
        let r = s.result("textDocument/hover", at(POLICY, needle, nth, offset));
        assert!(r.is_object(), "{what}: no hover");
        t.add(what, &r);
    }
    let nothing = s.result("textDocument/hover", at(POLICY, "  select app=dns", 0, 0));
    t.add("whitespace: nothing", &nothing);
    assert_eq!(nothing, Value::Null);
    snapshot!("lsp-hover", &t.0);
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// Hover says what `both-ways`, `preferred` and `unenforced` mean, and lists none of the
/// contracts they imply among a group's contracts.
#[test]
fn lsp_hover_says_both_ways_preferred_and_unenforced() {
    let src = "tenant t {
  filter f { tcp 873 }
  contract repl { subject sync permit f both-ways log }
  group a preferred { select app=a provides repl }
  group b preferred { select app=b consumes repl }
}
tenant lab unenforced {
  group x { select app=x }
}
";
    let (mut s, _) = Server::initialized(json!({}));
    assert_eq!(codes(&s.open(src)), Vec::<String>::new());
    let hover = |s: &mut Server, needle: &str| -> String {
        let r = s.result("textDocument/hover", at(src, needle, 0, 0));
        assert!(r.is_object(), "{needle}: no hover");
        r.to_string()
    };
    let repl = hover(&mut s, "repl {");
    assert!(
        repl.contains("both-ways (also provider to consumer) log"),
        "{repl}"
    );
    let a = hover(&mut s, "a preferred");
    assert!(a.contains("preferred: talks freely"), "{a}");
    assert!(a.contains("provides: `repl`"), "{a}");
    assert!(
        !a.contains("(preferred groups)") && !a.contains(".preferred"),
        "{a}"
    );
    let lab = hover(&mut s, "lab unenforced");
    assert!(lab.contains("(unenforced: every flow"), "{lab}");
    assert!(lab.contains("0 contracts"), "{lab}");
    assert_eq!(s.shutdown_and_exit(), 0);
}

#[test]
fn lsp_definition_and_references() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(POLICY);
    let mut t = Transcript(String::new());
    for (what, needle, nth, delta) in [
        ("filter postgres from a subject", "postgres log", 0, 2),
        (
            "global contract from `shared/dns`",
            "shared/dns",
            0,
            "shared/".len(),
        ),
        ("tenant from `shared/dns`", "shared/dns", 0, 1),
        (
            "parent group from `extends web`",
            "extends web",
            0,
            "extends ".len(),
        ),
        ("endpoint from an assertion", "canary1 ->", 0, 0),
        (
            "endpoint of another tenant",
            "shared/ns1",
            0,
            "shared/".len(),
        ),
        ("the definition itself", "group db", 0, "group ".len()),
    ] {
        let r = s.result("textDocument/definition", at(POLICY, needle, nth, delta));
        assert!(!r.is_null(), "{what}: no definition");
        t.add(&format!("definition: {what}"), &r);
    }
    let undefined = s.result("textDocument/definition", at(POLICY, "tcp 443", 0, 0));
    assert_eq!(undefined, Value::Null);
    for (what, needle, delta, decl) in [
        (
            "contract db, with its declaration",
            "consumes db",
            "consumes ".len(),
            true,
        ),
        (
            "group web, without its declaration",
            "extends web",
            "extends ".len(),
            false,
        ),
        ("tenant shared", "tenant shared", "tenant ".len(), true),
    ] {
        let mut p = at(POLICY, needle, 0, delta);
        p["context"] = json!({ "includeDeclaration": decl });
        let r = s.result("textDocument/references", p);
        t.add(&format!("references: {what}"), &r);
    }
    snapshot!("lsp-definition-references", &t.0);
    assert_eq!(s.shutdown_and_exit(), 0);
}

#[test]
fn lsp_rename() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(POLICY);
    let mut t = Transcript(String::new());
    let on_web = at(POLICY, "extends web", 0, "extends ".len());
    let prep = s.result("textDocument/prepareRename", on_web.clone());
    t.add("prepareRename on `web` in `extends web`", &prep);
    let mut p = on_web.clone();
    p["newName"] = json!("frontend");
    let edit = s.result("textDocument/rename", p);
    // The group `web` is renamed; the contract and the filter named `web` are not.
    let edits = edit["changes"][URI].as_array().map_or(0, Vec::len);
    assert_eq!(edits, 2, "{edit}");
    t.add("rename group web -> frontend", &edit);
    let mut p = at(POLICY, "tenant shared", 0, "tenant ".len());
    p["newName"] = json!("common");
    let edit = s.result("textDocument/rename", p);
    t.add(
        "rename tenant shared -> common (qualified names too)",
        &edit,
    );
    let mut p = on_web.clone();
    p["newName"] = json!("db");
    let taken = s.request("textDocument/rename", p);
    t.add("rename group web -> db (taken)", &taken);
    assert!(taken.get("error").is_some());
    let mut p = on_web;
    p["newName"] = json!("Web_Tier");
    let bad = s.request("textDocument/rename", p);
    t.add("rename group web -> Web_Tier (not a DNS label)", &bad);
    assert!(bad.get("error").is_some());
    let any = s.request("textDocument/prepareRename", at(POLICY, "any {", 0, 0));
    t.add("prepareRename on `any`", &any);
    assert!(any.get("error").is_some());
    let none = s.result("textDocument/prepareRename", at(POLICY, "{ udp", 0, 0));
    assert_eq!(none, Value::Null);
    snapshot!("lsp-rename", &t.0);
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// The outline as an indented list: kind, name, detail, range and selection range.
fn outline(symbols: &Value, depth: usize, out: &mut String) {
    let range = |r: &Value| {
        format!(
            "{}:{}-{}:{}",
            r["start"]["line"], r["start"]["character"], r["end"]["line"], r["end"]["character"]
        )
    };
    for s in symbols.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{}{} {} ({}) {} sel {}\n",
            "  ".repeat(depth),
            s["kind"],
            s["name"].as_str().unwrap_or(""),
            s["detail"].as_str().unwrap_or(""),
            range(&s["range"]),
            range(&s["selectionRange"]),
        ));
        outline(&s["children"], depth + 1, out);
    }
}

#[test]
fn lsp_document_symbols() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(POLICY);
    let r = s.result(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": URI } }),
    );
    let mut out = String::from("kind name (detail) range sel selectionRange\n");
    outline(&r, 0, &mut out);
    snapshot!("lsp-document-symbols", &out);
    assert_eq!(r.as_array().map(Vec::len), Some(2));
    // On a broken file the outline still has every declaration that parsed.
    s.change(2, BROKEN);
    let r = s.result(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": URI } }),
    );
    let names: Vec<&str> = r[0]["children"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["https", "https", "web", "web", "client"]);
    assert_eq!(s.shutdown_and_exit(), 0);
}

#[test]
fn lsp_completion() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(POLICY);
    // Type into the policy at several places; each edit leaves the file incomplete.
    // Type into the policy at several places (`|` is the cursor); each edit leaves the file
    // incomplete, as it is while someone types.
    let cases: &[(&str, &str, &str)] = &[
        (
            "a new statement in a group",
            "    consumes db\n",
            "    consumes db\n    |\n",
        ),
        (
            "after `consumes`",
            "    consumes db\n",
            "    consumes db, |\n",
        ),
        (
            "after `permit`",
            "subject sql permit postgres log",
            "subject sql permit |",
        ),
        (
            "after `extends`",
            "group web-canary extends web",
            "group web-canary extends |",
        ),
        ("after `assert`", "  assert web1 -> db1", "  assert |"),
        (
            "after `provides`, a partly typed name",
            "    provides db\n",
            "    provides d|\n",
        ),
        ("a new declaration in a tenant", "  any {", "  |\n  any {"),
        (
            "after an assertion's probe",
            "shared/ns1 udp/53 allow",
            "shared/ns1 udp/53 |",
        ),
    ];
    let mut t = Transcript(String::new());
    let mut version = 1;
    for (what, from, to) in cases {
        version += 1;
        let cursor_in_to = to.find('|').unwrap_or(0);
        let to = to.replacen('|', "", 1);
        let text = POLICY.replacen(from, &to, 1);
        s.change(version, &text);
        let end = text.find(&to).unwrap_or(0) + cursor_in_to;
        let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        let position = json!({
            "line": text[..end].matches('\n').count(),
            "character": text[line_start..end].encode_utf16().count(),
        });
        let r = s.result(
            "textDocument/completion",
            json!({ "textDocument": { "uri": URI }, "position": position }),
        );
        let items: Vec<String> = r
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                format!(
                    "{} (kind {}) {}",
                    i["label"].as_str().unwrap_or(""),
                    i["kind"],
                    i["detail"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert!(!items.is_empty(), "{what}: nothing offered");
        t.0.push_str(&format!("=== {what}\n{}\n\n", items.join("\n")));
        if what.starts_with("after `provides`") {
            // The partly typed word is what the completion replaces.
            let edit = &r[0]["textEdit"];
            t.add("its text edit", edit);
        }
    }
    snapshot!("lsp-completion", &t.0);
    assert_eq!(s.shutdown_and_exit(), 0);
}

#[test]
fn lsp_code_action_applies_the_did_you_mean_fix() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(BROKEN);
    let start = pos(BROKEN, "htps", 0, 1);
    let r = s.result(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": URI },
            "range": { "start": start, "end": start },
            "context": { "diagnostics": [] },
        }),
    );
    snapshot!("lsp-code-action", &pretty(&r));
    let edit = &r[0]["edit"]["changes"][URI][0];
    assert_eq!(edit["newText"], "https");
    assert_eq!(edit["range"]["start"], pos(BROKEN, "htps", 0, 0));
    // Nothing to fix on a line without diagnostics.
    let elsewhere = pos(BROKEN, "tenant", 0, 0);
    let r = s.result(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": URI },
            "range": { "start": elsewhere, "end": elsewhere },
            "context": { "diagnostics": [] },
        }),
    );
    assert_eq!(r, json!([]));
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// A reference after a non-ASCII character on the same line: its column differs between
/// UTF-16 and UTF-8, and the server uses whichever was negotiated.
#[test]
fn lsp_position_encodings() {
    let text = "tenant t {\n  filter f { tcp 80 }\n  contract c { subject s permit f }\n  group g { select app=\"\u{1F600}\" provides c }\n  group h { select app=h consumes c }\n}\n";
    let c_use = text.find("provides c").unwrap_or(0) + "provides ".len();
    let line_start = text[..c_use].rfind('\n').map_or(0, |i| i + 1);
    let col16 = text[line_start..c_use].encode_utf16().count();
    let col8 = c_use - line_start;
    assert_ne!(col16, col8);
    for (offered, expect, col) in [
        (json!(["utf-16"]), "utf-16", col16),
        (json!(["utf-8", "utf-16"]), "utf-8", col8),
    ] {
        let (mut s, init) =
            Server::initialized(json!({ "general": { "positionEncodings": offered } }));
        assert_eq!(init["capabilities"]["positionEncoding"], expect);
        let diags = s.open(text);
        // E017: the emoji is not a valid label value; it ends where the string ends.
        let label = diags["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["code"] == "gbpc::E017")
            .cloned()
            .unwrap_or_default();
        let quote_end = text.find("\" provides").unwrap_or(0) + 1 - line_start;
        let quote_end16 = text[line_start..line_start + quote_end]
            .encode_utf16()
            .count();
        let want_end = if expect == "utf-8" {
            quote_end
        } else {
            quote_end16
        };
        assert_eq!(label["range"]["end"]["character"], want_end, "{diags}");
        let def = s.result(
            "textDocument/definition",
            json!({ "textDocument": { "uri": URI }, "position": { "line": 3, "character": col } }),
        );
        assert_eq!(def["range"]["start"]["line"], 2, "{expect}: {def}");
        let hover = s.result(
            "textDocument/hover",
            json!({ "textDocument": { "uri": URI }, "position": { "line": 3, "character": col } }),
        );
        assert_eq!(
            hover["range"]["start"]["character"], col,
            "{expect}: {hover}"
        );
        assert_eq!(s.shutdown_and_exit(), 0);
    }
}

#[test]
fn lsp_bad_requests_get_errors_not_crashes() {
    let mut s = Server::start();
    let early = s.request("textDocument/hover", json!({}));
    assert_eq!(early["error"]["code"], -32002, "{early}");
    let init = s.request("initialize", json!({ "capabilities": "not an object" }));
    assert_eq!(init["error"]["code"], -32602, "{init}");
    s.result("initialize", json!({ "capabilities": {} }));
    s.notify("initialized", json!({}));
    s.open(POLICY);
    let mut t = Transcript(String::new());
    for (what, method, params) in [
        (
            "params of the wrong type",
            "textDocument/hover",
            json!("garbage"),
        ),
        (
            "missing position",
            "textDocument/definition",
            json!({ "textDocument": { "uri": URI } }),
        ),
        (
            "a document that is not open",
            "textDocument/hover",
            json!({ "textDocument": { "uri": "file:///other.gbp" }, "position": { "line": 0, "character": 0 } }),
        ),
        (
            "an unknown method",
            "textDocument/semanticTokens/full",
            json!({ "textDocument": { "uri": URI } }),
        ),
    ] {
        let r = s.request(method, params);
        assert!(r.get("error").is_some(), "{what}: {r}");
        t.add(what, &r);
    }
    // Positions far outside the text are clamped, not trusted.
    let far = s.result(
        "textDocument/hover",
        json!({ "textDocument": { "uri": URI }, "position": { "line": 4000000000u32, "character": 4000000000u32 } }),
    );
    t.add("a position past the end", &far);
    // Malformed notifications are ignored; the server still answers.
    s.notify("textDocument/didChange", json!({ "nonsense": true }));
    s.notify("textDocument/didOpen", json!(42));
    let still = s.result("textDocument/hover", at(POLICY, "db1 tcp", 0, 0));
    assert!(still.is_object());
    let down = s.request("shutdown", Value::Null);
    assert!(down.get("error").is_none());
    let after = s.request("textDocument/hover", at(POLICY, "db1 tcp", 0, 0));
    t.add("a request after shutdown", &after);
    assert_eq!(after["error"]["code"], -32600);
    snapshot!("lsp-bad-requests", &t.0);
    assert_eq!(s.exit(), 0);
}

#[test]
fn lsp_exit_without_shutdown_is_status_1() {
    let (s, _) = Server::initialized(json!({}));
    assert_eq!(s.exit(), 1);
}

#[test]
fn lsp_end_of_input_stops_the_server() {
    let (mut s, _) = Server::initialized(json!({}));
    s.open(BROKEN);
    s.stdin.take();
    let start = Instant::now();
    while s.child.try_wait().ok().flatten().is_none() {
        assert!(
            start.elapsed() < TIMEOUT,
            "gbpc lsp kept running without input"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `gbpc check --message-format json`: one JSON object per line with the documented fields
/// (docs/diagnostics-json.md).
#[test]
fn json_diagnostics_have_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("broken.gbp");
    // A label value with an emoji, and an undefined name after it on the same line: there
    // `column` (Unicode scalar values) and `column_utf16` differ.
    let src = format!(
        "{BROKEN}tenant other {{\n  contract web {{ subject s permit x }}\n  group emo {{ select app=\"caf\u{e9} \u{1F600}\" provides webb }}\n}}\n"
    );
    std::fs::write(&path, &src).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .args(["check", "--message-format", "json"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 5, "{stdout}");
    let check_pos = |p: &Value| {
        let offset = p["offset"].as_u64().unwrap_or(u64::MAX) as usize;
        assert!(offset <= src.len(), "{p}");
        let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
        let prefix = &src[line_start..offset];
        assert_eq!(p["line"], src[..offset].matches('\n').count() + 1, "{p}");
        assert_eq!(p["column"], prefix.chars().count() + 1, "{p}");
        assert_eq!(p["column_utf16"], prefix.encode_utf16().count() + 1, "{p}");
        assert_eq!(p.as_object().map(|o| o.len()), Some(4), "{p}");
    };
    let mut fixes = 0;
    for line in &lines {
        let d: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let keys: Vec<&str> = d
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "code", "severity", "message", "help", "file", "labels", "fixes"
            ],
            "{line}"
        );
        assert!(d["code"].as_str().is_some_and(|c| c.starts_with("gbpc::")));
        assert!(d["severity"] == "error" || d["severity"] == "warning");
        assert!(d["message"].is_string());
        assert!(d["help"].is_string() || d["help"].is_null());
        assert_eq!(d["file"], path.display().to_string());
        let labels = d["labels"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            labels.iter().filter(|l| l["primary"] == true).count(),
            1,
            "{line}"
        );
        for l in &labels {
            assert!(
                l["primary"].is_boolean() && l["message"].is_string(),
                "{line}"
            );
            check_pos(&l["start"]);
            check_pos(&l["end"]);
        }
        for f in d["fixes"].as_array().cloned().unwrap_or_default() {
            fixes += 1;
            assert!(
                f["title"].is_string() && f["replacement"].is_string(),
                "{line}"
            );
            check_pos(&f["start"]);
            check_pos(&f["end"]);
        }
    }
    assert!(fixes >= 1, "the did-you-mean fix is missing: {stdout}");
    // Columns are counted in Unicode scalar values and in UTF-16 code units after the emoji.
    let emo = lines
        .iter()
        .find(|l| l.contains("contract `webb`"))
        .unwrap_or_else(|| panic!("no E010 for webb: {stdout}"));
    let d: Value = serde_json::from_str(emo).unwrap_or_default();
    let start = &d["labels"][0]["start"];
    assert_eq!(
        start["column_utf16"].as_u64(),
        start["column"].as_u64().map(|c| c + 1),
        "{emo}"
    );
    assert_eq!(d["fixes"][0]["replacement"], "web", "{emo}");
}

#[test]
fn lsp_formatting() {
    let messy = "tenant   shop{filter https{tcp 443}\n# the web tier\ncontract web{subject tls permit https}   group web{select app=web;address 198.18.1.0/24;provides web}\ngroup client { select app=client address 198.18.2.0/24 consumes web }}\n";
    let (mut s, init) = Server::initialized(json!({}));
    assert_eq!(init["capabilities"]["documentFormattingProvider"], true);
    s.open(messy);
    let options = json!({ "tabSize": 2, "insertSpaces": true });
    let doc = json!({ "uri": URI });
    let edits = s.result(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": options }),
    );
    let mut t = Transcript(String::new());
    t.add("a messy policy: one edit replacing the whole text", &edits);
    let edits = edits.as_array().cloned().unwrap_or_default();
    assert_eq!(edits.len(), 1);
    let formatted = edits[0]["newText"].as_str().unwrap_or("").to_string();
    // The same formatter as `gbpc fmt`, and the edit covers the whole document.
    assert_eq!(
        Ok(formatted.clone()),
        gbpc::fmt::format(messy).map_err(|_| ())
    );
    assert_eq!(
        edits[0]["range"]["start"],
        json!({ "line": 0, "character": 0 })
    );
    assert_eq!(edits[0]["range"]["end"], pos(messy, "\n", 3, 1));
    s.change(2, &formatted);
    let again = s.result(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": options }),
    );
    t.add("a formatted policy: no edits", &again);
    assert_eq!(again, json!([]));
    s.change(3, BROKEN);
    let broken = s.result(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": options }),
    );
    t.add("a policy with a syntax error: not formatted", &broken);
    assert_eq!(broken, Value::Null);
    snapshot!("lsp-formatting", &t.0);
    assert_eq!(s.shutdown_and_exit(), 0);
}

/// The TextMate grammar is valid JSON, its regexes compile, and it highlights sample lines and
/// every example as expected (editors/check-grammar.py, Python's `re` standing in for
/// Oniguruma).
#[test]
fn textmate_grammar_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/editors/check-grammar.py"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (the grammar check needs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

/// The example in docs/diagnostics-json.md is what gbpc writes.
#[test]
fn json_diagnostics_doc_example_is_current() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/diagnostics-json.md"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let block = |after: &str, lang: &str| -> String {
        let from = doc.find(after).unwrap_or_else(|| panic!("no {after:?}"));
        let open = format!("```{lang}\n");
        let start = doc[from..].find(&open).map(|i| from + i + open.len());
        let start = start.unwrap_or_else(|| panic!("no block after {after:?}"));
        let end = doc[start..].find("```").map_or(doc.len(), |i| start + i);
        doc[start..end].to_string()
    };
    let policy = block("`ex.gbp`:", "");
    let line = block("## Format", "json");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("ex.gbp"), &policy).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_gbpc"))
        .args(["check", "ex.gbp", "--message-format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(
        lines[3],
        line.trim_end(),
        "docs/diagnostics-json.md is stale"
    );
    let e011: Value = serde_json::from_str(lines[1]).unwrap_or_default();
    let documented: Value =
        serde_json::from_str(&block("has a secondary label", "json")).unwrap_or_default();
    assert_eq!(e011, documented, "docs/diagnostics-json.md is stale");
}
