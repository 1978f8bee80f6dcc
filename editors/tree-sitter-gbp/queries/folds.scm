; Folds: every block.
[
  (tenant)
  (filter)
  (contract)
  (group)
  (external)
  (any)
] @fold
