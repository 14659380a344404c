#!/usr/bin/env bash
# clang-format over every tracked C++ file (.clang-format at the root).
#   scripts/format.sh          rewrite the files in place
#   scripts/format.sh --check  list unformatted files and fail if any
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.inc')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "not clang-formatted: $f"
      bad=1
    fi
  done
  [ "$bad" = 0 ] && echo "clang-format: ${#files[@]} files formatted"
  exit "$bad"
fi
clang-format -i "${files[@]}"
