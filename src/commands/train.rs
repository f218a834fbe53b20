//! `marlin train`: decentralised learning on the actor runtime (theory §4).
//! Every neuron learns its own policy from its observation and the broadcast
//! signal; at each checkpoint the current policies are saved and, for
//! networks small enough, scored exactly against the solver's optimum g*.

use super::BadInput;
use crate::agents::{ConstantPolicy, LogisticPolicy, Neuron, Observation};
use crate::coding;
use crate::files::{Npz, write_json, write_text};
use crate::learn::decoder::OnlineDecoder;
use crate::learn::{
    Critic, CriticKind, Learnable, LearningNeuron, LearningSpec, LogisticLearner, PolicyKind, Rule, TabularLogits,
    Teacher, TeacherConfig,
};
use crate::model::{CodingCost, Network};
use crate::rng::{Domain, stream};
use crate::runtime::learners::LogisticTeam;
use crate::runtime::sparse::LogisticNeurons;
use crate::runtime::transport::Ranks;
use crate::runtime::{
    Engine, Layout, NoObserver, RunError, RunState, RunTotals, RuntimeNetwork, run_on, tabulate, try_run_on,
};
use crate::scenario::Scenario;
use crate::solver::{self, Policy, SolveOptions};
use anyhow::{Context, Result};
use ndarray::{Array, Array1, Array2, Array3};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Largest network scored exactly at every checkpoint.
pub const MAX_EXACT_EVAL: usize = 14;
/// Networks up to this size get the solver's layout (`p_fire`) in
/// learned_policy.npz, and its parameters beside it.
pub const TABULATED_POLICY: usize = 16;
/// Largest tabular policy per agent (entries).
pub const MAX_TABLE_PER_AGENT: usize = 1 << 22;
/// Largest total of tabular entries over all agents (8 bytes each: 2 GiB).
pub const MAX_TABLE_TOTAL: usize = 1 << 28;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainArgs {
    pub scenario: PathBuf,
    pub ticks: Option<u64>,
    pub rules: Option<Vec<Rule>>,
    pub policies: Option<Vec<PolicyKind>>,
    pub seed: Option<u64>,
    pub checkpoints: Option<usize>,
    pub shards: Option<usize>,
    pub threads: Option<usize>,
    /// `Some(k)`: train on the actor engine (k agents per shard actor; the
    /// critic is an actor); `None`: the barrier engine. Same results.
    pub actors: Option<usize>,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    /// Save a checkpoint at least this often (seconds of wall time; also at
    /// every evaluation checkpoint). Default [`CHECKPOINT_SECONDS`].
    pub checkpoint_every: Option<f64>,
    /// Continue the run whose output folder this is, from its checkpoint.
    pub resume: Option<PathBuf>,
}

/// Default wall-time interval between saved checkpoints.
pub const CHECKPOINT_SECONDS: f64 = 60.0;

/// Ticks per block of a training run: the grid on which it can stop, save
/// and resume (fixed by the network alone, so a resumed run splits its work
/// exactly as an uninterrupted one: same sums, same bits).
pub fn block_ticks(n: usize) -> u64 {
    ((1u64 << 22) / n.max(1) as u64).clamp(256, 1 << 20)
}

/// An exact score of a set of policies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exact {
    pub g: f64,
    pub mean_reward: f64,
    pub info_nats: f64,
    /// g / g* when the optimum is known and positive.
    pub ratio: Option<f64>,
    /// The evaluation's own warnings (e.g. a stationary distribution that
    /// did not converge).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The state of learning at one checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub tick: u64,
    /// ⟨r⟩ over the ticks since the previous checkpoint (NaN, written
    /// `null`, at tick 0).
    #[serde(with = "crate::files::nan_is_null")]
    pub running_reward: f64,
    /// ⟨Σ_acting log(π/p̂)⟩ over the same ticks, nats per tick, against the
    /// agents' running priors.
    #[serde(with = "crate::files::nan_is_null")]
    pub running_info: f64,
    /// running_reward − λ·running_info.
    #[serde(with = "crate::files::nan_is_null")]
    pub running_g: f64,
    /// The current policies scored exactly (small networks).
    pub exact: Option<Exact>,
}

/// Means of a learned logistic network's parameters over living neurons.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WeightSummary {
    pub mean_bias: f64,
    pub mean_input_weight: f64,
    /// Over every synapse (pre → post, pre ≠ post).
    pub mean_recurrent_weight: f64,
    pub fraction_recurrent_negative: f64,
    pub fraction_input_positive: f64,
}

/// One trained (rule, policy) combination.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LearnerRun {
    pub label: String,
    pub rule: Rule,
    pub policy: PolicyKind,
    pub seed: u64,
    pub ticks: u64,
    pub seconds: f64,
    pub ticks_per_second: f64,
    pub checkpoints: Vec<Checkpoint>,
    pub weights: Option<WeightSummary>,
    /// Where this run's learned_policy.npz is.
    pub policy_file: String,
    pub warnings: Vec<String>,
}

impl LearnerRun {
    /// The last checkpoint's exact score.
    pub fn final_exact(&self) -> Option<&Exact> {
        self.checkpoints.last().and_then(|c| c.exact.as_ref())
    }
}

/// The untrained network (every neuron firing at its prior, state-blind).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Untrained {
    pub running_reward: f64,
    pub ticks: u64,
    pub exact: Option<Exact>,
}

/// learning.json.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub scenario: String,
    pub n: usize,
    pub lambda: f64,
    pub update: String,
    pub cost: String,
    /// g* of the exact solver (fully observed networks small enough).
    pub optimum_g: Option<f64>,
    pub optimum_note: String,
    pub untrained: Untrained,
    pub learning: LearningSpec,
    pub runs: Vec<LearnerRun>,
    /// Every run's warnings (with its label) and the untrained network's.
    pub warnings: Vec<String>,
}

