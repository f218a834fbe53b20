//! Partially observed networks, asynchronous scheme (theory §3): each neuron
//! sees only its observation `o_k` (the input if it receives it, its own
//! state and its presynaptic partners' states), so its policy is one firing
//! probability per observation class.
//!
//! Best responses average the fully observed one over the states an
//! observation lumps together: `π_k(1|o) = sigmoid(logit p_k + E_ρ[ΔW_k(s) | o]/λ)`,
//! with ρ the stationary distribution and h the relative values of the
//! current policies. The scheme alternates exact policy evaluation (h and ρ)
//! with a damped best-response step for every neuron (and, for the
//! mutual-information cost, the marginals p_k). Its fixed points are the
//! stationary points of g over per-observation policies — local optima,
//! like the fully observed case; with full observation it is soft policy
//! iteration and reaches the solver's optimum.

use super::asynchronous::policy_values;
use super::{Policy, Progress, Solution, SolveOptions, expected_next_value, safe_ln, sigmoid};
use crate::model::{CodingCost, Network, Observes};
use rayon::prelude::*;

/// Weight of the new best response in each step (simultaneous best
/// responses of all neurons overshoot without damping).
const STEP: f64 = 0.5;
/// Iteration cap, as a multiple of `opts.max_prior_iterations`.
const ITERATION_FACTOR: usize = 10;

/// The full-state policy of per-class firing probabilities `class_p[k][o]`.
fn expand(net: &Network, obs: &[Observes], class_p: &[Vec<f64>]) -> Policy {
    let n = net.n;
    let mut fire = vec![0.0; net.states() * n];
    fire.par_chunks_mut(n).enumerate().for_each(|(s, row)| {
        for k in 0..n {
            row[k] = if net.alive[k] {
                class_p[k][obs[k].class(s, n)]
            } else {
                0.0
            };
        }
    });
    Policy { n, fire }
}

/// Solve a partially observed asynchronous network from `prior`.
pub(crate) fn solve_from(
    net: &Network,
    opts: &SolveOptions,
    prior: Vec<f64>,
    progress: &mut dyn FnMut(&Progress),
) -> Solution {
    solve_warm(net, opts, prior, None, progress)
}

