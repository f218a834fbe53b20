"""numpy + scipy.sparse on the scale issue's benchmark network (see
brian2_ei.py): h = W @ s, s = rand < sigmoid(-0.6 + h), synchronous.

    python numpy_ei.py N TICKS
"""
import sys
import time

import numpy as np
import scipy.sparse as sp

n = int(sys.argv[1])
ticks = int(sys.argv[2])
k = 100
rng = np.random.default_rng(1)
pre = np.empty(n * k, dtype=np.int64)
for i in range(n):
    c = rng.choice(n - 1, size=k, replace=False)
    c[c >= i] += 1
    pre[i * k:(i + 1) * k] = c
post = np.repeat(np.arange(n), k)
w = np.where(pre < int(0.8 * n), 0.2, -1.0)
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
