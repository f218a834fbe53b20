//! Inverse RL (theory §5): recover the reward a network optimises from its
//! recorded responses.
//!
//! Tabular inversion for asynchronous records: pooled log-odds of each
//! neuron's firing in each state give the value differences ΔW along the
//! edges of the hypercube; a weighted least-squares (graph-Laplacian) solve
//! gives W(x, ·) up to a constant per input and connected component; the
//! input chain inverts W into h; the Bellman equation gives r. What the data
//! cannot identify is reported, not hidden: an additive function of x (and a
//! global constant) is invisible, unvisited states are NaN, and without λ the
//! result is r/λ. Pure math on arrays; no I/O.
//!
//! [`likelihood`] fits parametric rewards by maximum likelihood of the
//! observed actions under the soft-optimal policy of the reward, for any
//! update scheme and for partially observed networks.

pub mod likelihood;
pub mod mdp;
pub mod team;

use crate::model::spike_count;

/// Sufficient statistics of an asynchronous record: for every edge of the
/// hypercube (input x, neuron k, state σ with bit k cleared), how often k was
/// drawn there and how often it fired.
#[derive(Clone, Debug)]
pub struct EdgeCounts {
    pub n: usize,
    pub inputs: usize,
    /// `drawn[(x·2ⁿ + σ₀)·n + k]`, σ₀ with bit k = 0.
    pub drawn: Vec<u64>,
    pub fired: Vec<u64>,
    /// Ticks spent in each state s = x·2ⁿ + σ.
    pub visits: Vec<u64>,
    /// Per neuron: times drawn and times fired (for the marginal p_k).
    pub drawn_total: Vec<u64>,
    pub fired_total: Vec<u64>,
}

impl EdgeCounts {
    /// Count an asynchronous record: `x[t]`, `sigma[t]` (state index with bit
    /// k = neuron k), `actor[t]` (drawn neuron; its action is bit k of
    /// σ_{t+1}). The last tick has no successor and only counts as a visit.
    pub fn from_record(n: usize, inputs: usize, x: &[usize], sigma: &[usize], actor: &[i64]) -> Self {
        let c = 1usize << n;
        let mut e = EdgeCounts {
            n,
            inputs,
            drawn: vec![0; inputs * c * n],
            fired: vec![0; inputs * c * n],
            visits: vec![0; inputs * c],
            drawn_total: vec![0; n],
            fired_total: vec![0; n],
        };
        for t in 0..x.len() {
            e.visits[x[t] * c + sigma[t]] += 1;
            if t + 1 == x.len() || actor[t] < 0 {
                continue;
            }
            let k = actor[t] as usize;
            let s0 = sigma[t] & !(1 << k);
            let a = sigma[t + 1] >> k & 1;
            let idx = (x[t] * c + s0) * n + k;
            e.drawn[idx] += 1;
            e.fired[idx] += a as u64;
            e.drawn_total[k] += 1;
            e.fired_total[k] += a as u64;
        }
        e
    }
}

/// The result of a tabular inversion.
#[derive(Clone, Debug)]
pub struct TabularReward {
    pub n: usize,
    pub inputs: usize,
    /// Inferred r(s) (in reward units with λ known, else r/λ); NaN where unidentified.
    pub r: Vec<f64>,
    /// Inferred relative value h(s) (same units), NaN where unidentified.
    pub h: Vec<f64>,
    /// `W(x, σ) = Σ_x' P[x][x'] h(x', σ)`, fixed to mean 0 per input and component.
    pub w: Vec<f64>,
    /// Estimated marginal firing probabilities p_k.
    pub p: Vec<f64>,
    /// Ticks observed in each state.
    pub visits: Vec<u64>,
    /// Weighted least-squares residual per edge (root mean square, in W units).
    pub residual_rms: f64,
    /// Notes on what is not identifiable in this run.
    pub notes: Vec<String>,
}

