//! The exact solver for a team of information-constrained agents that act
//! together every step in a tabular world (theory §3, synchronous, and §7's
//! teams of maze agents): a joint state, one policy per agent over what it
//! observes — here the joint state — and a shared reward.
//!
//! The joint policy is a product, so each agent's best response to the
//! others is
//! ```text
//! π_k(a_k|s) ∝ p_k(a_k) · exp( E_{a_−k ~ π_−k(·|s)} [ Q(s, (a_k, a_−k)) ] / λ )
//! h(s) = r(s) − g + E_{a~π(·|s)}[Q(s, a)] − λ Σ_k KL(π_k(·|s) ‖ p_k)
//! ```
//! with `Q(s,a) = Σ_s' P(s'|s,a) h(s')`. Best responses are iterated
//! (Gauss–Seidel, warm-started) inside relative value iteration, alternated
//! with `p_k ← Σ_s ρ(s) π_k(·|s)` for the mutual-information cost. Several
//! starts; the best fixed point is kept (teams have several equilibria:
//! who waits for whom). Joint actions are numbered in mixed radix, agent 0
//! the least significant digit. No I/O; one thread.

use super::SolveOptions;
use super::mdp::{ActionPrior, Mdp, kl};

/// A team world: the joint transition law over joint actions, and how many
/// agents with how many actions each.
#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    /// States are joint states; `joint.actions` = `actions^agents`.
    pub joint: Mdp,
    pub agents: usize,
    /// Actions per agent.
    pub actions: usize,
}

/// Exact evaluation of per-agent policies.
#[derive(Clone, Debug)]
pub struct TeamEvaluation {
    pub rho: Vec<f64>,
    /// `marginals[k]` = Σ_s ρ(s) π_k(·|s).
    pub marginals: Vec<Vec<f64>>,
    pub mean_reward: f64,
    /// Σ_k ⟨KL(π_k(·|s) ‖ p_k)⟩ in nats per step (every agent acts every step).
    pub info_nats: f64,
    pub g: f64,
}

/// The best equilibrium found by [`solve`].
#[derive(Clone, Debug)]
pub struct TeamSolution {
    /// `pi[(s·agents + k)·actions + a]` = π_k(a | s).
    pub pi: Vec<f64>,
    pub h: Vec<f64>,
    pub priors: Vec<Vec<f64>>,
    pub eval: TeamEvaluation,
    pub converged: bool,
    pub iterations: usize,
    pub value_sweeps: usize,
    /// g reached from each start.
    pub start_g: Vec<f64>,
    pub warnings: Vec<String>,
}

impl Team {
    pub fn new(joint: Mdp, agents: usize, actions: usize) -> Result<Team, String> {
        joint.validate()?;
        if actions > MAX_ACTIONS {
            return Err(format!("{actions} actions per agent; allowed: at most {MAX_ACTIONS}"));
        }
        if agents == 0 || actions.checked_pow(agents as u32) != Some(joint.actions) {
            return Err(format!("{} joint actions is not {actions}^{agents}", joint.actions));
        }
        Ok(Team { joint, agents, actions })
    }

    /// Agent k's action in joint action `ja`.
    #[inline]
    pub fn digit(&self, ja: usize, k: usize) -> usize {
        ja / self.actions.pow(k as u32) % self.actions
    }

    /// The joint policy `Π_k π_k(a_k | s)` over joint actions.
    pub fn joint_policy(&self, pi: &[f64]) -> Vec<f64> {
        let (m, na, nj) = (self.agents, self.actions, self.joint.actions);
        let mut out = vec![0.0; self.joint.states * nj];
        for s in 0..self.joint.states {
            for ja in 0..nj {
                out[s * nj + ja] = (0..m).map(|k| pi[(s * m + k) * na + self.digit(ja, k)]).product();
            }
        }
        out
    }

    /// Evaluate per-agent policies; each agent's cost is measured against
    /// its fixed prior or (mutual information) its own marginal.
    pub fn evaluate(&self, pi: &[f64], lambda: f64, cost: &ActionPrior, opts: &SolveOptions) -> TeamEvaluation {
        let joint = self.joint_policy(pi);
        let (rho, _, _) = self.joint.stationary(&joint, None, opts);
        self.evaluate_with(pi, &rho, lambda, cost)
    }

