#!/usr/bin/env bash
# The README's test command: sets up what the tests need on a fresh machine,
# then runs the whole suite, where a test whose tool is still missing FAILS
# (a plain `cargo test` prints SKIPPED for it instead). `.ci/run` calls this.
#
#   tests/run.sh [cargo test arguments…]
#
# What it installs when missing:
#   - numpy, in a virtual environment at target/test-venv (python3 -m venv;
#     Debian's python3-venv is installed with apt-get if venv is missing);
#   - Chromium (apt-get), for the test that renders the study report;
#   - Open MPI (apt-get: openmpi-bin libopenmpi-dev libclang-dev), for the
#     distributed-run tests (they build marlin --features mpi into target/mpi).
# apt-get runs as root, or through sudo when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "tests/run.sh: $*" >&2; }

apt_install() {
    local runner=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then runner=(sudo); else
            say "cannot install $* (not root, no sudo): the tests that need them will fail"
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        say "cannot install $* (no apt-get here): install them by hand"
        return 1
    fi
    say "installing $* (apt-get)"
    "${runner[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# numpy, in a virtual environment of our own.
venv=target/test-venv
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p target
    if ! python3 -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        apt_install python3-venv || true
        python3 -m venv "$venv"
    fi
fi
if ! "$venv/bin/python" -c "import numpy" 2>/dev/null; then
    say "installing numpy into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy
fi
export MARLIN_PYTHON="$PWD/$venv/bin/python"

# Chromium, for the report's browser test.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    apt_install chromium || true
fi

# Open MPI, for the distributed-run tests.
if ! command -v mpirun >/dev/null 2>&1; then
    apt_install openmpi-bin libopenmpi-dev libclang-dev || true
fi

# Every test that needs a tool now requires it.
export MARLIN_REQUIRE_TOOLS=1
# Both crates: the library (marlin) and the command (marlin-cli).
exec cargo test --workspace --no-fail-fast "$@"
