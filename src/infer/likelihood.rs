//! Maximum-likelihood inverse RL with a parametric reward `r_θ = Φθ`
//! (theory §5): θ maximises the likelihood of the recorded responses under
//! the soft-optimal policies of `r_θ`, each evaluation running the exact
//! solver against the estimated marginals `p̂_k`.
//!
//! Works for every update scheme: a recorded response is `σ'_k`, with
//! `P(σ'_k = 1 | s) = q·π_k(1|s) + (1 − q)·σ_k` (q = 1 when the response is
//! the action: asynchronous records with known actors, synchronous records;
//! q = the update probability for random-partial records and for
//! asynchronous records whose actor is unknown). Gradients: implicit
//! differentiation for asynchronous, fully observed networks (one adjoint
//! policy evaluation per gradient, [`crate::solver::adjoint`]); forward
//! finite differences otherwise (one warm-started solve per parameter).
//! Optimised by L-BFGS (argmin). Pure math; no I/O.

use crate::model::{CodingCost, Network, UpdateScheme, spike_count};
use crate::solver::{self, Policy, SolveOptions, WarmStart};
use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Sufficient statistics of a record for the likelihood of its responses.
#[derive(Clone, Debug)]
pub struct Responses {
    pub n: usize,
    pub inputs: usize,
    /// `trials[s·n + k]`: ticks at state s where neuron k's response was observed.
    pub trials: Vec<f64>,
    /// `ones[s·n + k]`: of those, how often `σ'_k = 1`.
    pub ones: Vec<f64>,
    /// `P(σ'_k = 1 | s) = q·π_k(1|s) + (1 − q)·σ_k`.
    pub q: f64,
    /// Ticks spent in each state.
    pub visits: Vec<u64>,
    /// Estimated marginal firing probability of each neuron when it acts.
    pub p_fire: Vec<f64>,
    /// Whether only the acting neuron's response is counted (known actors).
    pub acting: bool,
}

impl Responses {
    /// An asynchronous record with known actors: the actor's action at each tick.
    pub fn acting(n: usize, inputs: usize, x: &[usize], sigma: &[usize], actor: &[i64]) -> Self {
        let mut r = Self::empty(n, inputs, 1.0, true);
        for t in 0..x.len() {
            let s = (x[t] << n) | sigma[t];
            r.visits[s] += 1;
            if t + 1 == x.len() || actor[t] < 0 {
                continue;
            }
            let k = actor[t] as usize;
            r.trials[s * n + k] += 1.0;
            r.ones[s * n + k] += (sigma[t + 1] >> k & 1) as f64;
        }
        r.estimate_marginals();
        r
    }

    /// Every neuron's next state observed each tick: synchronous records
    /// (q = 1), random-partial ones (q), or asynchronous ones whose actor is
    /// unknown (q = 1/n).
    pub fn all_neurons(n: usize, inputs: usize, x: &[usize], sigma: &[usize], q: f64) -> Self {
        let mut r = Self::empty(n, inputs, q, false);
        for t in 0..x.len() {
            let s = (x[t] << n) | sigma[t];
            r.visits[s] += 1;
            if t + 1 == x.len() {
                continue;
            }
            for k in 0..n {
                r.trials[s * n + k] += 1.0;
                r.ones[s * n + k] += (sigma[t + 1] >> k & 1) as f64;
            }
        }
        r.estimate_marginals();
        r
    }

    /// Add another record's counts (same layout), e.g. bootstrap blocks.
    pub fn add(&mut self, o: &Responses) {
        self.add_counts(o);
        self.estimate_marginals();
    }

    /// The counts of [`Responses::add`], leaving the marginals stale (a
    /// caller adding many blocks estimates them once at the end).
    fn add_counts(&mut self, o: &Responses) {
        self.trials.iter_mut().zip(&o.trials).for_each(|(a, b)| *a += b);
        self.ones.iter_mut().zip(&o.ones).for_each(|(a, b)| *a += b);
        self.visits.iter_mut().zip(&o.visits).for_each(|(a, b)| *a += b);
    }

