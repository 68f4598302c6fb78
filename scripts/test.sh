#!/usr/bin/env bash
# Set up a fresh machine and run the test suite (the README's test command; CI runs this).
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -c constraints.txt -e ".[test]" || exit 1
# The UEA/UCR sets bundled in aeon's wheel are real data the tests read offline; only the
# files are needed, so aeon's own dependencies are not installed.
python -m pip install -q --no-deps -c constraints.txt aeon==1.6.0 || exit 1
python -m pytest -n 2 "$@"
rc=$?
# pytest exits 5 when it collected no tests: a failure for us, not a pass.
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit "$rc"
