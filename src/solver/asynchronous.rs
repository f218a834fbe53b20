//! The asynchronous (Glauber-like) scheme, fully observed: one living neuron
//! drawn uniformly acts per tick. Soft Bellman operator
//! `T h(s) = r(s) + (λ/m) Σ_k log Z_k(s)` (theory §3).
//!
//! Solved by modified policy iteration: an improvement sweep applies the soft
//! Bellman operator exactly (one exp and one log per state and neuron) and
//! stores the greedy policy; the next `eval_sweeps` sweeps apply the linear
//! operator of that policy (multiply-adds only). Convergence is judged on the
//! improvement sweeps' span, i.e. on the true Bellman residual. Per-neuron
//! arrays are neuron-major so every inner loop streams memory.

use super::{CHUNK, Policy, SolveOptions, ValueIteration, expected_next_value, safe_ln, sigmoid};
use crate::model::Network;
use rayon::prelude::*;

/// Raw pointer handed to parallel tasks that write disjoint index ranges.
#[derive(Clone, Copy)]
struct SharedMut(*mut f64);
// SAFETY: used only where each task writes a disjoint set of indices.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// A method (not the field) so closures capture the whole `Sync` wrapper.
    fn at(self, offset: usize) -> *mut f64 {
        self.0.wrapping_add(offset)
    }
}

/// Relative value iteration for a fixed prior, warm-started from `h`.
pub(crate) fn value_iteration(net: &Network, prior: &[f64], h: &mut [f64], opts: &SolveOptions) -> ValueIteration {
    let c = net.configs();
    let states = net.states();
    let alive: Vec<usize> = (0..net.n).filter(|&k| net.alive[k]).collect();
    let inv_m = 1.0 / alive.len().max(1) as f64;
    let ln_p: Vec<(f64, f64)> = prior.iter().map(|&p| (safe_ln(1.0 - p), safe_ln(p))).collect();
    let lambda = net.lambda;
    let inv_lambda = 1.0 / lambda;
    let mut w = vec![0.0; states];
    let mut th = vec![0.0; states];
    // Cost-adjusted reward of the stored policy, and the policy (neuron-major).
    let mut cost = vec![0.0; states];
    let mut pi = vec![0.0; alive.len() * states];
    let mut g = 0.0;
    let mut residual = f64::INFINITY;
    let scale = net.reward.iter().fold(1.0f64, |a, r| a.max(r.abs()));
    let tol = opts.value_tol * scale;
    let period = opts.eval_sweeps + 1;
    let chunk = CHUNK.min(c);
    for sweep in 1..=opts.max_value_sweeps {
        expected_next_value(net, h, &mut w);
        let improve = sweep % period == 1 || period == 1;
        let pi_ptr = SharedMut(pi.as_mut_ptr());
        th.par_chunks_mut(chunk)
            .zip(cost.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(ci, (out, cst))| {
                let start = ci * chunk;
                let len = out.len();
                // A chunk never straddles two inputs: σ = σ0 + i.
                let sigma0 = start % c;
                let base = start - sigma0;
                let mut lin = [0.0f64; CHUNK];
                let mut soft = [0.0f64; CHUNK];
                for (ai, &k) in alive.iter().enumerate() {
                    let bit = 1usize << k;
                    let (lp0, lp1) = ln_p[k];
                    // SAFETY: this task alone writes pi[ai·S + start .. ai·S + start + len].
                    let pik = unsafe { std::slice::from_raw_parts_mut(pi_ptr.at(ai * states + start), len) };
                    for i in 0..len {
                        let sigma = sigma0 + i;
                        let w0 = w[base + (sigma & !bit)];
                        let w1 = w[base + (sigma | bit)];
                        if improve {
                            let (p, v) = soft_choice(w0, w1, lp0, lp1, inv_lambda);
                            pik[i] = p;
                            soft[i] += lambda * v;
                        }
                        lin[i] += w0 + pik[i] * (w1 - w0);
                    }
                }
                for i in 0..len {
                    let r = net.reward[start + i];
                    if improve {
                        cst[i] = r + (soft[i] - lin[i]) * inv_m;
                        out[i] = r + soft[i] * inv_m;
                    } else {
                        out[i] = cst[i] + lin[i] * inv_m;
                    }
                }
            });
        let (span, gain) = super::relative_update(net, h, &th, opts.damping);
        if improve {
            residual = span;
            g = gain;
            if residual < tol {
                return ValueIteration {
                    g,
                    sweeps: sweep,
                    residual,
                    converged: true,
                };
            }
            if sweep % 1000 == 1 {
                tracing::trace!(sweep, residual, g, "value iteration");
            }
        }
    }
    ValueIteration {
        g,
        sweeps: opts.max_value_sweeps,
        residual,
        converged: false,
    }
}

/// For one neuron at one state: the soft-optimal firing probability
/// `sigmoid(b − a)` and `log(e^a + e^b)`, where `a = ln p0 + w0/λ`,
/// `b = ln p1 + w1/λ`; one exp and one log.
#[inline]
fn soft_choice(w0: f64, w1: f64, ln_p0: f64, ln_p1: f64, inv_lambda: f64) -> (f64, f64) {
    let a = ln_p0 + w0 * inv_lambda;
    let b = ln_p1 + w1 * inv_lambda;
    let d = b - a;
    let e = (-d.abs()).exp();
    let inv = 1.0 / (1.0 + e);
    let p = if d >= 0.0 { inv } else { e * inv };
    (p, a.max(b) + (1.0 + e).ln())
}

