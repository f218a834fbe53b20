//! Inverse RL for one agent in a tabular world with known dynamics (theory
//! §7): recover the reward map of a maze from demonstrations (state, action).
//!
//! Two estimators:
//! - [`invert`], the theory's direct inversion: `λ log(π̂(a|s)/p̂(a)) = Q(s,a) −
//!   λ log Z(s)`, so differences between two actions of one state give
//!   differences of h between the cells they lead to (with slip ε the
//!   difference is scaled by 1 − ε); a weighted least-squares
//!   (graph-Laplacian) solve gives h, and `r(s) = h(s) + g − λ log Z(s)`;
//!   values the record cannot link get a weak equal-neighbours prior.
//!   Counts get a pseudo-count spread like the marginal, so near-deterministic
//!   demonstrations give large but finite log-odds and rarely visited states
//!   log-odds near 0; actions never demonstrated carry no information.
//! - [`fit`], maximum likelihood of the demonstrated actions under the
//!   soft-optimal policy of a reward map r (one parameter per state, a weak
//!   Gaussian prior), against either the demonstrations' empirical action
//!   marginal p̂ ([`Marginal::Empirical`]; exact gradient by the adjoint of
//!   policy evaluation) or the model's own marginal ([`Marginal::Model`];
//!   Blahut–Arimoto inside every evaluation, exact gradient through the
//!   implicit function theorem at its fixed point),
//!   which also uses how often each action is taken overall — the evidence
//!   that remains when λ is large and policies are nearly state-blind.
//!
//! Rewards are identified up to an additive constant (reported with mean 0
//! over identified states) and, when λ is unknown, in units of λ. Pure math;
//! no I/O.

use crate::solver::SolveOptions;
use crate::solver::mdp::{ActionPrior, Mdp};
use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How often each action was taken in each state.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionCounts {
    pub states: usize,
    pub actions: usize,
    /// `n[s·A + a]`.
    pub n: Vec<f64>,
}

impl ActionCounts {
    pub fn new(states: usize, actions: usize) -> Self {
        ActionCounts {
            states,
            actions,
            n: vec![0.0; states * actions],
        }
    }

    /// Count the steps of one trajectory: `states[t]`, `actions[t]` for
    /// t < actions.len().
    pub fn add_trajectory(&mut self, states: &[usize], actions: &[usize]) {
        for (s, a) in states.iter().zip(actions) {
            self.n[s * self.actions + a] += 1.0;
        }
    }

    pub fn visits(&self, s: usize) -> f64 {
        self.n[s * self.actions..(s + 1) * self.actions].iter().sum()
    }

    pub fn total(&self) -> f64 {
        self.n.iter().sum()
    }

    /// The empirical action marginal p̂(a) (with a pseudo-count of ½ per action).
    pub fn marginal(&self) -> Vec<f64> {
        let mut p = vec![0.5; self.actions];
        for s in 0..self.states {
            for a in 0..self.actions {
                p[a] += self.n[s * self.actions + a];
            }
        }
        let t: f64 = p.iter().sum();
        p.iter().map(|x| x / t).collect()
    }

    /// Empirical mutual information between state and action, in nats (the
    /// plug-in estimate; biased upwards by about (S−1)(A−1)/(2N)).
    pub fn information(&self) -> f64 {
        let total = self.total();
        if total == 0.0 {
            return 0.0;
        }
        let p = self.marginal();
        let mut info = 0.0;
        for s in 0..self.states {
            let v = self.visits(s);
            for a in 0..self.actions {
                let c = self.n[s * self.actions + a];
                if c > 0.0 {
                    info += c / total * ((c / v) / p[a]).ln();
                }
            }
        }
        info
    }
}

/// The result of [`invert`].
#[derive(Clone, Debug)]
pub struct Inversion {
    /// Inferred reward per state (mean 0 over identified states; NaN where
    /// the state was never visited or its value is unidentified).
    pub reward: Vec<f64>,
    pub h: Vec<f64>,
    /// Weighted RMS misfit of the value differences.
    pub residual_rms: f64,
    pub notes: Vec<String>,
}

/// Total pseudo-count added to each state's action counts by [`invert`]
/// (spread over the actions like the empirical marginal).
pub const PSEUDO_COUNT: f64 = 1.0;

