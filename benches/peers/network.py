"""The scale issue's benchmark network, as the peer scripts build it: n
binary neurons, each with K = 100 distinct presynaptic partners drawn among
the other n - 1 (as marlin's random_in_degree), neurons 0 .. 0.8 n - 1
excitatory (+0.2), the rest inhibitory (-1.0), P(fire at t+1) =
sigmoid(-0.6 + sum of w over partners active at t)."""
import numpy as np

K = 100


def edges(n, seed=1):
    """(pre, post, w), grouped by presynaptic neuron (pushing a spike then
    reads its synapses contiguously)."""
    rng = np.random.default_rng(seed)
    pre = np.empty(n * K, dtype=np.int64)
    for i in range(n):
        c = rng.choice(n - 1, size=K, replace=False)
        c[c >= i] += 1
        pre[i * K:(i + 1) * K] = c
    post = np.repeat(np.arange(n), K)
    order = np.lexsort((post, pre))
    pre, post = pre[order], post[order]
    return pre, post, np.where(pre < int(0.8 * n), 0.2, -1.0)
