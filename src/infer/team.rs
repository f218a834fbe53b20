//! Inverse RL for a team of information-constrained agents that act
//! together in a tabular world (theory §5 and §7, many agents): recover
//! the shared reward over joint states from each agent's demonstrated
//! moves.
//!
//! At the team optimum ([`crate::solver::team`]) agent k's policy is
//! `π_k(a|s) ∝ p_k(a)·exp(E_{a−k ~ π−k(·|s)}[Q(s, (a, a−k))]/λ)` with
//! `Q(s, a) = Σ_s' P(s'|s, a) h(s')`. So for two moves a, b of agent k in
//! state s,
//! ```text
//! λ [log π_k(a|s)/p_k(a) − log π_k(b|s)/p_k(b)]
//!     = Σ_s' ( Σ_{a−k} π−k(a−k|s) [P(s'|s,(a,a−k)) − P(s'|s,(b,a−k))] ) h(s')
//! ```
//! — one linear equation in h per agent, state and pair of moves, with the
//! other agents' policies estimated from the same record. Unlike one agent
//! (where a pair of moves links two cells), an equation links every joint
//! state the others may move to. Weighted least squares (weights: the
//! inverse variance of the log-odds, as for one agent) plus a weak
//! equal-neighbours prior (10⁻⁶ of the smallest weight) gives h up to a
//! constant, solved matrix-free by conjugate gradients; then
//! `r(s) = h(s) + g − E_π[Q(s, a)] + λ Σ_k KL(π_k(·|s) ‖ p_k)`.
//!
//! Rewards are identified up to an additive constant (reported with mean 0
//! over the visited states) and, without λ, in units of λ; unvisited joint
//! states are NaN. Pure math; no I/O.

use crate::solver::team::Team;

/// How often each agent took each move in each joint state.
#[derive(Clone, Debug, PartialEq)]
pub struct TeamCounts {
    pub states: usize,
    pub agents: usize,
    pub actions: usize,
    /// `n[(s·agents + k)·actions + a]`.
    pub n: Vec<f64>,
    /// Steps recorded in each joint state.
    pub visits: Vec<f64>,
}

impl TeamCounts {
    pub fn new(states: usize, agents: usize, actions: usize) -> Self {
        TeamCounts {
            states,
            agents,
            actions,
            n: vec![0.0; states * agents * actions],
            visits: vec![0.0; states],
        }
    }

    /// One step: the agents in joint state `s` took `moves`.
    pub fn add(&mut self, s: usize, moves: &[usize]) {
        self.visits[s] += 1.0;
        for (k, &a) in moves.iter().enumerate() {
            self.n[(s * self.agents + k) * self.actions + a] += 1.0;
        }
    }

    /// Agent k's moves alone, as a one-agent record over the joint states.
    pub fn agent(&self, k: usize) -> super::mdp::ActionCounts {
        let na = self.actions;
        let mut c = super::mdp::ActionCounts::new(self.states, na);
        for s in 0..self.states {
            let at = (s * self.agents + k) * na;
            c.n[s * na..(s + 1) * na].copy_from_slice(&self.n[at..at + na]);
        }
        c
    }

    /// Agent k's empirical marginal over its moves.
    pub fn marginal(&self, k: usize) -> Vec<f64> {
        let na = self.actions;
        let mut p = vec![0.0; na];
        for s in 0..self.states {
            for a in 0..na {
                p[a] += self.n[(s * self.agents + k) * na + a];
            }
        }
        let total: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= total.max(1.0));
        p
    }
}

/// The result of [`invert`].
#[derive(Clone, Debug)]
pub struct TeamInversion {
    /// Inferred reward per joint state (mean 0 over the visited ones; NaN
    /// where never visited).
    pub reward: Vec<f64>,
    pub h: Vec<f64>,
    /// Weighted RMS misfit of the equations.
    pub residual_rms: f64,
    /// Equations used.
    pub equations: usize,
    pub cg_iterations: usize,
    pub notes: Vec<String>,
}

/// Pseudo-count added to each agent's moves in each visited state, spread
/// like its marginal (as [`super::mdp::PSEUDO_COUNT`]).
pub const PSEUDO_COUNT: f64 = 1.0;

/// One equation: Σ coef·h(state) ≈ d, with weight w.
struct Row {
    at: Vec<(usize, f64)>,
    w: f64,
    d: f64,
}