/// What `train` saves in its checkpoint: enough to continue where it was
/// and end with the same bits as a run never interrupted.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// The arguments of the run (scenario as an absolute path, out resolved).
    args: TrainArgs,
    /// SHA-256 of the scenario file: a resume refuses a changed scenario.
    scenario_sha256: String,
    untrained: Untrained,
    /// (rule, policy) combinations done, in order.
    finished: Vec<LearnerRun>,
    /// The combination under way.
    current: Option<InProgress>,
}

#[derive(Serialize, Deserialize)]
struct InProgress {
    label: String,
    state: RunState,
    /// The `Vec<LearningNeuron<L>>` of the combination's `L`, encoded by
    /// [`checkpoint::encode`](crate::checkpoint::encode).
    agents: Vec<u8>,
    checkpoints: Vec<Checkpoint>,
    /// Totals since the last evaluation checkpoint.
    interval: RunTotals,
    seconds: f64,
}

fn sha256_file(path: &Path) -> Result<String, BadInput> {
    crate::checkpoint::sha256_file(path).map_err(BadInput)
}

/// The arguments and saved progress of the run in `dir`, for `--resume`:
/// the saved arguments, except what never changes results (threads,
/// shards, quiet, checkpoint interval) when given again.
fn resume(dir: &Path, given: &TrainArgs) -> Result<(TrainArgs, Saved), BadInput> {
    let path = crate::checkpoint::path(dir, "train");
    let saved: Saved = crate::checkpoint::load_for_resume(&path, dir, "train").map_err(BadInput)?;
    let now = sha256_file(&saved.args.scenario)?;
    if now != saved.scenario_sha256 {
        return Err(BadInput(format!(
            "cannot resume from {}: the scenario {} changed since the checkpoint was saved; allowed: the same file",
            dir.display(),
            saved.args.scenario.display()
        )));
    }
    let mut args = saved.args.clone();
    args.threads = given.threads.or(args.threads);
    args.shards = given.shards.or(args.shards);
    args.checkpoint_every = given.checkpoint_every.or(args.checkpoint_every);
    args.quiet = given.quiet;
    // The folder may have moved since: results go where the checkpoint is.
    args.out = Some(dir.to_path_buf());
    args.resume = Some(dir.to_path_buf());
    crate::checkpoint::clean_leftovers(dir);
    tracing::info!(
        "resuming {} after {} finished combination(s){}",
        dir.display(),
        saved.finished.len(),
        saved
            .current
            .as_ref()
            .map_or(String::new(), |c| format!(", {} at tick {}", c.label, c.state.tick))
    );
    Ok((args, saved))
}

/// Everything a training run shares across (rule, policy) combinations.
struct Setup<'a> {
    scenario: &'a Scenario,
    spec: &'a LearningSpec,
    net: RuntimeNetwork,
    exact_net: Option<Network>,
    optimum: Option<f64>,
    layout: Layout,
    engine: Engine,
    seed: u64,
    quiet: bool,
    /// Where the checkpoint goes, and how often (seconds).
    checkpoint: PathBuf,
    checkpoint_every: f64,
    /// The MPI ranks of a distributed run (each runs its block of neurons).
    ranks: Option<&'a Ranks>,
    /// Whether this process writes files (one process, or rank 0).
    writes: bool,
    /// What learned_policy.npz is trained for, sealed with it (networks
    /// small enough to tabulate: those whose policy has `p_fire`).
    params: Option<super::params::Sealed<super::params::NetworkParams>>,
}

pub fn run_train(args: &TrainArgs) -> Result<TrainSummary> {
    run_train_on(args, None)
}