/// If `P(·|s,a) − P(·|s,b) = c (δ_u − δ_v)` with c > 0, return (u, v, c).
fn difference_edge(mdp: &Mdp, s: usize, a: usize, b: usize) -> Option<Option<(usize, usize, f64)>> {
    let mut diff: Vec<(usize, f64)> = Vec::new();
    for (row, sign) in [
        (&mdp.next[s * mdp.actions + a], 1.0),
        (&mdp.next[s * mdp.actions + b], -1.0),
    ] {
        for &(t, p) in row.iter() {
            match diff.iter_mut().find(|e| e.0 == t) {
                Some(e) => e.1 += sign * p,
                None => diff.push((t, sign * p)),
            }
        }
    }
    diff.retain(|e| e.1.abs() > 1e-12);
    match diff.as_slice() {
        [] => Some(None),
        [(u, cu), (v, cv)] if (cu + cv).abs() < 1e-12 => {
            if *cu > 0.0 {
                Some(Some((*u, *v, *cu)))
            } else {
                Some(Some((*v, *u, *cv)))
            }
        }
        _ => None,
    }
}

/// The direct inversion of theory §7. `mdp` supplies the dynamics (its
/// reward is ignored); `lambda` is the demonstrator's λ (1 when unknown);
/// `prior` its fixed action prior, or None for the mutual-information cost
/// (p = the empirical action marginal).
pub fn invert(mdp: &Mdp, counts: &ActionCounts, lambda: f64, prior: Option<&[f64]>) -> Result<Inversion, String> {
    let (ns, na) = (mdp.states, mdp.actions);
    if counts.states != ns || counts.actions != na {
        return Err(format!(
            "the demonstrations have {} states × {} actions but the world has {ns} × {na}",
            counts.states, counts.actions
        ));
    }
    // Empirical marginal without pseudo-counts: an action never taken has
    // p̂ = 0, is never chosen by the demonstrator's policy and says nothing.
    let total = counts.total();
    if total == 0.0 {
        return Err("the demonstrations hold no step".into());
    }
    let mut p = vec![0.0; na];
    for s in 0..ns {
        for a in 0..na {
            p[a] += counts.n[s * na + a] / total;
        }
    }
    let fixed = match prior {
        Some(f) if f.len() != na || f.iter().any(|x| x.is_nan() || *x <= 0.0) => {
            return Err(format!("the action prior must hold {na} positive probabilities"));
        }
        Some(f) => f.to_vec(),
        None => p.clone(),
    };
    // π̂(a|s) = (n(s,a) + α p̂(a)) / (n_s + α): a pseudo-count spread like the
    // marginal, so a state seen rarely has log-odds near 0 (no evidence)
    // rather than an artefact of the pseudo-count.
    let smoothed = |s: usize, a: usize| counts.n[s * na + a] + PSEUDO_COUNT * p[a];
    let logit = |s: usize, a: usize| -> f64 {
        let v = counts.visits(s) + PSEUDO_COUNT;
        lambda * ((smoothed(s, a) / v).ln() - fixed[a].ln())
    };
    // Edges (lo, hi, weight, d): h(hi) − h(lo) ≈ d.
    let mut edges = Vec::new();
    let mut general = 0usize;
    for s in 0..ns {
        if counts.visits(s) == 0.0 {
            continue;
        }
        for a in 0..na {
            for b in a + 1..na {
                if p[a] == 0.0 || p[b] == 0.0 {
                    continue;
                }
                match difference_edge(mdp, s, a, b) {
                    Some(Some((u, v, c))) => {
                        let wt = c * c / (1.0 / smoothed(s, a) + 1.0 / smoothed(s, b));
                        edges.push((v, u, wt, (logit(s, a) - logit(s, b)) / c));
                    }
                    Some(None) => {}
                    None => general += 1,
                }
            }
        }
    }
    let mut notes = Vec::new();
    if general > 0 {
        notes.push(format!(
            "{general} action pairs lead to next-state distributions that differ in more than two states; \
             the direct inversion skips them (the maximum-likelihood fit uses them)"
        ));
    }
    // Values a record cannot link (e.g. the start cell when the demonstrator
    // never steps back onto it, yet the goal's reward is h(goal) − E h(start))
    // get a weak prior: neighbouring states have equal value, with a weight
    // 10⁻⁶ of the data's smallest, which leaves identified differences alone.
    let data_edges = edges.len();
    let min_wt = edges.iter().map(|e| e.2).fold(f64::INFINITY, f64::min);
    for s in 0..ns {
        for a in 0..na {
            for &(t, pr) in &mdp.next[s * na + a] {
                if t != s && pr > 0.0 {
                    edges.push((s, t, 1e-6 * if min_wt.is_finite() { min_wt } else { 1.0 }, 0.0));
                }
            }
        }
    }
    let h = super::laplacian_least_squares(ns, &edges);
    edges.truncate(data_edges);
    let (mut sq, mut wsum) = (0.0, 0.0);
    for &(lo, hi, wt, d) in &edges {
        if h[hi].is_finite() && h[lo].is_finite() {
            sq += wt * (h[hi] - h[lo] - d).powi(2);
            wsum += wt;
        }
    }
    // r(s) = h(s) + g − λ log Z(s), λ log Z(s) = Q(s,a) − logit(s,a) for
    // every a (averaged with the counts as weights); g is absorbed in the
    // constant.
    let mut reward = vec![f64::NAN; ns];
    for s in 0..ns {
        if counts.visits(s) == 0.0 || !h[s].is_finite() {
            continue;
        }
        let (mut acc, mut w) = (0.0, 0.0);
        for a in 0..na {
            let q = mdp.q(&h, s, a);
            if q.is_finite() && p[a] > 0.0 {
                let wt = smoothed(s, a);
                acc += wt * (q - logit(s, a));
                w += wt;
            }
        }
        if w > 0.0 {
            reward[s] = h[s] - acc / w;
        }
    }
    centre(&mut reward);
    let unidentified = (0..ns).filter(|&s| reward[s].is_nan()).count();
    if unidentified > 0 {
        notes.push(format!(
            "{unidentified} of {} {} unidentified (never visited, or their value is not linked to the rest)",
            crate::text::count(ns as u64, "state"),
            if unidentified == 1 { "is" } else { "are" }
        ));
    }
    Ok(Inversion {
        reward,
        h,
        residual_rms: if wsum > 0.0 { (sq / wsum).sqrt() } else { 0.0 },
        notes,
    })
}

