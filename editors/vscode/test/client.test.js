// The extension's compiled client (out/extension.js) and the real vscode-languageclient, run
// under Node's test runner with `vscode` replaced by test/vscode-stub.js, against a real
// `gbpc lsp`: start-up, the diagnostics round trip, a quick fix, formatting, a restart when
// `gbpc.path` changes, a clean stop, and a clear message when the executable is missing.
//
// GBPC=path/to/gbpc GBPC_EXTENSION_DIR=dir node --test test/client.test.js
// scripts/build-vscode.sh sets GBPC to the gbpc under test and GBPC_EXTENSION_DIR to the
// unpacked .vsix, so that the packaged code is what runs (its own copy of vscode-languageclient
// included). Defaults: the debug build of this repository, and this directory (after `tsc`).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const Module = require("module");
const path = require("path");
const fs = require("fs");
const os = require("os");
const { execFileSync } = require("child_process");

const STUB = path.join(__dirname, "vscode-stub.js");
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === "vscode" ? STUB : resolve.call(this, request, ...rest);
};

const vscode = require("vscode");
const EXTENSION_DIR = path.resolve(process.env.GBPC_EXTENSION_DIR || path.join(__dirname, ".."));
const ext = require(path.join(EXTENSION_DIR, "out", "extension.js"));

const GBPC = path.resolve(process.env.GBPC || path.join(__dirname, "..", "..", "..", "target", "debug", "gbpc"));
const TIMEOUT = 20000;

const BROKEN = `tenant shop {
  filter https { tcp 443 }
  filter https { tcp 8443 }
  contract web { subject tls permit htps }
  group web { select app=web provides web }
  group broken { select app=x provides }
  group client { select app=client consumes web }
}
`;

const UNFORMATTED = `tenant shop {
filter https {tcp 443}
   contract web {subject tls permit https}
group web { select app=web   address 198.18.1.0/24 provides web }
  group client { select app=client address 198.18.2.0/24 consumes web }
}
`;

/** The line and UTF-16 column of `needle` (+ delta) in `text`. */
function pos(text, needle, delta = 0) {
  const at = text.indexOf(needle) + delta;
  assert.ok(at >= delta, `${needle} not in text`);
  const before = text.slice(0, at).split("\n");
  return new vscode.Position(before.length - 1, before[before.length - 1].length);
}

function collection() {
  const c = vscode._test.diagnosticCollections.find((d) => d.name === "gbpc");
  assert.ok(c, "the client created its diagnostics collection");
  return c;
}

/** Wait until the collection holds diagnostics for `uri` that satisfy `pred`. */
function diagnosticsFor(uri, pred = () => true) {
  const c = collection();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.changed.off("change", check);
      reject(new Error(`no diagnostics for ${uri} within ${TIMEOUT} ms`));
    }, TIMEOUT);
    function check() {
      const d = c.get(uri);
      if (d !== undefined && pred(d)) {
        clearTimeout(timer);
        c.changed.off("change", check);
        resolve(d);
      }
    }
    c.changed.on("change", check);
    check();
  });
}

function provider(kind) {
  const r = vscode._test.registered.filter((x) => x.kind === kind);
  assert.equal(r.length, 1, `one ${kind} registration`);
  return r[0].args[1];
}

function codeOf(d) {
  return typeof d.code === "object" ? d.code.value : d.code;
}

const token = () => new vscode.CancellationTokenSource().token;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gbpc-vscode-"));
const context = { subscriptions: [] };

test("the extension under test is the one asked for", () => {
  const client = require.resolve("vscode-languageclient/node", { paths: [EXTENSION_DIR] });
  assert.ok(client.startsWith(EXTENSION_DIR + path.sep), `${client} is inside ${EXTENSION_DIR}`);
});

test("gbpc.path: a name is used as is, a leading ~ is the home directory", () => {
  assert.equal(ext.serverPath(undefined), "gbpc");
  assert.equal(ext.serverPath("  "), "gbpc");
  assert.equal(ext.serverPath("/opt/gbpc"), "/opt/gbpc");
  assert.equal(ext.serverPath("~/.cargo/bin/gbpc"), path.join(os.homedir(), ".cargo/bin/gbpc"));
});