/// [`run_train`] as one rank of an MPI job (`ranks`): every rank trains its
/// block of neurons, the ranks exchange spikes and sums every tick, gather
/// the learners at each evaluation and checkpoint, and rank 0 writes every
/// file — the files a single process writes, bit for bit.
pub fn run_train_on(args: &TrainArgs, ranks: Option<&Ranks>) -> Result<TrainSummary> {
    let ranks = ranks.filter(|r| r.size() > 1);
    let writes = ranks.is_none_or(|r| r.rank() == 0);
    if ranks.is_some() && args.actors.is_some() {
        return Err(BadInput(
            "--actors runs the actor engine in one process; under MPI the ranks run the barrier engine: drop --actors"
                .into(),
        )
        .into());
    }
    let (args, saved) = match &args.resume {
        Some(dir) => {
            let (a, s) = resume(dir, args)?;
            (a, Some(s))
        }
        None => (args.clone(), None),
    };
    let args = &args;
    crate::checkpoint::check_interval(args.checkpoint_every).map_err(BadInput)?;
    let scenario = Scenario::load(&args.scenario).map_err(BadInput::from)?;
    let mut spec = scenario.learning.clone();
    if let Some(t) = args.ticks {
        if t == 0 {
            return Err(BadInput("--ticks must be at least 1".into()).into());
        }
        spec.ticks = t;
    }
    if let Some(r) = &args.rules {
        spec.rules = r.clone();
    }
    if let Some(p) = &args.policies {
        spec.policies = p.clone();
    }
    if let Some(c) = args.checkpoints {
        if c == 0 {
            return Err(BadInput("--checkpoints must be at least 1".into()).into());
        }
        spec.checkpoints = c;
    }
    let seed = args.seed.unwrap_or(scenario.seed);
    check_memory(&scenario, &spec.policies)?;
    let net = scenario.runtime_network();
    let n = net.n;
    if let Some(r) = ranks {
        crate::runtime::transport::check_ranks(n, r.size()).map_err(BadInput)?;
    }
    if spec.policies.contains(&PolicyKind::Tabular) {
        check_tables(&net).map_err(|e| BadInput(format!("{}: {}", scenario.path.display(), e.0)))?;
    }
    let critic_kind = spec
        .critic
        .unwrap_or_else(|| CriticKind::default_for(n, net.input.len()));
    spec.critic = Some(critic_kind);
    let exact_net = if n <= MAX_EXACT_EVAL {
        Some(scenario.tabular_network().map_err(BadInput::from)?)
    } else {
        None
    };
    // What learned_policy.npz is trained for, where it has the solver's layout.
    let params = match &exact_net {
        Some(net) => Some(super::params::NetworkParams::of(net)),
        None if n <= TABULATED_POLICY => Some(super::params::NetworkParams::of(
            &scenario.tabular_network().map_err(BadInput::from)?,
        )),
        None => None,
    }
    .map(|p| super::params::Sealed::new(crate::files::formats::POLICY, "marlin train", &scenario.name, p));
    let (optimum, mut optimum_note) = optimum(&scenario);
    if spec.decoder.is_some() {
        optimum_note.push_str(
            "; the learners are rewarded by a decoder of their own code, so g is scored with their own \
             posterior and g* is the optimum of [reward]'s table — the self-consistent code when the table is \
             its own log-posterior (as `marlin solve` writes it), a fixed point that learning can beat",
        );
    }
    let layout = Layout::for_network(n, args.shards, args.threads, ranks);
    let out = args.out.clone().unwrap_or_else(|| scenario.output.join("train"));
    if writes {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    }
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if writes && saved.is_none() && crate::checkpoint::path(&out, "train").exists() {
        tracing::warn!(
            "{} holds the checkpoint of an interrupted run; this run replaces it (`marlin train --resume {}` \
             would have continued it)",
            out.display(),
            out.display()
        );
    }
    let mut saved = match saved {
        Some(s) => s,
        None => Saved {
            args: TrainArgs {
                scenario: absolute(&args.scenario),
                out: Some(absolute(&out)),
                ..args.clone()
            },
            scenario_sha256: sha256_file(&args.scenario)?,
            untrained: Untrained {
                running_reward: f64::NAN,
                ticks: 0,
                exact: None,
            },
            finished: Vec::new(),
            current: None,
        },
    };
    let setup = Setup {
        scenario: &scenario,
        spec: &spec,
        net,
        exact_net,
        optimum,
        layout,
        engine: Engine::new(layout, args.actors),
        seed,
        quiet: args.quiet,
        checkpoint: crate::checkpoint::path(&out, "train"),
        checkpoint_every: args.checkpoint_every.unwrap_or(CHECKPOINT_SECONDS),
        ranks,
        writes,
        params,
    };
    let _saving = crate::checkpoint::Saving::new();
    if saved.untrained.ticks == 0 {
        saved.untrained = setup.untrained();
        setup.save_checkpoint(&saved)?;
    }
    let several = spec.rules.len() * spec.policies.len() > 1;
    let combinations = spec
        .rules
        .iter()
        .flat_map(|&r| spec.policies.iter().map(move |&p| (r, p)));
    for (i, (rule, policy)) in combinations.enumerate() {
        if i < saved.finished.len() {
            continue;
        }
        let label = format!("{}_{}", rule.name(), policy.name());
        let dir = if several { out.join(&label) } else { out.clone() };
        tracing::info!("training {label} for {} ticks", spec.ticks);
        let saved = &mut saved;
        let run = match policy {
            PolicyKind::Tabular => setup.train(rule, policy, &label, &dir, saved, |k, obs_len| {
                TabularLogits::new(obs_len.expect("checked table size")[k], 0.0)
            })?,
            PolicyKind::Logistic => {
                let fixed = scenario.logistic_neurons(&setup.net);
                setup.train(rule, policy, &label, &dir, saved, |k, _| {
                    initial_logistic(&setup.net, fixed.as_ref(), k)
                })?
            }
        };
        saved.finished.push(run);
        saved.current = None;
        setup.save_checkpoint(&*saved)?;
    }
    let untrained = saved.untrained;
    let runs = saved.finished;
    let warnings: Vec<String> = untrained
        .exact
        .iter()
        .flat_map(|e| e.warnings.iter().map(|w| format!("untrained, exact evaluation: {w}")))
        .chain(
            runs.iter()
                .flat_map(|r| r.warnings.iter().map(move |w| format!("{}: {w}", r.label))),
        )
        .collect();
    let summary = TrainSummary {
        scenario: scenario.name.clone(),
        n,
        lambda: scenario.lambda,
        update: scenario.update.to_string(),
        cost: scenario.cost.name().to_string(),
        optimum_g: optimum,
        optimum_note,
        untrained,
        learning: spec.clone(),
        warnings,
        runs,
    };
    if !writes {
        return Ok(summary);
    }
    write_json(&out.join("learning.json"), &summary).context("writing learning.json")?;
    let svg = learning_curve(&summary).map_err(|e| anyhow::anyhow!("drawing the learning curve: {e}"))?;
    write_text(&out.join("learning_curve.svg"), &svg)?;
    // Only now: a kill before this point leaves the checkpoint to resume from.
    crate::checkpoint::remove(&out);
    Ok(summary)
}