/// Options of the tabular inversion.
#[derive(Clone, Debug)]
pub struct TabularOptions {
    /// λ if known; `None` infers r/λ.
    pub lambda: Option<f64>,
    /// Pseudo-count added to both actions of every edge.
    pub pseudo_count: f64,
    /// States visited fewer times are reported unidentified (NaN reward):
    /// their few (often transient, e.g. the silent start) visits say
    /// little, yet would weigh fully in per-count summaries.
    pub min_visits: u64,
    /// The record's dead neurons (theory §6): they never act, so they take
    /// no part in the soft-Bellman sum, which runs over the living ones.
    pub dead: Vec<usize>,
}

impl Default for TabularOptions {
    fn default() -> Self {
        TabularOptions {
            lambda: None,
            pseudo_count: 0.5,
            min_visits: 10,
            dead: Vec::new(),
        }
    }
}

/// Tabular inverse RL from edge counts (theory §5 steps 1–4). `transition`
/// is the X×X input chain (estimated from the record or known).
pub fn invert_tabular(counts: &EdgeCounts, transition: &[f64], opts: &TabularOptions) -> Result<TabularReward, String> {
    let n = counts.n;
    let alive: Vec<bool> = (0..n).map(|k| !opts.dead.contains(&k)).collect();
    if let Some(k) = (0..n).find(|&k| !alive[k] && counts.drawn_total[k] > 0) {
        return Err(format!(
            "neuron {k} is listed dead but acts {} times in the record; allowed: dead neurons that never act",
            counts.drawn_total[k]
        ));
    }
    let p: Vec<f64> = (0..n)
        .map(|k| {
            (counts.fired_total[k] as f64 + opts.pseudo_count)
                / (counts.drawn_total[k] as f64 + 2.0 * opts.pseudo_count)
        })
        .collect();
    let a = opts.pseudo_count;
    let edges: Vec<(f64, f64)> = counts
        .drawn
        .iter()
        .zip(&counts.fired)
        .map(|(&d, &f)| {
            if d == 0 {
                (0.0, 0.0)
            } else {
                let pi = (f as f64 + a) / (d as f64 + 2.0 * a);
                (d as f64, pi.ln() - (1.0 - pi).ln())
            }
        })
        .collect();
    let mut inv = invert_from_logits(
        n,
        counts.inputs,
        &edges,
        &p,
        &alive,
        transition,
        opts.lambda,
        counts.visits.clone(),
    )?;
    let mut rare = 0;
    for (r, &v) in inv.r.iter_mut().zip(&counts.visits) {
        if r.is_finite() && v < opts.min_visits {
            *r = f64::NAN;
            rare += 1;
        }
    }
    if rare > 0 {
        inv.notes.push(format!(
            "{} visited fewer than {} {} reported unidentified (NaN)",
            crate::text::count(rare as u64, "state"),
            crate::text::count(opts.min_visits, "time"),
            if rare == 1 { "is" } else { "are" }
        ));
    }
    Ok(inv)
}

