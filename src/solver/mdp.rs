//! The exact solver for one information-constrained agent in a tabular world
//! (theory §2–3 with one agent; the maze of §7): states, actions, a known
//! transition law `P(s' | s, a)` and a state reward `r(s)`.
//!
//! The agent maximises the long-run average `g = ⟨r⟩ − λ ⟨KL(π(·|s) ‖ p)⟩`
//! with `p` either fixed or the marginal of its own actions under the
//! stationary distribution (then the cost is the mutual information I(S;A)).
//! Soft relative value iteration for a fixed `p`,
//! ```text
//! Q(s,a) = Σ_s' P(s'|s,a) h(s'),   π(a|s) = p(a) exp(Q(s,a)/λ) / Z(s),
//! h(s)   = r(s) − g + λ log Z(s),
//! ```
//! alternated with `p ← Σ_s ρ(s) π(·|s)` (Blahut–Arimoto). The worlds that are
//! not networks of binary neurons (mazes) are built as an [`Mdp`]; the network
//! solvers stay specialised for speed. No I/O; one thread (these worlds are
//! small).

use super::SolveOptions;
use rand::Rng;

/// A tabular world for one agent. `next[s·A + a]` lists `(s', P(s'|s,a))`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mdp {
    pub states: usize,
    pub actions: usize,
    pub next: Vec<Vec<(usize, f64)>>,
    pub reward: Vec<f64>,
}

/// The agent's coding cost.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionPrior {
    /// `p` is the marginal of the agent's actions (mutual-information cost).
    Marginal,
    /// `p` given (a distribution over the actions, every entry positive).
    Fixed(Vec<f64>),
}

/// Exact evaluation of a policy: stationary distribution and the terms of g.
#[derive(Clone, Debug)]
pub struct MdpEvaluation {
    pub rho: Vec<f64>,
    /// `Σ_s ρ(s) π(·|s)`.
    pub marginal: Vec<f64>,
    pub mean_reward: f64,
    /// `⟨KL(π(·|s) ‖ p)⟩_ρ` in nats per step (the mutual information I(S;A)
    /// when `p` is the marginal).
    pub info_nats: f64,
    pub g: f64,
    pub stationary_sweeps: usize,
    pub stationary_residual: f64,
}

/// The optimum found by [`solve`], with its convergence record.
#[derive(Clone, Debug)]
pub struct MdpSolution {
    /// `pi[s·A + a] = π(a|s)`.
    pub pi: Vec<f64>,
    /// Relative values, `h(0) = 0`.
    pub h: Vec<f64>,
    /// The prior the policy was optimised against.
    pub prior: Vec<f64>,
    pub eval: MdpEvaluation,
    pub converged: bool,
    pub iterations: usize,
    pub value_sweeps: usize,
    pub value_residual: f64,
    pub prior_residual: f64,
    pub warnings: Vec<String>,
}

/// Relaxation of relative value iteration: `h ← (1−τ) h + τ (T h − T h(0))`.
/// The lazy update makes every chain aperiodic (maze policies are nearly
/// periodic at small λ), at the price of about twice the sweeps.
const RELAX: f64 = 0.5;

/// Worlds up to this many states get their linear systems (stationary
/// distribution, policy values, adjoints) solved directly: exact, and immune
/// to the slow mixing of nearly deterministic policies.
pub const DENSE_STATES: usize = 300;

impl Mdp {
    /// The dense transition matrix `M(s,s') = Σ_a π(a|s) P(s'|s,a)`, row-major.
    pub fn chain_matrix(&self, pi: &[f64]) -> Vec<f64> {
        let ns = self.states;
        let mut m = vec![0.0; ns * ns];
        for s in 0..ns {
            for a in 0..self.actions {
                let w = pi[s * self.actions + a];
                if w != 0.0 {
                    for &(t, p) in &self.next[s * self.actions + a] {
                        m[s * ns + t] += w * p;
                    }
                }
            }
        }
        m
    }