test("the extension starts gbpc lsp from gbpc.path, with the trace setting", async () => {
  assert.ok(fs.existsSync(GBPC), `${GBPC} exists (build gbpc first or set GBPC)`);
  vscode._test.settings.set("gbpc.path", GBPC);
  vscode._test.settings.set("gbpc.trace.server", "messages");
  await ext.activate(context);
  const client = ext.currentClient();
  assert.ok(client, "a client was created");
  assert.ok(client.isRunning(), "the client is running");
  const init = client.initializeResult;
  assert.equal(init.serverInfo.name, "gbpc");
  assert.ok(init.capabilities.codeActionProvider, "the server offers code actions");
  assert.ok(init.capabilities.documentFormattingProvider, "the server offers formatting");
  const kinds = new Set(vscode._test.registered.map((r) => r.kind));
  for (const k of [
    "registerCodeActionsProvider",
    "registerDocumentFormattingEditProvider",
    "registerHoverProvider",
    "registerDefinitionProvider",
    "registerRenameProvider",
    "registerCompletionItemProvider",
  ]) {
    assert.ok(kinds.has(k), `the client wired ${k}`);
  }
  const restart = vscode._test.registered.find((r) => r.kind === "registerCommand" && r.args[0] === "gbpc.restartServer");
  assert.ok(restart, "the restart command is registered");
  assert.ok(
    vscode._test.outputLines.some((l) => /Sending request 'initialize/.test(l)),
    "gbpc.trace.server=messages logs the protocol in the output channel",
  );
  assert.deepEqual(vscode._test.messages, []);
});

let doc;

test("diagnostics round trip: an opened policy gets gbpc's diagnostics", async () => {
  const file = path.join(tmp, "broken.gbp");
  fs.writeFileSync(file, BROKEN);
  doc = new vscode._test.TextDocument(vscode.Uri.file(file), "gbp", BROKEN);
  // A document of another language is not sent to the server.
  const other = new vscode._test.TextDocument(vscode.Uri.file(path.join(tmp, "notes.txt")), "plaintext", "tenant x {");
  vscode._test.open(other);
  vscode._test.open(doc);
  const diags = await diagnosticsFor(doc.uri.toString());
  assert.deepEqual(diags.map(codeOf).sort(), ["gbpc::E001", "gbpc::E010", "gbpc::E011"]);
  const typo = diags.find((d) => codeOf(d) === "gbpc::E010");
  assert.equal(typo.severity, vscode.DiagnosticSeverity.Error);
  assert.equal(typo.source, "gbpc");
  assert.deepEqual(typo.range.start, pos(BROKEN, "htps"));
  assert.deepEqual(typo.range.end, pos(BROKEN, "htps", 4));
  const dup = diags.find((d) => codeOf(d) === "gbpc::E011");
  assert.ok(dup.relatedInformation && dup.relatedInformation.length > 0, "a duplicate has related information");
  assert.deepEqual(dup.relatedInformation[0].location.range.start, pos(BROKEN, "https"));
  assert.equal(dup.relatedInformation[0].location.uri.toString(), doc.uri.toString());
  assert.equal(collection().get(other.uri.toString()), undefined, "the plain-text document got nothing");
});

test("quick fix: the did-you-mean code action edits the document", async () => {
  const diags = collection().get(doc.uri.toString());
  const typo = diags.find((d) => codeOf(d) === "gbpc::E010");
  const actions = await provider("registerCodeActionsProvider").provideCodeActions(
    doc,
    typo.range,
    { diagnostics: [typo], triggerKind: vscode.CodeActionTriggerKind.Invoke, only: undefined },
    token(),
  );
  assert.ok(Array.isArray(actions) && actions.length >= 1, "at least one code action");
  const fix = actions.find((a) => /https/.test(a.title));
  assert.ok(fix, `a fix to https among ${actions.map((a) => a.title)}`);
  assert.equal(fix.kind.value, "quickfix");
  assert.ok(await vscode.workspace.applyEdit(fix.edit), "the edit applies");
  assert.match(doc.getText(), /subject tls permit https \}/);
  // The editor sends the change; the server re-checks: the E010 is gone.
  vscode._test.change(doc, doc.getText());
  const after = await diagnosticsFor(doc.uri.toString(), (d) => !d.some((x) => codeOf(x) === "gbpc::E010"));
  assert.deepEqual(after.map(codeOf).sort(), ["gbpc::E001", "gbpc::E011"]);
});

test("formatting: Format Document gives gbpc fmt's layout", async () => {
  vscode._test.change(doc, UNFORMATTED);
  const clean = await diagnosticsFor(doc.uri.toString(), (d) => d.length === 0);
  assert.deepEqual(clean, []);
  const edits = await provider("registerDocumentFormattingEditProvider").provideDocumentFormattingEdits(
    doc,
    { tabSize: 2, insertSpaces: true },
    token(),
  );
  assert.ok(Array.isArray(edits) && edits.length > 0, "formatting edits");
  doc.applyEdits(edits);
  const expected = execFileSync(GBPC, ["fmt", "-"], { input: UNFORMATTED, encoding: "utf8" });
  assert.equal(doc.getText(), expected);
  assert.notEqual(expected, UNFORMATTED);
});

test("changing gbpc.path restarts the server", async () => {
  const before = ext.currentClient();
  vscode._test.setConfiguration("gbpc.path", GBPC);
  const deadline = Date.now() + TIMEOUT;
  while ((ext.currentClient() === before || !ext.currentClient()?.isRunning()) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.notEqual(ext.currentClient(), before, "a new client");
  assert.ok(ext.currentClient().isRunning(), "the new client runs");
  assert.equal(before.isRunning(), false, "the old client stopped");
});

test("deactivate stops the server cleanly (shutdown, exit status 0)", async () => {
  const client = ext.currentClient();
  const child = client._serverProcess;
  assert.ok(child && child.pid, "the server process is known");
  const exited = new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once("exit", (code) => r(code))));
  await ext.deactivate();
  assert.equal(ext.currentClient(), undefined);
  assert.equal(await exited, 0);
});

test("a missing executable is a clear error message, not a crash", async () => {
  vscode._test.settings.set("gbpc.path", path.join(tmp, "no-such-gbpc"));
  await ext.activate({ subscriptions: [] });
  assert.equal(ext.currentClient(), undefined);
  const err = vscode._test.messages.find((m) => m.level === "error" && /cannot start the language server/.test(m.message));
  assert.ok(err, `an error message among ${JSON.stringify(vscode._test.messages)}`);
  assert.match(err.message, /no-such-gbpc lsp/);
  assert.match(err.message, /gbpc\.path/);
  await ext.deactivate();
  fs.rmSync(tmp, { recursive: true, force: true });
});
