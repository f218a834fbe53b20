//! Exact policy evaluation: the stationary distribution ρ of the chain that
//! a set of per-neuron policies induces, and from it ⟨r⟩, the information
//! term ⟨Σ_acting KL⟩ (nats per tick), g = ⟨r⟩ − λ·info, and the marginals
//! p_k(1) = Σ_s ρ(s) π_k(1|s). Used by the solver and to score learned
//! networks against the optimum.

use super::asynchronous::FlipTable;
use super::{CHUNK, Policy, SolveOptions, det_sum, kl_bernoulli};
use crate::model::{CodingCost, Network, UpdateScheme, spike_count};
use rayon::prelude::*;

/// What a set of policies achieves in the long run.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Stationary distribution over `s = x·2ⁿ + σ`.
    pub rho: Vec<f64>,
    /// Marginal firing probability of each neuron when it acts, `Σ_s ρ(s) π_k(1|s)`.
    pub p_fire: Vec<f64>,
    /// The prior the cost was measured against (the marginals for the
    /// mutual-information cost).
    pub prior: Vec<f64>,
    pub mean_reward: f64,
    /// `⟨Σ_{k acting} KL(π_k ‖ p_k)⟩` in nats per tick.
    pub info_nats: f64,
    /// `⟨r⟩ − λ·info_nats`.
    pub g: f64,
    pub stationary_sweeps: usize,
    /// L1 norm of the last power-iteration change.
    pub stationary_residual: f64,
    pub stationary_converged: bool,
    pub warnings: Vec<String>,
}

impl Evaluation {
    /// `P(spike count = c | x)` for every input index, c = 0..=n.
    pub fn count_distribution(&self, net: &Network) -> Vec<Vec<f64>> {
        let c = net.configs();
        (0..net.input.len())
            .map(|x| {
                let mut d = vec![0.0; net.n + 1];
                for sigma in 0..c {
                    d[spike_count(sigma)] += self.rho[x * c + sigma];
                }
                let z: f64 = d.iter().sum();
                if z > 0.0 {
                    d.iter_mut().for_each(|v| *v /= z);
                }
                d
            })
            .collect()
    }

    /// Stationary probability of each input index.
    pub fn input_marginal(&self, net: &Network) -> Vec<f64> {
        let c = net.configs();
        (0..net.input.len())
            .map(|x| self.rho[x * c..(x + 1) * c].iter().sum())
            .collect()
    }
}

/// Evaluate `policy` under the network's own coding cost: against the fixed
/// prior, or (mutual information) against the policy's own marginals.
pub fn evaluate(net: &Network, policy: &Policy, opts: &SolveOptions) -> Evaluation {
    let prior = match &net.cost {
        CodingCost::FixedPrior(p) => p.clone(),
        CodingCost::MutualInformation => vec![f64::NAN; net.n],
    };
    super::in_pool(|| evaluate_from(net, policy, &prior, None, opts))
}

/// Evaluate `policy` with the KL measured against `prior` (overrides the
/// network's cost, e.g. to score a policy against another prior).
pub fn evaluate_with_prior(net: &Network, policy: &Policy, prior: &[f64], opts: &SolveOptions) -> Evaluation {
    let mut fixed = net.clone();
    fixed.cost = CodingCost::FixedPrior(prior.to_vec());
    super::in_pool(|| evaluate_from(&fixed, policy, prior, None, opts))
}

