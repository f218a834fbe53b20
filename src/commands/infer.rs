//! `marlin infer`: the reward a recorded network optimises, by tabular
//! inversion of an asynchronous trajectory (THEORY §5), with its projection
//! on (input, spike count) features. Reads the trajectory format of
//! [`crate::record`]; writes reward.npz, reward.json and figures.

use super::BadInput;
use crate::files::{Npz, write_json, write_text};
use crate::infer::{EdgeCounts, TabularOptions, centred_correlation, invert_tabular, project_on_counts};
use crate::record::{FORMAT, TrajectoryMeta};
use anyhow::{Context, Result};
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Largest network the tabular inversion accepts.
pub const MAX_TABULAR_INFER: usize = 20;

#[derive(Clone, Debug)]
pub struct InferArgs {
    pub trajectory: PathBuf,
    pub lambda: Option<f64>,
    /// Bootstrap replicates (0: no intervals).
    pub bootstrap: usize,
    pub out: Option<PathBuf>,
    /// No progress bar.
    pub quiet: bool,
}

/// Contiguous blocks the record is cut into for the bootstrap.
pub const BOOTSTRAP_BLOCKS: usize = 50;
/// Largest state space for which per-state bootstrap intervals are kept.
pub const MAX_STATE_INTERVALS: usize = 1 << 16;