/// Shift the finite entries to mean 0.
pub fn centre(v: &mut [f64]) {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        return;
    }
    let m = finite.iter().sum::<f64>() / finite.len() as f64;
    v.iter_mut().filter(|x| x.is_finite()).for_each(|x| *x -= m);
}

/// Which action prior the likelihood's policy is optimised against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marginal {
    /// The demonstrations' empirical marginal p̂ (fixed).
    Empirical,
    /// The model's own marginal (Blahut–Arimoto in every evaluation).
    Model,
}

/// Knobs of [`fit`].
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub solve: SolveOptions,
    /// Standard deviation of the Gaussian prior on each r(s) (reward units).
    pub prior_sd: f64,
    pub max_iterations: u64,
    pub marginal: Marginal,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            solve: SolveOptions {
                value_tol: 1e-11,
                prior_tol: 1e-11,
                // Near-flat rewards (uninformative records) leave Blahut–
                // Arimoto with a ridge of almost-fixed points; cap the work
                // per evaluation (a cut-short solve is counted in warnings).
                max_prior_iterations: 2_000,
                max_value_sweeps: 20_000,
                stationary_tol: 1e-13,
                ..SolveOptions::default()
            },
            prior_sd: 10.0,
            max_iterations: 200,
            marginal: Marginal::Empirical,
        }
    }
}

/// A maximum-likelihood reward map.
#[derive(Clone, Debug)]
pub struct Fit {
    /// Mean 0 over all states.
    pub reward: Vec<f64>,
    /// The soft-optimal policy of `reward` (`pi[s·A + a]`) and its prior.
    pub pi: Vec<f64>,
    pub prior: Vec<f64>,
    pub log_likelihood: f64,
    pub iterations: u64,
    pub evaluations: usize,
    pub converged: bool,
    pub warnings: Vec<String>,
}

struct Problem<'a> {
    mdp: &'a Mdp,
    counts: &'a ActionCounts,
    lambda: f64,
    opts: &'a FitOptions,
    p_hat: Vec<f64>,
    total: f64,
    warm: Mutex<Warm>,
    evaluations: AtomicUsize,
    unconverged: AtomicUsize,
}

