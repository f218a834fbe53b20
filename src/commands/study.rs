//! `marlin run`: the whole study of a scenario in one command — solve
//! exactly, train by decentralised learning, simulate the optimum, infer the
//! reward from the recording and predict the response to perturbations —
//! each stage in its own sub-folder, with the headline numbers gathered in
//! `summary.json`.
//!
//! Everything is gathered into `report.html` (figures inline, readable
//! offline).

use super::BadInput;
use super::infer::{InferArgs, run_infer};
use super::predict::{PredictArgs, run_predict};
use super::simulate::{SimulateArgs, run_simulate};
use super::solve::{SolveArgs, run as run_solve};
use super::train::{TrainArgs, run_train};
use crate::files::write_json;
use crate::report::html::{Figure, Section, page};
use crate::scenario::Scenario;
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct StudyArgs {
    pub scenario: PathBuf,
    pub out: Option<PathBuf>,
    /// Ticks to record (default: the scenario's `study.ticks`).
    pub ticks: Option<u64>,
    /// Continue an interrupted study in `out`: finished stages are kept
    /// (their archives checked by their seals), the interrupted one resumes
    /// from its checkpoint (train, simulate) or runs again, and so do the
    /// stages after it.
    pub resume: bool,
    pub quiet: bool,
}

/// For a resumed study: `stage`, the folder of a stage run by `command`, if
/// it holds that command's checkpoint (the stage was interrupted).
pub(crate) fn resumable(resume: bool, stage: &Path, command: &str) -> Option<PathBuf> {
    (resume && crate::checkpoint::path(stage, command).exists()).then(|| stage.to_path_buf())
}

/// The study's perturbations (default: λ doubled and the first living
/// neuron killed), each checked against the network — and a moved-walls
/// map read — before any stage runs. `marlin validate` checks the same.
pub fn study_perturbations(scenario: &Scenario) -> Result<Vec<String>, BadInput> {
    let Some(list) = &scenario.study.perturbations else {
        let first_alive = scenario.alive().iter().position(|&a| a).unwrap_or(0);
        return Ok(vec![
            format!("lambda:{}", 2.0 * scenario.lambda),
            format!("kill:{first_alive}"),
        ]);
    };
    // A moved-walls map (a network driving a maze) is named relative to the
    // scenario's folder.
    let folder = scenario.path.parent().unwrap_or(Path::new("."));
    let mut specs = Vec::with_capacity(list.len());
    for p in list {
        let spec = match (&scenario.motor, p.value.split_once(':')) {
            (Some(_), Some(("walls", f))) if !f.trim().is_empty() => {
                format!("walls:{}", folder.join(f.trim()).display())
            }
            _ => p.value.clone(),
        };
        super::predict::Perturbation::for_scenario(scenario, &spec).map_err(|e| {
            let place = p.at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default();
            BadInput(format!(
                "{}{place}: `study.perturbations`: {e}",
                scenario.path.display()
            ))
        })?;
        specs.push(spec);
    }
    Ok(specs)
}

/// summary.json of `marlin run` on a network scenario: the headline numbers
/// of every stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudySummary {
    pub scenario: String,
    /// The study's folder.
    pub output: String,
    pub seconds: f64,
    pub solve: SolveHeadline,
    /// One per (rule, policy) trained; empty when the study does not train.
    pub train: Vec<TrainHeadline>,
    pub simulate: SimulateHeadline,
    /// None when the network is too large to tabulate for inference.
    pub infer: Option<InferHeadline>,
    /// One per perturbation of the scenario's `[study]`.
    pub predict: Vec<PredictHeadline>,
    pub report: String,
    /// Every stage's warnings, prefixed with the stage.
    pub warnings: Vec<String>,
}

/// The exact optimum.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SolveHeadline {
    pub g: f64,
    pub mean_reward: f64,
    pub info_nats: f64,
    pub converged: bool,
    /// P(spike count = c | input x), `[x][c]`.
    pub count_distribution: Vec<Vec<f64>>,
}

/// One decentralised learner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainHeadline {
    pub label: String,
    pub ticks: u64,
    /// Exact g of the learned policies (None where it cannot be evaluated).
    pub g: Option<f64>,
    pub g_over_optimum: Option<f64>,
    pub running_reward: Option<f64>,
    pub seconds: f64,
}

/// The recording of the optimum.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimulateHeadline {
    pub ticks: u64,
    pub mean_reward: f64,
    pub info_nats: f64,
    pub mean_spike_count: f64,
}

