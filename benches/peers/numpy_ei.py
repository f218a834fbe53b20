"""numpy + scipy.sparse on the scale issue's benchmark network (network.py): h = W @ s, s = rand < sigmoid(-0.6 + h), synchronous.

    python numpy_ei.py N TICKS
"""
import sys
import time

import numpy as np
import scipy.sparse as sp

import network

n = int(sys.argv[1])
ticks = int(sys.argv[2])
pre, post, w = network.edges(n)
rng = np.random.default_rng(2)
W = sp.csr_matrix((w, (post, pre)), shape=(n, n))
s = np.zeros(n)
t0 = time.perf_counter()
active = 0.0
for _ in range(ticks):
    h = W @ s
    s = (rng.random(n) < 1.0 / (1.0 + np.exp(0.6 - h))).astype(np.float64)
    active += s.mean()
wall = time.perf_counter() - t0
print(f"numpy N={n} synchronous: {n * ticks / wall:.3e} neuron-updates/s, activity {active / ticks:.3f}")
