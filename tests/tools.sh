#!/usr/bin/env bash
# What the tests run besides the Rust code, pinned: snarkjs (the circom interop tests)
# and schemathesis (the OpenAPI test, in a virtual environment under target/).
set -euo pipefail
cd "$(dirname "$0")/.."
npm install --no-save snarkjs@0.7.6
if [ ! -x target/schemathesis/bin/schemathesis ]; then
    python3 -m venv target/schemathesis
    target/schemathesis/bin/pip install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
