//! Independent reference implementations used by the tests: explicit
//! transition matrices, a dense linear solve for the stationary distribution
//! and a quasi-Newton maximiser. Written from docs/theory.md, not from src/.
#![allow(dead_code, clippy::needless_range_loop)]

use marlin::model::{CodingCost, InputProcess, Network, UpdateScheme};

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Dense row-major transition matrix of the chain of `fire` (fire[s][k] = π_k(1|s)).
pub fn transition_matrix(net: &Network, fire: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = net.n;
    let c = 1usize << n;
    let xs = net.input.values.len();
    let states = xs * c;
    let alive: Vec<usize> = (0..n).filter(|&k| net.alive[k]).collect();
    let mut p = vec![vec![0.0; states]; states];
    for x in 0..xs {
        for sigma in 0..c {
            let s = x * c + sigma;
            // distribution of next σ
            let mut next = vec![0.0; c];
            match net.update {
                UpdateScheme::Asynchronous => {
                    for &k in &alive {
                        let on = fire[s][k];
                        next[sigma | 1 << k] += on / alive.len() as f64;
                        next[sigma & !(1 << k)] += (1.0 - on) / alive.len() as f64;
                    }
                    if alive.is_empty() {
                        next[sigma] = 1.0;
                    }
                }
                UpdateScheme::Synchronous | UpdateScheme::RandomPartial { .. } => {
                    let q = match net.update {
                        UpdateScheme::RandomPartial { q } => q,
                        _ => 1.0,
                    };
                    for t in 0..c {
                        let mut pr = 1.0;
                        for k in 0..n {
                            let now = sigma >> k & 1;
                            let want = t >> k & 1;
                            let p1 = if net.alive[k] {
                                (1.0 - q) * now as f64 + q * fire[s][k]
                            } else {
                                0.0
                            };
                            pr *= if want == 1 { p1 } else { 1.0 - p1 };
                        }
                        next[t] = pr;
                    }
                }
            }
            for x2 in 0..xs {
                for t in 0..c {
                    p[s][x2 * c + t] += net.input.transition[x * xs + x2] * next[t];
                }
            }
        }
    }
    p
}

/// Stationary distribution by Gaussian elimination on (Pᵀ − I)ρ = 0, Σρ = 1,
/// restricted to states without dead neurons active.
pub fn stationary(net: &Network, p: &[Vec<f64>]) -> Vec<f64> {
    let c = 1usize << net.n;
    let dead: usize = (0..net.n).filter(|&k| !net.alive[k]).map(|k| 1 << k).sum();
    let idx: Vec<usize> = (0..p.len()).filter(|s| (s % c) & dead == 0).collect();
    let m = idx.len();
    let mut a = vec![vec![0.0; m + 1]; m];
    for (i, &si) in idx.iter().enumerate() {
        for (j, &sj) in idx.iter().enumerate() {
            a[i][j] = p[sj][si] - if i == j { 1.0 } else { 0.0 };
        }
    }
    // replace last equation by normalisation
    for j in 0..m {
        a[m - 1][j] = 1.0;
    }
    a[m - 1][m] = 1.0;
    let x = gauss(a);
    let mut rho = vec![0.0; p.len()];
    for (i, &si) in idx.iter().enumerate() {
        rho[si] = x[i];
    }
    rho
}

pub fn gauss(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let m = a.len();
    for col in 0..m {
        let piv = (col..m)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, piv);
        let d = a[col][col];
        for j in col..=m {
            a[col][j] /= d;
        }
        for i in 0..m {
            if i != col {
                let f = a[i][col];
                if f != 0.0 {
                    for j in col..=m {
                        a[i][j] -= f * a[col][j];
                    }
                }
            }
        }
    }
    a.iter().map(|r| r[m]).collect()
}

pub fn kl(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    let mut v = 0.0;
    if a > 0.0 {
        v += a * (a / b).ln();
    }
    if a < 1.0 {
        v += (1.0 - a) * ((1.0 - a) / (1.0 - b)).ln();
    }
    v
}

/// (g, ⟨r⟩, info per tick, marginals) of per-neuron policies, per theory §2.
pub fn objective(net: &Network, fire: &[Vec<f64>]) -> (f64, f64, f64, Vec<f64>) {
    let p = transition_matrix(net, fire);
    let rho = stationary(net, &p);
    let n = net.n;
    let marg: Vec<f64> = (0..n)
        .map(|k| (0..rho.len()).map(|s| rho[s] * fire[s][k]).sum())
        .collect();
    let prior = match &net.cost {
        CodingCost::MutualInformation => marg.clone(),
        CodingCost::FixedPrior(p) => p.clone(),
    };
    let alive: Vec<usize> = (0..n).filter(|&k| net.alive[k]).collect();
    let act = match net.update {
        UpdateScheme::Asynchronous => 1.0 / alive.len() as f64,
        UpdateScheme::Synchronous => 1.0,
        UpdateScheme::RandomPartial { q } => q,
    };
    let mean_r: f64 = (0..rho.len()).map(|s| rho[s] * net.reward[s]).sum();
    let info: f64 = act
        * (0..rho.len())
            .map(|s| rho[s] * alive.iter().map(|&k| kl(fire[s][k], prior[k])).sum::<f64>())
            .sum::<f64>();
    (mean_r - net.lambda * info, mean_r, info, marg)
}