    /// p̂_k: the firing rate when acting (known actors), else the fraction
    /// of ticks k is on (at stationarity E[π_k(1|s)] = E[σ_k] under every
    /// scheme). Half a pseudo-count keeps it inside (0, 1).
    fn estimate_marginals(&mut self) {
        let n = self.n;
        let mask = (1usize << n) - 1;
        self.p_fire = (0..n)
            .map(|k| {
                let (num, den) = if self.acting {
                    (
                        (0..self.visits.len()).map(|s| self.ones[s * n + k]).sum::<f64>(),
                        (0..self.visits.len()).map(|s| self.trials[s * n + k]).sum::<f64>(),
                    )
                } else {
                    let on = (0..self.visits.len())
                        .filter(|&s| (s & mask) >> k & 1 == 1)
                        .map(|s| self.visits[s] as f64)
                        .sum::<f64>();
                    (on, self.visits.iter().sum::<u64>() as f64)
                };
                (num + 0.5) / (den + 1.0)
            })
            .collect();
    }

    fn empty(n: usize, inputs: usize, q: f64, acting: bool) -> Self {
        let states = inputs << n;
        Responses {
            n,
            inputs,
            acting,
            trials: vec![0.0; states * n],
            ones: vec![0.0; states * n],
            q,
            visits: vec![0; states],
            p_fire: vec![0.5; n],
        }
    }

    /// Number of observed responses.
    pub fn total(&self) -> f64 {
        self.trials.iter().sum()
    }

    /// `P(σ'_k = 1 | s)` under `π_k(1|s) = pi`, kept inside (0, 1).
    #[inline]
    fn link(&self, s: usize, k: usize, pi: f64) -> f64 {
        let on = ((s & ((1usize << self.n) - 1)) >> k & 1) as f64;
        (self.q * pi + (1.0 - self.q) * on).clamp(1e-15, 1.0 - 1e-15)
    }

    /// Log-likelihood of the responses under `policy`.
    pub fn log_likelihood(&self, policy: &Policy) -> f64 {
        let n = self.n;
        let states = self.visits.len();
        let parts: Vec<f64> = (0..states)
            .into_par_iter()
            .map(|s| {
                let mut acc = 0.0;
                for k in 0..n {
                    let t = self.trials[s * n + k];
                    if t > 0.0 {
                        let o = self.ones[s * n + k];
                        let p = self.link(s, k, policy.p(s, k));
                        acc += o * p.ln() + (t - o) * (1.0 - p).ln();
                    }
                }
                acc
            })
            .collect();
        parts.iter().sum()
    }

    /// The saturated log-likelihood (each (state, neuron) at its own rate):
    /// the ceiling of any model's, for the likelihood-ratio check of fit.
    pub fn saturated_log_likelihood(&self) -> f64 {
        let xlogy = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * b.ln() };
        self.trials
            .iter()
            .zip(&self.ones)
            .filter(|(t, _)| **t > 0.0)
            .map(|(&t, &o)| xlogy(o, o / t) + xlogy(t - o, 1.0 - o / t))
            .sum()
    }
}

/// Reward features `φ(s)`: `r_θ(s) = Σ_j θ_j φ_j(s)`.
#[derive(Clone, Debug)]
pub struct Features {
    pub names: Vec<String>,
    /// `phi[s·P + j]`, P = `names.len()`.
    pub phi: Vec<f64>,
}

impl Features {
    /// One-hot of (input, spike count): `x·(n+1) + c`.
    pub fn counts(n: usize, inputs: usize) -> Self {
        let p = inputs * (n + 1);
        let states = inputs << n;
        let mut phi = vec![0.0; states * p];
        for s in 0..states {
            let (x, sigma) = (s >> n, s & ((1 << n) - 1));
            phi[s * p + x * (n + 1) + spike_count(sigma)] = 1.0;
        }
        let names = (0..inputs)
            .flat_map(|x| (0..=n).map(move |c| format!("x{x}:count{c}")))
            .collect();
        Features { names, phi }
    }