    /// Check the transition law: indices in range, rows non-negative and
    /// summing to 1, rewards finite.
    pub fn validate(&self) -> Result<(), String> {
        if self.states == 0 || self.actions == 0 {
            return Err("a world needs at least one state and one action".into());
        }
        if self.next.len() != self.states * self.actions || self.reward.len() != self.states {
            return Err(format!(
                "{} transition rows and {} rewards for {} states × {} actions",
                self.next.len(),
                self.reward.len(),
                self.states,
                self.actions
            ));
        }
        for (i, row) in self.next.iter().enumerate() {
            let sum: f64 = row.iter().map(|e| e.1).sum();
            if row.iter().any(|&(t, p)| t >= self.states || p.is_nan() || p < 0.0) || (sum - 1.0).abs() > 1e-9 {
                return Err(format!(
                    "transition row of state {} action {} is not a distribution over the {} states (sums to {sum})",
                    i / self.actions,
                    i % self.actions,
                    self.states
                ));
            }
        }
        if let Some(s) = self.reward.iter().position(|r| !r.is_finite()) {
            return Err(format!("reward of state {s} is not finite"));
        }
        Ok(())
    }

    /// `Q(s,a) = Σ_s' P(s'|s,a) h(s')`.
    #[inline]
    pub fn q(&self, h: &[f64], s: usize, a: usize) -> f64 {
        self.next[s * self.actions + a].iter().map(|&(t, p)| p * h[t]).sum()
    }

    /// The soft-optimal policy for values `h` against `prior`, and
    /// `v(s) = λ log Z(s)` (computed stably).
    pub fn soft_policy(&self, h: &[f64], lambda: f64, prior: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let na = self.actions;
        let mut pi = vec![0.0; self.states * na];
        let mut v = vec![0.0; self.states];
        let mut q = vec![0.0; na];
        for s in 0..self.states {
            v[s] = self.soft_row(h, lambda, prior, s, &mut q);
            for a in 0..na {
                pi[s * na + a] = q[a];
            }
        }
        (pi, v)
    }

    /// `λ log Σ_a p(a) exp(Q(s,a)/λ)`; leaves `π(·|s)` in `out`.
    fn soft_row(&self, h: &[f64], lambda: f64, prior: &[f64], s: usize, out: &mut [f64]) -> f64 {
        let mut m = f64::NEG_INFINITY;
        for a in 0..self.actions {
            out[a] = self.q(h, s, a) / lambda;
            if prior[a] > 0.0 {
                m = m.max(out[a]);
            }
        }
        let mut z = 0.0;
        for a in 0..self.actions {
            out[a] = if prior[a] > 0.0 {
                prior[a] * (out[a] - m).exp()
            } else {
                0.0
            };
            z += out[a];
        }
        out.iter_mut().for_each(|x| *x /= z);
        lambda * (m + z.ln())
    }

    /// Stationary distribution of the chain `π` induces, by power iteration
    /// of the lazy chain from `warm` (uniform when None). Returns (ρ, sweeps,
    /// final L1 change).
    pub fn stationary(&self, pi: &[f64], warm: Option<&[f64]>, opts: &SolveOptions) -> (Vec<f64>, usize, f64) {
        let ns = self.states;
        if ns <= DENSE_STATES {
            // ρ (I − M) = 0 with the last equation replaced by Σρ = 1. A
            // chain with several closed classes (a policy that stays put for
            // good in two places) has no unique ρ: then the chain is mixed
            // with a 10⁻¹⁰ uniform restart, which picks the limit reached
            // from everywhere.
            let m = self.chain_matrix(pi);
            for eps in [0.0, 1e-10, 1e-6] {
                let mut a = vec![0.0; ns * ns];
                for i in 0..ns {
                    for j in 0..ns {
                        let mji = (1.0 - eps) * m[j * ns + i] + eps / ns as f64;
                        a[i * ns + j] = f64::from(u8::from(i == j)) - mji;
                    }
                }
                a[(ns - 1) * ns..].iter_mut().for_each(|x| *x = 1.0);
                let mut y = vec![0.0; ns];
                y[ns - 1] = 1.0;
                if let Some(rho) = solve_dense(&a, &y, ns)
                    && rho.iter().all(|r| r.is_finite() && *r > -1e-6)
                {
                    let rho: Vec<f64> = rho.iter().map(|r| r.max(0.0)).collect();
                    let total: f64 = rho.iter().sum();
                    return (rho.iter().map(|r| r / total).collect(), 1, 0.0);
                }
            }
        }
        let mut rho = warm.map_or_else(|| vec![1.0 / ns as f64; ns], |w| w.to_vec());
        let mut next = vec![0.0; ns];
        let mut residual = f64::INFINITY;
        let mut sweeps = 0;
        while sweeps < opts.max_stationary_sweeps {
            sweeps += 1;
            next.iter_mut().zip(&rho).for_each(|(n, r)| *n = 0.5 * r);
            for s in 0..ns {
                if rho[s] == 0.0 {
                    continue;
                }
                for a in 0..self.actions {
                    let w = 0.5 * rho[s] * pi[s * self.actions + a];
                    if w != 0.0 {
                        for &(t, p) in &self.next[s * self.actions + a] {
                            next[t] += w * p;
                        }
                    }
                }
            }
            let total: f64 = next.iter().sum();
            residual = next.iter().zip(&rho).map(|(a, b)| (a / total - b).abs()).sum();
            rho.iter_mut().zip(&next).for_each(|(r, n)| *r = n / total);
            if residual < opts.stationary_tol || !residual.is_finite() {
                break;
            }
        }
        (rho, sweeps, residual)
    }