/// Evaluation with a warm start for ρ. For the mutual-information cost the
/// KL is measured against the marginals of `policy` (`prior` is ignored).
pub(crate) fn evaluate_from(
    net: &Network,
    policy: &Policy,
    prior: &[f64],
    warm: Option<Vec<f64>>,
    opts: &SolveOptions,
) -> Evaluation {
    let (rho, sweeps, residual, converged) = stationary(net, policy, warm, opts);
    let n = net.n;
    let p_fire: Vec<f64> = (0..n)
        .map(|k| {
            if !net.alive[k] {
                return 0.0;
            }
            det_sum(rho.len(), |s| rho[s] * policy.p(s, k))
        })
        .collect();
    let prior: Vec<f64> = match net.cost {
        CodingCost::MutualInformation => p_fire.clone(),
        CodingCost::FixedPrior(_) => prior.to_vec(),
    };
    let mean_reward = det_sum(rho.len(), |s| rho[s] * net.reward[s]);
    let kl_per_state = det_sum(rho.len(), |s| {
        if rho[s] == 0.0 {
            return 0.0;
        }
        let kl: f64 = (0..n)
            .filter(|&k| net.alive[k])
            .map(|k| kl_bernoulli(policy.p(s, k), prior[k]))
            .sum();
        rho[s] * kl
    });
    let info_nats = net.update.act_probability(net.alive_count()) * kl_per_state;
    let mut warnings = Vec::new();
    if !converged {
        warnings.push(format!(
            "stationary distribution: power iteration stopped after {sweeps} sweeps with L1 change {residual:.3e}"
        ));
    }
    if rho.iter().any(|v| !v.is_finite()) || !mean_reward.is_finite() || !info_nats.is_finite() {
        warnings.push("non-finite value in policy evaluation".into());
    }
    Evaluation {
        rho,
        p_fire,
        prior,
        mean_reward,
        info_nats,
        g: mean_reward - net.lambda * info_nats,
        stationary_sweeps: sweeps,
        stationary_residual: residual,
        stationary_converged: converged,
        warnings,
    }
}

/// Power iteration for ρ, from `warm` or uniform over reachable states.
fn stationary(
    net: &Network,
    policy: &Policy,
    warm: Option<Vec<f64>>,
    opts: &SolveOptions,
) -> (Vec<f64>, usize, f64, bool) {
    let c = net.configs();
    let states = net.states();
    let mut rho = warm.filter(|r| r.len() == states).unwrap_or_else(|| {
        let dead = !net.alive_mask();
        let reachable = (1usize << net.alive_count()) * net.input.len();
        (0..states)
            .map(|s| {
                if (s % c) & dead == 0 {
                    1.0 / reachable as f64
                } else {
                    0.0
                }
            })
            .collect()
    });
    let mut mu = vec![0.0; states];
    let mut next = vec![0.0; states];
    let mut residual = f64::INFINITY;
    let table = matches!(net.update, UpdateScheme::Asynchronous).then(|| FlipTable::new(net, policy));
    let lazy = net.input.control.is_some();
    for sweep in 1..=opts.max_stationary_sweeps {
        match &table {
            Some(t) => super::asynchronous::stationary_step(net, t, &rho, &mut mu, &mut next),
            _ => super::product::stationary_step(net, policy, &rho, &mut mu, &mut next),
        }
        if lazy {
            // ρ ← ½ρ + ½Pρ: same fixed point, and it converges on periodic chains.
            let a = super::CONTROLLED_DAMPING;
            next.par_iter_mut()
                .zip(rho.par_iter())
                .for_each(|(v, r)| *v = a * *v + (1.0 - a) * r);
        }
        let z = det_sum(states, |s| next[s]);
        next.par_iter_mut().for_each(|v| *v /= z);
        residual = det_sum(states, |s| (next[s] - rho[s]).abs());
        std::mem::swap(&mut rho, &mut next);
        if residual < opts.stationary_tol {
            return (rho, sweep, residual, true);
        }
    }
    (rho, opts.max_stationary_sweeps, residual, false)
}

/// `out(x', σ) = Σ_x P_σ[x][x'] μ(x, σ)`: the input moves after the
/// neurons, by the chain of the state σ they reached.
pub(crate) fn mix_inputs(net: &Network, mu: &[f64], out: &mut [f64]) {
    let c = net.configs();
    let xs = net.input.len();
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, o)| {
        for (i, v) in o.iter_mut().enumerate() {
            let s = ci * CHUNK + i;
            let (x2, sigma) = (s / c, s % c);
            let chain = net.input.chain(sigma);
            let mut acc = 0.0;
            for x in 0..xs {
                acc += chain[x * xs + x2] * mu[x * c + sigma];
            }
            *v = acc;
        }
    });
}