/// Neuron k's logistic learner before training: the scenario's fixed
/// neuron when it has `[neurons]` (weights widened to `f64`), else bias and
/// weights 0 (all-to-all: one weight per neuron, the own one unused).
fn initial_logistic(net: &RuntimeNetwork, fixed: Option<&LogisticNeurons>, k: usize) -> LogisticLearner {
    let topology = &net.topology;
    let Some(f) = fixed.filter(|_| !topology.all_to_all) else {
        return LogisticLearner::new(
            if topology.all_to_all {
                net.n
            } else {
                topology.in_degree(k)
            },
            0.0,
        );
    };
    let row = topology.offsets[k] as usize..topology.offsets[k + 1] as usize;
    let unit = LogisticPolicy {
        bias: f.bias[k],
        input_weight: f.input_weight[k],
        weights: f.synapse_weights(net, row),
    };
    let params = unit.weights.len() + 2;
    LogisticLearner::from_parts(unit, vec![0.0; params])
}

/// g* from the exact solver, or why there is none.
fn optimum(scenario: &Scenario) -> (Option<f64>, String) {
    // Before tabulating anything: a large network's tables alone could
    // exhaust memory.
    if scenario.neurons > 16 {
        return (
            None,
            format!(
                "no exact optimum: {} neurons is beyond quick exact solving (≤ 16)",
                scenario.neurons
            ),
        );
    }
    let net = match scenario.network() {
        Ok(net) => net,
        Err(e) => return (None, format!("no exact optimum: {}", e.message)),
    };
    match solver::solve(&net, &scenario.solver) {
        Ok(sol) if sol.converged => (Some(sol.eval.g), "exact solver (fully observed optimum)".into()),
        Ok(sol) => (
            Some(sol.eval.g),
            format!("exact solver did not converge: {}", sol.warnings.join("; ")),
        ),
        Err(e) => (None, format!("no exact optimum: {e}")),
    }
}

/// Refuse a network whose topology and logistic learners would not fit in
/// memory, before building either (tabular tables: [`check_tables`]).
fn check_memory(scenario: &Scenario, policies: &[PolicyKind]) -> Result<(), BadInput> {
    let n = scenario.neurons as u64;
    let all_to_all = scenario.topology == crate::topology::TopologySpec::AllToAll;
    let synapses = match all_to_all {
        true => n.saturating_mul(n),
        false => scenario.topology.expected_edges(scenario.neurons) as u64,
    };
    // The table (offsets, partners, weights), and per learner its weights
    // and trace (16 bytes a synapse), kept thrice (training, settled copies
    // for checkpoints and the saved policy), plus ~256 bytes of state.
    let topology = if all_to_all { 0 } else { 8 * (n + 1) + 8 * synapses };
    let learners = match policies.contains(&PolicyKind::Logistic) {
        true => 3 * 16 * (synapses + 2 * n),
        false => 0,
    };
    let need = topology.saturating_add(learners).saturating_add(256 * n);
    let budget = crate::memory::MemoryBudget::now();
    if !budget.fits(need) {
        return Err(BadInput(format!(
            "{}: {n} neurons with about {synapses} synapses need about {} MiB to train; {} — use fewer neurons \
             or a sparser topology",
            scenario.path.display(),
            need >> 20,
            budget.describe()
        )));
    }
    Ok(())
}

/// Refuse tabular policies whose tables cannot fit.
fn check_tables(net: &RuntimeNetwork) -> Result<(), BadInput> {
    let mut total = 0usize;
    for k in 0..net.n {
        let len = table_len(net, k);
        match len {
            Some(l) if l <= MAX_TABLE_PER_AGENT => total += l,
            _ => {
                return Err(BadInput(format!(
                    "a tabular policy for neuron {k} would need {} entries (X·2^n for all-to-all, X·2^(in-degree+1) \
                     otherwise); allowed: at most {MAX_TABLE_PER_AGENT} per neuron — use policy = \"logistic\" \
                     or a sparser topology",
                    len.map_or("more than 2^32".to_string(), |l| l.to_string())
                )));
            }
        }
    }
    let budget = crate::memory::MemoryBudget::now();
    // The tables and their traces, and the settled copies of a checkpoint.
    let need = (total as u64).saturating_mul(8 * 3);
    if total <= MAX_TABLE_TOTAL && !budget.fits(need) {
        return Err(BadInput(format!(
            "tabular policies would need {total} entries in all, about {} MiB with their traces; {} — use \
             policy = \"logistic\"",
            need >> 20,
            budget.describe()
        )));
    }
    if total > MAX_TABLE_TOTAL {
        return Err(BadInput(format!(
            "tabular policies would need {total} entries in all ({:.1} GiB); allowed: at most {MAX_TABLE_TOTAL} — \
             use policy = \"logistic\"",
            total as f64 * 8.0 / (1u64 << 30) as f64
        )));
    }
    Ok(())
}

fn table_len(net: &RuntimeNetwork, k: usize) -> Option<usize> {
    let degree = (!net.topology.all_to_all).then(|| net.topology.partners(k).len());
    Observation::table_len(net.n, degree, net.input.len(), net.receives_input[k])
}