    /// Exact evaluation of `pi` with coding cost against `prior` (the
    /// policy's own marginal when None).
    pub fn evaluate(&self, pi: &[f64], lambda: f64, prior: Option<&[f64]>, opts: &SolveOptions) -> MdpEvaluation {
        self.evaluate_warm(pi, lambda, prior, None, opts)
    }

    fn evaluate_warm(
        &self,
        pi: &[f64],
        lambda: f64,
        prior: Option<&[f64]>,
        warm: Option<&[f64]>,
        opts: &SolveOptions,
    ) -> MdpEvaluation {
        let na = self.actions;
        let (rho, sweeps, residual) = self.stationary(pi, warm, opts);
        let mut marginal = vec![0.0; na];
        for s in 0..self.states {
            for a in 0..na {
                marginal[a] += rho[s] * pi[s * na + a];
            }
        }
        let p = prior.unwrap_or(&marginal);
        let mut info = 0.0;
        for s in 0..self.states {
            info += rho[s] * kl(&pi[s * na..(s + 1) * na], p);
        }
        let mean_reward: f64 = rho.iter().zip(&self.reward).map(|(a, b)| a * b).sum();
        MdpEvaluation {
            g: mean_reward - lambda * info,
            rho,
            marginal,
            mean_reward,
            info_nats: info,
            stationary_sweeps: sweeps,
            stationary_residual: residual,
        }
    }

    /// Relative value iteration for a fixed prior, from `h` (updated in
    /// place). Returns (g, sweeps, span residual, converged).
    pub fn relative_values(
        &self,
        lambda: f64,
        prior: &[f64],
        h: &mut Vec<f64>,
        opts: &SolveOptions,
    ) -> (f64, usize, f64, bool) {
        let ns = self.states;
        if h.len() != ns {
            *h = vec![0.0; ns];
        }
        let mut th = vec![0.0; ns];
        let mut q = vec![0.0; self.actions];
        let (mut g, mut residual) = (0.0, f64::INFINITY);
        for sweep in 1..=opts.max_value_sweeps {
            for s in 0..ns {
                th[s] = self.reward[s] + self.soft_row(h, lambda, prior, s, &mut q);
            }
            g = th[0] - h[0];
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for s in 0..ns {
                let d = th[s] - h[s];
                lo = lo.min(d);
                hi = hi.max(d);
            }
            residual = hi - lo;
            let shift = th[0];
            for s in 0..ns {
                h[s] = (1.0 - RELAX) * h[s] + RELAX * (th[s] - shift);
            }
            if residual < opts.value_tol {
                return (g, sweep, residual, true);
            }
            if !residual.is_finite() {
                return (g, sweep, residual, false);
            }
        }
        (g, opts.max_value_sweeps, residual, false)
    }

