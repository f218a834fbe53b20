//! Exact solvers (theory §3): the optimal information-constrained network by
//! relative value iteration inside a Blahut–Arimoto alternation, and exact
//! policy evaluation of any per-neuron policies.
//!
//! Owns the numerics every other part of marlin is checked against. It works
//! on a [`Network`] only, does no I/O and reports convergence honestly
//! (iterations, residuals, converged or not). Sweeps run on all cores via
//! rayon; results do not depend on the number of threads (each output element
//! is computed by one thread in a fixed order).

mod asynchronous;
mod evaluate;
pub mod mdp;
mod observed;
mod product;
pub mod team;

pub use evaluate::{Evaluation, evaluate, evaluate_with_prior};

use crate::model::{CodingCost, Network, UpdateScheme};
use thiserror::Error;

/// One stochastic policy per neuron over the full state: `fire[s·n + k] = π_k(1 | s)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub n: usize,
    pub fire: Vec<f64>,
}

impl Policy {
    /// `π_k(1|s)`.
    #[inline]
    pub fn p(&self, s: usize, k: usize) -> f64 {
        self.fire[s * self.n + k]
    }

    /// A policy that fires with probability `p[k]` whatever the state.
    pub fn constant(net: &Network, p: &[f64]) -> Self {
        let mut fire = vec![0.0; net.states() * net.n];
        for s in 0..net.states() {
            for k in 0..net.n {
                fire[s * net.n + k] = if net.alive[k] { p[k] } else { 0.0 };
            }
        }
        Policy { n: net.n, fire }
    }
}

/// Knobs of the exact solver. The defaults suit rewards of order 1.
#[derive(Clone, Debug)]
pub struct SolveOptions {
    /// Stop value iteration when the span of `T h − h` is below this.
    pub value_tol: f64,
    pub max_value_sweeps: usize,
    /// Linear policy-evaluation sweeps between two improvement sweeps
    /// (modified policy iteration; 0 is plain value iteration).
    pub eval_sweeps: usize,
    /// Relaxation of value iteration, `h ← (1−α) h + α (T h − T h(s_ref))`.
    pub damping: f64,
    /// Stop Blahut–Arimoto when no marginal `p_k(1)` moves more than this.
    pub prior_tol: f64,
    pub max_prior_iterations: usize,
    /// Stop power iteration for ρ when its L1 change is below this.
    pub stationary_tol: f64,
    pub max_stationary_sweeps: usize,
    /// Blahut–Arimoto starts (mutual-information cost): the symmetric prior
    /// p = ½ and `starts − 1` random priors; the best fixed point is kept.
    /// The objective is not concave: symmetric starts can stall at a
    /// symmetric saddle while the optimum breaks symmetry (some neurons
    /// always on or off). `None`: 8 up to 12 neurons, 4 up to 16, else 1.
    pub starts: Option<usize>,
    /// Seed of the random starts.
    pub start_seed: u64,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            value_tol: 1e-10,
            max_value_sweeps: 200_000,
            eval_sweeps: 10,
            damping: 1.0,
            prior_tol: 1e-8,
            max_prior_iterations: 500,
            stationary_tol: 1e-13,
            max_stationary_sweeps: 1_000_000,
            starts: None,
            start_seed: 0,
        }
    }
}

/// The optimum found by [`solve`], with its convergence record.
#[derive(Clone, Debug)]
pub struct Solution {
    pub policy: Policy,
    /// Relative value `h(s)`, with `h(x=0, σ=0) = 0`.
    pub h: Vec<f64>,
    /// The prior `p_k(1)` the final policy was optimised against.
    pub prior: Vec<f64>,
    /// Exact evaluation of the final policy (ρ, ⟨r⟩, information, g).
    pub eval: Evaluation,
    /// `g` from value iteration for the final prior (equals `eval.g` at a
    /// Blahut–Arimoto fixed point).
    pub g_value: f64,
    pub converged: bool,
    /// Blahut–Arimoto iterations (1 for a fixed prior).
    pub iterations: usize,
    pub value_sweeps: usize,
    /// Final span of `T h − h`.
    pub value_residual: f64,
    /// Final largest change of a marginal (0 for a fixed prior).
    pub prior_residual: f64,
    /// g reached from each Blahut–Arimoto start (the first is p = ½).
    pub start_g: Vec<f64>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Error)]
