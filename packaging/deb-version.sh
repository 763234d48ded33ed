#!/usr/bin/env sh
# Prints the package version: the git tag of HEAD without its "v" (v1.2.0 ->
# 1.2.0), else 0.0.0~git<commit date, UTC>.<short commit> — "~" sorts before
# any release, and later commits sort after earlier ones.
set -eu
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
  echo "${tag#v}"
  exit 0
fi
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
echo "0.0.0~git$date.$(git rev-parse --short=7 HEAD)"
