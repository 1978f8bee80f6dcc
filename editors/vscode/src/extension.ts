// The gbpc extension: starts `gbpc lsp` for `gbp` documents through vscode-languageclient.
//
// The server needs no options: every open `.gbp` document is checked on its own. The extension
// only finds the executable (`gbpc.path`), restarts the server when that setting changes or on
// the `gbpc.restartServer` command, and says plainly when the executable cannot be started.

import * as os from "os";
import * as path from "path";
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

let client: LanguageClient | undefined;
let output: vscode.OutputChannel | undefined;

/** The executable from the `gbpc.path` setting, with a leading `~` expanded. */
export function serverPath(setting: string | undefined): string {
  const p = (setting ?? "").trim() || "gbpc";
  if (p === "~" || p.startsWith("~/")) {
    return path.join(os.homedir(), p.slice(1));
  }
  return p;
}

/** How the server is started: `<gbpc.path> lsp`, over stdio. */
export function serverOptions(command: string): ServerOptions {
  const run = { command, args: ["lsp"], transport: TransportKind.stdio };
  return { run, debug: run };
}

export function clientOptions(channel: vscode.OutputChannel): LanguageClientOptions {
  return {
    documentSelector: [
      { scheme: "file", language: "gbp" },
      { scheme: "untitled", language: "gbp" },
    ],
    diagnosticCollectionName: "gbpc",
    outputChannel: channel,
    // `gbpc.trace.server` is read by the client itself (the client's id is `gbpc`).
  };
}

async function start(): Promise<void> {
  const setting = vscode.workspace.getConfiguration("gbpc").get<string>("path");
  const command = serverPath(setting);
  output ??= vscode.window.createOutputChannel("gbpc");
  const c = new LanguageClient("gbpc", "gbpc language server", serverOptions(command), clientOptions(output));
  client = c;
  try {
    await c.start();
  } catch (e) {
    client = undefined;
    const msg = e instanceof Error ? e.message : String(e);
    output.appendLine(`cannot start \`${command} lsp\`: ${msg}`);
    void vscode.window.showErrorMessage(
      `gbpc: cannot start the language server \`${command} lsp\` (${msg}). ` +
        "Install gbpc (`cargo install --path .`) or set `gbpc.path` to the executable.",
    );
  }
}

async function stop(): Promise<void> {
  const c = client;
  client = undefined;
  if (c !== undefined) {
    try {
      await c.stop();
    } catch {
      // A server that failed to start or already died has nothing to stop.
    }
  }
}

async function restart(): Promise<void> {
  await stop();
  await start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.commands.registerCommand("gbpc.restartServer", restart),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("gbpc.path")) {
        void restart();
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}

/** The running client, for tests. */
export function currentClient(): LanguageClient | undefined {
  return client;
}
