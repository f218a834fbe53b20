#!/usr/bin/env bash
# Side-by-side throughput on the scale issue's benchmark network: marlin's
# sparse engine (examples/scale.rs) and its peers, one after the other, on
# one thread (marlin also on 2 threads). Peers install from PyPI:
#   python3 -m venv /tmp/peers && /tmp/peers/bin/pip install brian2 nest-simulator "numpy<2.4" scipy cython
# Usage: benches/peers/run.sh [PYTHON]   (default /tmp/peers/bin/python)
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${1:-/tmp/peers/bin/python}"
cargo build --release --example scale -q
scale=target/release/examples/scale
work=$(mktemp -d)
for n in 10000 100000; do
    ticks=$((10000000 / n))
    # (marlin's runs 3× as long as the peers': a run of 0.2 s on this VM
    # scatters by ±20 %.)
    "$scale" "$n" synchronous 1 "$((3 * ticks))"
    "$scale" "$n" synchronous 2 "$((3 * ticks))"
    (cd "$work" && "$py" "$OLDPWD/benches/peers/brian2_ei.py" "$n" "$ticks" 2>&1 | grep -v WARNING | tail -1)
    "$py" benches/peers/numpy_ei.py "$n" "$((ticks / 4))"
    "$scale" "$n" asynchronous 1 10000000
    "$py" benches/peers/nest_ei.py "$n" 10 2>/dev/null | tail -1
done
"$scale" 1000000 synchronous 1 30
"$scale" 1000000 synchronous 2 30
