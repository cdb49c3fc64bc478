#!/usr/bin/env bash
# The peers that benchmarks/run.py measures besides nbclient, nbconvert and papermill (which the
# grader's own environment has): nbval and nbgrader, each in its own virtual environment under
# .venv-peers/, with the grader's versions of the Jupyter packages they share. Not in the
# grader's environment: nbgrader's dependencies (jsonschema's format extras: rfc3987-syntax,
# lark) make every `import nbformat` there take about 0.9 s instead of 0.06 s.
#
# Usage: benchmarks/setup-peers.sh        (about 2 minutes; then python benchmarks/run.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
shared=$(grep -E '^(ipykernel|nbclient|jupyter_client|nbformat|nbconvert)==' constraints.txt)
for peer in "nbval==0.11.0" "nbgrader==0.9.6"; do
    name=${peer%%=*}
    echo "setup-peers: $peer in .venv-peers/$name" >&2
    "$PYTHON" -m venv ".venv-peers/$name"
    # shellcheck disable=SC2086  # one requirement per word
    ".venv-peers/$name/bin/pip" install --quiet "$peer" $shared
done