/// Tabular inversion from per-edge (weight, logit π) pairs, indexed like
/// [`EdgeCounts::drawn`]; weight 0 marks an unobserved edge. With exact
/// policies and positive weights everywhere this is the infinite-data limit.
/// `alive[k]`: neuron k acts (dead neurons are left out of the soft-Bellman
/// sum, which is averaged over the living ones).
#[allow(clippy::too_many_arguments)]
pub fn invert_from_logits(
    n: usize,
    inputs: usize,
    edges: &[(f64, f64)],
    p: &[f64],
    alive: &[bool],
    transition: &[f64],
    lambda: Option<f64>,
    visits: Vec<u64>,
) -> Result<TabularReward, String> {
    let c = 1usize << n;
    let lam = lambda.unwrap_or(1.0);
    let logit_p: Vec<f64> = p.iter().map(|&q| q.ln() - (1.0 - q).ln()).collect();
    let mut w = vec![f64::NAN; inputs * c];
    let mut sq = 0.0;
    let mut wsum = 0.0;
    for x in 0..inputs {
        // Edge list of this input: (lo, hi, weight, ΔW = W(hi) − W(lo)).
        let mut list = Vec::new();
        for s0 in 0..c {
            for k in 0..n {
                if s0 >> k & 1 == 1 {
                    continue;
                }
                let (wt, lg) = edges[(x * c + s0) * n + k];
                if wt > 0.0 {
                    list.push((s0, s0 | 1 << k, wt, lam * (lg - logit_p[k])));
                }
            }
        }
        let sol = laplacian_least_squares(c, &list);
        for (sigma, v) in sol.into_iter().enumerate() {
            w[x * c + sigma] = v;
        }
        for &(lo, hi, wt, d) in &list {
            let e = w[x * c + hi] - w[x * c + lo] - d;
            sq += wt * e * e;
            wsum += wt;
        }
    }
    // h(·, σ) = P⁻¹ W(·, σ).
    let pinv = invert(transition, inputs).ok_or_else(|| {
        "the input transition matrix is singular: W cannot be turned into h (an input chain that forgets \
         its state in one tick carries no information about future values)"
            .to_string()
    })?;
    let mut h = vec![f64::NAN; inputs * c];
    for sigma in 0..c {
        for x in 0..inputs {
            h[x * c + sigma] = (0..inputs).map(|y| pinv[x * inputs + y] * w[y * c + sigma]).sum();
        }
    }
    // r(s) = h(s) − (λ/m) Σ_{living k} log Z_k(s) (+ g, an unidentifiable
    // constant), m living neurons.
    let living = alive.iter().filter(|&&a| a).count().max(1);
    let mut r = vec![f64::NAN; inputs * c];
    for x in 0..inputs {
        for sigma in 0..c {
            let mut sum = 0.0;
            for k in (0..n).filter(|&k| alive[k]) {
                let w0 = w[x * c + (sigma & !(1 << k))];
                let w1 = w[x * c + (sigma | 1 << k)];
                let (a, b) = ((1.0 - p[k]).ln() + w0 / lam, p[k].ln() + w1 / lam);
                let m = a.max(b);
                sum += lam * (m + ((a - m).exp() + (b - m).exp()).ln());
            }
            r[x * c + sigma] = h[x * c + sigma] - sum / living as f64;
        }
    }
    let mut notes = vec![
        "an additive function of the input alone (and a global constant) is not identifiable: compare rewards after \
         removing each input's mean"
            .to_string(),
    ];
    if lambda.is_none() {
        notes.push("λ unknown: rewards and values are in units of λ (r/λ)".into());
    }
    let unidentified = r.iter().filter(|v| v.is_nan()).count();
    if unidentified > 0 {
        notes.push(format!(
            "{unidentified} of {} {} unidentified (never reached by an observed edge): NaN",
            crate::text::count(r.len() as u64, "state"),
            if unidentified == 1 { "is" } else { "are" }
        ));
    }
    Ok(TabularReward {
        n,
        inputs,
        r,
        h,
        w,
        p: p.to_vec(),
        visits,
        residual_rms: if wsum > 0.0 { (sq / wsum).sqrt() } else { 0.0 },
        notes,
    })
}