pub enum SolveError {
    #[error(
        "network too large to solve exactly: {neurons} neurons with {inputs} input values is {states} states; \
         the {scheme} solver needs about {need_mib} MiB but {avail_mib} MiB are available \
         (allowed: at most 80 % of it, {suggest} neurons here). Use fewer neurons (≤ {suggest}) or \
         simulate/train it instead (the runtime does not tabulate states)"
    )]
    TooLarge {
        neurons: usize,
        inputs: usize,
        states: usize,
        scheme: &'static str,
        need_mib: u64,
        avail_mib: u64,
        suggest: usize,
    },
    #[error(
        "{scheme} exact solver: {neurons} neurons means {work:.1e} operations per sweep (grows as 4ⁿ); \
         the limit is {limit} neurons. Use the asynchronous scheme, fewer neurons, or learn it instead"
    )]
    TooSlow {
        scheme: &'static str,
        neurons: usize,
        work: f64,
        limit: usize,
    },
    #[error("invalid network: {0}")]
    Invalid(String),
}

/// Relaxation of value iteration and of the stationary power iteration
/// for networks that move their input (see [`relative_update`]).
pub(crate) const CONTROLLED_DAMPING: f64 = 0.5;

/// Largest network the product-form (synchronous / random-partial) solver accepts.
pub const MAX_PRODUCT_NEURONS: usize = 14;

/// Bytes the solver will allocate for `net`, estimated before allocating.
pub fn memory_estimate(net: &Network) -> u64 {
    memory_estimate_for(net.input.len(), net.n)
}

/// Check that `net` can be solved exactly on this machine, before allocating.
pub fn check_size(net: &Network) -> Result<(), SolveError> {
    check_dimensions(net.n, net.input.len(), net.update)
}

/// Check that a network of `n` neurons, `inputs` input values and `update`
/// can be solved exactly on this machine, from its dimensions alone: before
/// anything of it (its reward table first) is tabulated.
pub fn check_dimensions(n: usize, inputs: usize, update: UpdateScheme) -> Result<(), SolveError> {
    if n > crate::model::MAX_TABULAR_NEURONS {
        return Err(SolveError::Invalid(format!(
            "{n} neurons exceeds the tabular limit of {}",
            crate::model::MAX_TABULAR_NEURONS
        )));
    }
    if !matches!(update, UpdateScheme::Asynchronous) && n > MAX_PRODUCT_NEURONS {
        return Err(SolveError::TooSlow {
            scheme: update.name(),
            neurons: n,
            work: (inputs as f64) * 4f64.powi(n as i32),
            limit: MAX_PRODUCT_NEURONS,
        });
    }
    let need = memory_estimate_for(inputs, n);
    let budget = crate::memory::MemoryBudget::now();
    if !budget.fits(need) {
        let mut suggest = n;
        while suggest > 1 && !budget.fits(memory_estimate_for(inputs, suggest)) {
            suggest -= 1;
        }
        return Err(SolveError::TooLarge {
            neurons: n,
            inputs,
            states: inputs << n,
            scheme: update.name(),
            need_mib: need >> 20,
            avail_mib: budget.available >> 20,
            suggest,
        });
    }
    Ok(())
}

/// h, W, T h, r, ρ, ρ' and the policy (n per state), plus slack, in f64.
fn memory_estimate_for(inputs: usize, n: usize) -> u64 {
    8 * ((inputs as u64) << n) * (8 + n as u64)
}

/// Progress of [`solve_with`], reported after each Blahut–Arimoto iteration.
#[derive(Clone, Debug)]
pub struct Progress {
    pub iteration: usize,
    pub g: f64,
    pub value_sweeps: usize,
    pub value_residual: f64,
    pub prior_residual: f64,
}

/// Find the optimal network (theory §3): for a fixed prior, one relative value
/// iteration; for the mutual-information cost, Blahut–Arimoto alternation of
/// value iteration and marginals, warm-started across iterations.
pub fn solve(net: &Network, opts: &SolveOptions) -> Result<Solution, SolveError> {
    solve_with(net, opts, &mut |_| {})
}

