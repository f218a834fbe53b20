//! Efficient sensory coding (theory §8): a network rewarded for carrying
//! information about a feature of its input, `r(x, σ) = log p(y(x) | σ)`,
//! where the posterior is the network's own code — so the reward depends on
//! the solution and is found by alternation (solve → posterior → solve).
//!
//! Owns the task (pixels on with probability q, redrawn with probability
//! `change` per tick, y = +1 when more than `threshold` pixels are on), the
//! alternation, and the measurements the paper draws: tuning curves, the
//! posterior against the spike count, the information about y against a
//! network of independent neurons with the same firing probabilities, and the
//! split into cell types. Pure math on [`Network`]s; no I/O.
//!
//! Everything about the input that matters to the reward and the dynamics is
//! its number of active pixels m: y depends on m only, and a redraw forgets
//! the old pixels. The default input is therefore the lumped chain over
//! m = 0..=pixels (hold, or redraw m ~ Binomial(pixels, q)); neurons that see
//! all the pixels solve to the same policies (a theorem of lumpability,
//! checked in the tests against the 2^pixels-state input).

use crate::model::{CodingCost, InputProcess, Network, UpdateScheme, spike_count};
use crate::solver::{self, Solution, SolveError, SolveOptions};

/// The sensory-coding world.
#[derive(Clone, Debug, PartialEq)]
pub struct CodingTask {
    pub pixels: usize,
    /// y = +1 when more than `threshold` pixels are on.
    pub threshold: usize,
    /// Probability that a pixel is on (q).
    pub pixel_probability: f64,
    /// Probability per tick that the image is redrawn.
    pub change_probability: f64,
    pub neurons: usize,
    pub lambda: f64,
}

/// Largest number of pixels of the full (unlumped) input, 2^pixels values.
pub const MAX_PIXEL_INPUT: usize = 12;

impl CodingTask {
    /// Binomial(pixels, q) probability of m active pixels, m = 0..=pixels.
    pub fn count_distribution(&self) -> Vec<f64> {
        let (k, q) = (self.pixels, self.pixel_probability);
        (0..=k)
            .map(|m| binomial(k, m) * q.powi(m as i32) * (1.0 - q).powi((k - m) as i32))
            .collect()
    }

    /// The lumped input: index m = number of active pixels.
    pub fn input(&self) -> InputProcess {
        let w = self.count_distribution();
        redraw_chain(
            (0..=self.pixels).map(|m| m as f64).collect(),
            &w,
            self.change_probability,
        )
    }

    /// The feature of each lumped input index.
    pub fn feature(&self) -> Vec<bool> {
        (0..=self.pixels).map(|m| m > self.threshold).collect()
    }

    /// The full input over the 2^pixels images (bit i = pixel i), for
    /// checking the lumping; values are the images' pixel counts.
    pub fn pixel_input(&self) -> (InputProcess, Vec<bool>) {
        assert!(self.pixels <= MAX_PIXEL_INPUT, "pixel input of {} pixels", self.pixels);
        let x = 1usize << self.pixels;
        let q = self.pixel_probability;
        let w: Vec<f64> = (0..x)
            .map(|img| {
                let m = spike_count(img);
                q.powi(m as i32) * (1.0 - q).powi((self.pixels - m) as i32)
            })
            .collect();
        let values = (0..x).map(|img| spike_count(img) as f64).collect();
        let y = (0..x).map(|img| spike_count(img) > self.threshold).collect();
        (redraw_chain(values, &w, self.change_probability), y)
    }

