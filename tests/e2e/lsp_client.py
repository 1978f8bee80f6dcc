"""End-to-end test of `gbpc lsp` with a language client the project did not write.

pygls's LanguageClient (from PyPI, with lsprotocol's types) starts `gbpc lsp`, opens a broken
policy file, waits for the published diagnostics and checks that gbpc's codes arrive; then
hover, go to definition, the did-you-mean quick fix, an edit that fixes the file, and a clean
shutdown. Prints `N passed, M failed` and exits 0 only if every check passed.

Usage: python lsp_client.py [PATH/TO/gbpc]   (default: target/debug/gbpc)
"""

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

TIMEOUT = 30.0

BROKEN = """tenant shop {
  filter https { tcp 443 }
  filter https { tcp 8443 }
  contract web { subject tls permit htps }
  group web { select app=web provides web }
  group broken { select app=x provides }
  group client { select app=client consumes web }
}
"""

FIXED = """tenant shop {
  filter https { tcp 443 }
  contract web { subject tls permit https }
  group web { select app=web address 198.18.1.0/24 provides web }
  group client { select app=client address 198.18.2.0/24 consumes web }
}
"""


class Client(LanguageClient):
    def __init__(self):
        super().__init__("gbpc-e2e", "1")
        self.diagnostics: asyncio.Queue = asyncio.Queue()
        self.returncode = None
        self.errors = []

    async def server_exit(self, server):
        self.returncode = server.returncode

    def report_server_error(self, error, source):
        self.errors.append(f"{source.__name__}: {error}")


