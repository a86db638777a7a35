#!/bin/bash
# Fails when a C++ file of the project is not formatted as .clang-format says (ctest: style_clang_format).
#   tests/style/check-format.sh          check, print the files that differ and how to fix them
#   tests/style/check-format.sh --fix    format them in place
# The kernel-side C under templates/ follows the kernel's style and is not checked.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
command -v clang-format > /dev/null || { echo "clang-format is not installed (apt-get install clang-format)" >&2; exit 3; }
mapfile -t files < <(find generator tests -type f \( -name '*.cpp' -o -name '*.h' \) | sort)
((${#files[@]} > 0)) || { echo "no C++ files found under $REPO" >&2; exit 1; }
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]} > 0)); then
  printf 'not formatted: %s\n' "${bad[@]}" >&2
  echo "fix with: tests/style/check-format.sh --fix" >&2
  exit 1
fi
echo "${#files[@]} files formatted as .clang-format says"