/// Maximise g over all per-neuron policies of the living neurons
/// (π = sigmoid(θ)) by BFGS with central-difference gradients, from the
/// centre, from every state-blind corner (each neuron nearly always on or
/// off) and from `starts` random points. Returns the best g found.
pub fn brute_force_max(net: &Network, starts: usize, seed: u64) -> f64 {
    let n = net.n;
    let states = net.values_states();
    let alive: Vec<usize> = (0..n).filter(|&k| net.alive[k]).collect();
    let dim = states * alive.len();
    let f = |theta: &[f64]| -> f64 {
        let mut fire = vec![vec![0.0; n]; states];
        for s in 0..states {
            for (a, &k) in alive.iter().enumerate() {
                fire[s][k] = sigmoid(theta[s * alive.len() + a]);
            }
        }
        let g = objective(net, &fire).0;
        if g.is_nan() { f64::INFINITY } else { -g }
    };
    let mut rng = seed;
    let mut x0s: Vec<Vec<f64>> = vec![vec![0.0; dim]];
    for corner in 0..1usize << alive.len() {
        x0s.push(
            (0..dim)
                .map(|i| {
                    if corner >> (i % alive.len()) & 1 == 1 {
                        8.0
                    } else {
                        -8.0
                    }
                })
                .collect(),
        );
    }
    for _ in 0..starts {
        x0s.push(
            (0..dim)
                .map(|_| {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0
                })
                .collect(),
        );
    }
    x0s.into_iter()
        .map(|x0| -bfgs(&f, x0, 600))
        .fold(f64::NEG_INFINITY, f64::max)
}

trait States {
    fn values_states(&self) -> usize;
}
impl States for Network {
    fn values_states(&self) -> usize {
        self.input.values.len() << self.n
    }
}

fn grad(f: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    let mut g = vec![0.0; x.len()];
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + h;
        let a = f(&xp);
        xp[i] = x[i] - h;
        let b = f(&xp);
        xp[i] = x[i];
        g[i] = (a - b) / (2.0 * h);
    }
    g
}

/// Minimise f by BFGS with a backtracking line search.
pub fn bfgs(f: &dyn Fn(&[f64]) -> f64, mut x: Vec<f64>, iters: usize) -> f64 {
    let d = x.len();
    let mut hinv = vec![vec![0.0; d]; d];
    for i in 0..d {
        hinv[i][i] = 1.0;
    }
    let mut fx = f(&x);
    let mut g = grad(f, &x);
    for _ in 0..iters {
        let p: Vec<f64> = (0..d)
            .map(|i| -(0..d).map(|j| hinv[i][j] * g[j]).sum::<f64>())
            .collect();
        let slope: f64 = p.iter().zip(&g).map(|(a, b)| a * b).sum();
        if slope >= 0.0 {
            // reset to steepest descent
            for i in 0..d {
                for j in 0..d {
                    hinv[i][j] = if i == j { 1.0 } else { 0.0 };
                }
            }
            continue;
        }
        let mut t = 1.0;
        let mut xn;
        let mut fn_;
        loop {
            xn = x.iter().zip(&p).map(|(a, b)| a + t * b).collect::<Vec<_>>();
            fn_ = f(&xn);
            if fn_ <= fx + 1e-4 * t * slope || t < 1e-12 {
                break;
            }
            t *= 0.5;
        }
        let gn = grad(f, &xn);
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
        let improved = fx - fn_;
        x = xn;
        fx = fn_;
        g = gn;
        if sy > 1e-14 {
            let hy: Vec<f64> = (0..d).map(|i| (0..d).map(|j| hinv[i][j] * y[j]).sum()).collect();
            let yhy: f64 = y.iter().zip(&hy).map(|(a, b)| a * b).sum();
            for i in 0..d {
                for j in 0..d {
                    hinv[i][j] += (sy + yhy) * s[i] * s[j] / (sy * sy) - (hy[i] * s[j] + s[i] * hy[j]) / sy;
                }
            }
        }
        if improved.abs() < 1e-12 && g.iter().map(|v| v.abs()).fold(0.0, f64::max) < 1e-6 {
            break;
        }
    }
    fx
}

/// A random reward table in [0, 1) from a simple LCG (seeded).
pub fn random_reward(states: usize, seed: u64) -> Vec<f64> {
    let mut r = seed.wrapping_add(12345);
    (0..states)
        .map(|_| {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (r >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

pub fn tiny(n: usize, update: UpdateScheme, cost: CodingCost, lambda: f64, seed: u64) -> Network {
    let input = InputProcess {
        values: vec![-1.0, 1.0],
        transition: vec![0.8, 0.2, 0.3, 0.7],
        control: None,
    };
    Network {
        n,
        alive: vec![true; n],
        reward: random_reward(2 << n, seed),
        input,
        lambda,
        cost,
        update,
        observes: None,
    }
}

pub fn policy_rows(pol: &marlin::solver::Policy, states: usize) -> Vec<Vec<f64>> {
    (0..states).map(|s| (0..pol.n).map(|k| pol.p(s, k)).collect()).collect()
}