impl Setup<'_> {
    fn priors(&self) -> (Vec<f64>, f64) {
        match &self.scenario.cost {
            CodingCost::FixedPrior(p) => (p.clone(), 0.0),
            CodingCost::MutualInformation => (vec![0.5; self.net.n], self.spec.prior_rate),
        }
    }

    /// Tick 0, with the environment's online decoder when the reward is the code's own.
    fn initial_state(&self) -> RunState {
        let mut state = RunState::initial(&self.net, self.seed);
        state.decoder = self.spec.decoder.as_ref().map(|d| {
            let mu = self.net.input.initial();
            let on: f64 = mu.iter().zip(&d.feature).filter(|(_, f)| **f).map(|(p, _)| p).sum();
            OnlineDecoder::new(self.net.n, d, on)
        });
        state
    }

    /// The exact score of the policies `fire`. With a decoder the reward is
    /// the policies' own log-posterior (theory §8): g = ⟨log p_π(y | σ)⟩ − λ·I.
    fn score(&self, fire: Vec<f64>) -> Option<Exact> {
        let net = self.exact_net.as_ref()?;
        let policy = Policy { n: net.n, fire };
        let opts = SolveOptions {
            stationary_tol: 1e-12,
            ..self.scenario.solver.clone()
        };
        let mut e = solver::evaluate(net, &policy, &opts);
        if let Some(d) = &self.spec.decoder {
            let own = coding::posterior(net.n, &d.feature, &e.rho);
            e.mean_reward = coding::mean_log_posterior(net.n, &d.feature, &e.rho, &own);
            e.g = e.mean_reward - self.scenario.lambda * e.info_nats;
        }
        Some(Exact {
            g: e.g,
            mean_reward: e.mean_reward,
            info_nats: e.info_nats,
            // (A ratio of negative values, e.g. mean log-posteriors, means nothing.)
            ratio: self.optimum.filter(|&g| g > 0.0).map(|g| e.g / g),
            warnings: e.warnings,
        })
    }

    /// The state-blind network at the priors: exact score and a short run.
    fn untrained(&self) -> Untrained {
        let (priors, _) = self.priors();
        let mut agents: Vec<Neuron<ConstantPolicy>> =
            Neuron::team(priors.iter().map(|&p| ConstantPolicy(p)).collect(), &priors, self.seed);
        let ticks = self.spec.ticks.min(200_000);
        let (_, totals) = run_on(
            &self.net,
            &mut agents,
            self.layout,
            self.initial_state(),
            ticks,
            &mut NoObserver,
            self.ranks,
        );
        let exact = self.exact_net.as_ref().map(|_| tabulate(&self.net, &agents));
        Untrained {
            running_reward: totals.reward / ticks as f64,
            ticks,
            exact: exact.and_then(|f| self.score(f)),
        }
    }

    /// Train one (rule, policy) combination; `make(k, table_lens)` builds
    /// neuron k's initial parameters. Runs on the grid of [`block_ticks`],
    /// saving the checkpoint (`saved.current`) at every evaluation
    /// checkpoint, at least every `checkpoint_every` seconds, and when a
    /// stop is requested (then returns [`Interrupted`](crate::checkpoint::Interrupted)).
    /// Continues from `saved.current` when it holds this combination.
    #[allow(clippy::too_many_arguments)]
    fn train<L: Learnable + Export + Unpin + Serialize + serde::de::DeserializeOwned + 'static>(
        &self,
        rule: Rule,
        policy: PolicyKind,
        label: &str,
        dir: &Path,
        saved: &mut Saved,
        make: impl Fn(usize, Option<&[usize]>) -> L,
    ) -> Result<LearnerRun> {
        let spec = self.spec;
        let net = &self.net;
        let n = net.n;
        if self.writes {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let lens: Option<Vec<usize>> =
            (policy == PolicyKind::Tabular).then(|| (0..n).map(|k| table_len(net, k).expect("checked")).collect());
        let (priors, prior_rate) = self.priors();
        let policy_file = dir.join("learned_policy.npz");
        let (mut agents, mut state, mut checkpoints, mut interval, seconds_before) =
            match saved.current.take().filter(|c| c.label == label) {
                Some(c) => {
                    let agents: Vec<LearningNeuron<L>> = crate::checkpoint::decode(&c.agents)
                        .map_err(|e| anyhow::anyhow!("the checkpoint's agents do not decode: {e}"))?;
                    (agents, c.state, c.checkpoints, c.interval, c.seconds)
                }
                None => {
                    let agents: Vec<LearningNeuron<L>> = (0..n)
                        .map(|k| LearningNeuron {
                            id: k,
                            params: make(k, lens.as_deref()),
                            prior: priors[k],
                            prior_rate,
                            trace_decay: spec.trace_decay,
                            caught_up: 0.0,
                            rng: stream(self.seed, Domain::Agent, k as u64),
                        })
                        .collect();
                    let rate = match policy {
                        PolicyKind::Tabular => spec.tabular_rate,
                        PolicyKind::Logistic => spec.logistic_rate,
                    };
                    let config = TeacherConfig {
                        rule,
                        lambda: self.scenario.lambda,
                        own_cost: spec.own_cost,
                        rate,
                        decay_ticks: spec.rate_decay_ticks,
                        baseline_rate: spec.baseline_rate,
                        critic_rate: spec.critic_rate,
                    };
                    let critic = Critic::new(spec.critic.expect("set by run_train"), n, net.input.len());
                    let mut state = self.initial_state();
                    state.teacher = Some(Teacher::new(config, Some(critic)));
                    let first = self.checkpoint(&agents, &state, 0, None);
                    (agents, state, vec![first], RunTotals::default(), 0.0)
                }
            };

        let bar = crate::progress::Task::start(label, "ticks", Some(spec.ticks), self.quiet || !self.writes);
        bar.set_position(state.tick);
        let t0 = std::time::Instant::now();
        let mut last_save = std::time::Instant::now();
        let block = block_ticks(n);
        let evaluations: Vec<u64> = (1..=spec.checkpoints)
            .map(|i| spec.ticks * i as u64 / spec.checkpoints as u64)
            .collect();
        while state.tick < spec.ticks {
            let done = state.tick;
            let next_eval = *evaluations.iter().find(|&&e| e > done).expect("the last is spec.ticks");
            let until = next_eval.min((done / block + 1) * block);
            let (a, next, totals) = L::run_block(self.engine, net, agents, state, until - done, self.ranks)
                .map_err(|e| crate::checkpoint::left_resumable(anyhow::anyhow!("{e}"), "train", &self.checkpoint))?;
            agents = a;
            state = next;
            interval.reward += totals.reward;
            interval.info += totals.info;
            interval.spikes += totals.spikes;
            interval.ticks += until - done;
            bar.set_position(until);
            let evaluated = until == next_eval;
            // Every rank takes the same decisions (evaluations fall on the
            // same ticks; a save or stop due on one rank is agreed).
            let due = evaluated || last_save.elapsed().as_secs_f64() >= self.checkpoint_every;
            let (save, stop) = super::agree(self.ranks, due);
            if save {
                agents = self.gather(agents)?;
            }
            if evaluated {
                let ticks = interval.ticks as f64;
                let running = (interval.reward / ticks, interval.info / ticks);
                let cp = self.checkpoint(&agents, &state, until, Some(running));
                bar.set_message(format!("⟨r⟩ {:.3}", running.0));
                tracing::debug!(tick = until, reward = running.0, exact = ?cp.exact.as_ref().map(|e| e.g), "checkpoint");
                checkpoints.push(cp);
                interval = RunTotals::default();
                if self.writes {
                    self.save(&agents, &state, &policy_file)?;
                }
            }
            if save {
                saved.current = Some(InProgress {
                    label: label.to_string(),
                    state: state.clone(),
                    agents: crate::checkpoint::encode(&agents)?,
                    checkpoints: checkpoints.clone(),
                    interval: interval.clone(),
                    seconds: seconds_before + t0.elapsed().as_secs_f64(),
                });
                self.save_checkpoint(&*saved)?;
                tracing::debug!(tick = until, "checkpoint saved");
                last_save = std::time::Instant::now();
            }
            if stop {
                bar.abandon();
                return Err(crate::checkpoint::interrupted("train", until, &self.checkpoint).into());
            }
        }
        saved.current = None;
        bar.finish();
        let seconds = seconds_before + t0.elapsed().as_secs_f64();
        let settled = settle(&agents, &state);
        let weights = L::weight_summary(&settled, net);
        if let Some(w) = &weights {
            let svg = crate::report::matrix(
                &format!("learned synaptic weights w[post, pre] ({label})"),
                "presynaptic neuron",
                "postsynaptic neuron",
                &L::weight_rows(&settled, net),
            )
            .map_err(|e| anyhow::anyhow!("drawing the weight matrix: {e}"))?;
            if self.writes {
                write_text(&dir.join("weights.svg"), &svg)?;
            }
            tracing::info!(
                "{label}: mean input weight {:.3}, mean recurrent weight {:.3}",
                w.mean_input_weight,
                w.mean_recurrent_weight
            );
        }
        let mut warnings = Vec::new();
        if let Some(e) = checkpoints.last().and_then(|c| c.exact.as_ref()) {
            if !e.g.is_finite() {
                warnings.push("the exact score of the learned policies is not finite".into());
            }
            warnings.extend(e.warnings.iter().map(|w| format!("exact evaluation: {w}")));
        }
        if let Some(c) = checkpoints.iter().find(|c| c.tick > 0 && !c.running_g.is_finite()) {
            warnings.push(format!("the running objective is not finite at tick {}", c.tick));
        }
        Ok(LearnerRun {
            label: label.to_string(),
            rule,
            policy,
            seed: self.seed,
            ticks: spec.ticks,
            seconds,
            ticks_per_second: spec.ticks as f64 / seconds.max(1e-9),
            checkpoints,
            weights,
            policy_file: crate::files::outdir::recorded(&policy_file),
            warnings,
        })
    }

    /// Save the run's checkpoint (rank 0 of a distributed run; the others
    /// hold the same state).
    fn save_checkpoint(&self, saved: &Saved) -> Result<()> {
        match self.writes {
            true => crate::checkpoint::save(&self.checkpoint, saved),
            false => Ok(()),
        }
    }

    /// Every neuron's learner: under MPI each rank brings its own block up
    /// to date (the others' entries are stale between gathers).
    fn gather<L: Learnable + Serialize + serde::de::DeserializeOwned>(
        &self,
        agents: Vec<LearningNeuron<L>>,
    ) -> Result<Vec<LearningNeuron<L>>> {
        let Some(r) = self.ranks else {
            return Ok(agents);
        };
        let n = self.net.n;
        let block = crate::runtime::transport::rank_neurons(n, r.rank(), r.size());
        let mine = crate::checkpoint::encode(&agents[block])?;
        let mut all = Vec::with_capacity(n);
        for (rank, bytes) in super::gather_bytes(Some(r), mine).into_iter().enumerate() {
            let part: Vec<LearningNeuron<L>> = crate::checkpoint::decode(&bytes)
                .map_err(|e| anyhow::anyhow!("rank {rank}'s learners do not decode: {e}"))?;
            all.extend(part);
        }
        anyhow::ensure!(all.len() == n, "gathered {} learners for {n} neurons", all.len());
        Ok(all)
    }

    fn checkpoint<L: Learnable>(
        &self,
        agents: &[LearningNeuron<L>],
        state: &RunState,
        tick: u64,
        running: Option<(f64, f64)>,
    ) -> Checkpoint {
        let (r, info) = running.unwrap_or((f64::NAN, f64::NAN));
        let exact = self
            .exact_net
            .as_ref()
            .and_then(|_| self.score(tabulate(&self.net, &settle(agents, state))));
        Checkpoint {
            tick,
            running_reward: r,
            running_info: info,
            running_g: r - self.scenario.lambda * info,
            exact,
        }
    }

    /// learned_policy.npz (atomically): the solver's layout where the state
    /// space is small, plus the parametrisation's own arrays.
    fn save<L: Learnable + Export>(&self, agents: &[LearningNeuron<L>], state: &RunState, path: &Path) -> Result<()> {
        let net = &self.net;
        let settled = settle(agents, state);
        let mut npz = match &self.params {
            Some(p) => p.archive(),
            None => Npz::sealed(crate::files::formats::POLICY, super::params::VERSION, None),
        };
        let xs = net.input.len();
        if net.n <= TABULATED_POLICY {
            let fire = tabulate(net, &settled);
            npz.add(
                "p_fire",
                Array3::from_shape_vec((xs, 1 << net.n, net.n), fire).expect("policy shape"),
            );
        }
        npz.add(
            "prior",
            Array1::from(settled.iter().map(|a| a.prior).collect::<Vec<_>>()),
        )
        .add("input_values", Array1::from(net.input.values.clone()))
        .add(
            "transition",
            Array2::from_shape_vec((xs, xs), net.input.transition.clone()).expect("transition shape"),
        )
        .add("lambda", Array::from_elem((), self.scenario.lambda))
        .add("tick", Array::from_elem((), state.tick as i64));
        L::export(&settled, net, &mut npz);
        match &self.params {
            Some(p) => p.write(npz, path),
            None => npz.write(path).with_context(|| format!("writing {}", path.display())),
        }
    }
}