    /// Relative values of a fixed policy for a per-state payoff `c`: solves
    /// `(I − M) u = c − (ρ·c) 1` with `u(0) = 0` by lazy iteration from `u`
    /// (updated in place). Returns converged.
    pub fn policy_values(&self, pi: &[f64], c: &[f64], u: &mut Vec<f64>, opts: &SolveOptions) -> bool {
        let ns = self.states;
        if u.len() != ns {
            *u = vec![0.0; ns];
        }
        if ns <= DENSE_STATES {
            // Unknowns (ḡ, u_1 … u_{n−1}) with u_0 = 0:
            // u(s) + ḡ − Σ_s' M(s,s') u(s') = c(s).
            let m = self.chain_matrix(pi);
            let mut a = vec![0.0; ns * ns];
            for i in 0..ns {
                a[i * ns] = 1.0;
                for j in 1..ns {
                    a[i * ns + j] = f64::from(u8::from(i == j)) - m[i * ns + j];
                }
            }
            if let Some(x) = solve_dense(&a, c, ns)
                && x.iter().all(|v| v.is_finite())
            {
                u[0] = 0.0;
                u[1..].copy_from_slice(&x[1..]);
                return true;
            }
        }
        let scale = c.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-300);
        let mut tu = vec![0.0; ns];
        for _ in 0..opts.max_value_sweeps {
            for s in 0..ns {
                let mut acc = c[s];
                for a in 0..self.actions {
                    let w = pi[s * self.actions + a];
                    if w != 0.0 {
                        acc += w * self.q(u, s, a);
                    }
                }
                tu[s] = acc;
            }
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for s in 0..ns {
                lo = lo.min(tu[s] - u[s]);
                hi = hi.max(tu[s] - u[s]);
            }
            let shift = tu[0];
            for s in 0..ns {
                u[s] = (1.0 - RELAX) * u[s] + RELAX * (tu[s] - shift);
            }
            if hi - lo < opts.value_tol * scale {
                return true;
            }
        }
        false
    }

    /// The gradient with respect to the reward of a function of `h` whose
    /// gradient with respect to h is `b` (with `Σ b = 0`), for the policy `pi`
    /// with stationary distribution `rho`: solve the adjoint of policy
    /// evaluation `(I − M)ᵀ ν = b`, `M(s,s') = Σ_a π(a|s) P(s'|s,a)`, by lazy
    /// iteration from `nu` (updated in place, a warm start), and return
    /// `ν − (Σν) ρ` (a constant shift of r moves g, not h). Also returns
    /// whether the iteration converged.
    pub fn reward_adjoint(
        &self,
        pi: &[f64],
        rho: &[f64],
        b: &[f64],
        nu: &mut Vec<f64>,
        opts: &SolveOptions,
    ) -> (Vec<f64>, bool) {
        let ns = self.states;
        if nu.len() != ns {
            *nu = vec![0.0; ns];
        }
        let scale = b.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-300);
        let mut mt = vec![0.0; ns];
        let mut converged = false;
        // Σ b = 0 holds up to rounding; the rounding error would feed the
        // null direction ρ on every sweep, so it is projected out.
        let total_b: f64 = b.iter().sum();
        let b: Vec<f64> = b.iter().zip(rho).map(|(x, r)| x - total_b * r).collect();
        if ns <= DENSE_STATES {
            // (I − Mᵀ) ν = b, the (dependent) last equation replaced by Σν = 0.
            let m = self.chain_matrix(pi);
            let mut a = vec![0.0; ns * ns];
            for i in 0..ns {
                for j in 0..ns {
                    a[i * ns + j] = f64::from(u8::from(i == j)) - m[j * ns + i];
                }
            }
            a[(ns - 1) * ns..].iter_mut().for_each(|x| *x = 1.0);
            let mut y = b.clone();
            y[ns - 1] = 0.0;
            if let Some(x) = solve_dense(&a, &y, ns)
                && x.iter().all(|v| v.is_finite())
            {
                *nu = x;
                let total: f64 = nu.iter().sum();
                return (nu.iter().zip(rho).map(|(v, r)| v - total * r).collect(), true);
            }
        }
        for _ in 0..opts.max_value_sweeps {
            // (Mᵀν)(s') = Σ_s ν(s) M(s, s')
            mt.iter_mut().for_each(|x| *x = 0.0);
            for s in 0..ns {
                for a in 0..self.actions {
                    let w = nu[s] * pi[s * self.actions + a];
                    if w != 0.0 {
                        for &(t, p) in &self.next[s * self.actions + a] {
                            mt[t] += w * p;
                        }
                    }
                }
            }
            let mut change = 0.0f64;
            for s in 0..ns {
                let v = 0.5 * nu[s] + 0.5 * (b[s] + mt[s]);
                change = change.max((v - nu[s]).abs());
                nu[s] = v;
            }
            let drift: f64 = nu.iter().sum();
            nu.iter_mut().zip(rho).for_each(|(v, r)| *v -= drift * r);
            if change < opts.value_tol * scale {
                converged = true;
                break;
            }
        }
        let total: f64 = nu.iter().sum();
        let grad = nu.iter().zip(rho).map(|(v, r)| v - total * r).collect();
        (grad, converged)
    }
}