/// One Blahut–Arimoto run (or partially observed best-response iteration)
/// continued from a given equilibrium — `prior`, and for partially observed
/// networks the policies and relative values — instead of the multi-start
/// search: the local optimum the network reaches from where it is.
pub fn solve_continued(
    net: &Network,
    opts: &SolveOptions,
    prior: &[f64],
    policy: Option<&Policy>,
    h: Option<&[f64]>,
) -> Result<Solution, SolveError> {
    check_size(net)?;
    validate(net)?;
    let prior: Vec<f64> = match &net.cost {
        CodingCost::FixedPrior(p) => p.clone(),
        CodingCost::MutualInformation => prior.iter().map(|p| p.clamp(1e-9, 1.0 - 1e-9)).collect(),
    };
    Ok(in_pool(|| {
        let mut sol = if net.fully_observed() {
            solve_from(net, opts, prior, &mut |_| {})
        } else {
            let zeros = vec![0.0; net.states()];
            let start = policy.map(|p| (p, h.unwrap_or(&zeros)));
            observed::solve_warm(net, opts, prior, start, &mut |_| {})
        };
        sol.start_g = vec![sol.eval.g];
        sol
    }))
}

/// Screening tolerance and iteration cap of the multi-start search.
const SCREEN_PRIOR_TOL: f64 = 1e-4;
const SCREEN_MAX_ITERATIONS: usize = 12;
const SCREEN_VALUE_TOL: f64 = 1e-7;
const SCREEN_STATIONARY_TOL: f64 = 1e-10;
/// Cap of value-iteration and power-iteration sweeps while screening.
const SCREEN_MAX_SWEEPS: usize = 20_000;

/// Number of Blahut–Arimoto starts for `net` under `opts`.
pub fn start_count(net: &Network, opts: &SolveOptions) -> usize {
    if matches!(net.cost, CodingCost::FixedPrior(_)) {
        return 1;
    }
    opts.starts
        .unwrap_or(match net.n {
            0..=12 => 8,
            13..=16 => 4,
            _ => 1,
        })
        .max(1)
}

/// [`solve`], calling `progress` after every Blahut–Arimoto iteration.
/// Runs [`start_count`] starts and keeps the best (largest g).
pub fn solve_with(
    net: &Network,
    opts: &SolveOptions,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Solution, SolveError> {
    // Run on a rayon worker: parallel sweeps started from outside the pool
    // block on a latch each time (a futex round trip per sweep), which was
    // most of a small solve's time.
    in_pool(|| solve_in_pool(net, opts, progress))
}

/// Run `f` on a rayon worker thread (directly if already on one), so the
/// parallel loops inside it are scheduled by work stealing instead of one
/// blocking injection per loop.
pub(crate) fn in_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut out = None;
    rayon::scope(|_| out = Some(f()));
    out.expect("the scope ran")
}

