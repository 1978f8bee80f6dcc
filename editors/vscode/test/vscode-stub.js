// A stand-in for the `vscode` module, so that the extension's compiled code and the real
// vscode-languageclient run under plain Node against a real `gbpc lsp`, without VS Code.
//
// It implements the part of the editor API that vscode-languageclient 9 touches when it starts,
// syncs documents, publishes diagnostics and calls providers: documents, URIs, ranges,
// diagnostics collections, code actions, text edits, events, configuration and cancellation.
// Everything the client registers (providers, commands, watchers) is recorded in `registered`
// so that a test can call a provider exactly as VS Code would. This is NOT VS Code: the UI, the
// extension host, activation events, the TextMate grammar and settings UI are not exercised.
"use strict";

const { EventEmitter: NodeEmitter } = require("events");
const nodePath = require("path");

// ---- basics ---------------------------------------------------------------------------------

class Disposable {
  constructor(fn) {
    this._fn = fn;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose()));
  }
  dispose() {
    if (this._fn) {
      const fn = this._fn;
      this._fn = undefined;
      fn();
    }
  }
}

class EventEmitter {
  constructor() {
    this._listeners = new Set();
    this.event = (listener, thisArg, disposables) => {
      const l = thisArg ? listener.bind(thisArg) : listener;
      this._listeners.add(l);
      const d = new Disposable(() => this._listeners.delete(l));
      if (Array.isArray(disposables)) disposables.push(d);
      return d;
    };
  }
  fire(e) {
    for (const l of [...this._listeners]) l(e);
  }
  dispose() {
    this._listeners.clear();
  }
}

class CancellationError extends Error {
  constructor() {
    super("Canceled");
    this.name = "Canceled";
  }
}

class CancellationTokenSource {
  constructor() {
    const emitter = new EventEmitter();
    this._emitter = emitter;
    this.token = { isCancellationRequested: false, onCancellationRequested: emitter.event };
  }
  cancel() {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this._emitter.fire(undefined);
    }
  }
  dispose() {
    this._emitter.dispose();
  }
}

// ---- URIs -----------------------------------------------------------------------------------