/// The reward inferred from the recording.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InferHeadline {
    pub headline: String,
    pub motor: Option<super::infer::MotorInference>,
    pub centred_correlation_with_truth: Option<f64>,
    pub argmax_count: Vec<usize>,
    pub argmax_separated: Option<Vec<bool>>,
    pub warnings: Vec<String>,
}

/// One predicted perturbation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PredictHeadline {
    pub perturbation: String,
    pub tv_pred_truth: f64,
    pub tv_naive_truth: f64,
    pub tv_baseline: f64,
    pub motor: Option<super::predict::MotorOutcome>,
}

/// What a stage gives the summary: its result and its warnings.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Done<T> {
    result: T,
    warnings: Vec<String>,
}

fn done<T>(result: T, warnings: &[String]) -> Done<T> {
    Done {
        result,
        warnings: warnings.to_vec(),
    }
}

/// Where a study records each stage as it finishes (in its staging folder;
/// removed when the study is complete).
const PROGRESS: &str = "study-progress.json";

/// The stages of a study that have finished, with what each contributed to
/// the summary. A resumed study keeps a finished stage when every archive in
/// its folder is intact (its seal) and every stage before it was kept; any
/// other stage runs again (from its checkpoint, if it left one), and so
/// does every stage after it.
struct Stages {
    out: PathBuf,
    done: Vec<(String, serde_json::Value)>,
    keeping: bool,
    quiet: bool,
}

impl Stages {
    fn open(out: &Path, resume: bool, quiet: bool) -> Self {
        let done = if resume {
            std::fs::read_to_string(out.join(PROGRESS))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Stages {
            out: out.to_path_buf(),
            done,
            keeping: resume,
            quiet,
        }
    }

    /// Stage `name` (its folder `out/<folder>`): kept, or run by `work`.
    fn run<T: Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
        folder: &str,
        work: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if self.keeping {
            let recorded = self.done.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let kept = recorded.map(|v| {
                intact(&self.out.join(folder)).and_then(|()| {
                    serde_json::from_value::<T>(v).map_err(|e| format!("its record is unreadable ({e})"))
                })
            });
            match kept {
                Some(Ok(v)) => {
                    crate::progress::stage(
                        self.quiet,
                        &format!("{name}: finished before, kept (its archives are intact)"),
                    );
                    return Ok(v);
                }
                Some(Err(e)) => {
                    tracing::warn!("{name}: finished before, but {e}: running it again");
                }
                None => {}
            }
            self.keeping = false;
            self.done.retain(|(n, _)| n != name);
        }
        let value = work()?;
        fault_point(name);
        self.done.push((name.to_string(), serde_json::to_value(&value)?));
        write_json(&self.out.join(PROGRESS), &self.done)?;
        Ok(value)
    }

    fn finish(self) -> Result<()> {
        let p = self.out.join(PROGRESS);
        std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))
    }
}