    fn evaluate_with(&self, pi: &[f64], rho: &[f64], lambda: f64, cost: &ActionPrior) -> TeamEvaluation {
        let (m, na) = (self.agents, self.actions);
        let mut marginals = vec![vec![0.0; na]; m];
        for s in 0..self.joint.states {
            for k in 0..m {
                for a in 0..na {
                    marginals[k][a] += rho[s] * pi[(s * m + k) * na + a];
                }
            }
        }
        let mut info = 0.0;
        for s in 0..self.joint.states {
            for k in 0..m {
                let p = match cost {
                    ActionPrior::Fixed(p) => p.as_slice(),
                    ActionPrior::Marginal => marginals[k].as_slice(),
                };
                info += rho[s] * kl(&pi[(s * m + k) * na..(s * m + k + 1) * na], p);
            }
        }
        let mean_reward: f64 = rho.iter().zip(&self.joint.reward).map(|(a, b)| a * b).sum();
        TeamEvaluation {
            rho: rho.to_vec(),
            marginals,
            mean_reward,
            info_nats: info,
            g: mean_reward - lambda * info,
        }
    }
}

/// Most actions per agent.
pub const MAX_ACTIONS: usize = 16;

/// Relaxation of relative value iteration (as in [`super::mdp`]).
const RELAX: f64 = 0.5;
/// Best-response rounds per value sweep.
const ROUNDS: usize = 3;

/// Relative value iteration with best responses for fixed priors, from `h`
/// and `pi` (both updated in place). Returns (g, sweeps, converged).
fn best_response_values(
    team: &Team,
    lambda: f64,
    priors: &[Vec<f64>],
    h: &mut [f64],
    pi: &mut [f64],
    tol: f64,
    max_sweeps: usize,
) -> (f64, usize, bool) {
    let (ns, m, na, nj) = (team.joint.states, team.agents, team.actions, team.joint.actions);
    let mut th = vec![0.0; ns];
    let mut qj = vec![0.0; nj];
    let mut qk = vec![0.0; na];
    let mut g = 0.0;
    for sweep in 1..=max_sweeps {
        let mut moved: f64 = 0.0;
        for s in 0..ns {
            for ja in 0..nj {
                qj[ja] = team.joint.q(h, s, ja);
            }
            for _ in 0..ROUNDS {
                for k in 0..m {
                    qk.iter_mut().for_each(|v| *v = 0.0);
                    for ja in 0..nj {
                        let w: f64 = (0..m)
                            .filter(|&j| j != k)
                            .map(|j| pi[(s * m + j) * na + team.digit(ja, j)])
                            .product();
                        qk[team.digit(ja, k)] += w * qj[ja];
                    }
                    let row = &mut pi[(s * m + k) * na..(s * m + k + 1) * na];
                    let top = (0..na)
                        .filter(|&a| priors[k][a] > 0.0)
                        .map(|a| qk[a])
                        .fold(f64::NEG_INFINITY, f64::max);
                    let mut z = 0.0;
                    let mut new = [0.0f64; MAX_ACTIONS];
                    for a in 0..na {
                        new[a] = if priors[k][a] > 0.0 {
                            priors[k][a] * ((qk[a] - top) / lambda).exp()
                        } else {
                            0.0
                        };
                        z += new[a];
                    }
                    for a in 0..na {
                        let v = new[a] / z;
                        moved = moved.max((v - row[a]).abs());
                        row[a] = v;
                    }
                }
            }
            let mut expected = 0.0;
            for ja in 0..nj {
                let w: f64 = (0..m).map(|k| pi[(s * m + k) * na + team.digit(ja, k)]).product();
                expected += w * qj[ja];
            }
            let cost: f64 = (0..m)
                .map(|k| kl(&pi[(s * m + k) * na..(s * m + k + 1) * na], &priors[k]))
                .sum();
            th[s] = team.joint.reward[s] + expected - lambda * cost;
        }
        g = th[0] - h[0];
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in 0..ns {
            let d = th[s] - h[s];
            lo = lo.min(d);
            hi = hi.max(d);
        }
        let base = th[0];
        for s in 0..ns {
            h[s] = (1.0 - RELAX) * h[s] + RELAX * (th[s] - base);
        }
        if !(hi - lo).is_finite() {
            return (f64::NAN, sweep, false);
        }
        if hi - lo < tol && moved < tol.sqrt() {
            return (g, sweep, true);
        }
    }
    (g, max_sweeps, false)
}