/// Warm starts carried from one evaluation to the next.
#[derive(Clone, Debug, Default)]
struct Warm {
    h: Vec<f64>,
    prior: Vec<f64>,
    rho: Vec<f64>,
    /// The adjoint ν of the likelihood's gradient.
    nu: Vec<f64>,
}

/// A solved model at θ: policy, prior, ρ.
struct Solved {
    pi: Vec<f64>,
    prior: Vec<f64>,
    rho: Vec<f64>,
}

impl<'a> Problem<'a> {
    fn new(mdp: &'a Mdp, counts: &'a ActionCounts, lambda: f64, opts: &'a FitOptions) -> Self {
        Problem {
            mdp,
            counts,
            lambda,
            opts,
            p_hat: counts.marginal(),
            total: counts.total(),
            warm: Mutex::new(Warm::default()),
            evaluations: AtomicUsize::new(0),
            unconverged: AtomicUsize::new(0),
        }
    }

    fn solve(&self, theta: &[f64], warm: &mut Warm) -> Solved {
        let solved = self.solve_once(theta, warm);
        // A breakdown (non-finite values) must not poison later warm starts.
        if warm
            .h
            .iter()
            .chain(&warm.prior)
            .chain(&warm.rho)
            .any(|v| !v.is_finite())
        {
            *warm = Warm::default();
        }
        solved
    }

    fn solve_once(&self, theta: &[f64], warm: &mut Warm) -> Solved {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let mut mdp = self.mdp.clone();
        mdp.reward = theta.to_vec();
        match self.opts.marginal {
            Marginal::Empirical => {
                let (_, _, _, ok) = mdp.relative_values(self.lambda, &self.p_hat, &mut warm.h, &self.opts.solve);
                if !ok {
                    self.unconverged.fetch_add(1, Ordering::Relaxed);
                }
                let pi = mdp.soft_policy(&warm.h, self.lambda, &self.p_hat).0;
                let (rho, _, _) = mdp.stationary(
                    &pi,
                    (warm.rho.len() == mdp.states).then_some(&warm.rho[..]),
                    &self.opts.solve,
                );
                warm.rho = rho.clone();
                Solved {
                    pi,
                    prior: self.p_hat.clone(),
                    rho,
                }
            }
            Marginal::Model => {
                let start = (warm.h.len() == mdp.states && warm.prior.len() == mdp.actions)
                    .then_some((warm.h.as_slice(), warm.prior.as_slice()));
                let sol =
                    crate::solver::mdp::solve_from(&mdp, self.lambda, &ActionPrior::Marginal, start, &self.opts.solve);
                if !sol.converged {
                    self.unconverged.fetch_add(1, Ordering::Relaxed);
                }
                warm.h = sol.h;
                warm.prior = sol.prior.clone();
                warm.rho = sol.eval.rho.clone();
                Solved {
                    pi: sol.pi,
                    prior: sol.prior,
                    rho: sol.eval.rho,
                }
            }
        }
    }

    fn log_likelihood(&self, pi: &[f64]) -> f64 {
        self.counts
            .n
            .iter()
            .zip(pi)
            .filter(|(c, _)| **c > 0.0)
            .map(|(c, p)| c * p.max(1e-300).ln())
            .sum()
    }

    fn penalty(&self, theta: &[f64]) -> f64 {
        theta.iter().map(|t| t * t).sum::<f64>() / (2.0 * self.opts.prior_sd.powi(2))
    }

    /// −(L + log prior)/N at θ.
    fn cost_at(&self, theta: &[f64], warm: &mut Warm) -> (f64, Solved) {
        if theta.iter().any(|t| !t.is_finite()) {
            return (f64::INFINITY, self.solve(&vec![0.0; theta.len()], warm));
        }
        let solved = self.solve(theta, warm);
        let v = (-self.log_likelihood(&solved.pi) + self.penalty(theta)) / self.total;
        // A step so long that the solve breaks down is rejected by the line
        // search as an infinite cost.
        let v = if v.is_finite() { v } else { f64::INFINITY };
        (v, solved)
    }