/// `KL(a ‖ b)` in nats over a finite alphabet (0 log 0 = 0).
pub fn kl(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .filter(|(x, _)| **x > 0.0)
        .map(|(x, y)| x * (x / y).ln())
        .sum()
}

/// The optimal policy of `mdp` at coding-cost weight `lambda`.
pub fn solve(mdp: &Mdp, lambda: f64, cost: &ActionPrior, opts: &SolveOptions) -> MdpSolution {
    solve_from(mdp, lambda, cost, None, opts)
}

/// [`solve`] from initial relative values and prior (a continuation).
pub fn solve_from(
    mdp: &Mdp,
    lambda: f64,
    cost: &ActionPrior,
    start: Option<(&[f64], &[f64])>,
    opts: &SolveOptions,
) -> MdpSolution {
    let na = mdp.actions;
    let (mut h, mut prior) = match (start, cost) {
        (Some((h, _)), ActionPrior::Fixed(p)) => (h.to_vec(), p.clone()),
        (Some((h, p)), ActionPrior::Marginal) => (h.to_vec(), p.to_vec()),
        (None, ActionPrior::Fixed(p)) => (Vec::new(), p.clone()),
        (None, ActionPrior::Marginal) => (Vec::new(), vec![1.0 / na as f64; na]),
    };
    let marginal = matches!(cost, ActionPrior::Marginal);
    let warm_started = start.is_some();
    let mut value_sweeps = 0;
    let mut iterations = 0;
    let mut prior_residual = 0.0;
    let mut rho_warm: Option<Vec<f64>> = None;
    let mut all_values_converged = true;
    let (mut value_residual, mut pi);
    // Inner solves need only be as accurate as the marginal is settled:
    // their tolerances follow the last Blahut–Arimoto change (the final
    // policy is polished at full tolerance below).
    let mut inner = opts.clone();
    let mut anderson = Anderson::new(ANDERSON_DEPTH);
    let mut best_v = f64::NEG_INFINITY;
    // The plain Blahut–Arimoto prior when the current one was extrapolated.
    let mut plain: Option<Vec<f64>> = None;
    loop {
        iterations += 1;
        if marginal && iterations > 1 {
            inner.value_tol = opts.value_tol.max(1e-3 * prior_residual);
            inner.stationary_tol = opts.stationary_tol.max(1e-3 * prior_residual);
        }
        let (mut v, sweeps, residual, ok) = mdp.relative_values(lambda, &prior, &mut h, &inner);
        value_sweeps += sweeps;
        value_residual = residual;
        all_values_converged &= ok;
        // Blahut–Arimoto never lowers the value of the prior, V(p) = max_π
        // g(π; p); an extrapolated prior that does is replaced by the plain
        // step (this keeps the ascent, and the optimum it climbs to).
        if let Some(plain_prior) = plain.take()
            && v < best_v - 1e-12 * (1.0 + best_v.abs())
        {
            prior = plain_prior;
            anderson.clear();
            let (v2, sweeps, residual, ok) = mdp.relative_values(lambda, &prior, &mut h, &inner);
            value_sweeps += sweeps;
            value_residual = residual;
            all_values_converged &= ok;
            v = v2;
        }
        best_v = best_v.max(v);
        pi = mdp.soft_policy(&h, lambda, &prior).0;
        if !marginal {
            break;
        }
        let (rho, _, _) = mdp.stationary(&pi, rho_warm.as_deref(), &inner);
        let mut p = vec![0.0; na];
        for s in 0..mdp.states {
            for a in 0..na {
                p[a] += rho[s] * pi[s * na + a];
            }
        }
        // Keep every action possible: a marginal that reaches exactly 0 can
        // never come back under Blahut–Arimoto.
        p.iter_mut().for_each(|x| *x = x.max(1e-300));
        let last = prior_residual;
        prior_residual = p.iter().zip(&prior).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        rho_warm = Some(rho);
        if prior_residual < opts.prior_tol || iterations >= opts.max_prior_iterations {
            prior = p;
            pi = mdp.soft_policy(&h, lambda, &prior).0;
            let (_, sweeps, residual, ok) = mdp.relative_values(lambda, &prior, &mut h, opts);
            value_sweeps += sweeps;
            value_residual = residual;
            all_values_converged &= ok;
            pi = if ok { mdp.soft_policy(&h, lambda, &prior).0 } else { pi };
            break;
        }
        if iterations > 1 && prior_residual > 2.0 * last {
            anderson.clear();
        }
        // Cold solves take plain Blahut–Arimoto steps: its ascent from the
        // uniform prior selects the optimum a learner would climb to, where
        // extrapolation can jump to another, higher one (e.g. an agent that
        // settles on its best cell for good). Warm starts (continuations,
        // the likelihood's inner solves) sit near their fixed point already
        // and are accelerated.
        let next = if warm_started {
            anderson.step(&prior, &p)
        } else {
            p.clone()
        };
        plain = (next != p).then_some(p);
        prior = next;
    }
    let eval = mdp.evaluate_warm(
        &pi,
        lambda,
        if marginal { None } else { Some(&prior) },
        rho_warm.as_deref(),
        opts,
    );
    let prior_converged = !marginal || prior_residual < opts.prior_tol;
    let mut warnings = Vec::new();
    if !all_values_converged {
        warnings.push(format!(
            "relative value iteration stopped at {} sweeps with span residual {value_residual:.2e} (tolerance {:.0e})",
            opts.max_value_sweeps, opts.value_tol
        ));
    }
    if !prior_converged {
        warnings.push(format!(
            "Blahut–Arimoto stopped after {iterations} iterations with the marginal still moving by {prior_residual:.2e}"
        ));
    }
    if eval.stationary_residual >= opts.stationary_tol {
        warnings.push(format!(
            "the stationary distribution did not converge (L1 change {:.2e})",
            eval.stationary_residual
        ));
    }
    MdpSolution {
        pi,
        h,
        prior,
        eval,
        converged: warnings.is_empty(),
        iterations,
        value_sweeps,
        value_residual,
        prior_residual,
        warnings,
    }
}