#[derive(Serialize, Debug)]
pub struct InferSummary {
    pub method: &'static str,
    pub trajectory: String,
    pub ticks: usize,
    pub n: usize,
    /// "known" (reward units) or "unknown" (r/λ).
    pub lambda: Option<f64>,
    pub units: &'static str,
    pub input_chain: &'static str,
    pub transition: Vec<Vec<f64>>,
    pub visited_states: usize,
    pub states: usize,
    pub residual_rms: f64,
    pub p_fire: Vec<f64>,
    /// `count_reward[x][c]`: visit-weighted mean of the inferred reward over
    /// states with c active neurons (least-squares projection on one-hot
    /// (input, count) features); null where no such state was visited.
    pub count_reward: Vec<Vec<Option<f64>>>,
    pub argmax_count: Vec<usize>,
    /// Bootstrap 95 % intervals `[lo, hi]` of `count_reward` (with --bootstrap).
    pub count_reward_interval: Option<Vec<Vec<[Option<f64>; 2]>>>,
    /// Per input: whether the interval of the best count lies above every
    /// other count's interval (with --bootstrap).
    pub argmax_separated: Option<Vec<bool>>,
    pub bootstrap: Option<String>,
    /// With the scenario's true reward: Pearson correlation over visited
    /// states after removing each input's mean.
    pub centred_correlation_with_truth: Option<f64>,
    /// Goodness of fit of the (input, count) model: likelihood-ratio
    /// statistic of the record's actions against the soft-optimal policy of
    /// the count reward, its degrees of freedom and z = (stat − df)/√(2df).
    pub count_model_fit: Option<CountFit>,
    /// Misfit and other warnings.
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// Bootstrap 95 % intervals: per (input, count), and per state (lo, hi).
struct Intervals {
    counts: Vec<Vec<[f64; 2]>>,
    states: Option<(Vec<f64>, Vec<f64>)>,
}

/// Likelihood-ratio check of the count model.
#[derive(Serialize, Debug, Clone)]
pub struct CountFit {
    pub statistic: f64,
    pub df: usize,
    pub z: f64,
}

/// The count model is reported as not fitting when z exceeds this…
pub const MISFIT_Z: f64 = 5.0;
/// …and the statistic exceeds its degrees of freedom by this factor. The
/// count reward is a least-squares projection, not a maximum-likelihood fit,
/// which inflates the statistic above χ² even for a correct model (up to
/// 1.2× on the toy at 10⁵ ticks); a reward the counts cannot express gives
/// far more (28× for a pattern reward).
pub const MISFIT_RATIO: f64 = 1.5;

struct Record {
    meta: TrajectoryMeta,
    x: Vec<usize>,
    sigma: Vec<usize>,
    actor: Vec<i64>,
}

/// Read and validate a trajectory for tabular inversion.
fn read(path: &Path) -> Result<Record, BadInput> {
    let bad = |m: String| BadInput(format!("{}: {m}", path.display()));
    let json = path.with_file_name("trajectory.json");
    let meta: TrajectoryMeta = serde_json::from_str(
        &std::fs::read_to_string(&json)
            .map_err(|e| bad(format!("needs its metadata {} beside it ({e})", json.display())))?,
    )
    .map_err(|e| bad(format!("{} is not trajectory metadata ({e})", json.display())))?;
    if meta.format != FORMAT {
        return Err(bad(format!("format {:?}; allowed: {FORMAT:?}", meta.format)));
    }
    if meta.update != "asynchronous" {
        return Err(bad(format!(
            "update scheme {:?}: tabular inversion needs asynchronous records (one actor per tick); \
             synchronous and random-partial data need the parametric likelihood, not available yet",
            meta.update
        )));
    }
    let n = meta.n;
    if n > MAX_TABULAR_INFER {
        return Err(bad(format!(
            "{n} neurons; tabular inversion allows at most {MAX_TABULAR_INFER}"
        )));
    }
    if meta.recorded_neurons != (0..n).collect::<Vec<_>>() {
        return Err(bad(
            "tabular inversion needs every neuron recorded, in order 0..n".into()
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut npz = NpzReader::new(file).map_err(|e| bad(format!("not a readable .npz archive ({e})")))?;
    let x: Array1<i64> = npz.by_name("x").map_err(|e| bad(format!("no int64 array `x` ({e})")))?;
    let actor: Array1<i64> = npz
        .by_name("actor")
        .map_err(|e| bad(format!("no int64 array `actor` ({e})")))?;
    let spikes: Array2<u8> = npz
        .by_name("spikes")
        .map_err(|e| bad(format!("no uint8 array `spikes` [T, n] (dense form needed) ({e})")))?;
    let t = x.len();
    if actor.len() != t || spikes.shape() != [t, n] {
        return Err(bad(format!(
            "inconsistent shapes: x [{t}], actor [{}], spikes {:?}; allowed: [T], [T], [T, {n}]",
            actor.len(),
            spikes.shape()
        )));
    }
    if t < 2 {
        return Err(bad("fewer than 2 ticks".into()));
    }
    if let Some(v) = x.iter().find(|&&v| v < 0 || v as usize >= meta.inputs) {
        return Err(bad(format!("`x` holds {v}; allowed: 0 to {}", meta.inputs - 1)));
    }
    if let Some(v) = actor.iter().find(|&&v| v < -1 || v >= n as i64) {
        return Err(bad(format!("`actor` holds {v}; allowed: -1 to {}", n - 1)));
    }
    if let Some(v) = spikes.iter().find(|&&v| v > 1) {
        return Err(bad(format!("`spikes` holds {v}; allowed: 0 or 1")));
    }
    let sigma = spikes
        .rows()
        .into_iter()
        .map(|row| crate::record::state_index(&row.to_vec()))
        .collect();
    Ok(Record {
        meta,
        x: x.iter().map(|&v| v as usize).collect(),
        sigma,
        actor: actor.to_vec(),
    })
}

pub fn run_infer(args: &InferArgs) -> Result<InferSummary> {
    if let Some(l) = args.lambda
        && !(l.is_finite() && l > 0.0)
    {
        return Err(BadInput(format!("--lambda {l}: allowed: a positive finite number")).into());
    }
    let rec = read(&args.trajectory)?;
    let (n, xs) = (rec.meta.n, rec.meta.inputs);
    // Default: `infer/` beside the trajectory's folder (out/toy8/simulate → out/toy8/infer).
    let out = args.out.clone().unwrap_or_else(|| {
        let folder = args.trajectory.parent().unwrap_or(Path::new("."));
        folder.parent().unwrap_or(folder).join("infer")
    });
    // The input chain, estimated from the record where every input was left at least once.
    let mut trans = vec![0.0; xs * xs];
    for w in rec.x.windows(2) {
        trans[w[0] * xs + w[1]] += 1.0;
    }
    let estimated = (0..xs).all(|a| (0..xs).map(|b| trans[a * xs + b]).sum::<f64>() > 0.0);
    let (transition, chain) = if estimated {
        for a in 0..xs {
            let z: f64 = (0..xs).map(|b| trans[a * xs + b]).sum();
            (0..xs).for_each(|b| trans[a * xs + b] /= z);
        }
        (trans, "estimated from the record")
    } else {
        (
            rec.meta.transition.iter().flatten().copied().collect(),
            "from the trajectory metadata (an input was never seen)",
        )
    };
    let counts = EdgeCounts::from_record(n, xs, &rec.x, &rec.sigma, &rec.actor);
    let inv = invert_tabular(
        &counts,
        &transition,
        &TabularOptions {
            lambda: args.lambda,
            ..TabularOptions::default()
        },
    )
    .map_err(|e| BadInput(format!("{}: {e}", args.trajectory.display())))?;
    let by_count = project_on_counts(&inv);
    let argmax: Vec<usize> = by_count
        .iter()
        .map(|row| {
            (0..row.len())
                .filter(|&c| row[c].is_finite())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0)
        })
        .collect();
    // The true reward, when the trajectory names a scenario we can load.
    let truth = crate::scenario::Scenario::load(Path::new(&rec.meta.scenario_file))
        .ok()
        .filter(|s| s.neurons == n && s.input.len() == xs)
        .map(|s| s.reward.tabulate(n));
    let corr = truth
        .as_ref()
        .map(|t| centred_correlation(&inv.r, t, n, xs, |s| counts.visits[s] > 0));

    let c = 1usize << n;
    // Does the count model fit? Solve for the soft-optimal policy of the
    // count reward (λ as given, else 1: the reward is then r/λ) against the
    // estimated marginals, and compare the record's actions with it.
    let mut warnings = Vec::new();
    let fit = {
        let (table, _) = crate::infer::count_table(n, &by_count);
        let net = crate::model::Network {
            n,
            alive: vec![true; n],
            input: crate::model::InputProcess {
                values: rec.meta.input_values.clone(),
                transition: transition.clone(),
            },
            reward: table,
            lambda: args.lambda.unwrap_or(1.0),
            cost: crate::model::CodingCost::FixedPrior(inv.p.iter().map(|p| p.clamp(1e-6, 1.0 - 1e-6)).collect()),
            update: crate::model::UpdateScheme::Asynchronous,
            observes: None,
        };
        match crate::solver::solve(&net, &crate::solver::SolveOptions::default()) {
            Ok(sol) => {
                let params = xs * n; // one value per (input, count), up to a constant per input
                let (statistic, df, z) = crate::infer::likelihood_ratio(&counts, |s, k| sol.policy.p(s, k), params);
                if z > MISFIT_Z && statistic > MISFIT_RATIO * df as f64 {
                    warnings.push(format!(
                        "the (input, count) reward does not explain the record: likelihood-ratio statistic {statistic:.0} \
                         on {df} degrees of freedom (z = {z:.1}); the network's reward depends on more than \
                         the spike count — use the tabular reward (reward.npz `r`)"
                    ));
                }
                Some(CountFit { statistic, df, z })
            }
            Err(e) => {
                warnings.push(format!("could not check the count model's fit: {e}"));
                None
            }
        }
    };
    // Bootstrap intervals over trajectory blocks.
    let mut intervals: Option<Intervals> = None;
    if args.bootstrap > 0 {
        let keep = xs * c <= MAX_STATE_INTERVALS;
        let bar = super::progress_bar(
            Some(args.bootstrap as u64),
            args.quiet,
            "bootstrap {bar:30} {pos}/{len} replicates [{elapsed_precise} < {eta_precise}] {per_sec}",
        );
        let reps = crate::infer::bootstrap(
            n,
            xs,
            &rec.x,
            &rec.sigma,
            &rec.actor,
            &transition,
            &TabularOptions {
                lambda: args.lambda,
                ..TabularOptions::default()
            },
            BOOTSTRAP_BLOCKS,
            args.bootstrap,
            rec.meta.seed,
            keep,
            &|| bar.inc(1),
        );
        bar.finish_and_clear();
        let q = |mut v: Vec<f64>| {
            [
                crate::infer::quantile(&mut v, 0.025),
                crate::infer::quantile(&mut v, 0.975),
            ]
        };
        let counts_iv: Vec<Vec<[f64; 2]>> = (0..xs)
            .map(|x| {
                (0..=n)
                    .map(|k| q(reps.iter().map(|r| r.count_reward[x][k]).collect()))
                    .collect()
            })
            .collect();
        let states_iv = keep.then(|| {
            let per: Vec<[f64; 2]> = (0..xs * c)
                .map(|s| q(reps.iter().filter_map(|r| r.r.as_ref().map(|v| v[s])).collect()))
                .collect();
            (per.iter().map(|p| p[0]).collect(), per.iter().map(|p| p[1]).collect())
        });
        intervals = Some(Intervals {
            counts: counts_iv,
            states: states_iv,
        });
    }
    let mut npz = Npz::new();
    let grid = |v: Vec<f64>| Array2::from_shape_vec((xs, c), v).expect("state grid");
    npz.add("r", grid(inv.r.clone()))
        .add("h", grid(inv.h.clone()))
        .add(
            "visits",
            Array2::from_shape_vec((xs, c), counts.visits.iter().map(|&v| v as i64).collect()).expect("grid"),
        )
        .add("p_fire", Array1::from(inv.p.clone()))
        .add(
            "count_reward",
            Array2::from_shape_vec((xs, n + 1), by_count.iter().flatten().copied().collect()).expect("grid"),
        );
    if let Some(t) = &truth {
        npz.add("r_true", grid(t.clone()));
    }
    if let Some(Intervals {
        counts: civ,
        states: siv,
    }) = &intervals
    {
        let flat = |i: usize| {
            civ.iter()
                .flat_map(|row| row.iter().map(move |p| p[i]))
                .collect::<Vec<f64>>()
        };
        npz.add(
            "count_reward_lo",
            Array2::from_shape_vec((xs, n + 1), flat(0)).expect("grid"),
        )
        .add(
            "count_reward_hi",
            Array2::from_shape_vec((xs, n + 1), flat(1)).expect("grid"),
        );
        if let Some((lo, hi)) = siv {
            npz.add("r_lo", grid(lo.clone())).add("r_hi", grid(hi.clone()));
        }
    }
    npz.write(&out.join("reward.npz"))?;
    let labels = super::solve::input_labels(&rec.meta.input_values);
    let units = if args.lambda.is_some() {
        "reward per tick"
    } else {
        "r/λ"
    };
    let svg = crate::report::per_count(
        "inferred reward by spike count (projection on (input, count))",
        &format!("inferred reward ({units}), input mean removed"),
        &by_count
            .iter()
            .map(|row| {
                let fin: Vec<f64> = row.iter().copied().filter(|v| v.is_finite()).collect();
                let m = fin.iter().sum::<f64>() / fin.len().max(1) as f64;
                row.iter().map(|v| v - m).collect()
            })
            .collect::<Vec<_>>(),
        &labels,
    )
    .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    write_text(&out.join("reward_by_count.svg"), &svg)?;
    // r beside h: the immediate reward against the critic's long-run value,
    // per visited state (input means removed).
    let centre = |v: &[f64]| -> Vec<f64> {
        let mut out = v.to_vec();
        for x in 0..xs {
            let idx: Vec<usize> = (x * c..(x + 1) * c)
                .filter(|&s| v[s].is_finite() && counts.visits[s] > 0)
                .collect();
            let m = idx.iter().map(|&s| v[s]).sum::<f64>() / idx.len().max(1) as f64;
            (x * c..(x + 1) * c).for_each(|s| out[s] -= m);
        }
        out
    };
    let (r_c, h_c) = (centre(&inv.r), centre(&inv.h));
    let per_input = |a: &[f64], b: &[f64]| -> Vec<(String, Vec<(f64, f64)>)> {
        (0..xs)
            .map(|x| {
                let pts = (x * c..(x + 1) * c)
                    .filter(|&s| counts.visits[s] > 0)
                    .map(|s| (a[s], b[s]))
                    .collect();
                (labels[x].clone(), pts)
            })
            .collect()
    };
    let svg = crate::report::scatter(
        "value h (critic) against reward r, per visited state",
        &format!("inferred reward r ({units}), input mean removed"),
        &format!("inferred value h ({units}), input mean removed"),
        &per_input(&r_c, &h_c),
    )
    .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    write_text(&out.join("reward_vs_value.svg"), &svg)?;
    if let Some(t) = &truth {
        let t_c = centre(t);
        let svg = crate::report::scatter(
            &format!(
                "inferred against true reward (centred correlation {:.3})",
                corr.unwrap_or(f64::NAN)
            ),
            "true reward, input mean removed",
            &format!("inferred reward ({units}), input mean removed"),
            &per_input(&t_c, &r_c),
        )
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
        write_text(&out.join("inferred_vs_true.svg"), &svg)?;
    }
    let summary = InferSummary {
        method: "tabular inversion (THEORY §5 steps 1–4) + least-squares projection on (input, count)",
        trajectory: args.trajectory.display().to_string(),
        ticks: rec.x.len(),
        n,
        lambda: args.lambda,
        units: if args.lambda.is_some() {
            "reward units (λ given)"
        } else {
            "units of λ (r/λ), λ not given"
        },
        input_chain: chain,
        transition: transition.chunks(xs).map(|r| r.to_vec()).collect(),
        visited_states: counts.visits.iter().filter(|&&v| v > 0).count(),
        states: xs * c,
        residual_rms: inv.residual_rms,
        p_fire: inv.p.clone(),
        count_reward: by_count
            .iter()
            .map(|row| row.iter().map(|v| v.is_finite().then_some(*v)).collect())
            .collect(),
        argmax_separated: intervals.as_ref().map(|Intervals { counts: civ, .. }| {
            argmax
                .iter()
                .enumerate()
                .map(|(x, &best)| {
                    let lo = civ[x][best][0];
                    (0..=n)
                        .filter(|&k| k != best && civ[x][k][1].is_finite())
                        .all(|k| lo > civ[x][k][1])
                })
                .collect()
        }),
        count_reward_interval: intervals.as_ref().map(|Intervals { counts: civ, .. }| {
            civ.iter()
                .map(|row| {
                    row.iter()
                        .map(|p| [p[0].is_finite().then_some(p[0]), p[1].is_finite().then_some(p[1])])
                        .collect()
                })
                .collect()
        }),
        bootstrap: (args.bootstrap > 0).then(|| {
            format!(
                "{} replicates over {BOOTSTRAP_BLOCKS} contiguous blocks of the record; 95 % percentile intervals{}",
                args.bootstrap,
                if xs * c <= MAX_STATE_INTERVALS {
                    "; per-state r_lo / r_hi in reward.npz"
                } else {
                    ""
                }
            )
        }),
        argmax_count: argmax,
        centred_correlation_with_truth: corr.filter(|c| c.is_finite()),
        count_model_fit: fit,
        warnings,
        notes: inv.notes.clone(),
    };
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    write_json(&out.join("reward.json"), &summary).context("writing reward.json")?;
    Ok(summary)
}