/// Minimise Σ wt·(v[hi] − v[lo] − d)² over v by conjugate gradients on the
/// graph Laplacian; each connected component is fixed to mean 0; nodes on no
/// edge are NaN.
pub(crate) fn laplacian_least_squares(nodes: usize, edges: &[(usize, usize, f64, f64)]) -> Vec<f64> {
    // Components by union–find.
    let mut parent: Vec<usize> = (0..nodes).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut touched = vec![false; nodes];
    for &(lo, hi, _, _) in edges {
        touched[lo] = true;
        touched[hi] = true;
        let (a, b) = (find(&mut parent, lo), find(&mut parent, hi));
        if a != b {
            parent[a] = b;
        }
    }
    let mut b = vec![0.0; nodes];
    let mut diag = vec![0.0; nodes];
    for &(lo, hi, wt, d) in edges {
        b[hi] += wt * d;
        b[lo] -= wt * d;
        diag[lo] += wt;
        diag[hi] += wt;
    }
    let apply = |v: &[f64], out: &mut [f64]| {
        out.iter_mut().for_each(|o| *o = 0.0);
        for &(lo, hi, wt, _) in edges {
            let diff = wt * (v[hi] - v[lo]);
            out[hi] += diff;
            out[lo] -= diff;
        }
    };
    // Jacobi-preconditioned CG (the system is singular per component; b is in
    // its range, and CG from 0 stays orthogonal to the null space).
    let mut v = vec![0.0; nodes];
    let mut res = b.clone();
    let prec = |r: &[f64]| -> Vec<f64> {
        r.iter()
            .zip(&diag)
            .map(|(x, d)| if *d > 0.0 { x / d } else { 0.0 })
            .collect()
    };
    let mut z = prec(&res);
    let mut dir = z.clone();
    let mut rz: f64 = res.iter().zip(&z).map(|(a, b)| a * b).sum();
    let norm_b = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut ad = vec![0.0; nodes];
    for _ in 0..10 * nodes + 100 {
        if res.iter().map(|x| x * x).sum::<f64>().sqrt() <= 1e-13 * norm_b.max(1e-300) {
            break;
        }
        apply(&dir, &mut ad);
        let dad: f64 = dir.iter().zip(&ad).map(|(a, b)| a * b).sum();
        if dad <= 0.0 {
            break;
        }
        let alpha = rz / dad;
        for i in 0..nodes {
            v[i] += alpha * dir[i];
            res[i] -= alpha * ad[i];
        }
        z = prec(&res);
        let rz_new: f64 = res.iter().zip(&z).map(|(a, b)| a * b).sum();
        let beta = rz_new / rz;
        rz = rz_new;
        for i in 0..nodes {
            dir[i] = z[i] + beta * dir[i];
        }
    }
    // Gauge: mean 0 per component; untouched nodes are unidentified.
    let mut sum = vec![0.0; nodes];
    let mut cnt = vec![0usize; nodes];
    for i in 0..nodes {
        if touched[i] {
            let r = find(&mut parent, i);
            sum[r] += v[i];
            cnt[r] += 1;
        }
    }
    (0..nodes)
        .map(|i| {
            if !touched[i] {
                return f64::NAN;
            }
            let r = find(&mut parent, i);
            v[i] - sum[r] / cnt[r] as f64
        })
        .collect()
}

/// Inverse of a small dense matrix (Gauss–Jordan with pivoting); None if singular.
fn invert(m: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut a: Vec<f64> = m.to_vec();
    let mut inv = vec![0.0; k * k];
    for i in 0..k {
        inv[i * k + i] = 1.0;
    }
    for col in 0..k {
        let piv = (col..k).max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))?;
        if a[piv * k + col].abs() < 1e-12 {
            return None;
        }
        for j in 0..k {
            a.swap(col * k + j, piv * k + j);
            inv.swap(col * k + j, piv * k + j);
        }
        let d = a[col * k + col];
        for j in 0..k {
            a[col * k + j] /= d;
            inv[col * k + j] /= d;
        }
        for i in 0..k {
            if i != col {
                let f = a[i * k + col];
                for j in 0..k {
                    a[i * k + j] -= f * a[col * k + j];
                    inv[i * k + j] -= f * inv[col * k + j];
                }
            }
        }
    }
    Some(inv)
}

/// Pearson correlation of two rewards over the states where both are finite
/// (and `mask` holds), after removing each input's mean: the identifiable
/// part (theory §5).
pub fn centred_correlation(a: &[f64], b: &[f64], n: usize, inputs: usize, mask: impl Fn(usize) -> bool) -> f64 {
    let c = 1usize << n;
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for x in 0..inputs {
        let idx: Vec<usize> = (x * c..(x + 1) * c)
            .filter(|&s| a[s].is_finite() && b[s].is_finite() && mask(s))
            .collect();
        if idx.is_empty() {
            continue;
        }
        let ma = idx.iter().map(|&s| a[s]).sum::<f64>() / idx.len() as f64;
        let mb = idx.iter().map(|&s| b[s]).sum::<f64>() / idx.len() as f64;
        for &s in &idx {
            xs.push(a[s] - ma);
            ys.push(b[s] - mb);
        }
    }
    correlation(&xs, &ys)
}