def position(text: str, needle: str, delta: int = 0) -> types.Position:
    at = text.index(needle) + delta
    line = text.count("\n", 0, at)
    start = text.rfind("\n", 0, at) + 1
    return types.Position(line=line, character=len(text[start:at].encode("utf-16-le")) // 2)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}")


async def run(gbpc: str, checks: Checks) -> None:
    client = Client()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams):
        client.diagnostics.put_nowait(params)

    async def next_diagnostics() -> types.PublishDiagnosticsParams:
        return await asyncio.wait_for(client.diagnostics.get(), TIMEOUT)

    await client.start_io(gbpc, "lsp")
    try:
        init = await asyncio.wait_for(
            client.initialize_async(
                types.InitializeParams(
                    process_id=os.getpid(),
                    root_uri=None,
                    capabilities=types.ClientCapabilities(
                        general=types.GeneralClientCapabilities(
                            position_encodings=[types.PositionEncodingKind.Utf16]
                        )
                    ),
                )
            ),
            TIMEOUT,
        )
        caps = init.capabilities
        checks.check(
            "initialize: gbpc answers with its capabilities",
            init.server_info is not None
            and init.server_info.name == "gbpc"
            and caps.position_encoding == types.PositionEncodingKind.Utf16
            and bool(caps.hover_provider)
            and bool(caps.definition_provider)
            and caps.rename_provider is not None,
            init,
        )
        client.initialized(types.InitializedParams())

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "broken.gbp"
            path.write_text(BROKEN, encoding="utf-8")
            uri = path.as_uri()
            doc = types.TextDocumentIdentifier(uri=uri)
            client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    text_document=types.TextDocumentItem(
                        uri=uri, language_id="gbp", version=1, text=path.read_text()
                    )
                )
            )
            published = await next_diagnostics()
            codes = sorted(str(d.code) for d in published.diagnostics)
            checks.check(
                "didOpen: diagnostics are published for the opened file",
                published.uri == uri and published.version == 1,
                published,
            )
            checks.check(
                "didOpen: the codes arrive (a syntax error hides nothing else)",
                codes == ["gbpc::E001", "gbpc::E010", "gbpc::E011"],
                codes,
            )
            typo = next((d for d in published.diagnostics if d.code == "gbpc::E010"), None)
            checks.check(
                "didOpen: the undefined filter is marked where it is written",
                typo is not None
                and typo.range.start == position(BROKEN, "htps")
                and typo.range.end == position(BROKEN, "htps", 4)
                and typo.severity == types.DiagnosticSeverity.Error
                and typo.source == "gbpc",
                typo,
            )
            duplicate = next(
                (d for d in published.diagnostics if d.code == "gbpc::E011"), None
            )
            checks.check(
                "didOpen: a duplicate points at the first definition",
                duplicate is not None
                and duplicate.related_information is not None
                and duplicate.related_information[0].location.range.start
                == position(BROKEN, "https"),
                duplicate,
            )

            hover = await asyncio.wait_for(
                client.text_document_hover_async(
                    types.HoverParams(
                        text_document=doc, position=position(BROKEN, "group web", 6)
                    )
                ),
                TIMEOUT,
            )
            checks.check(
                "hover: a group shows its selector",
                hover is not None and "app=web" in hover.contents.value,
                hover,
            )

            definition = await asyncio.wait_for(
                client.text_document_definition_async(
                    types.DefinitionParams(
                        text_document=doc,
                        position=position(BROKEN, "consumes web", len("consumes ")),
                    )
                ),
                TIMEOUT,
            )
            checks.check(
                "definition: a contract use leads to its declaration",
                isinstance(definition, types.Location)
                and definition.range.start == position(BROKEN, "web {"),
                definition,
            )

            actions = await asyncio.wait_for(
                client.text_document_code_action_async(
                    types.CodeActionParams(
                        text_document=doc,
                        range=types.Range(
                            start=position(BROKEN, "htps"), end=position(BROKEN, "htps")
                        ),
                        context=types.CodeActionContext(diagnostics=[]),
                    )
                ),
                TIMEOUT,
            )
            edits = [
                e.new_text
                for a in actions or []
                if isinstance(a, types.CodeAction) and a.edit and a.edit.changes
                for e in a.edit.changes.get(uri, [])
            ]
            checks.check("codeAction: the did-you-mean fix is offered", edits == ["https"], actions)

            formatting = await asyncio.wait_for(
                client.text_document_formatting_async(
                    types.DocumentFormattingParams(
                        text_document=doc,
                        options=types.FormattingOptions(tab_size=2, insert_spaces=True),
                    )
                ),
                TIMEOUT,
            )
            checks.check(
                "formatting: a file with a syntax error is not formatted",
                formatting is None,
                formatting,
            )

            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=FIXED)],
                )
            )
            fixed = await next_diagnostics()
            checks.check(
                "didChange: fixing the file clears the diagnostics",
                fixed.version == 2 and len(fixed.diagnostics) == 0,
                fixed,
            )

            formatting = await asyncio.wait_for(
                client.text_document_formatting_async(
                    types.DocumentFormattingParams(
                        text_document=doc,
                        options=types.FormattingOptions(tab_size=2, insert_spaces=True),
                    )
                ),
                TIMEOUT,
            )
            checks.check(
                "formatting: one edit with the canonical layout",
                formatting is not None
                and len(formatting) == 1
                and formatting[0].new_text.startswith("tenant shop {\n  filter https { tcp 443 }\n"),
                formatting,
            )

        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
        client.exit(None)
        await asyncio.wait_for(client.stop(), TIMEOUT)
        checks.check(
            "shutdown and exit: the server exits with status 0",
            client.returncode == 0,
            client.returncode,
        )
        checks.check("no protocol errors", client.errors == [], client.errors)
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()
            await server.wait()


def main() -> int:
    gbpc = sys.argv[1] if len(sys.argv) > 1 else "target/debug/gbpc"
    checks = Checks()
    try:
        asyncio.run(asyncio.wait_for(run(gbpc, checks), 4 * TIMEOUT))
    except Exception as e:  # a timeout or a crash is a failed check, not a traceback only
        checks.check("the session ran to the end", False, repr(e))
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 and checks.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
