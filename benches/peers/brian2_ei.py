"""Brian2 2.9 (C++ standalone, one thread) on the scale issue's benchmark
network (network.py), synchronous updates. Prints neuron-updates/s of the
simulation loop only.

    python brian2_ei.py N TICKS
"""
import os
import sys
import tempfile
import time

import network
from brian2 import (NeuronGroup, Synapses, defaultclock, device, ms, prefs, run, set_device)

n = int(sys.argv[1])
ticks = int(sys.argv[2])
# Synapses are created grouped by presynaptic neuron: Brian2 keeps them in
# creation order, and grouped by source each spike's targets are contiguous
# (3.8x faster than grouped by target on this machine).
pre, post, w = network.edges(n)

build = tempfile.mkdtemp(prefix="brian2_ei_")
set_device("cpp_standalone", directory=build, build_on_run=False)
prefs.devices.cpp_standalone.openmp_threads = 0
defaultclock.dt = 1 * ms
g = NeuronGroup(n, "v : 1\ns : 1", threshold="rand() < 1 / (1 + exp(0.6 - v))", reset="", method="exact")
# v holds the input of the previous tick's spikes: it is read by the
# threshold, cleared, then refilled by this tick's spikes.
g.run_regularly("v = 0", when="before_synapses")
syn = Synapses(g, g, "w : 1", on_pre="v_post += w")
syn.connect(i=pre, j=post)
syn.w = w
run(ticks * ms)
device.build(directory=build, compile=True, run=False)
t0 = time.perf_counter()
device.run(directory=build, with_output=False)
wall = time.perf_counter() - t0
# The run's own timer excludes process start and file output when available.
try:
    with open(os.path.join(build, "results", "last_run_info.txt")) as f:
        wall = float(f.read().split()[0])
except (OSError, ValueError, IndexError):
    pass
print(f"brian2 N={n} synchronous: {n * ticks / wall:.3e} neuron-updates/s ({wall:.2f} s for {ticks} ticks)")