/// History kept by the Anderson acceleration of Blahut–Arimoto.
const ANDERSON_DEPTH: usize = 4;

/// Anderson acceleration (type II) of the fixed-point map p ↦ m(p) that
/// Blahut–Arimoto iterates (for warm-started solves): the next prior extrapolates the last few
/// (p, m(p)) pairs so that the residual m(p) − p is least in their span.
/// Plain Blahut–Arimoto converges linearly and, near λ ≈ 1 or while an
/// action is being abandoned (its marginal decaying geometrically to 0),
/// takes thousands of iterations. Steps that leave the simplex are clipped
/// and renormalised; the caller clears the history when the residual grows
/// and rejects a step that lowers the value of the prior (which plain
/// Blahut–Arimoto never does), so the ascent is kept.
struct Anderson {
    depth: usize,
    x: Vec<Vec<f64>>,
    g: Vec<Vec<f64>>,
}

impl Anderson {
    fn new(depth: usize) -> Self {
        Anderson {
            depth,
            x: Vec::new(),
            g: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.x.clear();
        self.g.clear();
    }

    /// The next prior after `x` mapped to `g = m(x)`.
    fn step(&mut self, x: &[f64], g: &[f64]) -> Vec<f64> {
        self.x.push(x.to_vec());
        self.g.push(g.to_vec());
        if self.x.len() > self.depth + 1 {
            self.x.remove(0);
            self.g.remove(0);
        }
        let k = self.x.len();
        if k < 2 {
            return g.to_vec();
        }
        let n = g.len();
        let f = |i: usize| -> Vec<f64> { (0..n).map(|j| self.g[i][j] - self.x[i][j]).collect() };
        let fk = f(k - 1);
        // ΔF columns and ΔG columns.
        let df: Vec<Vec<f64>> = (0..k - 1)
            .map(|i| {
                let (a, b) = (f(i + 1), f(i));
                (0..n).map(|j| a[j] - b[j]).collect()
            })
            .collect();
        let m = k - 1;
        let mut normal = vec![0.0; m * m];
        let mut rhs = vec![0.0; m];
        for i in 0..m {
            for j in 0..m {
                normal[i * m + j] = (0..n).map(|t| df[i][t] * df[j][t]).sum();
            }
            rhs[i] = (0..n).map(|t| df[i][t] * fk[t]).sum();
        }
        let trace: f64 = (0..m).map(|i| normal[i * m + i]).sum();
        for i in 0..m {
            normal[i * m + i] += 1e-12 * trace.max(1e-300);
        }
        let Some(gamma) = solve_dense(&normal, &rhs, m) else {
            self.clear();
            return g.to_vec();
        };
        let mut next: Vec<f64> = (0..n)
            .map(|j| {
                let dg: f64 = (0..m).map(|i| gamma[i] * (self.g[i + 1][j] - self.g[i][j])).sum();
                g[j] - dg
            })
            .collect();
        if next.iter().any(|v| !v.is_finite()) {
            self.clear();
            return g.to_vec();
        }
        next.iter_mut().for_each(|v| *v = v.max(1e-300));
        let total: f64 = next.iter().sum();
        next.iter_mut().for_each(|v| *v /= total);
        next
    }
}

/// Solve the dense k×k system `m x = y` (row-major; Gaussian elimination
/// with partial pivoting); None if singular.
pub fn solve_dense(m: &[f64], y: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut a: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            let mut row = m[i * k..(i + 1) * k].to_vec();
            row.push(y[i]);
            row
        })
        .collect();
    for col in 0..k {
        let piv = (col..k).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        for i in 0..k {
            if i != col {
                let f = a[i][col] / a[col][col];
                for j in col..=k {
                    a[i][j] -= f * a[col][j];
                }
            }
        }
    }
    Some((0..k).map(|i| a[i][k] / a[i][i]).collect())
}

/// Sample `steps` steps of the chain from state `start`: returns the states
/// visited (`steps + 1` of them) and the action taken at each step.
pub fn sample(mdp: &Mdp, pi: &[f64], start: usize, steps: usize, rng: &mut impl Rng) -> (Vec<usize>, Vec<usize>) {
    let na = mdp.actions;
    let mut states = Vec::with_capacity(steps + 1);
    let mut actions = Vec::with_capacity(steps);
    let mut s = start;
    states.push(s);
    for _ in 0..steps {
        let a = draw(&pi[s * na..(s + 1) * na], rng);
        s = draw_next(&mdp.next[s * na + a], rng);
        actions.push(a);
        states.push(s);
    }
    (states, actions)
}

fn draw(p: &[f64], rng: &mut impl Rng) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (i, x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return i;
        }
    }
    p.iter().rposition(|x| *x > 0.0).unwrap_or(0)
}

fn draw_next(row: &[(usize, f64)], rng: &mut impl Rng) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for &(t, p) in row {
        acc += p;
        if u < acc {
            return t;
        }
    }
    row.iter().rev().find(|e| e.1 > 0.0).map_or(row[0].0, |e| e.0)
}