/// The agents with every broadcast signal so far applied (a copy: the
/// training run itself applies them lazily, so checkpoints never change it).
fn settle<L: Learnable>(agents: &[LearningNeuron<L>], state: &RunState) -> Vec<LearningNeuron<L>> {
    let b = state
        .teacher
        .as_ref()
        .expect("training has a teacher")
        .broadcast(state.tick);
    agents
        .iter()
        .map(|a| {
            let mut a = a.clone();
            crate::agents::Agent::catch_up(&mut a, &b);
            a
        })
        .collect()
}

/// One block of training on `engine`: the learners, the state after it and
/// the block's totals.
pub type Block<L> = (Vec<LearningNeuron<L>>, RunState, RunTotals);

/// Run `ticks` ticks of `agents` on `engine` (the agent engines), or as
/// this rank's block of a distributed run (`agents` holds all n; the
/// others' entries are left as they are).
fn run_agents<L: Learnable + Unpin + 'static>(
    engine: Engine,
    net: &RuntimeNetwork,
    mut agents: Vec<LearningNeuron<L>>,
    state: RunState,
    ticks: u64,
    ranks: Option<&Ranks>,
) -> Result<Block<L>, RunError> {
    match (ranks, engine) {
        (Some(r), Engine::Hosted(layout)) => {
            let (state, totals) = try_run_on(net, &mut agents, layout, state, ticks, &mut NoObserver, Some(r))?;
            Ok((agents, state, totals))
        }
        _ => {
            let (agents, state, totals, _) = engine.run(net, agents, state, ticks, NoObserver)?;
            Ok((agents, state, totals))
        }
    }
}