    /// One reward per input value, whatever the neurons do (e.g. per cell of
    /// a maze the network drives): one-hot of x.
    pub fn inputs(n: usize, inputs: usize) -> Self {
        let states = inputs << n;
        let mut phi = vec![0.0; states * inputs];
        for s in 0..states {
            phi[s * inputs + (s >> n)] = 1.0;
        }
        Features {
            names: (0..inputs).map(|x| format!("x{x}")).collect(),
            phi,
        }
    }

    /// Per input: one term per neuron (σ_k) and per pair (σ_j σ_k).
    pub fn pattern(n: usize, inputs: usize) -> Self {
        let mut names = Vec::new();
        for x in 0..inputs {
            names.extend((0..n).map(|k| format!("x{x}:s{k}")));
            for j in 0..n {
                names.extend((j + 1..n).map(|k| format!("x{x}:s{j}s{k}")));
            }
        }
        let per = n + n * (n - 1) / 2;
        let p = inputs * per;
        let states = inputs << n;
        let mut phi = vec![0.0; states * p];
        for s in 0..states {
            let (x, sigma) = (s >> n, s & ((1 << n) - 1));
            let row = &mut phi[s * p + x * per..s * p + (x + 1) * per];
            let mut i = n;
            for j in 0..n {
                row[j] = (sigma >> j & 1) as f64;
                for k in j + 1..n {
                    row[i] = (sigma >> j & sigma >> k & 1) as f64;
                    i += 1;
                }
            }
        }
        Features { names, phi }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `r_θ = Φθ`.
    pub fn reward(&self, theta: &[f64]) -> Vec<f64> {
        let p = self.len();
        self.phi
            .chunks(p)
            .map(|row| row.iter().zip(theta).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// `Φᵀ g`.
    fn pull_back(&self, g: &[f64]) -> Vec<f64> {
        let p = self.len();
        let mut out = vec![0.0; p];
        for (row, &gs) in self.phi.chunks(p).zip(g) {
            if gs != 0.0 {
                for j in 0..p {
                    out[j] += row[j] * gs;
                }
            }
        }
        out
    }
}

/// Default standard deviation of the prior on θ (reward units).
pub const PRIOR_SD: f64 = 10.0;

/// How gradients of the likelihood are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradientMethod {
    /// Implicit differentiation where available (asynchronous, fully
    /// observed), finite differences otherwise.
    Auto,
    FiniteDifference,
}

#[derive(Clone, Debug)]
pub struct FitOptions {
    pub solve: SolveOptions,
    /// Standard deviation of a weak Gaussian prior on every θ_j (in the
    /// reward's units), or None for plain maximum likelihood. States seen a
    /// handful of times (a start transient) otherwise drive their features'
    /// parameters off to ±∞: the likelihood keeps improving as the policy
    /// saturates there.
    pub prior_sd: Option<f64>,
    pub max_iterations: u64,
    pub gradient: GradientMethod,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            solve: SolveOptions {
                value_tol: 1e-11,
                ..SolveOptions::default()
            },
            max_iterations: 200,
            prior_sd: Some(PRIOR_SD),
            gradient: GradientMethod::Auto,
        }
    }
}

/// A maximum-likelihood fit.
#[derive(Clone, Debug)]
pub struct Fit {
    pub theta: Vec<f64>,
    /// `r_θ` over all states.
    pub reward: Vec<f64>,
    pub log_likelihood: f64,
    /// Number of observed responses.
    pub responses: f64,
    pub iterations: u64,
    /// Likelihood evaluations (exact solves, finite-difference ones included).
    pub evaluations: usize,
    pub converged: bool,
    /// "implicit differentiation" or "finite differences".
    pub gradient: &'static str,
    /// The soft-optimal policies of `r_θ`, and their relative values h.
    pub policy: Policy,
    pub h: Vec<f64>,
    pub warnings: Vec<String>,
}

