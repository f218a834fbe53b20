"""NEST 3.10 ginzburg_neuron (binary, asynchronous Poisson updates) on the
scale issue's benchmark network (see brian2_ei.py): gain
c1·h + c2·½(1 + tanh(c3·(h − θ))) with c1 = 0, c2 = 1, c3 = ½, θ = 0.6 is
sigmoid(h − 0.6). One thread. Each neuron updates on average once per
tau_m, so neuron-updates/s = N · (simulated time / tau_m) / wall time.

    python nest_ei.py N UPDATES_PER_NEURON
"""
import sys
import time

import numpy as np
import nest

n = int(sys.argv[1])
per_neuron = float(sys.argv[2])
k = 100
nest.set_verbosity("M_ERROR")
nest.ResetKernel()
nest.SetKernelStatus({"local_num_threads": 1, "resolution": 0.1, "rng_seed": 1})
tau = 10.0
pop = nest.Create("ginzburg_neuron", n, params={"tau_m": tau, "c_1": 0.0, "c_2": 1.0, "c_3": 0.5, "theta": 0.6})
ne = int(0.8 * n)
conn = {"rule": "fixed_indegree", "indegree": k, "allow_autapses": False, "allow_multapses": False}
nest.Connect(pop[:ne], pop, {"rule": "fixed_indegree", "indegree": int(0.8 * k), "allow_autapses": False,
                             "allow_multapses": False}, {"weight": 0.2})
nest.Connect(pop[ne:], pop, {"rule": "fixed_indegree", "indegree": k - int(0.8 * k), "allow_autapses": False,
                             "allow_multapses": False}, {"weight": -1.0})
nest.Simulate(5 * tau)  # settle
t0 = time.perf_counter()
nest.Simulate(per_neuron * tau)
wall = time.perf_counter() - t0
print(f"nest N={n} asynchronous: {n * per_neuron / wall:.3e} neuron-updates/s ({wall:.2f} s)")
