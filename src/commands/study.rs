//! `marlin run`: the whole study of a scenario in one command — solve
//! exactly, train by decentralised learning, simulate the optimum, infer the
//! reward from the recording and predict the response to perturbations —
//! each stage in its own sub-folder, with the headline numbers gathered in
//! `summary.json`.
//!
//! (The HTML report joins here when it exists.)

use super::BadInput;
use super::infer::{InferArgs, run_infer};
use super::predict::{PredictArgs, run_predict};
use super::simulate::{SimulateArgs, run_simulate};
use super::solve::{SolveArgs, run as run_solve};
use super::train::{TrainArgs, run_train};
use crate::files::write_json;
use crate::record::stream::SpikeForm;
use crate::scenario::Scenario;
use anyhow::Result;
use serde_json::json;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct StudyArgs {
    pub scenario: PathBuf,
    pub out: Option<PathBuf>,
    pub ticks: u64,
    pub quiet: bool,
}

/// Run every stage the scenario allows; returns the summary written.
pub fn run_study(args: &StudyArgs) -> Result<serde_json::Value> {
    let scenario = Scenario::load(&args.scenario).map_err(BadInput::from)?;
    // The study starts from the exact solution: refuse what cannot be solved
    // before any stage writes anything.
    let net = scenario.network().map_err(BadInput::from)?;
    crate::solver::check_size(&net).map_err(|e| BadInput(e.to_string()))?;
    let out = args.out.clone().unwrap_or_else(|| scenario.output.clone());
    let t0 = std::time::Instant::now();
    let say = |m: &str| {
        if !args.quiet {
            eprintln!("marlin run: {m}");
        }
    };

    say("solving exactly");
    let solved = run_solve(&SolveArgs {
        scenario: args.scenario.clone(),
        out: Some(out.join("solve")),
        lambda: None,
        sweep: None,
        quiet: args.quiet,
    })?;
    let policy = out.join("solve/policy.npz");

    say("training by decentralised learning");
    let trained = run_train(&TrainArgs {
        scenario: args.scenario.clone(),
        out: Some(out.join("train")),
        quiet: args.quiet,
        ..TrainArgs::default()
    })?;

    say("simulating the optimal network");
    let sim = run_simulate(&SimulateArgs {
        scenario: args.scenario.clone(),
        policy: Some(policy),
        ticks: args.ticks,
        shards: None,
        threads: None,
        record_neurons: None,
        form: SpikeForm::Dense,
        out: Some(out.join("simulate")),
        quiet: args.quiet,
        actors: None,
    })?;

    let asynchronous = scenario.update == crate::model::UpdateScheme::Asynchronous;
    let mut inferred = serde_json::Value::Null;
    let mut predictions = Vec::new();
    if asynchronous {
        say("inferring the reward from the recording");
        let inf = run_infer(&InferArgs {
            trajectory: out.join("simulate/trajectory.npz"),
            lambda: Some(scenario.lambda),
            bootstrap: 100,
            out: Some(out.join("infer")),
        })?;
        inferred = serde_json::to_value(&inf)?;
        let perturbations = [format!("lambda:{}", 2.0 * scenario.lambda), "kill:0".to_string()];
        for (i, p) in perturbations.iter().enumerate() {
            say(&format!("predicting the response to {p}"));
            let pred = run_predict(&PredictArgs {
                reward: out.join("infer/reward.npz"),
                scenario: args.scenario.clone(),
                perturb: p.clone(),
                model: "count".into(),
                out: Some(out.join(format!("predict/{i}_{}", p.replace([':', ','], "_")))),
            })?;
            predictions.push(json!({
                "perturbation": p,
                "tv_pred_truth": pred.tv_pred_truth,
                "tv_naive_truth": pred.tv_naive_truth,
            }));
        }
    } else {
        say("inference skipped: the tabular inversion needs asynchronous records");
    }
    let s = &solved[0];
    let t = sim.totals.ticks as f64;
    let summary = json!({
        "scenario": scenario.name,
        "output": out.display().to_string(),
        "seconds": t0.elapsed().as_secs_f64(),
        "solve": {
            "g": s.g, "mean_reward": s.mean_reward, "info_nats": s.info_nats,
            "converged": s.converged, "count_distribution": s.count_distribution,
        },
        "train": trained.runs.iter().map(|r| {
            let last = r.checkpoints.last();
            json!({
                "label": r.label,
                "ticks": r.ticks,
                "g": r.final_exact().map(|e| e.g),
                "g_over_optimum": r.final_exact().and_then(|e| e.ratio),
                "running_reward": last.map(|c| c.running_reward),
                "seconds": r.seconds,
            })
        }).collect::<Vec<_>>(),
        "simulate": {
            "ticks": sim.totals.ticks, "mean_reward": sim.totals.reward / t,
            "info_nats": sim.totals.info / t, "mean_spike_count": sim.totals.spikes as f64 / t,
        },
        "infer": if inferred.is_null() { serde_json::Value::Null } else { json!({
            "centred_correlation_with_truth": inferred["centred_correlation_with_truth"],
            "argmax_count": inferred["argmax_count"],
            "argmax_separated": inferred["argmax_separated"],
            "warnings": inferred["warnings"],
        })},
        "predict": predictions,
        "not_yet": ["HTML report (issue 8)"],
    });
    write_json(&out.join("summary.json"), &summary)?;
    Ok(summary)
}