/// Every .npz under `dir` is intact (its seal).
fn intact(dir: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            intact(&p)?;
        } else if p.extension().is_some_and(|x| x == "npz") {
            crate::files::check_intact(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Fault injection for the tests: with `MARLIN_FAULT_ABORT_IN_STAGE=NAME`
/// the process aborts (as a SIGKILL stops it: nothing cleaned up) when
/// stage NAME has written its results but before the study records it as
/// finished.
fn fault_point(name: &str) {
    if std::env::var("MARLIN_FAULT_ABORT_IN_STAGE").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// Run every stage the scenario allows; returns the summary written.
pub fn run_study(args: &StudyArgs) -> Result<StudySummary> {
    let scenario = Scenario::load(&args.scenario).map_err(BadInput::from)?;
    // The study starts from the exact solution: refuse what cannot be solved
    // before any stage writes anything.
    let net = scenario.network().map_err(BadInput::from)?;
    crate::solver::check_size(&net).map_err(|e| BadInput(e.to_string()))?;
    let plan = &scenario.study;
    let perturbations = study_perturbations(&scenario)?;
    let ticks = args.ticks.unwrap_or(plan.ticks);
    if ticks == 0 {
        return Err(BadInput("--ticks must be at least 1".into()).into());
    }
    let out = args.out.clone().unwrap_or_else(|| scenario.output.join("study"));
    // A stage's stop is the study's: it continues with `marlin run --resume`.
    crate::checkpoint::resume_as("run", &out);
    let t0 = std::time::Instant::now();
    let say = |m: &str| crate::progress::stage(args.quiet, m);
    let mut stages = Stages::open(&out, args.resume, args.quiet);

    let solved = stages.run("solve", "solve", || {
        say("solving exactly");
        let solved = run_solve(&SolveArgs {
            scenario: args.scenario.clone(),
            out: Some(out.join("solve")),
            lambda: None,
            sweep: None,
            quiet: args.quiet,
        })?;
        let s = &solved[0];
        let headline = SolveHeadline {
            g: s.g,
            mean_reward: s.mean_reward,
            info_nats: s.info_nats,
            converged: s.converged,
            count_distribution: s.count_distribution.clone(),
        };
        Ok(done(headline, &s.warnings))
    })?;
    let policy = out.join("solve/policy.npz");

    let trained = if plan.train {
        stages.run("train", "train", || {
            say("training by decentralised learning");
            let tr = run_train(&TrainArgs {
                scenario: args.scenario.clone(),
                out: Some(out.join("train")),
                quiet: args.quiet,
                resume: resumable(args.resume, &out.join("train"), "train"),
                ..TrainArgs::default()
            })?;
            let runs: Vec<_> = tr
                .runs
                .iter()
                .map(|r| TrainHeadline {
                    label: r.label.clone(),
                    ticks: r.ticks,
                    g: r.final_exact().map(|e| e.g),
                    g_over_optimum: r.final_exact().and_then(|e| e.ratio),
                    running_reward: r.checkpoints.last().map(|c| c.running_reward),
                    seconds: r.seconds,
                })
                .collect();
            Ok(done(runs, &tr.warnings))
        })?
    } else {
        done(Vec::new(), &[])
    };

    let simulated = stages.run("simulate", "simulate", || {
        say("simulating the optimal network");
        let sim = run_simulate(&SimulateArgs::study_recording(
            args.scenario.clone(),
            policy,
            ticks,
            out.join("simulate"),
            args.resume,
            args.quiet,
        ))?;
        let t = sim.totals.ticks as f64;
        Ok(SimulateHeadline {
            ticks: sim.totals.ticks,
            mean_reward: sim.totals.reward / t,
            info_nats: sim.totals.info / t,
            mean_spike_count: sim.totals.spikes as f64 / t,
        })
    })?;

    let asynchronous = scenario.update == crate::model::UpdateScheme::Asynchronous;
    let mut inferred = None;
    let mut predictions = Vec::new();
    let mut predict_dirs = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    // Asynchronous records with actors: tabular inversion; others: maximum
    // likelihood of the (input, count) reward, which solves at every step.
    let can_infer = if asynchronous {
        net.n <= super::infer::MAX_TABULAR_INFER
    } else {
        net.n <= super::infer::MAX_PARAMETRIC_INFER
    };
    if can_infer {
        inferred = Some(stages.run("infer", "infer", || {
            say("inferring the reward from the recording");
            let inf = run_infer(&InferArgs {
                trajectory: out.join("simulate/trajectory.npz"),
                lambda: Some(scenario.lambda),
                reward_model: None,
                scenario: Some(args.scenario.clone()),
                bootstrap: plan.bootstrap,
                out: Some(out.join("infer")),
                quiet: args.quiet,
            })?;
            Ok(InferHeadline {
                headline: inf.headline,
                motor: inf.motor,
                centred_correlation_with_truth: inf.centred_correlation_with_truth,
                argmax_count: inf.argmax_count,
                argmax_separated: inf.argmax_separated,
                warnings: inf.warnings,
            })
        })?);
        for (i, p) in perturbations.iter().enumerate() {
            // (A moved-walls map by its file name, not its whole path.)
            let short = match p.split_once(':') {
                Some(("walls", f)) => format!("walls_{}", Path::new(f).file_name().unwrap_or_default().display()),
                _ => p.replace([':', ','], "_"),
            };
            let folder = format!("predict/{i}_{short}");
            let dir = out.join(&folder);
            let pred = stages.run(&folder, &folder, || {
                say(&format!("predicting the response to {p}"));
                let pred = run_predict(&PredictArgs {
                    // Partially observed networks have several equilibria: predict
                    // from the recorded one (docs/predict.md).
                    equilibrium: if net.fully_observed() {
                        super::predict::Equilibrium::Best
                    } else {
                        super::predict::Equilibrium::Recorded
                    },
                    reward: out.join("infer/reward.npz"),
                    scenario: args.scenario.clone(),
                    perturb: p.clone(),
                    model: "count".into(),
                    out: Some(dir.clone()),
                })?;
                let headline = PredictHeadline {
                    perturbation: p.clone(),
                    tv_pred_truth: pred.tv_pred_truth,
                    tv_naive_truth: pred.tv_naive_truth,
                    tv_baseline: pred.tv_baseline,
                    motor: pred.motor,
                };
                Ok(done(headline, &pred.warnings))
            })?;
            predict_dirs.push((p.clone(), dir));
            warnings.extend(pred.warnings.iter().map(|w| format!("predict {p}: {w}")));
            predictions.push(pred.result);
        }
    } else {
        say("inference skipped: the network is too large to tabulate for inference");
    }
    let solve_warnings = solved.warnings.iter().map(|w| format!("solve: {w}"));
    warnings.splice(0..0, solve_warnings);
    warnings.extend(trained.warnings.iter().map(|w| format!("train: {w}")));
    warnings.extend(inferred.iter().flat_map(|i| &i.warnings).map(|w| format!("infer: {w}")));
    let summary = StudySummary {
        scenario: scenario.name.clone(),
        output: crate::files::outdir::final_path(&out).display().to_string(),
        seconds: t0.elapsed().as_secs_f64(),
        solve: solved.result,
        train: trained.result,
        simulate: simulated,
        infer: inferred,
        predict: predictions,
        report: crate::files::outdir::recorded(&out.join("report.html")),
        warnings,
    };
    write_json(&out.join("summary.json"), &summary)?;
    let html = report(&scenario, &out, &summary, &predict_dirs)?;
    crate::files::write_text(&out.join("report.html"), &html)?;
    stages.finish()?;
    Ok(summary)
}

/// The study's report.html from the stage outputs and the summary.
fn report(scenario: &Scenario, out: &Path, s: &StudySummary, predict_dirs: &[(String, PathBuf)]) -> Result<String> {
    let num = |v: Option<f64>| {
        v.filter(|x| x.is_finite())
            .map_or("—".to_string(), |x| format!("{x:.4}"))
    };
    let mut headline = vec![
        (
            "optimal g (reward − λ·information per tick), exact".to_string(),
            num(Some(s.solve.g)),
        ),
        (
            "its mean reward ⟨r⟩ / information (nats per tick)".into(),
            format!("{} / {}", num(Some(s.solve.mean_reward)), num(Some(s.solve.info_nats))),
        ),
    ];
    for r in &s.train {
        headline.push((
            format!("learned by {} (decentralised), g / g*", r.label.replace('_', " ")),
            num(r.g_over_optimum),
        ));
    }
    headline.push(("simulated ⟨r⟩ of the optimum".into(), num(Some(s.simulate.mean_reward))));
    match &s.infer {
        Some(i) if i.motor.is_some() => {
            headline.push(("inferred reward (from spikes and positions)".into(), i.headline.clone()));
        }
        Some(i) => {
            headline.push((
                "inferred reward: centred correlation with the truth".into(),
                num(i.centred_correlation_with_truth),
            ));
            headline.push((
                "inferred reward peaks at spike counts (per input)".into(),
                format!("{:?}", i.argmax_count),
            ));
        }
        None => {}
    }
    for p in &s.predict {
        headline.push((
            format!("prediction {}: TV to the truth (naive)", p.perturbation),
            format!("{} ({})", num(Some(p.tv_pred_truth)), num(Some(p.tv_naive_truth))),
        ));
    }

    let mut sections = vec![Section {
        id: "solve".into(),
        title: "Exact optimum".into(),
        intro: format!(
            "The network solved exactly by dynamic programming over all {} states (docs/theory.md §3), λ = {}.",
            scenario.input.len() << scenario.neurons,
            scenario.lambda
        ),
        figures: vec![super::figure(
            &out.join("solve/count_distribution.svg"),
            "Stationary spike-count distribution of the optimal network, one line per input value: look for peaks at the rewarded counts.",
        )?],
    }];
    let walker = out.join("solve/maze.svg");
    if walker.exists() {
        sections[0].figures.insert(
            0,
            super::figure(
                &walker,
                "Where the motor neurons keep the walker: the stationary visit density of each cell (gold: the goal, green: the start).",
            )?,
        );
    }
    let runs = &s.train;
    if !runs.is_empty() {
        let mut train = vec![super::figure(
            &out.join("train/learning_curve.svg"),
            "Exact g of the learned policies over training, relative to the optimum g* (dashed line at 1): how close decentralised learning gets, and how fast.",
        )?];
        for r in runs {
            // One (rule, policy) writes into train/ itself, several into sub-folders.
            let label = r.label.as_str();
            let folder = if runs.len() == 1 {
                out.join("train")
            } else {
                out.join("train").join(label)
            };
            let weights = folder.join("weights.svg");
            if weights.exists() {
                train.push(super::figure(
                    &weights,
                    "Learned synaptic weights w[post, pre] of the logistic neurons (red excitatory, blue inhibitory; grey: no synapse).",
                )?);
            }
        }
        sections.push(Section {
            id: "train".into(),
            title: "Decentralised learning".into(),
            intro:
                "Every neuron learned its own policy from its observation and the broadcast signal (docs/theory.md §4)."
                    .into(),
            figures: train,
        });
    }
    sections.push(Section {
        id: "simulate".into(),
        title: "Simulation".into(),
        intro: format!(
            "The optimal network run on the actor runtime for {} and recorded.",
                        crate::text::count(s.simulate.ticks, "tick")
        ),
        figures: vec![Figure {
            svg: raster_figure(out, scenario)?,
            caption: "A stretch of the recorded spikes (black) under the input (coloured band): after each input switch the network moves to the other rewarded count.".into(),
        }],
    });
    if s.infer.is_some() {
        let mut figures = vec![
            super::figure(
                &out.join("infer/reward_by_count.svg"),
                "The reward inferred from the recording alone, averaged per spike count and input: its maximum should sit at the rewarded counts.",
            )?,
            super::figure(
                &out.join("infer/reward_vs_value.svg"),
                "Immediate reward r against the long-run value h per visited state: h grades states by how far they are from reward, r does not.",
            )?,
        ];
        let cells = out.join("infer/reward_map.svg");
        if cells.exists() {
            figures.insert(
                0,
                super::figure(
                    &cells,
                    "The reward inferred per cell from the recorded spikes and the walker's positions alone: the goal (gold) should stand out.",
                )?,
            );
        }
        let truth = out.join("infer/inferred_vs_true.svg");
        if truth.exists() {
            figures.push(super::figure(
                &truth,
                "Inferred against true reward per visited state (after removing each input's mean): points on the diagonal mean the function was recovered.",
            )?);
        }
        sections.push(Section {
            id: "infer".into(),
            title: "Inverse RL".into(),
            intro: "The reward the network optimises, inferred from the recorded responses (docs/theory.md §5).".into(),
            figures,
        });
        let mut figures = Vec::new();
        for (p, dir) in predict_dirs {
            figures.push(super::figure(
                &dir.join("prediction.svg"),
                &format!("Perturbation {p}: count distributions predicted from the inferred reward, the truth, and the naive prediction (old policies): the prediction should lie on the truth."),
            )?);
        }
        sections.push(Section {
            id: "predict".into(),
            title: "Predicted adaptation".into(),
            intro: "How the network re-optimises under perturbations, predicted by re-solving with the inferred reward (docs/theory.md §6).".into(),
            figures,
        });
    }
    Ok(page(
        &format!("marlin study: {}", scenario.name),
        &format!(
            "{} — {}, {} updates, λ = {}; marlin {}, {:.1} s.",
            scenario.description,
            crate::text::count(scenario.neurons as u64, "neuron"),
            scenario.update,
            scenario.lambda,
            env!("CARGO_PKG_VERSION"),
            s.seconds
        ),
        &s.warnings,
        &headline,
        &sections,
    ))
}

/// A raster of 600 recorded ticks, starting 100 ticks before the first input
/// switch after tick 1000 (or at tick 1000).
fn raster_figure(out: &Path, scenario: &Scenario) -> Result<String> {
    let path = out.join("simulate/trajectory.npz");
    let mut npz = crate::files::open_npz(&path, &[crate::record::FORMAT], crate::record::FORMAT_VERSION, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let spikes: ndarray::Array2<u8> = npz.by_name("spikes").context("trajectory spikes")?;
    let x: ndarray::Array1<i64> = npz.by_name("x").context("trajectory x")?;
    let t_len = x.len();
    let from = (1000.min(t_len)..t_len.saturating_sub(1))
        .find(|&t| x[t + 1] != x[t])
        .map_or(1000.min(t_len), |t| t.saturating_sub(100));
    let to = (from + 600).min(t_len);
    let n = spikes.ncols();
    let window: Vec<u8> = spikes.slice(ndarray::s![from..to, ..]).iter().copied().collect();
    let xs: Vec<i64> = x.slice(ndarray::s![from..to]).to_vec();
    let labels = super::solve::input_labels(&scenario.input.values);
    crate::report::raster(
        &format!("recorded spikes, ticks {from}–{to}"),
        from as u64,
        &window,
        n,
        &xs,
        &labels,
    )
    .map_err(|e| anyhow::anyhow!("drawing the raster: {e}"))
}