/// Pearson correlation over the pairs where both values are finite (NaN
/// when fewer than two, or when either side is constant).
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let idx: Vec<usize> = (0..a.len().min(b.len()))
        .filter(|&i| a[i].is_finite() && b[i].is_finite())
        .collect();
    if idx.len() < 2 {
        return f64::NAN;
    }
    let n = idx.len() as f64;
    let ma = idx.iter().map(|&i| a[i]).sum::<f64>() / n;
    let mb = idx.iter().map(|&i| b[i]).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for &i in &idx {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma).powi(2);
        sbb += (b[i] - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

/// Least-squares projection of a tabular reward onto one-hot (input, spike
/// count) features, weighted by visits: the visit-weighted mean of r̂ over
/// the states with that count. NaN where no state with that count was seen.
pub fn project_on_counts(t: &TabularReward) -> Vec<Vec<f64>> {
    count_projection(t.n, t.inputs, &t.r, &t.visits)
}

/// The visit-weighted mean of a reward `r` (over `s = x·2ⁿ + σ`) over the
/// states of each (input, spike count) with a finite reward; NaN where no
/// such state was visited.
pub fn count_projection(n: usize, inputs: usize, r: &[f64], visits: &[u64]) -> Vec<Vec<f64>> {
    let c = 1usize << n;
    (0..inputs)
        .map(|x| {
            let mut num = vec![0.0; n + 1];
            let mut den = vec![0.0; n + 1];
            for sigma in 0..c {
                let s = x * c + sigma;
                if r[s].is_finite() && visits[s] > 0 {
                    num[spike_count(sigma)] += visits[s] as f64 * r[s];
                    den[spike_count(sigma)] += visits[s] as f64;
                }
            }
            num.iter()
                .zip(&den)
                .map(|(a, b)| if *b > 0.0 { a / b } else { f64::NAN })
                .collect()
        })
        .collect()
}

/// Per input, the spike count with the largest finite value (0 if none).
pub fn argmax_count(by_count: &[Vec<f64>]) -> Vec<usize> {
    by_count
        .iter()
        .map(|row| {
            (0..row.len())
                .filter(|&c| row[c].is_finite())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0)
        })
        .collect()
}

/// The reward table `r(x, σ)` of an (input, count) reward: `by_count[x][c]`
/// for every σ with c active neurons; counts that were never identified (NaN)
/// get the input's lowest identified reward. Returns the table and, per
/// input, whether any count had to be filled (None: nothing identified).
pub fn count_table(n: usize, by_count: &[Vec<f64>]) -> (Vec<f64>, Vec<Option<bool>>) {
    let c = 1usize << n;
    let mut table = Vec::with_capacity(by_count.len() * c);
    let mut filled = Vec::with_capacity(by_count.len());
    for row in by_count {
        let floor = row
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        filled.push(floor.is_finite().then(|| row.iter().any(|v| !v.is_finite())));
        table.extend((0..c).map(|sigma| {
            let v = row[spike_count(sigma)];
            if v.is_finite() { v } else { floor }
        }));
    }
    (table, filled)
}

/// Goodness of fit of a model policy to the record: the likelihood-ratio
/// statistic of the saturated model (each edge's empirical firing rate)
/// against `model_fire(s, k)` = π_k(1 | s), with its degrees of freedom
/// (observed edges − `params`). Under a correct model the statistic is
/// roughly χ²(df), so `z = (stat − df)/√(2·df)` stays small; a large z says
/// the model's reward cannot express what the network does.
pub fn likelihood_ratio(
    counts: &EdgeCounts,
    model_fire: impl Fn(usize, usize) -> f64,
    params: usize,
) -> (f64, usize, f64) {
    let (n, c) = (counts.n, 1usize << counts.n);
    // a·ln(b), with 0·ln(0) = 0.
    let xlogy = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * b.ln() };
    let mut stat = 0.0;
    let mut edges = 0usize;
    for x in 0..counts.inputs {
        for s0 in 0..c {
            for k in 0..n {
                let i = (x * c + s0) * n + k;
                let (d, f) = (counts.drawn[i] as f64, counts.fired[i] as f64);
                if d == 0.0 || s0 >> k & 1 == 1 {
                    continue;
                }
                edges += 1;
                let sat = xlogy(f, f / d) + xlogy(d - f, 1.0 - f / d);
                let p = model_fire(x * c + s0, k).clamp(1e-300, 1.0 - 1e-16);
                stat += 2.0 * (sat - xlogy(f, p) - xlogy(d - f, 1.0 - p));
            }
        }
    }
    let df = edges.saturating_sub(params).max(1);
    (stat, df, (stat - df as f64) / (2.0 * df as f64).sqrt())
}