class Uri {
  constructor(scheme, authority, path, query, fragment) {
    this.scheme = scheme;
    this.authority = authority || "";
    this.path = path || "";
    this.query = query || "";
    this.fragment = fragment || "";
  }
  static file(p) {
    return new Uri("file", "", nodePath.resolve(p));
  }
  static parse(value) {
    const m = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(value);
    if (!m) throw new Error(`stub Uri.parse: cannot parse ${value}`);
    return new Uri(m[1], m[2], decodeURIComponent(m[3]), m[4], m[5]);
  }
  get fsPath() {
    return this.path;
  }
  with(change) {
    return new Uri(
      change.scheme ?? this.scheme,
      change.authority ?? this.authority,
      change.path ?? this.path,
      change.query ?? this.query,
      change.fragment ?? this.fragment,
    );
  }
  toString() {
    const path = encodeURI(this.path).replace(/[?#]/g, encodeURIComponent);
    let s = `${this.scheme}:`;
    if (this.scheme === "file" || this.authority) s += `//${this.authority}`;
    s += path;
    if (this.query) s += `?${this.query}`;
    if (this.fragment) s += `#${this.fragment}`;
    return s;
  }
  toJSON() {
    return this.toString();
  }
}

// ---- positions and text ---------------------------------------------------------------------

class Position {
  constructor(line, character) {
    this.line = line;
    this.character = character;
  }
  isEqual(o) {
    return this.line === o.line && this.character === o.character;
  }
  isBefore(o) {
    return this.line < o.line || (this.line === o.line && this.character < o.character);
  }
}

class Range {
  constructor(a, b, c, d) {
    if (typeof a === "number") {
      this.start = new Position(a, b);
      this.end = new Position(c, d);
    } else {
      this.start = a;
      this.end = b;
    }
  }
  get isEmpty() {
    return this.start.isEqual(this.end);
  }
  contains(p) {
    const pos = p instanceof Range ? p.start : p;
    return !pos.isBefore(this.start) && !this.end.isBefore(pos);
  }
}

class Selection extends Range {}

/** A text document as VS Code gives it to extensions; `positionAt`/`offsetAt` in UTF-16 units. */
class TextDocument {
  constructor(uri, languageId, text, version = 1) {
    this.uri = uri;
    this.languageId = languageId;
    this.version = version;
    this.isClosed = false;
    this.isDirty = false;
    this.isUntitled = uri.scheme === "untitled";
    this.eol = 1;
    this._text = text;
  }
  get fileName() {
    return this.uri.fsPath;
  }
  get lineCount() {
    return this._lines().length;
  }
  _lines() {
    return this._text.split("\n");
  }
  getText(range) {
    if (!range) return this._text;
    return this._text.slice(this.offsetAt(range.start), this.offsetAt(range.end));
  }
  lineAt(line) {
    const text = this._lines()[typeof line === "number" ? line : line.line];
    return { text, range: new Range(0, 0, 0, text.length) };
  }
  offsetAt(pos) {
    const lines = this._lines();
    let off = 0;
    for (let i = 0; i < pos.line && i < lines.length; i++) off += lines[i].length + 1;
    const line = lines[Math.min(pos.line, lines.length - 1)] ?? "";
    return off + Math.min(pos.character, line.length);
  }
  positionAt(offset) {
    const before = this._text.slice(0, offset).split("\n");
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  /** Apply TextEdits (non-overlapping), as VS Code's `applyEdit` would. */
  applyEdits(edits) {
    const sorted = [...edits].sort((a, b) => this.offsetAt(b.range.start) - this.offsetAt(a.range.start));
    let text = this._text;
    for (const e of sorted) {
      text = text.slice(0, this.offsetAt(e.range.start)) + e.newText + text.slice(this.offsetAt(e.range.end));
    }
    this._text = text;
    this.version += 1;
  }
}

// ---- results --------------------------------------------------------------------------------

const DiagnosticSeverity = { Error: 0, Warning: 1, Information: 2, Hint: 3 };
const DiagnosticTag = { Unnecessary: 1, Deprecated: 2 };

class Diagnostic {
  constructor(range, message, severity = DiagnosticSeverity.Error) {
    this.range = range;
    this.message = message;
    this.severity = severity;
  }
}

class DiagnosticRelatedInformation {
  constructor(location, message) {
    this.location = location;
    this.message = message;
  }
}

class Location {
  constructor(uri, rangeOrPosition) {
    this.uri = uri;
    this.range = rangeOrPosition;
  }
}

class TextEdit {
  constructor(range, newText) {
    this.range = range;
    this.newText = newText;
  }
  static replace(range, newText) {
    return new TextEdit(range, newText);
  }
}

class WorkspaceEdit {
  constructor() {
    this._edits = [];
  }
  replace(uri, range, newText) {
    this._edits.push([uri, new TextEdit(range, newText)]);
  }
  insert(uri, position, newText) {
    this.replace(uri, new Range(position, position), newText);
  }
  delete(uri, range) {
    this.replace(uri, range, "");
  }
  set(uri, edits) {
    for (const e of edits) this._edits.push([uri, Array.isArray(e) ? e[0] : e]);
  }
  entries() {
    const by = new Map();
    for (const [uri, e] of this._edits) {
      const k = uri.toString();
      if (!by.has(k)) by.set(k, [uri, []]);
      by.get(k)[1].push(e);
    }
    return [...by.values()];
  }
  get size() {
    return this.entries().length;
  }
}

class CodeActionKind {
  constructor(value) {
    this.value = value;
  }
  append(part) {
    return new CodeActionKind(this.value ? `${this.value}.${part}` : part);
  }
  contains(other) {
    return this.value === other.value || other.value.startsWith(`${this.value}.`);
  }
  intersects(other) {
    return this.contains(other) || other.contains(this);
  }
}
CodeActionKind.Empty = new CodeActionKind("");
CodeActionKind.QuickFix = new CodeActionKind("quickfix");
CodeActionKind.Refactor = new CodeActionKind("refactor");
CodeActionKind.RefactorExtract = new CodeActionKind("refactor.extract");
CodeActionKind.RefactorInline = new CodeActionKind("refactor.inline");
CodeActionKind.RefactorMove = new CodeActionKind("refactor.move");
CodeActionKind.RefactorRewrite = new CodeActionKind("refactor.rewrite");
CodeActionKind.Source = new CodeActionKind("source");
CodeActionKind.SourceOrganizeImports = new CodeActionKind("source.organizeImports");
CodeActionKind.SourceFixAll = new CodeActionKind("source.fixAll");
CodeActionKind.Notebook = new CodeActionKind("notebook");

class CodeAction {
  constructor(title, kind) {
    this.title = title;
    this.kind = kind;
  }
}

class MarkdownString {
  constructor(value = "", supportThemeIcons = false) {
    this.value = value;
    this.supportThemeIcons = supportThemeIcons;
  }
  appendText(t) {
    this.value += t;
    return this;
  }
  appendMarkdown(t) {
    this.value += t;
    return this;
  }
  appendCodeblock(code, lang = "") {
    this.value += `\n\`\`\`${lang}\n${code}\n\`\`\`\n`;
    return this;
  }
}

class Hover {
  constructor(contents, range) {
    this.contents = Array.isArray(contents) ? contents : [contents];
    this.range = range;
  }
}

/** Result classes the client only constructs: plain records of their arguments. */
function record(...names) {
  return class {
    constructor(...args) {
      names.forEach((n, i) => {
        this[n] = args[i];
      });
    }
  };
}

// ---- the editor ------------------------------------------------------------------------------

const registered = [];
const diagnosticCollections = [];
const messages = [];
const documents = [];
const settings = new Map();

const events = {
  open: new EventEmitter(),
  close: new EventEmitter(),
  change: new EventEmitter(),
  save: new EventEmitter(),
  willSave: new EventEmitter(),
  config: new EventEmitter(),
  folders: new EventEmitter(),
  activeEditor: new EventEmitter(),
};

function recordRegistration(kind) {
  return (...args) => {
    registered.push({ kind, args });
    return new Disposable(() => {
      const i = registered.findIndex((r) => r.args === args);
      if (i >= 0) registered.splice(i, 1);
    });
  };
}

/** `register*`/`on*` members the stub does not model: recorded no-ops, so the client can wire
 * every feature it knows of; anything else that is missing is `undefined`, as an older VS Code
 * would have it. */
function namespace(known) {
  return new Proxy(known, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (typeof prop === "string" && (prop.startsWith("register") || prop.startsWith("onDid") || prop.startsWith("onWill"))) {
        return recordRegistration(prop);
      }
      return undefined;
    },
  });
}

class DiagnosticCollection {
  constructor(name) {
    this.name = name;
    this.entries = new Map();
    this.changed = new NodeEmitter();
  }
  set(uri, diags) {
    if (Array.isArray(uri)) {
      for (const [u, d] of uri) this.set(u, d);
      return;
    }
    if (diags === undefined) this.entries.delete(uri.toString());
    else this.entries.set(uri.toString(), diags);
    this.changed.emit("change", uri.toString());
  }
  get(uri) {
    return this.entries.get(uri.toString());
  }
  has(uri) {
    return this.entries.has(uri.toString());
  }
  delete(uri) {
    this.entries.delete(uri.toString());
    this.changed.emit("change", uri.toString());
  }
  clear() {
    this.entries.clear();
  }
  forEach(cb) {
    for (const [k, v] of this.entries) cb(Uri.parse(k), v, this);
  }
  dispose() {
    this.entries.clear();
  }
}

function matchSelector(selector, doc) {
  const sels = Array.isArray(selector) ? selector : [selector];
  let best = 0;
  for (const s of sels) {
    if (typeof s === "string") {
      if (s === doc.languageId) best = Math.max(best, 10);
      continue;
    }
    if (s.language && s.language !== doc.languageId) continue;
    if (s.scheme && s.scheme !== doc.uri.scheme) continue;
    if (s.notebookType) continue;
    best = Math.max(best, s.language ? 10 : 5);
  }
  return best;
}

const outputLines = [];

const workspace = namespace({
  textDocuments: documents,
  notebookDocuments: [],
  workspaceFolders: undefined,
  name: undefined,
  getConfiguration(section) {
    return {
      get(key, dflt) {
        const full = section ? `${section}.${key}` : key;
        return settings.has(full) ? settings.get(full) : dflt;
      },
      has(key) {
        return settings.has(section ? `${section}.${key}` : key);
      },
      inspect() {
        return undefined;
      },
      update() {
        return Promise.resolve();
      },
    };
  },
  onDidOpenTextDocument: events.open.event,
  onDidCloseTextDocument: events.close.event,
  onDidChangeTextDocument: events.change.event,
  onDidSaveTextDocument: events.save.event,
  onWillSaveTextDocument: events.willSave.event,
  onDidChangeConfiguration: events.config.event,
  onDidChangeWorkspaceFolders: events.folders.event,
  createFileSystemWatcher(...args) {
    registered.push({ kind: "createFileSystemWatcher", args });
    const e = new EventEmitter();
    return { onDidCreate: e.event, onDidChange: e.event, onDidDelete: e.event, dispose() {} };
  },
  applyEdit(edit) {
    for (const [uri, edits] of edit.entries()) {
      const doc = documents.find((d) => d.uri.toString() === uri.toString());
      if (!doc) return Promise.resolve(false);
      doc.applyEdits(edits);
    }
    return Promise.resolve(true);
  },
});

const window = namespace({
  activeTextEditor: undefined,
  visibleTextEditors: [],
  tabGroups: { all: [], onDidChangeTabs: new EventEmitter().event, onDidChangeTabGroups: new EventEmitter().event },
  onDidChangeActiveTextEditor: events.activeEditor.event,
  createOutputChannel(name) {
    return {
      name,
      append: (t) => outputLines.push(t),
      appendLine: (t) => outputLines.push(t),
      replace: () => {},
      clear: () => {},
      show: () => {},
      hide: () => {},
      dispose: () => {},
    };
  },
  showErrorMessage: (m) => {
    messages.push({ level: "error", message: m });
    return Promise.resolve(undefined);
  },
  showWarningMessage: (m) => {
    messages.push({ level: "warning", message: m });
    return Promise.resolve(undefined);
  },
  showInformationMessage: (m) => {
    messages.push({ level: "info", message: m });
    return Promise.resolve(undefined);
  },
  withProgress: (_opts, task) => task({ report() {} }, new CancellationTokenSource().token),
  showTextDocument: () => Promise.resolve(undefined),
});

const languages = namespace({
  match: matchSelector,
  createDiagnosticCollection(name) {
    const c = new DiagnosticCollection(name);
    diagnosticCollections.push(c);
    return c;
  },
  getDiagnostics: () => [],
});

const commands = namespace({
  registerCommand: recordRegistration("registerCommand"),
  executeCommand: () => Promise.resolve(undefined),
});

module.exports = {
  version: "1.82.0",
  env: { appName: "gbpc test stub", language: "en", machineId: "stub", openExternal: () => Promise.resolve(false) },
  Disposable,
  EventEmitter,
  CancellationError,
  CancellationTokenSource,
  Uri,
  Position,
  Range,
  Selection,
  Location,
  Diagnostic,
  DiagnosticSeverity,
  DiagnosticTag,
  DiagnosticRelatedInformation,
  TextEdit,
  WorkspaceEdit,
  CodeAction,
  CodeActionKind,
  CodeActionTriggerKind: { Invoke: 1, Automatic: 2 },
  MarkdownString,
  Hover,
  SnippetString: record("value"),
  CompletionItem: record("label", "kind"),
  CompletionList: record("items", "isIncomplete"),
  CompletionItemKind: new Proxy({}, { get: (_t, p) => (typeof p === "string" ? p : undefined) }),
  CompletionItemTag: { Deprecated: 1 },
  CompletionTriggerKind: { Invoke: 0, TriggerCharacter: 1, TriggerForIncompleteCompletions: 2 },
  SymbolKind: new Proxy({}, { get: (_t, p) => (typeof p === "string" ? p : undefined) }),
  SymbolTag: { Deprecated: 1 },
  SymbolInformation: record("name", "kind", "containerName", "location"),
  DocumentSymbol: class {
    constructor(name, detail, kind, range, selectionRange) {
      Object.assign(this, { name, detail, kind, range, selectionRange, children: [] });
    }
  },
  DocumentHighlight: record("range", "kind"),
  DocumentHighlightKind: { Text: 0, Read: 1, Write: 2 },
  DocumentLink: record("range", "target"),
  CodeLens: record("range", "command"),
  CallHierarchyItem: record("kind", "name", "detail", "uri", "range", "selectionRange"),
  CallHierarchyIncomingCall: record("from", "fromRanges"),
  CallHierarchyOutgoingCall: record("to", "fromRanges"),
  TypeHierarchyItem: record("kind", "name", "detail", "uri", "range", "selectionRange"),
  InlayHint: record("position", "label", "kind"),
  InlayHintLabelPart: record("value"),
  InlineCompletionItem: record("insertText", "range", "command"),
  InlineCompletionList: record("items"),
  InlineValueText: record("range", "text"),
  InlineValueVariableLookup: record("range", "variableName", "caseSensitiveLookup"),
  InlineValueEvaluatableExpression: record("range", "expression"),
  FoldingRange: record("start", "end", "kind"),
  FoldingRangeKind: { Comment: 1, Imports: 2, Region: 3 },
  SelectionRange: record("range", "parent"),
  SignatureHelp: record(),
  SignatureInformation: record("label", "documentation"),
  ParameterInformation: record("label", "documentation"),
  SignatureHelpTriggerKind: { Invoke: 1, TriggerCharacter: 2, ContentChange: 3 },
  LinkedEditingRanges: record("ranges", "wordPattern"),
  SemanticTokens: record("data", "resultId"),
  SemanticTokensEdit: record("start", "deleteCount", "data"),
  SemanticTokensEdits: record("edits", "resultId"),
  Color: record("red", "green", "blue", "alpha"),
  ColorInformation: record("range", "color"),
  ColorPresentation: record("label"),
  RelativePattern: record("base", "pattern"),
  TextDocumentSaveReason: { Manual: 1, AfterDelay: 2, FocusOut: 3 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  TabInputText: record("uri"),
  TabInputTextDiff: record("original", "modified"),
  TabInputCustom: record("uri", "viewType"),
  NotebookCellKind: { Markup: 1, Code: 2 },
  workspace,
  window,
  languages,
  commands,
  // Test hooks (not part of VS Code's API).
  _test: {
    registered,
    diagnosticCollections,
    messages,
    settings,
    outputLines,
    documents,
    TextDocument,
    /** Open a document as VS Code does: add it, then fire `onDidOpenTextDocument`. */
    open(doc) {
      documents.push(doc);
      events.open.fire(doc);
    },
    /** Replace a document's whole text and fire `onDidChangeTextDocument`. */
    change(doc, text) {
      const range = new Range(new Position(0, 0), doc.positionAt(doc.getText().length));
      doc._text = text;
      doc.version += 1;
      events.change.fire({ document: doc, contentChanges: [{ range, rangeOffset: 0, rangeLength: 0, text }], reason: undefined });
    },
    setConfiguration(key, value) {
      settings.set(key, value);
      events.config.fire({ affectsConfiguration: (s) => key === s || key.startsWith(`${s}.`) });
    },
  },
};