/// The objective handed to L-BFGS: the negative mean log-likelihood per
/// response. Solves are warm-started and the last one is cached, since the
/// line search asks for the cost and the gradient at the same points.
struct Problem<'a> {
    model: &'a Network,
    data: &'a Responses,
    features: &'a Features,
    opts: &'a FitOptions,
    implicit: bool,
    warm: Mutex<WarmStart>,
    last: Mutex<Option<(Vec<f64>, f64, Policy)>>,
    evaluations: AtomicUsize,
    unconverged: AtomicUsize,
    scale: f64,
}

impl<'a> Problem<'a> {
    fn new(model: &'a Network, data: &'a Responses, features: &'a Features, opts: &'a FitOptions) -> Self {
        Problem {
            model,
            data,
            features,
            opts,
            implicit: opts.gradient == GradientMethod::Auto
                && model.update == UpdateScheme::Asynchronous
                && model.fully_observed(),
            warm: Mutex::new(WarmStart::default()),
            last: Mutex::new(None),
            evaluations: AtomicUsize::new(0),
            unconverged: AtomicUsize::new(0),
            scale: data.total(),
        }
    }

    /// −log prior of θ (up to a constant).
    fn penalty(&self, theta: &[f64]) -> f64 {
        self.opts
            .prior_sd
            .map_or(0.0, |sd| theta.iter().map(|t| t * t).sum::<f64>() / (2.0 * sd * sd))
    }

    fn penalty_gradient(&self, theta: &[f64], j: usize) -> f64 {
        self.opts.prior_sd.map_or(0.0, |sd| theta[j] / (sd * sd))
    }

    fn network(&self, theta: &[f64]) -> Network {
        let mut net = self.model.clone();
        net.reward = self.features.reward(theta);
        net
    }

    fn solve(&self, theta: &[f64], warm: &mut WarmStart) -> Result<Policy, argmin::core::Error> {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let (policy, converged) = solver::solve_fixed_prior(&self.network(theta), warm, &self.opts.solve)?;
        if !converged {
            self.unconverged.fetch_add(1, Ordering::Relaxed);
        }
        Ok(policy)
    }

    /// −L/N at θ, with the policy (cached).
    fn evaluate(&self, theta: &[f64]) -> Result<(f64, Policy), argmin::core::Error> {
        if let Some((t, v, p)) = self.last.lock().expect("cache").as_ref()
            && t == theta
        {
            return Ok((*v, p.clone()));
        }
        let policy = self.solve(theta, &mut self.warm.lock().expect("warm start"))?;
        let value = (-self.data.log_likelihood(&policy) + self.penalty(theta)) / self.scale;
        *self.last.lock().expect("cache") = Some((theta.to_vec(), value, policy.clone()));
        Ok((value, policy))
    }