/// One bootstrap replicate: its (input, count) projection and, if asked, its
/// tabular reward.
#[derive(Clone, Debug)]
pub struct Replicate {
    pub count_reward: Vec<Vec<f64>>,
    pub r: Option<Vec<f64>>,
}

/// Bootstrap over trajectory blocks: the record (ticks 0..T) is cut into
/// `blocks` contiguous blocks, which are resampled with replacement
/// `replicates` times; each replicate is inverted like the original (the
/// transitions between resampled blocks are not counted). Returns, per
/// replicate, the (input, count) projection and — when `keep_tabular` — the
/// tabular reward. Replicate i draws from its own stream, so the result does
/// not depend on the number of threads. `on_replicate` is called as each
/// replicate finishes (progress).
#[allow(clippy::too_many_arguments)]
pub fn bootstrap(
    n: usize,
    inputs: usize,
    x: &[usize],
    sigma: &[usize],
    actor: &[i64],
    transition: &[f64],
    opts: &TabularOptions,
    blocks: usize,
    replicates: usize,
    seed: u64,
    keep_tabular: bool,
    on_replicate: &(dyn Fn() + Sync),
) -> Vec<Replicate> {
    use rand::Rng;
    use rayon::prelude::*;
    let t = x.len();
    let blocks = blocks.clamp(1, t.max(1));
    let bounds: Vec<(usize, usize)> = (0..blocks).map(|b| (b * t / blocks, (b + 1) * t / blocks)).collect();
    (0..replicates)
        .into_par_iter()
        .map(|i| {
            let mut rng = crate::rng::stream(seed, crate::rng::Domain::Learner, i as u64);
            let mut total: Option<EdgeCounts> = None;
            for _ in 0..blocks {
                let (a, b) = bounds[rng.random_range(0..blocks)];
                let c = EdgeCounts::from_record(n, inputs, &x[a..b], &sigma[a..b], &actor[a..b]);
                total = Some(match total {
                    None => c,
                    Some(mut acc) => {
                        acc.add(&c);
                        acc
                    }
                });
            }
            let counts = total.expect("at least one block");
            let rep = match invert_tabular(&counts, transition, opts) {
                Ok(inv) => Replicate {
                    count_reward: project_on_counts(&inv),
                    r: keep_tabular.then_some(inv.r),
                },
                Err(_) => Replicate {
                    count_reward: vec![vec![f64::NAN; n + 1]; inputs],
                    r: None,
                },
            };
            on_replicate();
            rep
        })
        .collect()
}

impl EdgeCounts {
    /// Add another record's counts (same n and inputs).
    pub fn add(&mut self, o: &EdgeCounts) {
        let add = |a: &mut Vec<u64>, b: &Vec<u64>| a.iter_mut().zip(b).for_each(|(p, q)| *p += q);
        add(&mut self.drawn, &o.drawn);
        add(&mut self.fired, &o.fired);
        add(&mut self.visits, &o.visits);
        add(&mut self.drawn_total, &o.drawn_total);
        add(&mut self.fired_total, &o.fired_total);
    }
}

