; Highlights for gbpc policies, in the capture names of nvim-treesitter and the tree-sitter CLI.
; queries/helix/highlights.scm is the same file in Helix's names (scripts/tree-sitter-gbp.sh
; checks that the two agree).

(comment) @comment

; ---- keywords ------------------------------------------------------------------------------
[
  "tenant"
  "filter"
  "contract"
  "subject"
  "group"
  "external"
  "any"
  "assert"
  "select"
  "address"
  "endpoint"
  "labels"
  "provides"
  "consumes"
  "extends"
  "except"
] @keyword

(contract global: "global" @keyword.modifier)
(isolated) @keyword.modifier
(preferred) @keyword.modifier
(unenforced) @keyword.modifier

(subject action: _ @constant.builtin)
(assertion verdict: _ @constant.builtin)
(subject log: "log" @attribute)
(subject both_ways: "both-ways" @attribute)

; ---- protocols -----------------------------------------------------------------------------
(port_entry protocol: _ @type.builtin)
(icmp_entry protocol: _ @type.builtin)
(ip_entry) @type.builtin
(probe protocol: _ @type.builtin)

; ---- names ---------------------------------------------------------------------------------
(tenant name: (name) @module)
(qualified_name tenant: (name) @module)

(filter name: (name) @function)
(subject filter: (name) @function)
(subject filter: (qualified_name name: (name) @function))

(contract name: (name) @type)
(provides contract: (name) @type)
(consumes contract: (name) @type)
(provides contract: (qualified_name name: (name) @type))
(consumes contract: (qualified_name name: (name) @type))

(subject name: (name) @label)

(group name: (name) @constructor)
(external name: (name) @constructor)
(extends parent: (name) @constructor)

(endpoint name: (name) @variable)
(assertion from: (name) @variable)
(assertion to: (name) @variable)
(assertion from: (qualified_name name: (name) @variable))
(assertion to: (qualified_name name: (name) @variable))

; ---- values --------------------------------------------------------------------------------
(label key: (label_key) @property)
(label_value) @string
(string) @string
(cidr) @string.special
(number) @number
(icmp_type) @constant
(probe value: (probe_value) @constant)

; ---- punctuation ---------------------------------------------------------------------------
[
  "->"
  "="
] @operator

(port_range "-" @operator)

[
  ","
  ";"
  "/"
] @punctuation.delimiter

[
  "{"
  "}"
] @punctuation.bracket