fn solve_in_pool(
    net: &Network,
    opts: &SolveOptions,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Solution, SolveError> {
    check_size(net)?;
    validate(net)?;
    let _span = tracing::info_span!("solve", n = net.n, scheme = %net.update).entered();
    let starts = start_count(net, opts);
    if starts == 1 {
        let prior = match &net.cost {
            CodingCost::FixedPrior(p) => p.clone(),
            CodingCost::MutualInformation => vec![0.5; net.n],
        };
        let mut sol = solve_from(net, opts, prior, progress);
        sol.start_g = vec![sol.eval.g];
        if matches!(net.cost, CodingCost::MutualInformation) {
            sol.warnings.push(
                "one Blahut–Arimoto start (the symmetric p = ½): optima that silence or saturate some neurons \
                 were not searched for; solver.starts = K runs K starts"
                    .into(),
            );
        }
        return Ok(sol);
    }
    // Screen every start at a loose tolerance, then refine the best one from
    // where it stopped (random starts converge slowly near saturated
    // neurons; only the winner needs full precision).
    // Screening only ranks starts by g, so its inner solves stop early too:
    // a start that silences the network leaves a nearly reducible chain on
    // which relative value iteration creeps (a motor network: span 2·10⁻⁷
    // after 10⁵ sweeps at g ≈ 10⁻⁸).
    let screen = SolveOptions {
        prior_tol: opts.prior_tol.max(SCREEN_PRIOR_TOL),
        max_prior_iterations: opts.max_prior_iterations.min(SCREEN_MAX_ITERATIONS),
        value_tol: opts.value_tol.max(SCREEN_VALUE_TOL),
        max_value_sweeps: opts.max_value_sweeps.min(SCREEN_MAX_SWEEPS),
        stationary_tol: opts.stationary_tol.max(SCREEN_STATIONARY_TOL),
        max_stationary_sweeps: opts.max_stationary_sweeps.min(SCREEN_MAX_SWEEPS),
        ..opts.clone()
    };
    let mut rng = crate::rng::stream(opts.start_seed, crate::rng::Domain::Learner, u64::MAX);
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut start_g = Vec::with_capacity(starts);
    for i in 0..starts {
        let prior: Vec<f64> = if i == 0 {
            vec![0.5; net.n]
        } else {
            (0..net.n)
                .map(|_| 0.02 + 0.96 * rand::Rng::random::<f64>(&mut rng))
                .collect()
        };
        let sol = solve_from(net, &screen, prior, progress);
        tracing::debug!(
            start = i,
            g = sol.eval.g,
            iterations = sol.iterations,
            "Blahut–Arimoto start (screening)"
        );
        start_g.push(sol.eval.g);
        if best.as_ref().is_none_or(|b| sol.eval.g > b.0) {
            best = Some((sol.eval.g, sol.eval.p_fire.clone()));
        }
    }
    let (_, prior) = best.expect("at least one start");
    let prior: Vec<f64> = prior.iter().map(|p| p.clamp(1e-9, 1.0 - 1e-9)).collect();
    let mut best = solve_from(net, opts, prior, progress);
    let lowest = start_g.iter().fold(f64::INFINITY, |a, &b| a.min(b));
    if best.eval.g - lowest > 1e-6 * (1.0 + best.eval.g.abs()) {
        best.warnings.push(format!(
            "Blahut–Arimoto starts reached different fixed points (g from {lowest:.6} to {:.6} over {starts} \
             starts): the best is reported; more starts (solver.starts) may find a better one",
            best.eval.g,
        ));
        // Not a failure: several local optima are a property of the problem.
    }
    best.start_g = start_g;
    Ok(best)
}

/// One Blahut–Arimoto run from `prior` (or the fixed prior's single solve).
fn solve_from(
    net: &Network,
    opts: &SolveOptions,
    mut prior: Vec<f64>,
    progress: &mut dyn FnMut(&Progress),
) -> Solution {
    if !net.fully_observed() {
        return observed::solve_from(net, opts, prior, progress);
    }
    let fixed = matches!(net.cost, CodingCost::FixedPrior(_));
    let mut h = vec![0.0; net.states()];
    let mut product_state: Option<Policy> = None;
    let mut rho: Option<Vec<f64>> = None;
    let mut total_sweeps = 0;
    let mut warnings = Vec::new();
    let mut iterations = 0;
    // Inexact inner solves: while the marginals still move, solve the inner
    // problems only as precisely as the marginals are known; the final
    // iteration always runs at full tolerance.
    let mut last_prior_residual: f64 = 1.0;
    // Consecutive Blahut–Arimoto iterates p, F(p), F(F(p)) for SQUAREM.
    let mut cycle: Vec<Vec<f64>> = Vec::new();
    loop {
        iterations += 1;
        let t0 = std::time::Instant::now();
        let loose = !fixed && 1e-2 * last_prior_residual > opts.value_tol;
        let mut inner = opts.clone();
        if loose {
            inner.value_tol = 1e-2 * last_prior_residual;
            inner.stationary_tol = opts.stationary_tol.max(1e-3 * last_prior_residual);
        }
        let vi = match net.update {
            UpdateScheme::Asynchronous => asynchronous::value_iteration(net, &prior, &mut h, &inner),
            _ => {
                let pol = product_state.get_or_insert_with(|| Policy::constant(net, &prior));
                product::value_iteration(net, &prior, &mut h, pol, &inner)
            }
        };
        total_sweeps += vi.sweeps;
        let policy = match net.update {
            UpdateScheme::Asynchronous => asynchronous::policy_from_values(net, &prior, &h),
            _ => product_state.clone().expect("product policy set above"),
        };
        let t1 = std::time::Instant::now();
        let eval = evaluate::evaluate_from(net, &policy, &prior, rho.take(), &inner);
        tracing::debug!(
            iteration = iterations,
            g = vi.g,
            sweeps = vi.sweeps,
            span = vi.residual,
            value_ms = (t1 - t0).as_millis() as u64,
            stationary_sweeps = eval.stationary_sweeps,
            stationary_ms = t1.elapsed().as_millis() as u64,
            "Blahut–Arimoto iteration"
        );
        let new_prior: Vec<f64> = (0..net.n)
            .map(|k| if net.alive[k] { eval.p_fire[k] } else { prior[k] })
            .collect();
        let prior_residual = if fixed {
            0.0
        } else {
            new_prior
                .iter()
                .zip(&prior)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        };
        progress(&Progress {
            iteration: iterations,
            g: eval.g,
            value_sweeps: total_sweeps,
            value_residual: vi.residual,
            prior_residual,
        });
        let value_ok = vi.converged;
        last_prior_residual = prior_residual;
        let done = fixed || (prior_residual < opts.prior_tol && !loose) || iterations >= opts.max_prior_iterations;
        if done {
            let converged = value_ok && eval.stationary_converged && (fixed || prior_residual < opts.prior_tol);
            if !value_ok {
                warnings.push(format!(
                    "value iteration did not converge: span {:.3e} after {} sweeps (tolerance {:.1e})",
                    vi.residual, vi.sweeps, opts.value_tol
                ));
            }
            if !eval.stationary_converged {
                warnings.push(format!(
                    "stationary distribution did not converge: L1 change {:.3e}",
                    eval.stationary_residual
                ));
            }
            if !fixed && prior_residual >= opts.prior_tol {
                warnings.push(format!(
                    "Blahut–Arimoto did not converge: marginals still move by {:.3e} after {} iterations",
                    prior_residual, iterations
                ));
            }
            let mut eval = eval;
            warnings.append(&mut eval.warnings);
            return Solution {
                policy,
                h,
                prior,
                g_value: vi.g,
                eval,
                converged,
                iterations,
                value_sweeps: total_sweeps,
                value_residual: vi.residual,
                prior_residual,
                start_g: Vec::new(),
                warnings,
            };
        }
        rho = Some(eval.rho);
        cycle.push(prior);
        prior = if fixed {
            new_prior
        } else {
            squarem(&mut cycle, new_prior, &net.alive)
        };
    }
}

/// SQUAREM acceleration of the Blahut–Arimoto map F (Varadhan & Roland
/// 2008): from p₀, p₁ = F(p₀), p₂ = F(p₁), jump to p₀ − 2α r + α² v with
/// r = p₁ − p₀, v = p₂ − 2p₁ + p₀, α = −‖r‖/‖v‖ (α = −1 is the plain step).
/// Near-degenerate optima make plain Blahut–Arimoto converge very slowly;
/// the jump is clamped into (0, 1) and the next plain step stabilises it.
fn squarem(cycle: &mut Vec<Vec<f64>>, next: Vec<f64>, alive: &[bool]) -> Vec<f64> {
    if cycle.len() < 2 {
        return next;
    }
    let (p0, p1) = (&cycle[0], &cycle[1]);
    let r: Vec<f64> = p1.iter().zip(p0).map(|(a, b)| a - b).collect();
    let v: Vec<f64> = next.iter().zip(p1).zip(p0).map(|((c, b), a)| c - 2.0 * b + a).collect();
    let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let (nr, nv) = (norm(&r), norm(&v));
    let out = if nv > 0.0 && nr > 0.0 {
        let alpha = (-nr / nv).clamp(-1e4, -1.0);
        (0..next.len())
            .map(|k| {
                if !alive[k] {
                    return next[k];
                }
                let jump = p0[k] - 2.0 * alpha * r[k] + alpha * alpha * v[k];
                jump.clamp(1e-9, 1.0 - 1e-9)
            })
            .collect()
    } else {
        next
    };
    cycle.clear();
    out
}

fn validate(net: &Network) -> Result<(), SolveError> {
    if !(net.lambda > 0.0 && net.lambda.is_finite()) {
        return Err(SolveError::Invalid(format!(
            "λ must be positive and finite, got {}",
            net.lambda
        )));
    }
    if net.reward.len() != net.states() {
        return Err(SolveError::Invalid(format!(
            "reward table has {} entries, expected X·2ⁿ = {}",
            net.reward.len(),
            net.states()
        )));
    }
    if net.reward.iter().any(|r| !r.is_finite()) {
        return Err(SolveError::Invalid("reward table contains NaN or ∞".into()));
    }
    if let CodingCost::FixedPrior(p) = &net.cost
        && (p.len() != net.n || p.iter().any(|&v| !(v > 0.0 && v < 1.0)))
    {
        return Err(SolveError::Invalid(
            "fixed prior must give 0 < p_k(1) < 1 for every neuron".into(),
        ));
    }
    if let Some(obs) = &net.observes {
        if obs.len() != net.n {
            return Err(SolveError::Invalid(format!(
                "{} observation masks for {} neurons",
                obs.len(),
                net.n
            )));
        }
        if !net.fully_observed() && net.update != UpdateScheme::Asynchronous {
            return Err(SolveError::Invalid(format!(
                "partially observed networks are solved for the asynchronous scheme only, not {}",
                net.update
            )));
        }
    }
    if let UpdateScheme::RandomPartial { q } = net.update
        && !(q > 0.0 && q <= 1.0)
    {
        return Err(SolveError::Invalid(format!(
            "random_partial q must be in (0, 1], got {q}"
        )));
    }
    Ok(())
}

/// Result of one value-iteration run.
pub(crate) struct ValueIteration {
    pub g: f64,
    pub sweeps: usize,
    pub residual: f64,
    pub converged: bool,
}

/// The relative-value step shared by all schemes: returns the span of
/// `T h − h` over reachable states and the gain `g = T h(s_ref) − h(s_ref)`
/// at `s_ref = (x=0, σ=0)`, then sets `h ← (1−α) h + α (T h − T h(s_ref))`.
///
/// When the network moves its input (a motor network), α is at most ½:
/// its optimal chains can be periodic (start → goal → reset → start), and
/// undamped relative value iteration oscillates on them for ever; the
/// relaxed operator has the same fixed point and is aperiodic.
pub(crate) fn relative_update(net: &Network, h: &mut [f64], th: &[f64], alpha: f64) -> (f64, f64) {
    use rayon::prelude::*;
    let alpha = if net.input.control.is_some() {
        alpha.min(CONTROLLED_DAMPING)
    } else {
        alpha
    };
    let c = net.configs();
    let dead = !net.alive_mask();
    let (lo, hi) = th
        .par_chunks(CHUNK)
        .zip(h.par_chunks(CHUNK))
        .enumerate()
        .map(|(ci, (t, hh))| {
            let mut lo = f64::INFINITY;
            let mut hi = f64::NEG_INFINITY;
            for i in 0..t.len() {
                if ((ci * CHUNK + i) % c) & dead == 0 {
                    let d = t[i] - hh[i];
                    lo = lo.min(d);
                    hi = hi.max(d);
                }
            }
            (lo, hi)
        })
        .reduce(
            || (f64::INFINITY, f64::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        );
    let t_ref = th[0];
    let g = t_ref - h[0];
    h.par_iter_mut().zip(th.par_iter()).for_each(|(hv, &t)| {
        *hv = (1.0 - alpha) * *hv + alpha * (t - t_ref);
    });
    (hi - lo, g)
}

#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Natural log clamped away from −∞ (a marginal can underflow to 0).
#[inline]
pub(crate) fn safe_ln(p: f64) -> f64 {
    p.max(1e-300).ln()
}

/// `KL(Bernoulli(a) ‖ Bernoulli(b))` in nats.
#[inline]
pub fn kl_bernoulli(a: f64, b: f64) -> f64 {
    let t1 = if a > 0.0 { a * (a / b.max(1e-300)).ln() } else { 0.0 };
    let t0 = if a < 1.0 {
        (1.0 - a) * ((1.0 - a) / (1.0 - b).max(1e-300)).ln()
    } else {
        0.0
    };
    t1 + t0
}

/// `W(x, σ') = Σ_{x'} P_{σ'}[x][x'] h(x', σ')`, in parallel over σ' (the
/// input chain of a tick may depend on the state σ' it ends in).
pub(crate) fn expected_next_value(net: &Network, h: &[f64], w: &mut [f64]) {
    use rayon::prelude::*;
    let c = net.configs();
    let xs = net.input.len();
    w.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, out)| {
        let start = ci * CHUNK;
        for (i, o) in out.iter_mut().enumerate() {
            let s = start + i;
            let (x, sigma) = (s / c, s % c);
            let row = &net.input.chain(sigma)[x * xs..(x + 1) * xs];
            let mut acc = 0.0;
            for x2 in 0..xs {
                acc += row[x2] * h[x2 * c + sigma];
            }
            *o = acc;
        }
    });
}