/// [`solve_from`], starting from given policies and relative values
/// (e.g. the solution for a nearby reward) instead of state-blind ones.
pub(crate) fn solve_warm(
    net: &Network,
    opts: &SolveOptions,
    mut prior: Vec<f64>,
    warm: Option<(&Policy, &[f64])>,
    progress: &mut dyn FnMut(&Progress),
) -> Solution {
    let n = net.n;
    let c = net.configs();
    let states = net.states();
    let full = Observes {
        input: true,
        mask: c - 1,
    };
    let obs: Vec<Observes> = net.observes.clone().unwrap_or_else(|| vec![full; n]);
    let fixed = matches!(net.cost, CodingCost::FixedPrior(_));
    let mut class_p: Vec<Vec<f64>> = (0..n).map(|k| vec![prior[k]; states]).collect();
    let mut h = vec![0.0; states];
    if let Some((policy, values)) = warm.filter(|(p, v)| p.fire.len() == states * n && v.len() == states) {
        // A class's probability, read at any of its states (constant over it).
        for s in 0..states {
            for k in 0..n {
                class_p[k][obs[k].class(s, n)] = policy.p(s, k);
            }
        }
        for k in 0..n {
            if !net.alive[k] {
                class_p[k].iter_mut().for_each(|p| *p = prior[k]);
            }
        }
        h.copy_from_slice(values);
    }
    let mut rho: Option<Vec<f64>> = None;
    let mut w = vec![0.0; states];
    let mut warnings = Vec::new();
    let mut sweeps = 0;
    let max_iterations = opts.max_prior_iterations * ITERATION_FACTOR;
    let mut iteration = 0;
    // Inexact inner solves while the policies still move (as in the fully
    // observed Blahut–Arimoto loop); the last iteration runs at full precision.
    let mut last_change: f64 = 1.0;
    loop {
        iteration += 1;
        let policy = expand(net, &obs, &class_p);
        let loose = 1e-2 * last_change > opts.value_tol;
        let mut inner = opts.clone();
        if loose {
            inner.value_tol = 1e-2 * last_change;
            inner.stationary_tol = opts.stationary_tol.max(1e-3 * last_change);
        }
        let vi = policy_values(net, &policy, &prior, &mut h, &inner);
        sweeps += vi.sweeps;
        let eval = super::evaluate::evaluate_from(net, &policy, &prior, rho.take(), &inner);
        expected_next_value(net, &h, &mut w);
        // Best response of every neuron to the others, per observation class.
        let lambda = net.lambda;
        let responses: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|k| {
                if !net.alive[k] {
                    return class_p[k].clone();
                }
                let bit = 1usize << k;
                let mut num = vec![0.0; states];
                let mut den = vec![0.0; states];
                let mut plain = vec![0.0; states];
                let mut members = vec![0u32; states];
                for s in 0..states {
                    let (base, sigma) = (s - s % c, s % c);
                    if !net.reachable(sigma) {
                        continue;
                    }
                    let dw = w[base + (sigma | bit)] - w[base + (sigma & !bit)];
                    let o = obs[k].class(s, n);
                    num[o] += eval.rho[s] * dw;
                    den[o] += eval.rho[s];
                    plain[o] += dw;
                    members[o] += 1;
                }
                let logit_p = safe_ln(prior[k]) - safe_ln(1.0 - prior[k]);
                (0..states)
                    .map(|o| {
                        if members[o] == 0 {
                            return class_p[k][o];
                        }
                        // Classes the chain never visits: the unweighted mean.
                        let dw = if den[o] > 0.0 {
                            num[o] / den[o]
                        } else {
                            plain[o] / members[o] as f64
                        };
                        let br = sigmoid(logit_p + dw / lambda);
                        (1.0 - STEP) * class_p[k][o] + STEP * br
                    })
                    .collect()
            })
            .collect();
        let policy_change = responses
            .iter()
            .zip(&class_p)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0.0, f64::max);
        class_p = responses;
        let prior_change = if fixed {
            0.0
        } else {
            let mut change: f64 = 0.0;
            for k in 0..n {
                if net.alive[k] {
                    let p = eval.p_fire[k].clamp(1e-12, 1.0 - 1e-12);
                    change = change.max((p - prior[k]).abs());
                    prior[k] = p;
                }
            }
            change
        };
        progress(&Progress {
            iteration,
            g: eval.g,
            value_sweeps: sweeps,
            value_residual: vi.residual,
            prior_residual: policy_change.max(prior_change),
        });
        let settled = policy_change < opts.prior_tol && prior_change < opts.prior_tol && !loose;
        last_change = policy_change.max(prior_change);
        if settled || iteration >= max_iterations {
            // The reported policy is the one evaluated last (h, ρ and g belong to it).
            let mut eval = eval;
            if !settled {
                warnings.push(format!(
                    "partially observed best responses did not settle: policies still move by {policy_change:.3e} \
                     after {iteration} iterations"
                ));
            }
            if !vi.converged {
                warnings.push(format!(
                    "policy evaluation did not converge: span {:.3e} after {} sweeps",
                    vi.residual, vi.sweeps
                ));
            }
            warnings.append(&mut eval.warnings);
            let converged = settled && vi.converged && eval.stationary_converged;
            let used_prior = eval.prior.clone();
            return Solution {
                policy,
                h,
                prior: used_prior,
                g_value: vi.g,
                eval,
                converged,
                iterations: iteration,
                value_sweeps: sweeps,
                value_residual: vi.residual,
                prior_residual: policy_change.max(prior_change),
                start_g: Vec::new(),
                warnings,
            };
        }
        rho = Some(eval.rho);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InputProcess, UpdateScheme, rewards};

    #[test]
    fn with_full_observation_it_reaches_the_fully_observed_optimum() {
        let n = 4;
        let net = Network {
            n,
            alive: vec![true, true, false, true],
            input: InputProcess::switching(vec![-1.0, 1.0], 0.05),
            reward: rewards::target_count(n, &[1, 3], 1.0),
            lambda: 0.3,
            cost: CodingCost::FixedPrior(vec![0.3, 0.6, 0.5, 0.4]),
            update: UpdateScheme::Asynchronous,
            observes: None,
        };
        let opts = SolveOptions::default();
        let exact = super::super::solve(&net, &opts).unwrap();
        let iterated = solve_from(&net, &opts, vec![0.3, 0.6, 0.5, 0.4], &mut |_| {});
        assert!(iterated.converged, "{:?}", iterated.warnings);
        assert!(
            (iterated.eval.g - exact.eval.g).abs() < 1e-9,
            "g {} vs {}",
            iterated.eval.g,
            exact.eval.g
        );
        // Compared where the chain can be (states with dead neurons active cannot).
        let worst = (0..net.states())
            .filter(|&s| net.reachable(s % net.configs()))
            .flat_map(|s| (0..n).map(move |k| (s, k)))
            .map(|(s, k)| (exact.policy.p(s, k) - iterated.policy.p(s, k)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "policies differ by {worst}");
    }
}
