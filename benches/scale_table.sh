#!/usr/bin/env bash
# The scale issue's benchmark table: the benchmark network (K = 100, 80 E /
# 20 I) at N = 10⁴, 10⁵, 10⁶, synchronous and random-partial (q = 0.1),
# fixed neurons (the sparse engine) and learning (logistic learners), on
# 1 thread, 2 threads and 2 MPI ranks × 1 thread; neuron-updates/s and
# synaptic events/s (spikes of the updated neurons × K). Prints a markdown
# table. Needs Open MPI for the MPI column (else it prints "—").
# Every cell is the median of REPEATS runs (default 3; this VM's rates move
# ±10 % from run to run).
# Usage: [REPEATS=R] benches/scale_table.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example scale -q
scale=target/release/examples/scale
mpi=""
if command -v mpirun > /dev/null && cargo build --release --features mpi --example scale -q --target-dir target/mpi 2> /dev/null; then
    mpi=target/mpi/release/examples/scale
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
fi
repeats=${REPEATS:-3}
rate() { grep -o '[0-9.e+]* neuron-updates/s, [0-9.e+]* synaptic' | sed 's| neuron-updates/s, | / |; s| synaptic||'; }
# median CMD...: the median (by neuron-updates/s) of $repeats runs of CMD.
median() {
    for _ in $(seq "$repeats"); do "$@" | rate; done | sort -g | sed -n "$(((repeats + 1) / 2))p"
}
echo "| N | update | neurons | 1 thread | 2 threads | 2 MPI ranks × 1 thread |"
echo "|---|---|---|---|---|---|"
for n in 10000 100000 1000000; do
    for update in synchronous random_partial:0.1; do
        for mode in fixed learn; do
            # Synchronous: 10⁸ updates of fixed neurons, 3·10⁷ of learners;
            # random-partial (q = 0.1) 40 % of those (≈ 1–10 s a run).
            ticks=$((100000000 / n))
            extra=""
            [ "$mode" = learn ] && extra=learn && ticks=$((30000000 / n))
            [ "$update" = synchronous ] || ticks=$((ticks * 4))
            one=$(median "$scale" "$n" "$update" 1 "$ticks" $extra)
            two=$(median "$scale" "$n" "$update" 2 "$ticks" $extra)
            ranks="—"
            [ -n "$mpi" ] && ranks=$(median mpirun --oversubscribe -np 2 "$mpi" "$n" "$update" 1 "$ticks" $extra)
            echo "| $n | $update | $mode | $one | $two | $ranks |"
        done
    done
done