/// How a parametrisation trains, goes into learned_policy.npz and figures.
pub trait Export: Sized {
    /// One block of training (the same bits whichever way it runs).
    fn run_block(
        engine: Engine,
        net: &RuntimeNetwork,
        agents: Vec<LearningNeuron<Self>>,
        state: RunState,
        ticks: u64,
        ranks: Option<&Ranks>,
    ) -> Result<Block<Self>, RunError>
    where
        Self: Learnable + Unpin + 'static,
    {
        run_agents(engine, net, agents, state, ticks, ranks)
    }
    fn export(agents: &[LearningNeuron<Self>], net: &RuntimeNetwork, npz: &mut Npz)
    where
        Self: Learnable;
    fn weight_summary(_agents: &[LearningNeuron<Self>], _net: &RuntimeNetwork) -> Option<WeightSummary>
    where
        Self: Learnable,
    {
        None
    }
    fn weight_rows(_agents: &[LearningNeuron<Self>], _net: &RuntimeNetwork) -> Vec<Vec<f64>>
    where
        Self: Learnable,
    {
        Vec::new()
    }
}

impl Export for TabularLogits {
    /// `logits` `[n, L]`: each neuron's table over its observation index,
    /// NaN-padded to the longest (when it fits in 2²⁷ entries).
    fn export(agents: &[LearningNeuron<Self>], _net: &RuntimeNetwork, npz: &mut Npz) {
        let width = agents.iter().map(|a| a.params.logits.len()).max().unwrap_or(0);
        if agents.len() * width <= 1 << 27 {
            let mut m = Array2::from_elem((agents.len(), width), f64::NAN);
            for (k, a) in agents.iter().enumerate() {
                for (j, &v) in a.params.logits.iter().enumerate() {
                    m[[k, j]] = v;
                }
            }
            npz.add("logits", m);
        }
    }
}

/// The synapses of neuron k as (presynaptic id, weight).
fn synapses<'a>(a: &'a LearningNeuron<LogisticLearner>, net: &'a RuntimeNetwork) -> Vec<(usize, f64)> {
    let k = a.id;
    if net.topology.all_to_all {
        (0..net.n)
            .filter(|&j| j != k)
            .map(|j| (j, a.params.unit.weights[j]))
            .collect()
    } else {
        net.topology
            .partners(k)
            .iter()
            .zip(&a.params.unit.weights)
            .map(|(&j, &w)| (j as usize, w))
            .collect()
    }
}

