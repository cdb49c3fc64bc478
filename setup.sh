#!/usr/bin/env bash
# Set grader up from nothing: a virtual environment in .venv with the grader, its tests' tools
# and the pinned deep-learning stack, a Jupyter kernel, and the example submission's new images.
# Safe to run again: it only installs what is missing.
#
#   GRADER_DATA_DIR=/path/to/datasets ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"

# system_package PACKAGE WHAT WITHOUT: install Debian's PACKAGE (WHAT: what it is for) with
# apt-get where we are root on Debian/Ubuntu; elsewhere, or when that fails, say what is lost
# without it (WITHOUT) and how to install it. grader still runs without any of them.
system_package() {
  local package=$1 what=$2 without=$3
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing $package ($what)"
    apt-get install -y -qq "$package" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq "$package" >/dev/null; } \
      || echo "setup: could not install $package: $without" >&2
  else
    echo "setup: $package is not installed: $without. Install it (sudo apt-get install $package)." >&2
  fi
}

# The sandbox: bubblewrap (setpriv and prlimit from util-linux drop root inside it).
command -v bwrap >/dev/null \
  || system_package bubblewrap "the notebook sandbox" "notebooks will run unsandboxed"
# Chromium for the event server's browser test (Playwright drives it through executable_path;
# Playwright's own browser download is not used).
command -v chromium >/dev/null \
  || system_package chromium "the event server's browser test" "the browser test will be skipped"
# PostgreSQL for the event server's tests on PostgreSQL (tests/support/pg.py starts a throwaway server
# with initdb and pg_ctl as the postgres user; nothing is left running).
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null \
  || system_package postgresql "the event server's tests on PostgreSQL" \
       "the server's PostgreSQL tests will be skipped"
# Fashion-MNIST's official idx files (challenge fashion-mnist) into /usr/share/datasets/fashion-mnist/;
# the grader looks in $GRADER_DATA_DIR/fashion-mnist/ first.
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] \
  || [ -f "${GRADER_DATA_DIR:-/nonexistent}/fashion-mnist/t10k-labels-idx1-ubyte.gz" ] \
  || system_package dataset-fashion-mnist "the fashion-mnist challenge's data" \
       "the fashion-mnist challenge has no data (or put its idx files in \$GRADER_DATA_DIR/fashion-mnist/)"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

echo "setup: installing the grader and the pinned deep-learning stack (first time: a few minutes, ~7 GB)"
log=$(mktemp)
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check \
     -c constraints.txt -r requirements-ml.txt -e '.[test]' >"$log" 2>&1; then
  grep -v -E "^WARNING: Location 'file:.*' is ignored" "$log" >&2 || true
  echo "setup: pip failed (output above)" >&2
  exit 1
fi
rm -f "$log"
# the packages the coach adds for the notebooks (packages.txt, [environment] in challenge.toml):
# pinned, installed beside the stack, within the same constraints
pins=$(.venv/bin/python -m grader.core.environment "$PWD")
if [ -n "$pins" ]; then
  echo "setup: installing the packages the coach added: $(echo $pins)"
  # shellcheck disable=SC2086 # one pin a word
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt $pins \
    || { echo "setup: pip could not install the packages the coach added (above)" >&2; exit 1; }
fi
# pip byte-compiles what it installs, not an editable install's own sources: compile them now,
# or every grader start compiles them again where PYTHONDONTWRITEBYTECODE is set (0.02 s a start;
# a source edited later is compiled afresh, as Python checks its time stamp)
.venv/bin/python -m compileall -q grader >/dev/null
.venv/bin/python -c "import grader, nbclient, torch, torchvision, efficientnet_lite_pytorch" \
  || { echo "setup: the installation is incomplete (see the pip output above)" >&2; exit 1; }

echo "setup: registering the notebook kernel (python3 -> .venv/bin/python)"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (grader)" >/dev/null

if [ -n "${GRADER_DATA_DIR:-}" ]; then
  mkdir -p examples/team3/new_images
  grep -v -E '^(#|$)' examples/team3/new_images.txt | while read -r name; do
    src="$GRADER_DATA_DIR/new_images/$name"
    [ -f "$src" ] || { echo "setup: $src is missing: is GRADER_DATA_DIR the datasets folder?" >&2; exit 1; }
    cp -n "$src" examples/team3/new_images/
  done
  echo "setup: examples/team3/new_images holds $(ls examples/team3/new_images | wc -l) photos"
else
  echo "setup: GRADER_DATA_DIR is not set: examples/team3/new_images was not filled" >&2
fi
if command -v bwrap >/dev/null; then echo "setup: sandbox: $(bwrap --version)"; fi
echo "setup: done. Try: .venv/bin/grader check examples/team3 --out out"