/// The `q`-quantile of the finite values (linear interpolation); NaN if none.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplacian_solve_recovers_potential_differences() {
        // A potential on a 3-cube, observed through its edge differences.
        let pot: Vec<f64> = (0..8).map(|i| (i as f64 * 1.3).sin()).collect();
        let mut edges = Vec::new();
        for s in 0..8usize {
            for k in 0..3 {
                if s >> k & 1 == 0 {
                    edges.push((s, s | 1 << k, 1.0 + k as f64, pot[s | 1 << k] - pot[s]));
                }
            }
        }
        let v = laplacian_least_squares(8, &edges);
        let mean = pot.iter().sum::<f64>() / 8.0;
        for i in 0..8 {
            assert!((v[i] - (pot[i] - mean)).abs() < 1e-10);
        }
    }

    #[test]
    fn isolated_nodes_are_nan_and_components_are_centred_separately() {
        let v = laplacian_least_squares(5, &[(0, 1, 1.0, 2.0), (2, 3, 1.0, -4.0)]);
        assert!((v[0] + 1.0).abs() < 1e-12 && (v[1] - 1.0).abs() < 1e-12);
        assert!((v[2] - 2.0).abs() < 1e-12 && (v[3] + 2.0).abs() < 1e-12);
        assert!(v[4].is_nan());
    }

    #[test]
    fn count_table_fills_unidentified_counts_with_the_input_minimum() {
        let rows = vec![vec![0.5, f64::NAN, -1.0], vec![2.0, 1.0, 0.0], vec![f64::NAN; 3]];
        let (t, filled) = count_table(2, &rows);
        assert_eq!(&t[0..4], &[0.5, -1.0, -1.0, -1.0]); // σ = 0, 1, 2 (count 1 → NaN → min), 3
        assert_eq!(&t[4..8], &[2.0, 1.0, 1.0, 0.0]);
        assert_eq!(filled, vec![Some(true), Some(false), None]);
    }

    #[test]
    fn quantiles_interpolate_and_skip_nan() {
        let mut v = vec![3.0, f64::NAN, 1.0, 2.0];
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 0.5), 2.0);
        assert_eq!(quantile(&mut v, 0.75), 2.5);
        assert!(quantile(&mut [f64::NAN], 0.5).is_nan());
    }

    /// The statistic is the G-test's 2·Σ_edges [f ln(f̂/p) + (d−f) ln((1−f̂)/(1−p))]
    /// (f̂ = f/d) over the observed edges: 0 for the saturated model itself,
    /// and each edge read at its own index (two neurons, two edges).
    #[test]
    fn likelihood_ratio_is_the_g_statistic_of_the_observed_edges() {
        let (n, inputs) = (2, 1);
        let mut counts = EdgeCounts {
            n,
            inputs,
            drawn: vec![0; 4 * n],
            fired: vec![0; 4 * n],
            visits: vec![0; 4],
            drawn_total: vec![0; n],
            fired_total: vec![0; n],
        };
        // Neuron 0 drawn 10 times at σ₀ = 0b10, fired 3; neuron 1 drawn 4
        // times at σ₀ = 0b00, fired 4 (edge index (x·2ⁿ + σ₀)·n + k).
        (counts.drawn[2 * n], counts.fired[2 * n]) = (10, 3);
        (counts.drawn[1], counts.fired[1]) = (4, 4);
        let model = |s: usize, k: usize| match (s, k) {
            (2, 0) => 0.5,
            (0, 1) => 0.8,
            _ => 0.01, // on edges never drawn: must not count
        };
        let want = 2.0 * (3.0 * (0.3f64 / 0.5).ln() + 7.0 * (0.7f64 / 0.5).ln()) + 2.0 * 4.0 * (1.0f64 / 0.8).ln();
        let (stat, df, z) = likelihood_ratio(&counts, model, 1);
        assert!((stat - want).abs() < 1e-12, "statistic {stat}, G-test {want}");
        assert_eq!(df, 1); // two observed edges, one parameter
        assert!((z - (want - 1.0) / 2f64.sqrt()).abs() < 1e-12);
        let saturated = |s: usize, k: usize| if (s, k) == (2, 0) { 0.3 } else { 1.0 };
        assert!(likelihood_ratio(&counts, saturated, 0).0.abs() < 1e-12);
    }

    #[test]
    fn invert_small_matrices() {
        let m = [0.9, 0.1, 0.2, 0.8];
        let inv = invert(&m, 2).unwrap();
        let prod = [m[0] * inv[0] + m[1] * inv[2], m[0] * inv[1] + m[1] * inv[3]];
        assert!((prod[0] - 1.0).abs() < 1e-12 && prod[1].abs() < 1e-12);
        assert!(invert(&[0.5, 0.5, 0.5, 0.5], 2).is_none());
    }
}