    /// ∂L/∂r by implicit differentiation (asynchronous, fully observed):
    /// `b = ∂L/∂h` through `ΔW_k(s) = W(x, σ|k) − W(x, σ\k)`, then the adjoint.
    fn grad_reward(&self, policy: &Policy) -> Vec<f64> {
        let net = self.model;
        let (n, c, xs) = (net.n, net.configs(), net.input.len());
        let states = net.states();
        let mut bw = vec![0.0; states];
        for s in 0..states {
            let (base, sigma) = (s - s % c, s % c);
            for k in 0..n {
                let t = self.data.trials[s * n + k];
                if t == 0.0 || !net.alive[k] {
                    continue;
                }
                let o = self.data.ones[s * n + k];
                let pi = policy.p(s, k);
                let p = self.data.link(s, k, pi);
                let d_pi = self.data.q * (o / p - (t - o) / (1.0 - p));
                let d_dw = d_pi * pi * (1.0 - pi) / net.lambda;
                bw[base + (sigma | 1 << k)] += d_dw;
                bw[base + (sigma & !(1 << k))] -= d_dw;
            }
        }
        // W(x, σ) = Σ_x' P_σ[x][x'] h(x', σ)  ⇒  b(x', σ) = Σ_x P_σ[x][x'] bW(x, σ).
        let mut bh = vec![0.0; states];
        for x in 0..xs {
            for x2 in 0..xs {
                for sigma in 0..c {
                    let p = net.input.chain(sigma)[x * xs + x2];
                    if p != 0.0 {
                        bh[x2 * c + sigma] += p * bw[x * c + sigma];
                    }
                }
            }
        }
        let mut warm = self.warm.lock().expect("warm start");
        if !solver::adjoint(net, policy, &bh, &mut warm, &self.opts.solve) {
            self.unconverged.fetch_add(1, Ordering::Relaxed);
        }
        warm.adjoint_solution().to_vec()
    }
}

/// L-BFGS borrows the problem (its caches outlive the run).
struct Objective<'p, 'a>(&'p Problem<'a>);

impl CostFunction for Objective<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.0.evaluate(theta)?.0)
    }
}

impl Gradient for Objective<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        self.0.gradient(theta)
    }
}

impl Problem<'_> {
    fn gradient(&self, theta: &[f64]) -> Result<Vec<f64>, argmin::core::Error> {
        let (value, policy) = self.evaluate(theta)?;
        if self.implicit {
            let g = self.features.pull_back(&self.grad_reward(&policy));
            return Ok(g
                .iter()
                .enumerate()
                .map(|(j, v)| (-v + self.penalty_gradient(theta, j)) / self.scale)
                .collect());
        }
        let base = self.warm.lock().expect("warm start").clone();
        (0..theta.len())
            .into_par_iter()
            .map(|j| {
                let step = 1e-5 * theta[j].abs().max(1.0);
                let mut t = theta.to_vec();
                t[j] += step;
                let mut warm = base.clone();
                let policy = self.solve(&t, &mut warm)?;
                Ok(((-self.data.log_likelihood(&policy) + self.penalty(&t)) / self.scale - value) / step)
            })
            .collect()
    }
}

/// Fit θ by maximum likelihood. `model` supplies everything but the reward:
/// n, living neurons, the input chain, λ (1 when unknown: θ is then in units
/// of λ), the update scheme, what each neuron observes, and the cost, which
/// must be a fixed prior (the estimated marginals p̂). `start`: initial θ
/// (zeros by default).
pub fn fit(
    model: &Network,
    data: &Responses,
    features: &Features,
    start: Option<&[f64]>,
    opts: &FitOptions,
) -> Result<Fit, String> {
    if !matches!(model.cost, CodingCost::FixedPrior(_)) {
        return Err("the likelihood is evaluated against fixed (estimated) marginals".into());
    }
    if features.phi.len() != model.states() * features.len() {
        return Err(format!(
            "{} feature values for {} states × {} features",
            features.phi.len(),
            model.states(),
            features.len()
        ));
    }
    if data.visits.len() != model.states() || data.n != model.n {
        return Err("the record and the model have different state spaces".into());
    }
    let total = data.total();
    if total == 0.0 {
        return Err("the record holds no observed response".into());
    }
    let problem = Problem::new(model, data, features, opts);
    let init = start.map_or_else(|| vec![0.0; features.len()], |s| s.to_vec());
    let linesearch = MoreThuenteLineSearch::new();
    let lbfgs = LBFGS::new(linesearch, 10)
        .with_tolerance_grad(1e-6)
        .and_then(|s| s.with_tolerance_cost(1e-10))
        .map_err(|e| e.to_string())?;
    let result = Executor::new(Objective(&problem), lbfgs)
        .configure(|state| state.param(init).max_iters(opts.max_iterations))
        .run()
        .map_err(|e| format!("maximum-likelihood fit failed: {e}"))?;
    let state = result.state();
    let theta = state
        .get_best_param()
        .cloned()
        .ok_or("the fit produced no parameters")?;
    let iterations = state.get_iter();
    let converged = iterations < opts.max_iterations;
    // Re-solve at θ̂ (the cache may hold a line-search point) for h.
    *problem.last.lock().expect("cache") = None;
    let (_, policy) = problem.evaluate(&theta).map_err(|e| e.to_string())?;
    let h = problem.warm.lock().expect("warm start").values().to_vec();
    let log_likelihood = data.log_likelihood(&policy);
    let mut warnings = Vec::new();
    if !converged {
        warnings.push(format!(
            "the maximum-likelihood fit stopped at its iteration limit ({iterations}) before the gradient vanished"
        ));
    }
    let unconverged = problem.unconverged.load(Ordering::Relaxed);
    if unconverged > 0 {
        warnings.push(format!(
            "{unconverged} inner solves or adjoint evaluations did not reach their tolerance"
        ));
    }
    Ok(Fit {
        reward: features.reward(&theta),
        theta,
        log_likelihood,
        responses: total,
        iterations,
        evaluations: problem.evaluations.load(Ordering::Relaxed),
        converged,
        gradient: if problem.implicit {
            "implicit differentiation (adjoint policy evaluation)"
        } else {
            "finite differences"
        },
        policy,
        h,
        warnings,
    })
}