/// Work unit of the parallel sweeps (states per task).
pub(crate) const CHUNK: usize = 4096;

/// `Σ_{i<len} f(i)` in parallel, summed in fixed chunks and then in chunk
/// order, so the result is bit-identical for any number of threads.
pub(crate) fn det_sum(len: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    use rayon::prelude::*;
    let parts: Vec<f64> = (0..len.div_ceil(CHUNK))
        .into_par_iter()
        .map(|ci| (ci * CHUNK..((ci + 1) * CHUNK).min(len)).map(&f).sum())
        .collect();
    parts.iter().sum()
}

/// State carried between repeated fixed-prior solves of nearby rewards
/// (maximum-likelihood inverse RL evaluates many): the last relative values
/// and, for product-form schemes, the last policies; for the adjoint, the
/// last solution ν.
#[derive(Clone, Debug, Default)]
pub struct WarmStart {
    h: Vec<f64>,
    policy: Option<Policy>,
    nu: Vec<f64>,
}

impl WarmStart {
    /// The relative values h of the last solve.
    pub fn values(&self) -> &[f64] {
        &self.h
    }

    /// The last solution ν of [`adjoint`].
    pub fn adjoint_solution(&self) -> &[f64] {
        &self.nu
    }
}

/// The soft-optimal policies of `net` against its fixed prior (theory §3),
/// from the warm start (which is updated). Returns the policies and whether the solve converged.
pub fn solve_fixed_prior(
    net: &Network,
    warm: &mut WarmStart,
    opts: &SolveOptions,
) -> Result<(Policy, bool), SolveError> {
    check_size(net)?;
    validate(net)?;
    let prior = net
        .fixed_prior()
        .ok_or_else(|| SolveError::Invalid("solve_fixed_prior needs a fixed-prior cost".into()))?
        .to_vec();
    Ok(in_pool(|| {
        if !net.fully_observed() {
            let start = warm.policy.as_ref().map(|p| (p, warm.h.as_slice()));
            let sol = observed::solve_warm(net, opts, prior, start, &mut |_| {});
            warm.h = sol.h;
            warm.policy = Some(sol.policy.clone());
            return (sol.policy, sol.converged);
        }
        if warm.h.len() != net.states() {
            warm.h = vec![0.0; net.states()];
            warm.policy = None;
        }
        match net.update {
            UpdateScheme::Asynchronous => {
                let vi = asynchronous::value_iteration(net, &prior, &mut warm.h, opts);
                (asynchronous::policy_from_values(net, &prior, &warm.h), vi.converged)
            }
            _ => {
                let pol = warm.policy.get_or_insert_with(|| Policy::constant(net, &prior));
                let vi = product::value_iteration(net, &prior, &mut warm.h, pol, opts);
                (pol.clone(), vi.converged)
            }
        }
    }))
}