    /// Gradients of a scalar F of the policy, given its sensitivity
    /// `psi(s,a)` (`dF = Σ psi(s,a) dπ(a|s)`), with respect to the reward and
    /// to the prior at the solved model:
    /// `∂F/∂r = adjoint(Pᵀ G)`, `G(s,a) = π(a|s) (psi(s,a) − ψ̄(s)) / λ`;
    /// `∂F/∂p_a = Σ_s π(a|s) (psi(s,a) − ψ̄(s)) / p_a + λ Σ_s (π(a|s)/p_a) ∂F/∂r(s)`
    /// (a change of p acts on h like the reward `λ Σ_a π(a|s) dp_a/p_a`).
    fn sensitivities(
        &self,
        solved: &Solved,
        psi: &dyn Fn(usize, usize) -> f64,
        nu: &mut Vec<f64>,
    ) -> (Vec<f64>, Vec<f64>) {
        let (ns, na) = (self.mdp.states, self.mdp.actions);
        let mut b = vec![0.0; ns];
        let mut dp = vec![0.0; na];
        for s in 0..ns {
            let row = &solved.pi[s * na..(s + 1) * na];
            let mean: f64 = (0..na).map(|a| row[a] * psi(s, a)).sum();
            for a in 0..na {
                let d = row[a] * (psi(s, a) - mean);
                if d == 0.0 {
                    continue;
                }
                dp[a] += d / solved.prior[a];
                for &(t, p) in &self.mdp.next[s * na + a] {
                    b[t] += d / self.lambda * p;
                }
            }
        }
        let (grad, ok) = self
            .mdp
            .reward_adjoint(&solved.pi, &solved.rho, &b, nu, &self.opts.solve);
        if !ok {
            self.unconverged.fetch_add(1, Ordering::Relaxed);
        }
        for s in 0..ns {
            for a in 0..na {
                dp[a] += self.lambda * solved.pi[s * na + a] / solved.prior[a] * grad[s];
            }
        }
        (grad, dp)
    }

    /// dL/dr. Fixed (empirical) prior: `∂L/∂r` with `psi = n(s,a)/π(a|s)`.
    /// Model marginal: p is the Blahut–Arimoto fixed point `m(p, r) = p`, so
    /// `dL/dr = ∂L/∂r − Σ_b w_b ∂m_b/∂r` with `(J − I)ᵀ w = ∂L/∂p`,
    /// `J = ∂m/∂p` (implicit function theorem); `m_b = Σ_s ρ(s) π(b|s)` has
    /// `psi(s,a) = ρ(s) (δ_ab + Q_u(s,a))`, u the relative values of the
    /// payoff π(b|·) (the change of ρ).
    fn exact_gradient(&self, solved: &Solved, nu: &mut Vec<f64>) -> Vec<f64> {
        let (ns, na) = (self.mdp.states, self.mdp.actions);
        let counts = &self.counts.n;
        let (grad_l, dl_dp) = self.sensitivities(
            solved,
            &|s, a| {
                let c = counts[s * na + a];
                if c == 0.0 { 0.0 } else { c / solved.pi[s * na + a] }
            },
            nu,
        );
        if self.opts.marginal == Marginal::Empirical {
            return grad_l;
        }
        let mut dm_dr = Vec::with_capacity(na);
        let mut jac = vec![0.0; na * na]; // jac[b·A + a] = ∂m_b/∂p_a
        for b in 0..na {
            let c: Vec<f64> = (0..ns).map(|s| solved.pi[s * na + b]).collect();
            let mut u = Vec::new();
            if !self.mdp.policy_values(&solved.pi, &c, &mut u, &self.opts.solve) {
                self.unconverged.fetch_add(1, Ordering::Relaxed);
            }
            let mut nu_b = Vec::new();
            let (g, dp) = self.sensitivities(
                solved,
                &|s, a| solved.rho[s] * (f64::from(u8::from(a == b)) + self.mdp.q(&u, s, a)),
                &mut nu_b,
            );
            jac[b * na..(b + 1) * na].copy_from_slice(&dp);
            dm_dr.push(g);
        }
        // (J − I)ᵀ w = ∂L/∂p
        let mut m = vec![0.0; na * na];
        for b in 0..na {
            for a in 0..na {
                m[a * na + b] = jac[b * na + a] - f64::from(u8::from(a == b));
            }
        }
        let w = match crate::solver::mdp::solve_dense(&m, &dl_dp, na) {
            Some(w) => w,
            None => {
                self.unconverged.fetch_add(1, Ordering::Relaxed);
                return grad_l;
            }
        };
        (0..ns)
            .map(|s| grad_l[s] - (0..na).map(|b| w[b] * dm_dr[b][s]).sum::<f64>())
            .collect()
    }
}

