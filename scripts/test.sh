#!/usr/bin/env bash
# Set up a fresh machine and run the test suite (the README's test command; CI runs this).
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -c constraints.txt -e ".[test]" || exit 1
python -m pytest -n 2 "$@"
rc=$?
# pytest exits 5 when it collected no tests: a failure for us, not a pass.
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit "$rc"