/// Invert a team record. `team` supplies the dynamics (its reward is
/// ignored); `lambda` is the demonstrators' λ (1 when unknown); `prior`
/// their fixed action prior, or None for the mutual-information cost (each
/// agent's empirical marginal).
pub fn invert(team: &Team, counts: &TeamCounts, lambda: f64, prior: Option<&[f64]>) -> Result<TeamInversion, String> {
    let (ns, m, na) = (team.joint.states, team.agents, team.actions);
    let nj = team.joint.actions;
    if counts.states != ns || counts.agents != m || counts.actions != na {
        return Err(format!(
            "the demonstrations have {} joint states × {} agents × {} moves but the world has {ns} × {m} × {na}",
            counts.states, counts.agents, counts.actions
        ));
    }
    if counts.visits.iter().sum::<f64>() == 0.0 {
        return Err("the demonstrations hold no step".into());
    }
    if let Some(f) = prior
        && (f.len() != na || f.iter().any(|x| x.is_nan() || *x <= 0.0))
    {
        return Err(format!("the action prior must hold {na} positive probabilities"));
    }
    let marginals: Vec<Vec<f64>> = (0..m).map(|k| counts.marginal(k)).collect();
    let cost: Vec<Vec<f64>> = (0..m)
        .map(|k| prior.map_or(marginals[k].clone(), |f| f.to_vec()))
        .collect();
    let smoothed = |s: usize, k: usize, a: usize| counts.n[(s * m + k) * na + a] + PSEUDO_COUNT * marginals[k][a];
    // π̂_k(a|s), smoothed; defined for every state (the marginal where unvisited).
    let pi_hat: Vec<f64> = (0..ns * m * na)
        .map(|i| {
            let (s, k, a) = (i / (m * na), i / na % m, i % na);
            smoothed(s, k, a) / (counts.visits[s] + PSEUDO_COUNT)
        })
        .collect();
    let pi = |s: usize, k: usize, a: usize| pi_hat[(s * m + k) * na + a];
    let logit = |s: usize, k: usize, a: usize| lambda * (pi(s, k, a).ln() - cost[k][a].ln());
    // The others' probability of their part of joint move ja.
    let others = |s: usize, k: usize, ja: usize| -> f64 {
        (0..m)
            .filter(|&j| j != k)
            .map(|j| pi(s, j, team.digit(ja, j)))
            .product()
    };
    let mut rows = Vec::new();
    let mut scratch = vec![0.0; ns];
    let mut mark = vec![false; ns];
    let mut touched: Vec<usize> = Vec::new();
    for s in 0..ns {
        if counts.visits[s] == 0.0 {
            continue;
        }
        for k in 0..m {
            for a in 0..na {
                for b in a + 1..na {
                    if marginals[k][a] == 0.0 || marginals[k][b] == 0.0 {
                        continue;
                    }
                    for ja in 0..nj {
                        let mine = team.digit(ja, k);
                        let sign = if mine == a {
                            1.0
                        } else if mine == b {
                            -1.0
                        } else {
                            continue;
                        };
                        let weight = sign * others(s, k, ja);
                        for &(t, p) in &team.joint.next[s * nj + ja] {
                            if !mark[t] {
                                mark[t] = true;
                                touched.push(t);
                            }
                            scratch[t] += weight * p;
                        }
                    }
                    let at: Vec<(usize, f64)> = touched
                        .iter()
                        .map(|&t| (t, scratch[t]))
                        .filter(|e| e.1.abs() > 1e-12)
                        .collect();
                    for &t in &touched {
                        scratch[t] = 0.0;
                        mark[t] = false;
                    }
                    touched.clear();
                    if at.is_empty() {
                        continue; // both moves lead to the same place (a reset)
                    }
                    rows.push(Row {
                        at,
                        w: 1.0 / (1.0 / smoothed(s, k, a) + 1.0 / smoothed(s, k, b)),
                        d: logit(s, k, a) - logit(s, k, b),
                    });
                }
            }
        }
    }
    if rows.is_empty() {
        return Err("no demonstrated state distinguishes two moves: the record carries no information".into());
    }
    let min_w = rows.iter().map(|r| r.w).fold(f64::INFINITY, f64::min);
    // The weak prior: neighbouring joint states have equal value.
    let mut prior_edges = Vec::new();
    for s in 0..ns {
        for ja in 0..nj {
            for &(t, p) in &team.joint.next[s * nj + ja] {
                if t != s && p > 0.0 {
                    prior_edges.push((s, t));
                }
            }
        }
    }
    prior_edges.sort_unstable();
    prior_edges.dedup();
    let eps = 1e-6 * min_w;
    let apply = |x: &[f64], y: &mut [f64]| {
        y.iter_mut().for_each(|v| *v = 0.0);
        for r in &rows {
            let ax: f64 = r.at.iter().map(|&(t, c)| c * x[t]).sum();
            for &(t, c) in &r.at {
                y[t] += r.w * c * ax;
            }
        }
        for &(u, v) in &prior_edges {
            let d = eps * (x[u] - x[v]);
            y[u] += d;
            y[v] -= d;
        }
    };
    let mut rhs = vec![0.0; ns];
    for r in &rows {
        for &(t, c) in &r.at {
            rhs[t] += r.w * c * r.d;
        }
    }
    let (h, cg_iterations) = conjugate_gradients(&apply, &rhs, 20 * ns + 1000);
    let (mut sq, mut wsum) = (0.0, 0.0);
    for r in &rows {
        let ax: f64 = r.at.iter().map(|&(t, c)| c * h[t]).sum();
        sq += r.w * (ax - r.d).powi(2);
        wsum += r.w;
    }
    let mut reward = vec![f64::NAN; ns];
    for s in 0..ns {
        if counts.visits[s] == 0.0 {
            continue;
        }
        let mut expected_q = 0.0;
        for ja in 0..nj {
            let pj: f64 = (0..m).map(|k| pi(s, k, team.digit(ja, k))).product();
            let q: f64 = team.joint.next[s * nj + ja].iter().map(|&(t, p)| p * h[t]).sum();
            expected_q += pj * q;
        }
        let kl: f64 = (0..m)
            .map(|k| {
                (0..na)
                    .filter(|&a| pi(s, k, a) > 0.0)
                    .map(|a| pi(s, k, a) * (pi(s, k, a) / cost[k][a]).ln())
                    .sum::<f64>()
            })
            .sum();
        reward[s] = h[s] - expected_q + lambda * kl;
    }
    super::mdp::centre(&mut reward);
    let visited = counts.visits.iter().filter(|&&v| v > 0.0).count();
    let mut notes = Vec::new();
    let unused: Vec<String> = (0..m)
        .flat_map(|k| (0..na).map(move |a| (k, a)))
        .filter(|&(k, a)| marginals[k][a] == 0.0)
        .map(|(k, a)| format!("agent {k} move {a}"))
        .collect();
    if !unused.is_empty() {
        notes.push(format!(
            "never demonstrated: {}. Value differences along those moves are not observed, so the reward is \
             identified only up to the values the demonstrated moves link (the weak equal-neighbours prior fills \
             the rest); near-deterministic demonstrators (small λ with the mutual-information cost) reveal little",
            unused.join(", ")
        ));
    }
    if visited < ns {
        notes.push(format!(
            "{} of {ns} joint states were never visited: their reward is unidentified (NaN)",
            ns - visited
        ));
    }
    Ok(TeamInversion {
        reward,
        h,
        residual_rms: if wsum > 0.0 { (sq / wsum).sqrt() } else { 0.0 },
        equations: rows.len(),
        cg_iterations,
        notes,
    })
}

/// Solve `A x = b` for a symmetric positive semi-definite `A` given as
/// `apply(x, Ax)`, from x = 0 (so x stays orthogonal to A's null space when
/// b is). Returns x and the iterations taken.
fn conjugate_gradients(apply: &dyn Fn(&[f64], &mut [f64]), b: &[f64], max_iter: usize) -> (Vec<f64>, usize) {
    let n = b.len();
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    let mut x = vec![0.0; n];
    let mut r = b.to_vec();
    let mut p = r.clone();
    let mut ap = vec![0.0; n];
    let mut rr = dot(&r, &r);
    let stop = 1e-24 * rr.max(f64::MIN_POSITIVE);
    for it in 0..max_iter {
        if rr <= stop {
            return (x, it);
        }
        apply(&p, &mut ap);
        let pap = dot(&p, &ap);
        if pap <= 0.0 {
            return (x, it);
        }
        let alpha = rr / pap;
        for i in 0..n {
            x[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        let next = dot(&r, &r);
        let beta = next / rr;
        rr = next;
        for i in 0..n {
            p[i] = r[i] + beta * p[i];
        }
    }
    (x, max_iter)
}
