//! Product-form schemes, synchronous (every neuron acts) and random-partial
//! (each acts with probability q; q = 1 is synchronous). The joint policy is a
//! product of per-neuron policies, so the Bellman maximisation over it is a
//! team game solved by best responses (theory §3):
//! `π_k ∝ p_k·exp(E[W | σ'_k = a, others]/λ)`. We do one Gauss–Seidel pass of
//! exact best responses per state and value sweep; each best response is a
//! coordinate ascent step of `E[W] − λ q Σ KL`, so the pass never lowers it.
//! A pass costs O(4·2ⁿ) per state via shared tensor contractions, a sweep
//! O(X·4ⁿ).

use super::{CHUNK, Policy, SolveOptions, ValueIteration, expected_next_value, kl_bernoulli, safe_ln, sigmoid};
use crate::model::{Network, UpdateScheme};
use rayon::prelude::*;

fn act_q(net: &Network) -> f64 {
    match net.update {
        UpdateScheme::Synchronous => 1.0,
        UpdateScheme::RandomPartial { q } => q,
        UpdateScheme::Asynchronous => {
            unreachable!("product solver called for the asynchronous scheme")
        }
    }
}

/// Probability that neuron j is on next tick, given its policy at the state.
#[inline]
fn next_on(q: f64, on_now: bool, alive: bool, pi: f64) -> f64 {
    if !alive {
        0.0
    } else {
        (1.0 - q) * (on_now as u8 as f64) + q * pi
    }
}

/// Scratch space of one worker.
struct Scratch {
    top: Vec<f64>,
    bottom: Vec<f64>,
}

/// One Gauss–Seidel pass of best responses at state (x, σ), updating `pi` in
/// place; returns `E[W] − λ q Σ_k KL(π_k ‖ p_k)` for the updated policies and
/// the largest change of a firing probability.
#[allow(clippy::too_many_arguments)]
fn best_response_pass(
    net: &Network,
    q: f64,
    logit_prior: &[f64],
    prior: &[f64],
    wx: &[f64],
    sigma: usize,
    pi: &mut [f64],
    sc: &mut Scratch,
) -> (f64, f64) {
    let n = net.n;
    let lambda = net.lambda;
    sc.top.clear();
    sc.top.extend_from_slice(wx);
    let mut moved = 0.0f64;
    let mut m: Vec<f64> = (0..n)
        .map(|j| next_on(q, sigma >> j & 1 == 1, net.alive[j], pi[j]))
        .collect();
    // Invariant at the top of iteration k: `top[0..2^{k+1}]` holds W with bits
    // above k contracted against the current next-state probabilities.
    for k in (0..n).rev() {
        if net.alive[k] {
            let len = 2usize << k;
            sc.bottom.clear();
            sc.bottom.extend_from_slice(&sc.top[..len]);
            let mut size = len;
            for j in 0..k {
                let mj = m[j];
                size /= 2;
                for i in 0..size {
                    sc.bottom[i] = (1.0 - mj) * sc.bottom[2 * i] + mj * sc.bottom[2 * i + 1];
                }
            }
            let dw = sc.bottom[1] - sc.bottom[0];
            let new = sigmoid(logit_prior[k] + dw / lambda);
            moved = moved.max((new - pi[k]).abs());
            pi[k] = new;
            m[k] = next_on(q, sigma >> k & 1 == 1, true, pi[k]);
        }
        let half = 1usize << k;
        let mk = m[k];
        for i in 0..half {
            sc.top[i] = (1.0 - mk) * sc.top[i] + mk * sc.top[i + half];
        }
    }
    let mut kl = 0.0;
    for k in 0..n {
        if net.alive[k] {
            kl += kl_bernoulli(pi[k], prior[k]);
        }
    }
    (sc.top[0] - lambda * q * kl, moved)
}

/// Relative value iteration with one best-response pass per sweep, warm
/// started from `h` and `policy` (both updated in place).
pub(crate) fn value_iteration(
    net: &Network,
    prior: &[f64],
    h: &mut [f64],
    policy: &mut Policy,
    opts: &SolveOptions,
) -> ValueIteration {
    let n = net.n;
    let c = net.configs();
    let states = net.states();
    let q = act_q(net);
    let logit: Vec<f64> = prior.iter().map(|&p| safe_ln(p) - safe_ln(1.0 - p)).collect();
    let mut w = vec![0.0; states];
    let mut th = vec![0.0; states];
    let scale = net.reward.iter().fold(1.0f64, |a, r| a.max(r.abs()));
    let tol = opts.value_tol * scale;
    let mut g = 0.0;
    let mut residual = f64::INFINITY;
    let chunk = (CHUNK >> n.min(12)).max(1);
    for sweep in 1..=opts.max_value_sweeps {
        expected_next_value(net, h, &mut w);
        let moved = th
            .par_chunks_mut(chunk)
            .zip(policy.fire.par_chunks_mut(chunk * n))
            .enumerate()
            .map_init(
                || Scratch {
                    top: Vec::with_capacity(c),
                    bottom: Vec::with_capacity(c),
                },
                |sc, (ci, (out, pis))| {
                    let mut moved = 0.0f64;
                    for (i, (o, pi)) in out.iter_mut().zip(pis.chunks_mut(n)).enumerate() {
                        let s = ci * chunk + i;
                        let base = s - s % c;
                        let (f, d) = best_response_pass(net, q, &logit, prior, &w[base..base + c], s % c, pi, sc);
                        *o = net.reward[s] + f;
                        moved = moved.max(d);
                    }
                    moved
                },
            )
            .reduce(|| 0.0, f64::max);
        let (span, gain) = super::relative_update(net, h, &th, opts.damping);
        // Converged only when the best responses have stopped moving too.
        residual = span.max(moved);
        g = gain;
        if residual < tol {
            return ValueIteration {
                g,
                sweeps: sweep,
                residual,
                converged: true,
            };
        }
    }
    ValueIteration {
        g,
        sweeps: opts.max_value_sweeps,
        residual,
        converged: false,
    }
}

/// One step of the chain: from each (x, σ) the next σ' is a product of
/// per-neuron Bernoullis; then the input moves.
pub(crate) fn stationary_step(net: &Network, policy: &Policy, rho: &[f64], mu: &mut [f64], out: &mut [f64]) {
    let n = net.n;
    let c = net.configs();
    let q = act_q(net);
    let xs = net.input.len();
    // Fixed blocks of source states, summed in block order: deterministic
    // for any number of threads.
    let block = (c / 64).max(1);
    for x in 0..xs {
        let parts: Vec<Vec<f64>> = (0..c.div_ceil(block))
            .into_par_iter()
            .map(|b| {
                let mut acc = vec![0.0; c];
                let mut wts = vec![0.0; c];
                for sigma in b * block..((b + 1) * block).min(c) {
                    let s = x * c + sigma;
                    let mass = rho[s];
                    if mass == 0.0 {
                        continue;
                    }
                    wts[0] = mass;
                    for j in 0..n {
                        let mj = next_on(q, sigma >> j & 1 == 1, net.alive[j], policy.p(s, j));
                        let half = 1usize << j;
                        for i in 0..half {
                            wts[i + half] = wts[i] * mj;
                            wts[i] *= 1.0 - mj;
                        }
                    }
                    acc.iter_mut().zip(&wts).for_each(|(a, w)| *a += w);
                }
                acc
            })
            .collect();
        let dst = &mut mu[x * c..(x + 1) * c];
        dst.fill(0.0);
        for part in &parts {
            dst.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
    }
    super::evaluate::mix_inputs(net, mu, out);
}