/// One Blahut–Arimoto run (or one fixed-prior solve) from `priors`.
fn solve_from(
    team: &Team,
    lambda: f64,
    cost: &ActionPrior,
    mut priors: Vec<Vec<f64>>,
    opts: &SolveOptions,
) -> TeamSolution {
    let (ns, m) = (team.joint.states, team.agents);
    let mut h = vec![0.0; ns];
    let mut pi: Vec<f64> = (0..ns * m).flat_map(|i| priors[i % m].clone()).collect();
    let fixed = matches!(cost, ActionPrior::Fixed(_));
    let (mut iterations, mut sweeps, mut converged) = (0, 0, false);
    let mut warnings = Vec::new();
    let mut last_change: f64 = 1.0;
    let mut rho = vec![1.0 / ns as f64; ns];
    while iterations < opts.max_prior_iterations {
        iterations += 1;
        let tol = if fixed {
            opts.value_tol
        } else {
            opts.value_tol.max(1e-3 * last_change)
        };
        let (_, sw, ok) = best_response_values(team, lambda, &priors, &mut h, &mut pi, tol, opts.max_value_sweeps);
        sweeps += sw;
        if !ok {
            warnings.push(format!(
                "best-response value iteration did not converge in {} sweeps (iteration {iterations})",
                opts.max_value_sweeps
            ));
            break;
        }
        let joint = team.joint_policy(&pi);
        rho = team.joint.stationary(&joint, Some(&rho), opts).0;
        if fixed {
            converged = true;
            break;
        }
        let eval = team.evaluate_with(&pi, &rho, lambda, cost);
        last_change = eval
            .marginals
            .iter()
            .zip(&priors)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0.0, f64::max);
        priors = eval
            .marginals
            .iter()
            .map(|p| p.iter().map(|&v| v.max(1e-300)).collect())
            .collect();
        tracing::debug!(
            iteration = iterations,
            g = eval.g,
            sweeps = sw,
            change = last_change,
            "team Blahut–Arimoto"
        );
        if last_change < opts.prior_tol && tol <= opts.value_tol {
            converged = true;
            break;
        }
    }
    if !converged && warnings.is_empty() {
        warnings.push(format!(
            "Blahut–Arimoto did not converge in {} iterations (last change of a marginal {last_change:.1e})",
            opts.max_prior_iterations
        ));
    }
    let eval = team.evaluate_with(&pi, &rho, lambda, cost);
    TeamSolution {
        pi,
        h,
        priors,
        eval,
        converged,
        iterations,
        value_sweeps: sweeps,
        start_g: Vec::new(),
        warnings,
    }
}

/// The best team equilibrium from `opts.starts` starts (default 4): the
/// uniform prior, then random ones (seeded by `opts.start_seed`).
pub fn solve(team: &Team, lambda: f64, cost: &ActionPrior, opts: &SolveOptions) -> TeamSolution {
    let (m, na) = (team.agents, team.actions);
    let starts = match cost {
        ActionPrior::Fixed(_) => 1,
        ActionPrior::Marginal => opts.starts.unwrap_or(4).max(1),
    };
    let mut rng = crate::rng::stream(opts.start_seed, crate::rng::Domain::Learner, u64::MAX - 2);
    let mut best: Option<TeamSolution> = None;
    let mut start_g = Vec::new();
    for i in 0..starts {
        let priors: Vec<Vec<f64>> = match cost {
            ActionPrior::Fixed(p) => vec![p.clone(); m],
            ActionPrior::Marginal if i == 0 => vec![vec![1.0 / na as f64; na]; m],
            ActionPrior::Marginal => (0..m)
                .map(|_| {
                    let w: Vec<f64> = (0..na).map(|_| 0.05 + rand::Rng::random::<f64>(&mut rng)).collect();
                    let z: f64 = w.iter().sum();
                    w.iter().map(|v| v / z).collect()
                })
                .collect(),
        };
        let sol = solve_from(team, lambda, cost, priors, opts);
        start_g.push(sol.eval.g);
        if best.as_ref().is_none_or(|b| b.eval.g.is_nan() || sol.eval.g > b.eval.g) {
            best = Some(sol);
        }
    }
    let mut best = best.expect("at least one start");
    best.start_g = start_g;
    best
}