/// The mean log-posterior per response at θ (the log-likelihood plus the
/// prior of `opts.prior_sd`, over the number of responses) and its
/// gradient, by the method `opts` selects (for tests and benchmarks).
pub fn mean_log_likelihood_and_gradient(
    model: &Network,
    data: &Responses,
    features: &Features,
    theta: &[f64],
    opts: &FitOptions,
) -> Result<(f64, Vec<f64>), String> {
    let problem = Problem::new(model, data, features, opts);
    let value = problem.evaluate(theta).map_err(|e| e.to_string())?.0;
    let grad = problem.gradient(theta).map_err(|e| e.to_string())?;
    Ok((-value, grad.iter().map(|g| -g).collect()))
}

/// Bootstrap of a fit over trajectory blocks: the record (ticks 0..T) is cut
/// into `blocks` contiguous blocks, resampled with replacement `replicates`
/// times; `responses(a, b)` counts ticks a..b; each replicate is refitted
/// from `theta` (transitions between resampled blocks are not counted).
/// Replicate i draws from its own stream, so results do not depend on the
/// number of threads. Returns θ per replicate (None where a fit failed).
#[allow(clippy::too_many_arguments)]
pub fn bootstrap(
    model: &Network,
    ticks: usize,
    responses: &(dyn Fn(usize, usize) -> Responses + Sync),
    features: &Features,
    theta: &[f64],
    opts: &FitOptions,
    blocks: usize,
    replicates: usize,
    seed: u64,
    on_replicate: &(dyn Fn() + Sync),
) -> Vec<Option<Vec<f64>>> {
    use rand::Rng;
    let blocks = blocks.clamp(1, ticks.max(1));
    let parts: Vec<Responses> = (0..blocks)
        .into_par_iter()
        .map(|b| responses(b * ticks / blocks, (b + 1) * ticks / blocks))
        .collect();
    (0..replicates)
        .into_par_iter()
        .map(|i| {
            let mut rng = crate::rng::stream(seed, crate::rng::Domain::Learner, i as u64);
            let mut total = parts[rng.random_range(0..blocks)].clone();
            for _ in 1..blocks {
                total.add_counts(&parts[rng.random_range(0..blocks)]);
            }
            total.estimate_marginals();
            let mut m = model.clone();
            m.cost = CodingCost::FixedPrior(total.p_fire.clone());
            let out = fit(&m, &total, features, Some(theta), opts).ok().map(|f| f.theta);
            on_replicate();
            out
        })
        .collect()
}
