/**
 * @file tree-sitter grammar for gbpc policies (*.gbp)
 * @license Apache-2.0
 *
 * A port of grammar/gbp.pest, the grammar gbpc itself parses with; it must accept exactly the
 * files gbpc parses (scripts/tree-sitter-gbp.sh checks this on every policy of the repository,
 * the broken-input corpus, the fuzz corpus and generated policies). Where the two differ in
 * kind, this file says how the pest rule is reproduced:
 *
 * - pest is a PEG parser with atomic keywords (`kw_tenant = @{ "tenant" ~ kw_end }`);
 *   here keywords are extracted from the `word` token (`name`), so `tenantx` is a name, and a
 *   keyword is recognised only where the grammar allows it (`group tenant { }` is a group called
 *   `tenant`, as in pest).
 * - pest's compound-atomic rules (`port_item`, `label`, `qualified`, `probe`) allow no space
 *   inside; here their inner parts are `token.immediate`.
 * - PEG takes the first alternative that matches; tree-sitter takes the longest token valid in
 *   the parse state. Where the two could differ, lexical precedence reproduces PEG: a port
 *   number after `tcp` and an ICMP type after `icmp` win over a keyword (`icmp tcp 80` is an
 *   error in both: `tcp` is read as an ICMP type).
 *
 * To extend the language, add the construct in grammar/gbp.pest and here, a corpus test in
 * test/corpus/, and highlight captures in queries/; e.g. a new selector form goes into
 * `_selector`.
 */

// Whitespace, as grammar/gbp.pest's WHITESPACE: space, tab, line ends and a byte-order mark.
// src/scanner.c skips the same characters before a comment: change both together.
// LF and CRLF end lines; a lone CR is an error, as in gbpc (E006).
const WHITESPACE = /([ \t\n\uFEFF]|\r\n)+/;

const NAME = /[A-Za-z0-9_][A-Za-z0-9_-]*/;
const ICMP_TYPE = /[0-9]+|[A-Za-z][A-Za-z0-9-]*/;

/** `rule (, rule)*` */
const commaSep1 = (rule) => seq(rule, repeat(seq(',', rule)));

/** A statement or entry, followed by at most one `;`. */
const stmt = (rule) => seq(rule, optional(';'));