/// `π_k(1|s) = sigmoid(logit p_k + ΔW_k(s)/λ)`; dead neurons never fire.
pub(crate) fn policy_from_values(net: &Network, prior: &[f64], h: &[f64]) -> Policy {
    let n = net.n;
    let c = net.configs();
    let mut w = vec![0.0; net.states()];
    expected_next_value(net, h, &mut w);
    let logit: Vec<f64> = prior.iter().map(|&p| safe_ln(p) - safe_ln(1.0 - p)).collect();
    let mut fire = vec![0.0; net.states() * n];
    fire.par_chunks_mut(n * CHUNK).enumerate().for_each(|(ci, out)| {
        for (i, row) in out.chunks_mut(n).enumerate() {
            let s = ci * CHUNK + i;
            let base = s - s % c;
            let sigma = s % c;
            for k in 0..n {
                if !net.alive[k] {
                    row[k] = 0.0;
                    continue;
                }
                let bit = 1usize << k;
                let dw = w[base + (sigma | bit)] - w[base + (sigma & !bit)];
                row[k] = sigmoid(logit[k] + dw / net.lambda);
            }
        }
    });
    Policy { n, fire }
}

/// The chain of `policy` in the form the stationary iteration streams:
/// `flip[a·S + s]` = probability that the a-th living neuron flips when it
/// acts at s, and `stay[s]` = `Σ_a (1 − flip)`.
pub(crate) struct FlipTable {
    alive: Vec<usize>,
    flip: Vec<f64>,
    stay: Vec<f64>,
}

impl FlipTable {
    pub(crate) fn new(net: &Network, policy: &Policy) -> Self {
        let states = net.states();
        let c = net.configs();
        let alive: Vec<usize> = (0..net.n).filter(|&k| net.alive[k]).collect();
        let mut flip = vec![0.0; alive.len() * states];
        flip.par_chunks_mut(states).enumerate().for_each(|(ai, f)| {
            let k = alive[ai];
            for (s, v) in f.iter_mut().enumerate() {
                let p = policy.p(s, k);
                *v = if (s % c) >> k & 1 == 1 { 1.0 - p } else { p };
            }
        });
        let mut stay = vec![0.0; states];
        stay.par_iter_mut().enumerate().for_each(|(s, v)| {
            *v = (0..alive.len()).map(|a| 1.0 - flip[a * states + s]).sum();
        });
        FlipTable { alive, flip, stay }
    }
}

/// One step of the chain: `ρ'(x', σ') = Σ_x P[x][x'] μ(x, σ')` with
/// `μ(x, σ') = (1/m) [ρ(x,σ') Σ_k stay_k(x,σ') + Σ_k ρ(x,σ'⊕k) flip_k(x,σ'⊕k)]`.
pub(crate) fn stationary_step(net: &Network, table: &FlipTable, rho: &[f64], mu: &mut [f64], out: &mut [f64]) {
    let c = net.configs();
    let states = net.states();
    let m = table.alive.len();
    let chunk = CHUNK.min(c);
    mu.par_chunks_mut(chunk).enumerate().for_each(|(ci, out)| {
        let start = ci * chunk;
        let sigma0 = start % c;
        let base = start - sigma0;
        if m == 0 {
            out.copy_from_slice(&rho[start..start + out.len()]);
            return;
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = rho[start + i] * table.stay[start + i];
        }
        for (a, &k) in table.alive.iter().enumerate() {
            let bit = 1usize << k;
            let f = &table.flip[a * states..(a + 1) * states];
            for (i, o) in out.iter_mut().enumerate() {
                let from = base + ((sigma0 + i) ^ bit);
                *o += rho[from] * f[from];
            }
        }
        let inv = 1.0 / m as f64;
        out.iter_mut().for_each(|o| *o *= inv);
    });
    super::evaluate::mix_inputs(net, mu, out);
}

/// Relative values of a given policy (no improvement): iterate
/// `T_π h(s) = r(s) − (λ/m) Σ_k KL(π_k(·|s) ‖ p_k) + (1/m) Σ_k E_{a~π_k}[W(x, σ^{k←a})]`
/// from the warm start `h` until the span of `T_π h − h` is below tolerance.
pub(crate) fn policy_values(
    net: &Network,
    policy: &Policy,
    prior: &[f64],
    h: &mut [f64],
    opts: &SolveOptions,
) -> ValueIteration {
    let c = net.configs();
    let states = net.states();
    let alive: Vec<usize> = (0..net.n).filter(|&k| net.alive[k]).collect();
    let inv_m = 1.0 / alive.len().max(1) as f64;
    let lambda = net.lambda;
    let cost: Vec<f64> = (0..states)
        .into_par_iter()
        .map(|s| {
            let kl: f64 = alive
                .iter()
                .map(|&k| super::kl_bernoulli(policy.p(s, k), prior[k]))
                .sum();
            net.reward[s] - lambda * inv_m * kl
        })
        .collect();
    let mut w = vec![0.0; states];
    let mut th = vec![0.0; states];
    let scale = net.reward.iter().fold(1.0f64, |a, r| a.max(r.abs()));
    let tol = opts.value_tol * scale;
    let mut residual = f64::INFINITY;
    let mut g = 0.0;
    for sweep in 1..=opts.max_value_sweeps {
        expected_next_value(net, h, &mut w);
        th.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, out)| {
            for (i, o) in out.iter_mut().enumerate() {
                let s = ci * CHUNK + i;
                let (base, sigma) = (s - s % c, s % c);
                let mut lin = 0.0;
                for &k in &alive {
                    let bit = 1usize << k;
                    let w0 = w[base + (sigma & !bit)];
                    let w1 = w[base + (sigma | bit)];
                    lin += w0 + policy.p(s, k) * (w1 - w0);
                }
                *o = cost[s] + lin * inv_m;
            }
        });
        let (span, gain) = super::relative_update(net, h, &th, opts.damping);
        residual = span;
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
