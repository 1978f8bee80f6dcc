; Highlights for gbpc policies in Helix's scope names: generated from ../highlights.scm by
; scripts/tree-sitter-gbp.sh --update (do not edit by hand).

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

(contract global: "global" @keyword.storage.modifier)
(isolated) @keyword.storage.modifier
(preferred) @keyword.storage.modifier
(unenforced) @keyword.storage.modifier

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
(tenant name: (name) @namespace)
(qualified_name tenant: (name) @namespace)

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
(label key: (label_key) @variable.other.member)
(label_value) @string
(string) @string
(cidr) @string.special
(number) @constant.numeric.integer
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