module.exports = grammar({
  name: 'gbp',

  word: $ => $.name,

  extras: $ => [WHITESPACE, $.comment],

  // Comments come from src/scanner.c: gbpc allows any character in a comment, NUL included,
  // and a generated lexer reads NUL as the end of the input.
  externals: $ => [$.comment],

  rules: {
    source_file: $ => repeat($.tenant),

    // ---- names ---------------------------------------------------------------------------
    name: _ => NAME,

    // `tenant/name`, no spaces.
    qualified_name: $ => seq(
      field('tenant', $.name),
      token.immediate('/'),
      field('name', alias(token.immediate(NAME), $.name)),
    ),

    _reference: $ => choice($.name, $.qualified_name),

    // ---- tenants -------------------------------------------------------------------------
    tenant: $ => seq(
      'tenant',
      field('name', $.name),
      optional($.unenforced),
      '{',
      repeat(stmt($._item)),
      '}',
    ),

    _item: $ => choice(
      $.filter,
      $.contract,
      $.group,
      $.external,
      $.any,
      $.assertion,
    ),

    unenforced: _ => 'unenforced',

    // ---- filters -------------------------------------------------------------------------
    filter: $ => seq(
      'filter',
      field('name', $.name),
      '{',
      repeat(stmt($._entry)),
      '}',
    ),

    _entry: $ => choice($.port_entry, $.icmp_entry, $.ip_entry),

    port_entry: $ => seq(
      field('protocol', choice('tcp', 'udp', 'sctp')),
      optional(commaSep1(field('port', choice($.number, $.port_range)))),
    ),

    // Higher precedence than `name`, through which keywords are read: after `tcp`, `80` is a
    // port even though the next entry's keyword could start there too.
    number: _ => token(prec(1, /[0-9]+/)),

    port_range: $ => seq(
      $.number,
      token.immediate('-'),
      alias(token.immediate(/[0-9]+/), $.number),
    ),

    icmp_entry: $ => seq(
      field('protocol', choice('icmp', 'icmpv6')),
      optional(commaSep1(field('type', $.icmp_type))),
    ),

    // As PEG does, a word after a bare `icmp` is its type, even a keyword: `icmp tcp` is the
    // ICMP type `tcp` (which the checker rejects), never `icmp` followed by a `tcp` entry.
    icmp_type: _ => token(prec(1, ICMP_TYPE)),

    ip_entry: _ => 'ip',

    // ---- contracts -----------------------------------------------------------------------
    contract: $ => seq(
      optional(field('global', 'global')),
      'contract',
      field('name', $.name),
      '{',
      repeat(stmt($.subject)),
      '}',
    ),

    subject: $ => seq(
      'subject',
      field('name', $.name),
      field('action', choice('permit', 'deny')),
      commaSep1(field('filter', $._reference)),
      optional(field('both_ways', 'both-ways')),
      optional(field('log', 'log')),
    ),

    // ---- groups --------------------------------------------------------------------------
    group: $ => seq(
      'group',
      field('name', $.name),
      repeat($._modifier),
      '{',
      repeat(stmt($._group_statement)),
      '}',
    ),

    external: $ => seq(
      'external',
      field('name', $.name),
      repeat($._modifier),
      '{',
      repeat(stmt($._group_statement)),
      '}',
    ),

    _modifier: $ => choice($.extends, $.isolated, $.preferred),

    extends: $ => seq('extends', field('parent', $.name)),

    isolated: _ => 'isolated',

    preferred: _ => 'preferred',

    _group_statement: $ => choice(
      $.select,
      $.address,
      $.endpoint,
      $.provides,
      $.consumes,
    ),

    select: $ => seq('select', commaSep1($._selector)),

    // Every form a selector term can take (today `key=value`).
    _selector: $ => $.label,

    label: $ => seq(
      field('key', $.label_key),
      token.immediate('='),
      optional(field('value', choice(
        alias(token.immediate(/[A-Za-z0-9._-]+/), $.label_value),
        alias(token.immediate(/"[^"\n]*"/), $.string),
      ))),
    ),

    label_key: _ => /[A-Za-z0-9./_-]+/,

    address: $ => seq(
      'address',
      field('prefix', $.cidr),
      optional(choice(
        seq('except', commaSep1(field('except', $.cidr))),
        repeat1(seq(',', field('prefix', $.cidr))),
      )),
    ),

    // Loose on purpose, as in grammar/gbp.pest: the checker says what is wrong with 300.1.2.3.
    cidr: _ => /[0-9a-fA-F]*[:.][0-9a-fA-F:.]*(\/[0-9]+)?/,

    endpoint: $ => seq(
      'endpoint',
      field('name', $.name),
      commaSep1(field('address', $.cidr)),
      optional(seq('labels', commaSep1(field('label', $.label)))),
    ),

    provides: $ => seq('provides', commaSep1(field('contract', $._reference))),

    consumes: $ => seq('consumes', commaSep1(field('contract', $._reference))),

    // `any { consumes dns }`: every internal group of the tenant.
    any: $ => seq(
      'any',
      '{',
      repeat(stmt(choice($.provides, $.consumes))),
      '}',
    ),

    // ---- assertions ----------------------------------------------------------------------
    assertion: $ => seq(
      'assert',
      field('from', $._target),
      '->',
      field('to', $._target),
      field('probe', $.probe),
      field('verdict', choice('allow', 'deny')),
    ),

    _target: $ => choice($.cidr, $._reference),

    // `tcp/443`, `icmp/echo-request`, `ip/47`, `icmp`: no spaces.
    probe: $ => seq(
      field('protocol', choice('tcp', 'udp', 'sctp', 'icmp', 'icmpv6', 'ip')),
      optional(seq(
        token.immediate('/'),
        field('value', alias(token.immediate(ICMP_TYPE), $.probe_value)),
      )),
    ),
  },
});