/// The adjoint of average-reward policy evaluation for the asynchronous,
/// fully observed chain of `policy`: solves `(I − Mᵀ) ν = b` with `Σν = 0`
/// (M the transition matrix; b must sum to 0) by the Neumann series
/// `ν ← b + Mᵀν`, warm-started from the last ν. If `L(h)` depends on the
/// relative values only through differences, `∂L/∂r = ν` for `b = ∂L/∂h`.
/// Returns whether the iteration converged; ν is [`WarmStart::adjoint_solution`].
pub fn adjoint(net: &Network, policy: &Policy, b: &[f64], warm: &mut WarmStart, opts: &SolveOptions) -> bool {
    assert!(
        net.update == UpdateScheme::Asynchronous && net.fully_observed(),
        "adjoint: asynchronous, fully observed networks only"
    );
    in_pool(|| {
        let states = net.states();
        let table = asynchronous::FlipTable::new(net, policy);
        if warm.nu.len() != states {
            warm.nu = vec![0.0; states];
        }
        let mut mu = vec![0.0; states];
        let mut next = vec![0.0; states];
        let scale = det_sum(states, |s| b[s].abs()).max(1e-300);
        for _ in 0..opts.max_stationary_sweeps {
            asynchronous::stationary_step(net, &table, &warm.nu, &mut mu, &mut next);
            for s in 0..states {
                next[s] += b[s];
            }
            let mean = det_sum(states, |s| next[s]) / states as f64;
            next.iter_mut().for_each(|v| *v -= mean);
            let change = det_sum(states, |s| (next[s] - warm.nu[s]).abs());
            std::mem::swap(&mut warm.nu, &mut next);
            if change < 1e-12 * scale {
                return true;
            }
        }
        false
    })
}