impl Export for LogisticLearner {
    /// On the hosted engine, as a [`LogisticTeam`] (arrays, one fused pass
    /// per update, bit-identical to the agents) whenever the learners fit
    /// one (a topology listing partners, γ_e = 0); as agents otherwise and
    /// on the actor engine (`--actors`).
    fn run_block(
        engine: Engine,
        net: &RuntimeNetwork,
        mut agents: Vec<LearningNeuron<Self>>,
        state: RunState,
        ticks: u64,
        ranks: Option<&Ranks>,
    ) -> Result<Block<Self>, RunError> {
        let Engine::Hosted(layout) = engine else {
            return run_agents(engine, net, agents, state, ticks, ranks);
        };
        let block = ranks.map_or(0..net.n, |r| {
            crate::runtime::transport::rank_neurons(net.n, r.rank(), r.size())
        });
        match LogisticTeam::from_agents(net, &agents[block.clone()], block.clone()) {
            Ok(mut team) => {
                let (state, totals) = team.run(net, layout, state, ticks, &mut NoObserver, ranks)?;
                for (a, learned) in agents[block].iter_mut().zip(team.to_agents(net)) {
                    *a = learned;
                }
                Ok((agents, state, totals))
            }
            Err(why) => {
                tracing::debug!("logistic learners run as agents: {why}");
                run_agents(engine, net, agents, state, ticks, ranks)
            }
        }
    }

    /// `bias` `[n]`, `input_weight` `[n]`, synapses as `synapse_post`,
    /// `synapse_pre`, `synapse_weight` `[S]`, and the dense `weights`
    /// `[n, n]` (w[post, pre]; 0 where no synapse) for n ≤ 2048.
    fn export(agents: &[LearningNeuron<Self>], net: &RuntimeNetwork, npz: &mut Npz) {
        let (mut post, mut pre, mut weight) = (Vec::new(), Vec::new(), Vec::new());
        for a in agents {
            for (j, w) in synapses(a, net) {
                post.push(a.id as i64);
                pre.push(j as i64);
                weight.push(w);
            }
        }
        npz.add(
            "bias",
            Array1::from(agents.iter().map(|a| a.params.unit.bias).collect::<Vec<_>>()),
        )
        .add(
            "input_weight",
            Array1::from(agents.iter().map(|a| a.params.unit.input_weight).collect::<Vec<_>>()),
        );
        if net.n <= 2048 {
            let mut dense = Array2::zeros((net.n, net.n));
            for ((&p, &q), &w) in post.iter().zip(&pre).zip(&weight) {
                dense[[p as usize, q as usize]] = w;
            }
            npz.add("weights", dense);
        }
        npz.add("synapse_post", Array1::from(post))
            .add("synapse_pre", Array1::from(pre))
            .add("synapse_weight", Array1::from(weight));
    }

    fn weight_summary(agents: &[LearningNeuron<Self>], net: &RuntimeNetwork) -> Option<WeightSummary> {
        let living: Vec<&LearningNeuron<Self>> = agents.iter().filter(|a| net.alive[a.id]).collect();
        let inputs: Vec<f64> = living
            .iter()
            .filter(|a| net.receives_input[a.id])
            .map(|a| a.params.unit.input_weight)
            .collect();
        let recurrent: Vec<f64> = living
            .iter()
            .flat_map(|a| {
                synapses(a, net)
                    .into_iter()
                    .filter(|(j, _)| net.alive[*j])
                    .map(|(_, w)| w)
            })
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let frac = |v: &[f64], f: fn(f64) -> bool| v.iter().filter(|w| f(**w)).count() as f64 / v.len().max(1) as f64;
        Some(WeightSummary {
            mean_bias: mean(&living.iter().map(|a| a.params.unit.bias).collect::<Vec<_>>()),
            mean_input_weight: mean(&inputs),
            mean_recurrent_weight: mean(&recurrent),
            fraction_recurrent_negative: frac(&recurrent, |w| w < 0.0),
            fraction_input_positive: frac(&inputs, |w| w > 0.0),
        })
    }

    /// w[post, pre] for the figure (at most 256 neurons shown), NaN on the
    /// diagonal and where there is no synapse.
    fn weight_rows(agents: &[LearningNeuron<Self>], net: &RuntimeNetwork) -> Vec<Vec<f64>> {
        let m = net.n.min(256);
        let mut rows = vec![vec![f64::NAN; m]; m];
        for a in agents.iter().take(m) {
            for (j, w) in synapses(a, net) {
                if j < m {
                    rows[a.id][j] = w;
                }
            }
        }
        rows
    }
}

/// g/g* (or the running g when no exact score exists) against ticks, one
/// line per run.
fn learning_curve(s: &TrainSummary) -> Result<String, Box<dyn std::error::Error>> {
    let exact = s.runs.iter().all(|r| r.checkpoints.iter().all(|c| c.exact.is_some()));
    let ratio = exact && s.optimum_g.is_some_and(|g| g > 0.0);
    let series: Vec<(String, Vec<(f64, f64)>)> = s
        .runs
        .iter()
        .map(|r| {
            let pts = r
                .checkpoints
                .iter()
                .map(|c| {
                    let y = match &c.exact {
                        Some(e) if ratio => e.ratio.unwrap_or(f64::NAN),
                        Some(e) => e.g,
                        None => c.running_g,
                    };
                    (c.tick as f64, y)
                })
                .collect();
            (r.label.replace('_', " "), pts)
        })
        .collect();
    let (y_desc, reference) = if ratio {
        (
            "g / g* (exact evaluation of the learned policies)",
            Some((1.0, "optimum g*")),
        )
    } else if exact {
        (
            "g, nats-penalised reward per tick (exact)",
            s.optimum_g.map(|g| (g, "optimum g*")),
        )
    } else {
        ("running g = ⟨r⟩ − λ·info per tick", None)
    };
    crate::report::lines(
        &format!("{}: learning (λ = {})", s.scenario, s.lambda),
        "ticks",
        y_desc,
        &series,
        reference,
    )
}