struct Objective<'p, 'a>(&'p Problem<'a>);

impl CostFunction for Objective<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, argmin::core::Error> {
        let mut warm = self.0.warm.lock().expect("warm start");
        Ok(self.0.cost_at(theta, &mut warm).0)
    }
}

impl Gradient for Objective<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        let p = self.0;
        let sd2 = p.opts.prior_sd.powi(2);
        let mut warm = p.warm.lock().expect("warm start");
        let solved = p.solve(theta, &mut warm);
        let g = p.exact_gradient(&solved, &mut warm.nu);
        Ok(g.iter().zip(theta).map(|(g, t)| (-g + t / sd2) / p.total).collect())
    }
}

/// Fit a reward map by maximum likelihood. `mdp` supplies the dynamics;
/// `lambda` the demonstrator's λ (1 when unknown: the reward is then in
/// units of λ); `start` an initial reward map (by default zeros, or for the
/// model marginal the empirical-marginal fit).
pub fn fit(
    mdp: &Mdp,
    counts: &ActionCounts,
    lambda: f64,
    start: Option<&[f64]>,
    opts: &FitOptions,
) -> Result<Fit, String> {
    if counts.states != mdp.states || counts.actions != mdp.actions {
        return Err(format!(
            "the demonstrations have {} states × {} actions but the world has {} × {}",
            counts.states, counts.actions, mdp.states, mdp.actions
        ));
    }
    if counts.total() == 0.0 {
        return Err("the demonstrations hold no step".into());
    }
    let problem = Problem::new(mdp, counts, lambda, opts);
    let init = match (start, opts.marginal) {
        (Some(s), _) => s.to_vec(),
        (None, Marginal::Empirical) => vec![0.0; mdp.states],
        // At r = 0 every prior is a Blahut–Arimoto fixed point (the model
        // marginal is not identified there): start from the empirical fit.
        (None, Marginal::Model) => {
            let first = FitOptions {
                marginal: Marginal::Empirical,
                ..opts.clone()
            };
            fit(mdp, counts, lambda, None, &first)?.reward
        }
    };
    let lbfgs = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-7)
        .and_then(|s| s.with_tolerance_cost(1e-12))
        .map_err(|e| e.to_string())?;
    let result = Executor::new(Objective(&problem), lbfgs)
        .configure(|state| state.param(init).max_iters(opts.max_iterations))
        .run()
        .map_err(|e| format!("maximum-likelihood fit failed: {e}"))?;
    let state = result.state();
    let mut theta = state
        .get_best_param()
        .cloned()
        .ok_or("the fit produced no parameters")?;
    let iterations = state.get_iter();
    let converged = iterations < opts.max_iterations;
    let solved = {
        let mut warm = problem.warm.lock().expect("warm start");
        problem.solve(&theta, &mut warm)
    };
    let log_likelihood = problem.log_likelihood(&solved.pi);
    centre(&mut theta);
    let mut warnings = Vec::new();
    if !converged {
        warnings.push(format!(
            "the maximum-likelihood fit stopped at its iteration limit ({iterations}) before the gradient vanished"
        ));
    }
    let unconverged = problem.unconverged.load(Ordering::Relaxed);
    if unconverged > 0 {
        warnings.push(format!("{unconverged} inner solves did not reach their tolerance"));
    }
    Ok(Fit {
        reward: theta,
        pi: solved.pi,
        prior: solved.prior,
        log_likelihood,
        iterations,
        evaluations: problem.evaluations.load(Ordering::Relaxed),
        converged,
        warnings,
    })
}

/// The mean log-posterior per step at `theta` and its gradient (for tests).
pub fn mean_log_likelihood_and_gradient(
    mdp: &Mdp,
    counts: &ActionCounts,
    lambda: f64,
    theta: &[f64],
    opts: &FitOptions,
) -> (f64, Vec<f64>) {
    let problem = Problem::new(mdp, counts, lambda, opts);
    let o = Objective(&problem);
    let v = o.cost(&theta.to_vec()).expect("cost");
    let g = o.gradient(&theta.to_vec()).expect("gradient");
    (-v, g.iter().map(|x| -x).collect())
}
