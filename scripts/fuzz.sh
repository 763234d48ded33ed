#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzXxx in a _test.go file) for
# FUZZTIME each (default 1m). Not part of `make test`, which runs the targets'
# seed corpora (testdata/fuzz) as ordinary tests. A failure leaves its input in
# the package's testdata/fuzz folder: commit it as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-1m}
fail=0
while IFS=: read -r file line; do
  fn=$(sed -n "${line}p" "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/')
  pkg=$(dirname "$file")
  echo "fuzz: $pkg $fn for $t"
  if ! go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "$pkg"; then
    fail=1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./.git/' | cut -d: -f1,2)
exit $fail
