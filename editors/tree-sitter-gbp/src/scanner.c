// External scanner of the gbpc policy grammar: comments only.
//
// A comment runs from `#` or `//` to the end of the line, and gbpc accepts any character in it,
// NUL included. Tree-sitter's generated lexers read a NUL as the end of the input (a regular
// expression cannot match it), so comments are scanned here, where the end of the input is
// `eof()` and a NUL is an ordinary character.
//
// The scanner runs before tree-sitter skips whitespace, so it skips whitespace itself: exactly
// the characters of WHITESPACE in grammar.js (and of grammar/gbp.pest). Keep the two in step.

#include "tree_sitter/parser.h"

enum TokenType { COMMENT };

void *tree_sitter_gbp_external_scanner_create(void) { return NULL; }
void tree_sitter_gbp_external_scanner_destroy(void *payload) { (void)payload; }
unsigned tree_sitter_gbp_external_scanner_serialize(void *payload, char *buffer) {
  (void)payload;
  (void)buffer;
  return 0;
}
void tree_sitter_gbp_external_scanner_deserialize(void *payload, const char *buffer, unsigned length) {
  (void)payload;
  (void)buffer;
  (void)length;
}

// As gbpc: LF and CRLF end lines; a lone CR and other vertical space (VT, FF, NEL, U+2028,
// U+2029) are errors (gbpc's E006), also inside a comment, which they end.
static bool is_whitespace(int32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == 0xFEFF;
}

static bool is_stray_line_end(int32_t c) {
  return c == '\r' || c == 0x0B || c == 0x0C || c == 0x85 || c == 0x2028 || c == 0x2029;
}

bool tree_sitter_gbp_external_scanner_scan(void *payload, TSLexer *lexer, const bool *valid_symbols) {
  (void)payload;
  if (!valid_symbols[COMMENT]) {
    return false;
  }
  while (!lexer->eof(lexer)) {
    if (is_whitespace(lexer->lookahead)) {
      lexer->advance(lexer, true);
    } else if (lexer->lookahead == '\r') {
      lexer->advance(lexer, true);
      if (lexer->eof(lexer) || lexer->lookahead != '\n') {
        return false; // a lone CR: the grammar's lexer reports it
      }
    } else {
      break;
    }
  }
  if (lexer->eof(lexer)) {
    return false;
  }
  if (lexer->lookahead == '#') {
    lexer->advance(lexer, false);
  } else if (lexer->lookahead == '/') {
    lexer->advance(lexer, false);
    if (lexer->eof(lexer) || lexer->lookahead != '/') {
      return false;
    }
    lexer->advance(lexer, false);
  } else {
    return false;
  }
  while (!lexer->eof(lexer) && lexer->lookahead != '\n' && !is_stray_line_end(lexer->lookahead)) {
    lexer->advance(lexer, false);
  }
  lexer->result_symbol = COMMENT;
  return true;
}