    /// The network on `input` (asynchronous, fully observed, mutual
    /// information cost) with reward table `reward`.
    pub fn network(&self, input: InputProcess, reward: Vec<f64>) -> Network {
        Network {
            n: self.neurons,
            alive: vec![true; self.neurons],
            input,
            reward,
            lambda: self.lambda,
            cost: CodingCost::MutualInformation,
            update: UpdateScheme::Asynchronous,
            observes: None,
        }
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Hold with probability 1 − c, else redraw from `w`.
fn redraw_chain(values: Vec<f64>, w: &[f64], change: f64) -> InputProcess {
    let x = values.len();
    let mut transition = vec![0.0; x * x];
    for a in 0..x {
        for b in 0..x {
            transition[a * x + b] = change * w[b] + if a == b { 1.0 - change } else { 0.0 };
        }
    }
    InputProcess {
        values,
        transition,
        control: None,
    }
}

/// `p(y = +1 | σ)` for every σ under the joint stationary distribution `rho`
/// over `s = x·2ⁿ + σ`; `y[x]` is the feature of input index x. A σ of
/// probability 0 gets the prior `p(y = +1)`.
pub fn posterior(n: usize, y: &[bool], rho: &[f64]) -> Vec<f64> {
    let c = 1usize << n;
    let prior: f64 = (0..y.len())
        .filter(|&x| y[x])
        .map(|x| rho[x * c..(x + 1) * c].iter().sum::<f64>())
        .sum();
    (0..c)
        .map(|sigma| {
            let (mut on, mut all) = (0.0, 0.0);
            for (x, &yx) in y.iter().enumerate() {
                let p = rho[x * c + sigma];
                all += p;
                if yx {
                    on += p;
                }
            }
            if all > 0.0 { on / all } else { prior }
        })
        .collect()
}

/// Floor of a posterior probability inside a log (a σ that perfectly
/// separates y would otherwise make log 0 = −∞ for the other value).
pub const POSTERIOR_FLOOR: f64 = 1e-12;

/// The reward `r(x, σ) = log p(y(x) | σ)` for a posterior `p(y = +1 | σ)`.
pub fn log_posterior_reward(n: usize, y: &[bool], posterior: &[f64]) -> Vec<f64> {
    let c = 1usize << n;
    let mut r = vec![0.0; y.len() * c];
    for (x, &yx) in y.iter().enumerate() {
        for sigma in 0..c {
            let p = if yx { posterior[sigma] } else { 1.0 - posterior[sigma] };
            r[x * c + sigma] = p.max(POSTERIOR_FLOOR).ln();
        }
    }
    r
}

/// `⟨log p(y(x) | σ)⟩` under the joint `rho` for the posterior
/// `p(y = +1 | σ)` — with the code's own posterior, the objective's reward
/// term (theory §8).
pub fn mean_log_posterior(n: usize, y: &[bool], rho: &[f64], posterior: &[f64]) -> f64 {
    let r = log_posterior_reward(n, y, posterior);
    rho.iter().zip(&r).map(|(p, r)| p * r).sum()
}

/// The starting decoder of the alternation: the posterior of a code in
/// which each neuron independently reports y correctly with probability
/// `reliability`, so p(y | σ) rises with the spike count. (With a
/// state-blind start the posterior is the prior, the reward is constant and
/// the alternation would stay there.)
pub fn initial_posterior(n: usize, prior_on: f64, reliability: f64) -> Vec<f64> {
    let lr = (reliability / (1.0 - reliability)).ln();
    let logit0 = (prior_on / (1.0 - prior_on)).ln();
    (0..1usize << n)
        .map(|sigma| {
            let c = spike_count(sigma) as f64;
            let logit = logit0 + lr * (2.0 * c - n as f64);
            1.0 / (1.0 + (-logit).exp())
        })
        .collect()
}

/// `I(Y; Σ)` in nats under the joint `rho`.
pub fn information(n: usize, y: &[bool], rho: &[f64]) -> f64 {
    let c = 1usize << n;
    let mut joint = vec![[0.0f64; 2]; c];
    for (x, &yx) in y.iter().enumerate() {
        for sigma in 0..c {
            joint[sigma][yx as usize] += rho[x * c + sigma];
        }
    }
    mutual_information(&joint)
}

fn mutual_information(joint: &[[f64; 2]]) -> f64 {
    let total: f64 = joint.iter().map(|j| j[0] + j[1]).sum();
    let py = [0, 1].map(|b| joint.iter().map(|j| j[b]).sum::<f64>() / total);
    let mut i = 0.0;
    for j in joint {
        let ps = (j[0] + j[1]) / total;
        for b in 0..2 {
            let p = j[b] / total;
            if p > 0.0 {
                i += p * (p / (ps * py[b])).ln();
            }
        }
    }
    i
}

/// Probability that neuron k is active given input index x, `P(σ_k = 1 | x)`.
pub fn rates(n: usize, inputs: usize, rho: &[f64]) -> Vec<Vec<f64>> {
    let c = 1usize << n;
    (0..n)
        .map(|k| {
            (0..inputs)
                .map(|x| {
                    let block = &rho[x * c..(x + 1) * c];
                    let z: f64 = block.iter().sum();
                    let on: f64 = (0..c).filter(|s| s >> k & 1 == 1).map(|s| block[s]).sum();
                    if z > 0.0 { on / z } else { f64::NAN }
                })
                .collect()
        })
        .collect()
}

/// `I(Y; Σ)` in nats of a network of independent neurons with the same
/// `P(σ_k = 1 | x)` as the one whose joint is `rho`: σ ~ Π_k Bernoulli(rate_k(x)).
pub fn independent_information(n: usize, y: &[bool], rho: &[f64]) -> f64 {
    let c = 1usize << n;
    let rates = rates(n, y.len(), rho);
    let mut joint = vec![[0.0f64; 2]; c];
    for (x, &yx) in y.iter().enumerate() {
        let px: f64 = rho[x * c..(x + 1) * c].iter().sum();
        for sigma in 0..c {
            let p: f64 = (0..n)
                .map(|k| {
                    if sigma >> k & 1 == 1 {
                        rates[k][x]
                    } else {
                        1.0 - rates[k][x]
                    }
                })
                .product();
            joint[sigma][yx as usize] += px * p;
        }
    }
    mutual_information(&joint)
}

/// `P(y = +1 | spike count)` for count 0..=n (NaN for a count of probability 0).
pub fn posterior_by_count(n: usize, y: &[bool], rho: &[f64]) -> Vec<f64> {
    let c = 1usize << n;
    let mut on = vec![0.0; n + 1];
    let mut all = vec![0.0; n + 1];
    for (x, &yx) in y.iter().enumerate() {
        for sigma in 0..c {
            let p = rho[x * c + sigma];
            all[spike_count(sigma)] += p;
            if yx {
                on[spike_count(sigma)] += p;
            }
        }
    }
    on.iter()
        .zip(&all)
        .map(|(o, a)| if *a > 0.0 { o / a } else { f64::NAN })
        .collect()
}

/// Tuning of neuron k: `π_k(1 | x, c)` averaged over ρ(σ | x) among the σ in
/// which the *other* neurons have c spikes, `[k][x][c]`, c = 0..n−1 (NaN
/// where that has probability 0).
pub fn tuning(net: &Network, policy: &solver::Policy, rho: &[f64]) -> Vec<Vec<Vec<f64>>> {
    let (n, c) = (net.n, net.configs());
    (0..n)
        .map(|k| {
            (0..net.input.len())
                .map(|x| {
                    let mut num = vec![0.0; n];
                    let mut den = vec![0.0; n];
                    for sigma in 0..c {
                        let s = x * c + sigma;
                        let others = spike_count(sigma & !(1 << k));
                        num[others] += rho[s] * policy.p(s, k);
                        den[others] += rho[s];
                    }
                    num.iter()
                        .zip(&den)
                        .map(|(a, b)| if *b > 1e-300 { a / b } else { f64::NAN })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Group neurons whose rate curves `rates[k][x]` agree within `tol` at
/// every x (greedy, in neuron order); returns the groups.
pub fn cell_types(rates: &[Vec<f64>], tol: f64) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (k, r) in rates.iter().enumerate() {
        let close = |j: usize| rates[j].iter().zip(r).all(|(a, b)| (a - b).abs() <= tol);
        match groups.iter_mut().find(|g| close(g[0])) {
            Some(g) => g.push(k),
            None => groups.push(vec![k]),
        }
    }
    groups
}

/// Knobs of the alternation.
#[derive(Clone, Debug)]
pub struct CodingOptions {
    pub solve: SolveOptions,
    /// Stop when no posterior p(y = +1 | σ) (of a σ with ρ > 0) moves more than this.
    pub tol: f64,
    pub max_alternations: usize,
    /// Whole alternations from different Blahut–Arimoto starts (the first
    /// from p = ½); the best objective is kept.
    pub starts: usize,
    /// Reliability of the starting decoder ([`initial_posterior`]).
    pub initial_reliability: f64,
}

impl Default for CodingOptions {
    fn default() -> Self {
        CodingOptions {
            solve: SolveOptions::default(),
            tol: 1e-7,
            max_alternations: 500,
            starts: 8,
            initial_reliability: 0.75,
        }
    }
}

/// One alternation: the code solved for the previous posterior, measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Alternation {
    /// `⟨log p(y | σ)⟩ − λ·info` with the code's own posterior (the
    /// objective the alternation ascends).
    pub objective: f64,
    /// g of the solve against the previous posterior.
    pub g_solved: f64,
    pub information_y: f64,
    pub posterior_change: f64,
}

/// The self-consistent code.
#[derive(Clone, Debug)]
pub struct CodingSolution {
    /// The network whose reward is the final code's log-posterior.
    pub network: Network,
    pub y: Vec<bool>,
    /// The last solve (its reward is the previous posterior's).
    pub solution: Solution,
    pub posterior: Vec<f64>,
    pub history: Vec<Alternation>,
    pub converged: bool,
    /// Objective reached by each start (the first: p = ½).
    pub start_objective: Vec<f64>,
    pub warnings: Vec<String>,
}

impl CodingSolution {
    pub fn objective(&self) -> f64 {
        self.history.last().map_or(f64::NAN, |a| a.objective)
    }
}

/// Solve the coding task on `input` (with features `y`) by alternation.
pub fn solve(
    task: &CodingTask,
    input: InputProcess,
    y: &[bool],
    opts: &CodingOptions,
) -> Result<CodingSolution, SolveError> {
    if y.len() != input.len() {
        return Err(SolveError::Invalid(format!(
            "{} features for {} input values",
            y.len(),
            input.len()
        )));
    }
    let n = task.neurons;
    let mu = input.stationary();
    let prior_on: f64 = y.iter().zip(&mu).filter(|(b, _)| **b).map(|(_, m)| m).sum();
    if !(prior_on > 0.0 && prior_on < 1.0) {
        return Err(SolveError::Invalid(format!(
            "the feature is never {} (p(y = +1) = {prior_on}); nothing to code",
            if prior_on <= 0.0 { "+1" } else { "−1" }
        )));
    }
    let start = initial_posterior(n, prior_on, opts.initial_reliability);
    let mut rng = crate::rng::stream(opts.solve.start_seed, crate::rng::Domain::Learner, u64::MAX - 1);
    let mut best: Option<CodingSolution> = None;
    let mut start_objective = Vec::new();
    for i in 0..opts.starts.max(1) {
        let prior: Vec<f64> = if i == 0 {
            vec![0.5; n]
        } else {
            (0..n)
                .map(|_| 0.02 + 0.96 * rand::Rng::random::<f64>(&mut rng))
                .collect()
        };
        let sol = alternate(task, &input, y, &start, prior, opts)?;
        tracing::debug!(
            start = i,
            objective = sol.objective(),
            alternations = sol.history.len(),
            "coding start"
        );
        start_objective.push(sol.objective());
        if best.as_ref().is_none_or(|b| sol.objective() > b.objective()) {
            best = Some(sol);
        }
    }
    let mut best = best.expect("at least one start");
    best.start_objective = start_objective;
    Ok(best)
}

/// The alternation from one decoder and one Blahut–Arimoto start.
pub fn alternate(
    task: &CodingTask,
    input: &InputProcess,
    y: &[bool],
    posterior0: &[f64],
    prior0: Vec<f64>,
    opts: &CodingOptions,
) -> Result<CodingSolution, SolveError> {
    let n = task.neurons;
    let mut post = posterior0.to_vec();
    let mut prior = prior0;
    let mut history = Vec::new();
    let mut warnings = Vec::new();
    let mut converged = false;
    let mut last: Option<(Network, Solution)> = None;
    for _ in 0..opts.max_alternations {
        let net = task.network(input.clone(), log_posterior_reward(n, y, &post));
        let sol = solver::solve_continued(&net, &opts.solve, &prior, None, None)?;
        if !sol.converged {
            warnings.push(format!(
                "a solve of the alternation did not converge (value residual {:.1e}, prior residual {:.1e})",
                sol.value_residual, sol.prior_residual
            ));
        }
        let rho = &sol.eval.rho;
        let next = posterior(n, y, rho);
        let change = changed(&next, &post, rho, n, y.len());
        let info_y = information(n, y, rho);
        let mean_log_post = mean_log_posterior(n, y, rho, &next);
        history.push(Alternation {
            objective: mean_log_post - task.lambda * sol.eval.info_nats,
            g_solved: sol.eval.g,
            information_y: info_y,
            posterior_change: change,
        });
        prior = sol.prior.clone();
        post = next;
        last = Some((net, sol));
        if change < opts.tol {
            converged = true;
            break;
        }
    }
    if !converged {
        warnings.push(format!(
            "the alternation did not converge in {} steps (last posterior change {:.1e}, tolerance {:.0e})",
            opts.max_alternations,
            history.last().map_or(f64::NAN, |a: &Alternation| a.posterior_change),
            opts.tol
        ));
    }
    let (_, solution) = last.expect("at least one alternation");
    let network = task.network(input.clone(), log_posterior_reward(n, y, &post));
    Ok(CodingSolution {
        network,
        y: y.to_vec(),
        solution,
        posterior: post,
        history,
        converged,
        start_objective: Vec::new(),
        warnings,
    })
}

/// Largest change of the posterior over σ that occur (ρ(σ) > 0).
fn changed(a: &[f64], b: &[f64], rho: &[f64], n: usize, inputs: usize) -> f64 {
    let c = 1usize << n;
    (0..c)
        .filter(|&s| (0..inputs).any(|x| rho[x * c + s] > 0.0))
        .map(|s| (a[s] - b[s]).abs())
        .fold(0.0, f64::max)
}
