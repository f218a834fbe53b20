//! Scenario files: TOML in, a validated [`Scenario`] out.
//!
//! Owns the file format and every check on it. Parsing is strict (unknown
//! keys are errors, so a typo is never silently ignored) and every error names
//! the file, the line and column, the key, what was wrong and what is allowed.
//! Validation completes before anything is written or allocated at scale.
//! Depends on [`crate::model`] only; the rest of marlin sees a `Scenario`.

pub mod coding;
pub mod maze;

pub use coding::CodingScenario;
pub use maze::MazeScenario;

use crate::model::{CodingCost, InputProcess, MAX_TABULAR_NEURONS, Network, RewardSpec, UpdateScheme};
use crate::topology::TopologySpec;
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Largest network a scenario may describe (the runtime's limit).
pub const MAX_NEURONS: usize = 10_000_000;
/// Largest number of input values.
pub const MAX_INPUTS: usize = 4096;
/// Most motor neurons per direction of a maze input.
pub const MAX_MOTOR_NEURONS: i64 = 1_000_000;

/// The maze of `[input] maze = ...` and its motor groups.
fn motor_maze(cx: &Cx, inp: &InputSection, map: &Spanned<String>, n: usize) -> Result<MotorMaze, ScenarioError> {
    let slip = match &inp.slip {
        Some(v) => cx.prob(v, "input.slip", false, true)?,
        None => 0.0,
    };
    let goals = maze::goal_letters(cx, &inp.goals, "input.goals")?;
    let m =
        crate::maze::Maze::parse(map.get_ref(), &goals, slip).map_err(|e| maze::map_error(cx, map, "input.maze", e))?;
    let per_direction = match &inp.motor_neurons {
        Some(v) => cx.count(v, "input.motor_neurons", 1, MAX_MOTOR_NEURONS)?,
        None => 1,
    };
    if 4 * per_direction > n {
        return Err(cx.err(
            inp.motor_neurons.as_ref().map_or(map.span(), |v| v.span()),
            "input.motor_neurons",
            format!(
                "4 groups (N, E, S, W) of {} need {} neurons but network.neurons = {n}; allowed: motor_neurons ≤ {}",
                crate::text::count(per_direction as u64, "motor neuron"),
                4 * per_direction,
                n / 4
            ),
        ));
    }
    if m.states() > MAX_INPUTS {
        return Err(cx.err(
            map.span(),
            "input.maze",
            format!("{} free cells; allowed: at most {MAX_INPUTS}", m.states()),
        ));
    }
    Ok(MotorMaze {
        maze: m,
        goals,
        per_direction,
    })
}

/// A bad scenario: where, which key, what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        f.write_str(": ")?;
        if let Some(k) = &self.key {
            write!(f, "`{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

// ---------------------------------------------------------------------------
// The file format (serde mirror of the TOML). Every table denies unknown keys.

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    description: Option<String>,
    seed: Option<Spanned<i64>>,
    output: Option<String>,
    network: Spanned<NetworkSection>,
    input: Spanned<InputSection>,
    reward: Spanned<RewardSection>,
    cost: Spanned<CostSection>,
    solver: Option<SolverSection>,
    learning: Option<Spanned<LearningSection>>,
    study: Option<Spanned<StudySection>>,
    neurons: Option<Spanned<NeuronsSection>>,
}

/// `[neurons]`: fixed logistic neurons (see [`NeuronsSpec`]). Flat keys, so
/// each keeps its position for errors; which apply depends on `weights`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct NeuronsSection {
    bias: Spanned<f64>,
    input_weight: Option<Spanned<f64>>,
    weights: Spanned<WeightRuleName>,
    excitatory_fraction: Option<Spanned<f64>>,
    excitatory_weight: Option<Spanned<f64>>,
    inhibitory_weight: Option<Spanned<f64>>,
    weight: Option<Spanned<f64>>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum WeightRuleName {
    Dale,
    Uniform,
    EdgeList,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    neurons: Spanned<i64>,
    #[serde(default)]
    update: Option<Spanned<UpdateName>>,
    q: Option<Spanned<f64>>,
    #[serde(default)]
    dead: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    topology: Option<Spanned<Topology>>,
    inputs: Option<Spanned<InputsValue>>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum UpdateName {
    Asynchronous,
    Synchronous,
    RandomPartial,
}

/// Who observes whom (see [`crate::topology`]).
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Topology {
    AllToAll,
    /// No neuron observes another (each sees the input and itself).
    None,
    Ring {
        k: i64,
    },
    RandomInDegree {
        k: i64,
    },
    ErdosRenyi {
        p: f64,
    },
    SmallWorld {
        k: i64,
        beta: f64,
    },
    Lattice2d {
        width: i64,
        height: i64,
        #[serde(default)]
        periodic: bool,
    },
    EdgeList {
        file: String,
        #[serde(default)]
        allow_self_loops: bool,
    },
}

/// Which neurons observe the input: `"all"` or a list of neuron indices.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum InputsValue {
    Word(String),
    List(Vec<i64>),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct InputSection {
    values: Option<Spanned<Vec<f64>>>,
    switch_probability: Option<Spanned<f64>>,
    transition: Option<Spanned<Vec<Vec<f64>>>>,
    /// A maze the network drives (theory §7): the input is the walker's cell.
    maze: Option<Spanned<String>>,
    goals: Option<Spanned<std::collections::BTreeMap<String, f64>>>,
    slip: Option<Spanned<f64>>,
    motor_neurons: Option<Spanned<i64>>,
}

/// The reward table. Flat (not a serde-tagged enum) so every key keeps its
/// position for error messages; which keys apply depends on `kind`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RewardSection {
    kind: Spanned<RewardKind>,
    targets: Option<Spanned<Vec<i64>>>,
    value: Option<Spanned<f64>>,
    on: Option<Spanned<Vec<Vec<i64>>>>,
    off: Option<Spanned<Vec<Vec<i64>>>>,
    mode: Option<Spanned<PatternMode>>,
    file: Option<Spanned<String>>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum RewardKind {
    TargetCount,
    Pattern,
    Table,
    /// The goal rewards of a maze input, in the walker's cell.
    Goal,
}

#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum PatternMode {
    Fraction,
    AllOrNothing,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CostSection {
    lambda: Spanned<f64>,
    kind: Option<Spanned<CostName>>,
    prior: Option<Spanned<PriorValue>>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum CostName {
    MutualInformation,
    FixedPrior,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum PriorValue {
    Shared(f64),
    PerNeuron(Vec<f64>),
}

/// Optional solver knobs; see [`crate::solver::SolveOptions`].
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SolverSection {
    value_tol: Option<Spanned<f64>>,
    max_value_sweeps: Option<Spanned<i64>>,
    eval_sweeps: Option<Spanned<i64>>,
    damping: Option<Spanned<f64>>,
    prior_tol: Option<Spanned<f64>>,
    max_prior_iterations: Option<Spanned<i64>>,
    starts: Option<Spanned<i64>>,
    start_seed: Option<Spanned<i64>>,
}

/// `[learning]`: see [`crate::learn::LearningSpec`] for meanings and defaults.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct LearningSection {
    rule: Option<Spanned<OneOrMany<String>>>,
    policy: Option<Spanned<OneOrMany<String>>>,
    ticks: Option<Spanned<i64>>,
    checkpoints: Option<Spanned<i64>>,
    tabular_rate: Option<Spanned<f64>>,
    logistic_rate: Option<Spanned<f64>>,
    rate_decay_ticks: Option<Spanned<f64>>,
    trace_decay: Option<Spanned<f64>>,
    baseline_rate: Option<Spanned<f64>>,
    critic: Option<Spanned<CriticName>>,
    critic_rate: Option<Spanned<f64>>,
    prior_rate: Option<Spanned<f64>>,
    cost: Option<Spanned<CostShare>>,
    decoder: Option<Spanned<DecoderSection>>,
}

/// `[learning] decoder = { feature = [0, 1, …], rate, reliability }`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct DecoderSection {
    feature: Spanned<Vec<Spanned<i64>>>,
    rate: Option<Spanned<f64>>,
    reliability: Option<Spanned<f64>>,
}

/// `[study]`: what `marlin run` does; see [`StudySpec`].
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct StudySection {
    ticks: Option<Spanned<i64>>,
    bootstrap: Option<Spanned<i64>>,
    train: Option<bool>,
    perturbations: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum CriticName {
    Tabular,
    Counts,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum CostShare {
    Team,
    Own,
}

// ---------------------------------------------------------------------------
// The validated scenario.

/// The text of a scenario file, or an error naming it.
fn read_scenario(path: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read the scenario file: {e}"),
    })
}

/// Any scenario: a network of neurons, a maze, or a sensory-coding task.
#[derive(Clone, Debug)]
pub enum World {
    Network(Box<Scenario>),
    Maze(Box<MazeScenario>),
    Coding(Box<CodingScenario>),
}

impl World {
    /// Read and validate a scenario file of either kind.
    pub fn load(path: &Path) -> Result<World, ScenarioError> {
        Self::parse(&read_scenario(path)?, path)
    }

    /// Validate scenario text of any kind (a `[maze]` table makes a maze, a
    /// `[coding]` table a sensory-coding task).
    pub fn parse(text: &str, path: &Path) -> Result<World, ScenarioError> {
        let cx = Cx { text, path };
        match toml::from_str::<toml::Table>(text) {
            Ok(doc) if maze::is_maze(&doc) => Ok(World::Maze(Box::new(maze::parse(&cx, text)?))),
            Ok(doc) if coding::is_coding(&doc) => Ok(World::Coding(Box::new(coding::parse(&cx, text)?))),
            _ => Ok(World::Network(Box::new(Scenario::parse(text, path)?))),
        }
    }

    /// The scenario's output folder (`output`): each command writes into
    /// a folder of its own inside it.
    pub fn output(&self) -> &Path {
        match self {
            World::Network(s) => &s.output,
            World::Maze(m) => &m.output,
            World::Coding(c) => &c.output,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            World::Network(s) => &s.description,
            World::Maze(m) => &m.description,
            World::Coding(c) => &c.description,
        }
    }
}

/// A validated scenario: everything needed to build and run a network.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub output: PathBuf,
    pub neurons: usize,
    pub update: UpdateScheme,
    pub dead: Vec<usize>,
    pub topology: TopologySpec,
    /// Neurons that observe the input (`receives_input[k]`).
    pub receives_input: Vec<bool>,
    pub input: InputProcess,
    pub reward: RewardSpec,
    pub lambda: f64,
    pub cost: CodingCost,
    pub solver: crate::solver::SolveOptions,
    /// How `marlin train` learns (defaults when the file has no `[learning]`).
    pub learning: crate::learn::LearningSpec,
    /// What `marlin run` does (defaults when the file has no `[study]`).
    pub study: StudySpec,
    /// `Some` when the network drives a maze walker (`[input] maze = ...`).
    pub motor: Option<MotorMaze>,
    /// `Some` when the file fixes the neurons as logistic units (`[neurons]`):
    /// `marlin simulate` then runs them on the sparse engine.
    pub logistic: Option<NeuronsSpec>,
}

/// Fixed logistic neurons: `logit_i = bias + input_weight·x + Σ_j w_ij σ_j`
/// (the input term for neurons that receive the input), the weights by
/// [`WeightRule`], stored in single precision.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronsSpec {
    pub bias: f64,
    pub input_weight: f64,
    pub weights: WeightRule,
}

impl NeuronsSpec {
    /// One line for `validate` and records.
    pub fn describe(&self) -> String {
        let w = match &self.weights {
            WeightRule::Dale {
                excitatory: 0, w_inh, ..
            } => format!("every neuron inhibitory {w_inh}"),
            WeightRule::Dale {
                excitatory,
                w_exc,
                w_inh,
            } => {
                format!(
                    "neurons 0–{} excitatory {w_exc}, the rest inhibitory {w_inh}",
                    excitatory - 1
                )
            }
            WeightRule::Uniform(w) => format!("every synapse {w}"),
            WeightRule::EdgeList => "weights from the edge list".into(),
        };
        format!("bias {}, input weight {}, {w}", self.bias, self.input_weight)
    }
}

/// Where the synaptic weights come from.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightRule {
    /// Dale's law with two populations: neurons `0..excitatory` project with
    /// `w_exc`, the others with `w_inh`.
    Dale { excitatory: usize, w_exc: f32, w_inh: f32 },
    /// Every synapse weighs the same.
    Uniform(f32),
    /// The third column of the topology's edge list.
    EdgeList,
}

/// A maze the network drives (theory §7, motor control): the input index is
/// the walker's cell (the maze's state index); neurons `d·per_direction ..
/// (d+1)·per_direction` move it N, E, S, W (d = 0..3), the rest are hidden.
#[derive(Clone, Debug)]
pub struct MotorMaze {
    pub maze: crate::maze::Maze,
    pub goals: Vec<(char, f64)>,
    pub per_direction: usize,
}

impl MotorMaze {
    /// The same maze with its walls moved, from a map file (same goal
    /// letters and slip).
    pub fn read_map(&self, file: &std::path::Path) -> Result<crate::maze::Maze, ScenarioError> {
        maze::read_map(file, &self.goals, self.maze.slip)
    }

    /// One line for records and reports.
    pub fn describe(&self) -> String {
        format!(
            "a maze walker ({}) moved each tick by the most active of 4 groups of {} \
             (N, E, S, W = neurons 0–{} in order; ties and silence: stay)",
            crate::text::count(self.maze.states() as u64, "cell"),
            crate::text::count(self.per_direction as u64, "motor neuron"),
            4 * self.per_direction - 1
        )
    }
}

/// The stages and perturbations of `marlin run`.
#[derive(Clone, Debug, PartialEq)]
pub struct StudySpec {
    /// Ticks simulated for the recording that inference reads.
    pub ticks: u64,
    /// Bootstrap replicates of the inference (0: no intervals).
    pub bootstrap: usize,
    /// Whether to train by decentralised learning.
    pub train: bool,
    /// `marlin predict` specs; `None`: λ doubled and the first living neuron killed.
    pub perturbations: Option<Vec<Placed>>,
}

/// A value as written in the scenario, with its (line, column) for errors
/// that can only be checked later.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub value: String,
    pub at: Option<(usize, usize)>,
}

impl Default for StudySpec {
    fn default() -> Self {
        StudySpec {
            ticks: 200_000,
            bootstrap: 100,
            train: true,
            perturbations: None,
        }
    }
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Self::parse(&read_scenario(path)?, path)
    }

    /// Validate scenario text; `path` names it in errors and anchors relative
    /// file references.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let cx = Cx { text, path };
        if let Ok(doc) = toml::from_str::<toml::Table>(text) {
            let other = if maze::is_maze(&doc) {
                Some(("maze", "a maze ([maze])", ""))
            } else if coding::is_coding(&doc) {
                Some((
                    "coding",
                    "a sensory-coding task ([coding])",
                    "; `marlin solve` on it writes the solved code as one (network.toml, with policy.npz), \
                     and `marlin run` simulates, infers and predicts it",
                ))
            } else {
                None
            };
            if let Some((key, what, hint)) = other {
                return Err(ScenarioError {
                    file: path.to_path_buf(),
                    line: None,
                    column: None,
                    key: Some(key.into()),
                    message: format!(
                        "this scenario describes {what}, not a network; this command needs a network \
                         scenario ([network], [input], [reward]){hint}"
                    ),
                });
            }
        }
        let file: File = cx.deserialize(text)?;
        build(&cx, file)
    }

    /// `alive[k]`: false for the neurons listed in `network.dead`.
    pub fn alive(&self) -> Vec<bool> {
        (0..self.neurons).map(|k| !self.dead.contains(&k)).collect()
    }

    /// The `[neurons]` of this scenario as the sparse engine's arrays, for
    /// `net` (its `runtime_network()`); the coding cost's prior is the fixed
    /// prior, or ½ under the mutual-information cost (as for an untrained
    /// network, whose marginals are unknown before it runs).
    pub fn logistic_neurons(
        &self,
        net: &crate::runtime::RuntimeNetwork,
    ) -> Option<crate::runtime::sparse::LogisticNeurons> {
        use crate::runtime::sparse::{LogisticNeurons, Weights};
        let spec = self.logistic.as_ref()?;
        let n = self.neurons;
        let weights = match spec.weights {
            WeightRule::Dale {
                excitatory,
                w_exc,
                w_inh,
            } => Weights::dale(n, excitatory, w_exc, w_inh),
            WeightRule::Uniform(w) => Weights::PerSource(vec![w; n]),
            WeightRule::EdgeList => Weights::PerSynapse(net.topology.weights.clone().unwrap_or_default()),
        };
        Some(LogisticNeurons {
            bias: vec![spec.bias; n],
            input_weight: vec![spec.input_weight; n],
            prior: match &self.cost {
                CodingCost::FixedPrior(p) => p.clone(),
                CodingCost::MutualInformation => vec![0.5; n],
            },
            weights,
        })
    }

    /// The network for the runtime (any size; nothing is tabulated).
    pub fn runtime_network(&self) -> crate::runtime::RuntimeNetwork {
        let alive = self.alive();
        crate::runtime::RuntimeNetwork {
            n: self.neurons,
            alive,
            input: self.input.clone(),
            reward: self.reward.clone(),
            update: self.update,
            topology: crate::topology::Topology::build(&self.topology, self.neurons, self.seed),
            receives_input: self.receives_input.clone(),
        }
    }

    /// The tabulated network of this scenario, for the exact solver.
    /// Partially observed networks (a topology other than all-to-all, or
    /// neurons that do not receive the input) are solved with best responses
    /// to the agent's own observation (theory §3), for the asynchronous scheme.
    /// Refused before anything is tabulated when the solver cannot hold it.
    pub fn network(&self) -> Result<Network, ScenarioError> {
        if self.neurons <= MAX_TABULAR_NEURONS {
            crate::solver::check_dimensions(self.neurons, self.input.len(), self.update)
                .map_err(|e| self.size_error(e.to_string()))?;
        }
        let net = self.tabular_network()?;
        if !net.fully_observed() && net.update != UpdateScheme::Asynchronous {
            return Err(ScenarioError {
                file: self.path.clone(),
                line: None,
                column: None,
                key: Some("network.topology".into()),
                message: format!(
                    "the exact solver handles partially observed networks (topology other than all_to_all, or \
                     neurons that do not receive the input) for update = \"asynchronous\" only, not {:?}; \
                     simulate or train this network instead",
                    self.update.name()
                ),
            });
        }
        Ok(net)
    }

    /// The tabulated network whatever its topology: for exact evaluation of
    /// given policies (which may observe only part of the state). Refused
    /// before tabulating when its reward table would not fit in memory.
    pub fn tabular_network(&self) -> Result<Network, ScenarioError> {
        if self.neurons > MAX_TABULAR_NEURONS {
            return Err(self.size_error(format!(
                "{} neurons cannot be tabulated for exact solving (2^{} states per input); \
                 allowed: at most {MAX_TABULAR_NEURONS} — simulate or train larger networks instead",
                self.neurons, self.neurons
            )));
        }
        let xs = self.input.len() as u64;
        let table = |n: usize| 8 * (xs << n);
        let budget = crate::files::MemoryBudget::now();
        if !budget.fits(table(self.neurons)) {
            let fits = (1..self.neurons).rev().find(|&n| budget.fits(table(n))).unwrap_or(0);
            return Err(self.size_error(format!(
                "{} neurons with {xs} input values: the reward table alone has {} entries ({} MiB); {}, \
                 {fits} neurons here — simulate or train larger networks instead",
                self.neurons,
                xs << self.neurons,
                table(self.neurons) >> 20,
                budget.describe()
            )));
        }
        let alive = self.alive();
        Ok(Network {
            n: self.neurons,
            alive,
            input: self.input.clone(),
            reward: self.reward.tabulate(self.neurons),
            lambda: self.lambda,
            cost: self.cost.clone(),
            update: self.update,
            observes: self.observes(),
        })
    }

    /// A network too large for this command (`network.neurons`), naming the file.
    fn size_error(&self, message: String) -> ScenarioError {
        ScenarioError {
            file: self.path.clone(),
            line: None,
            column: None,
            key: Some("network.neurons".into()),
            message,
        }
    }

    /// What each neuron observes, or `None` when all observe everything.
    fn observes(&self) -> Option<Vec<crate::model::Observes>> {
        observes(&self.topology, &self.receives_input, self.seed)
    }
}

/// What each of `receives_input.len()` neurons observes under a topology
/// (built with `seed`), or `None` when all observe everything: a neuron
/// sees its own state, its presynaptic partners' and the input if it
/// receives it.
pub fn observes(topology: &TopologySpec, receives_input: &[bool], seed: u64) -> Option<Vec<crate::model::Observes>> {
    let n = receives_input.len();
    if *topology == TopologySpec::AllToAll && receives_input.iter().all(|&r| r) {
        return None;
    }
    let topo = crate::topology::Topology::build(topology, n, seed);
    Some(
        (0..n)
            .map(|k| crate::model::Observes {
                input: receives_input[k],
                mask: if topo.all_to_all {
                    (1usize << n) - 1
                } else {
                    topo.partners(k).iter().fold(1usize << k, |m, &j| m | 1 << j)
                },
            })
            .collect(),
    )
}

struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Cx<'_> {
    /// The scenario text as `T`, a syntax or shape error placed at its line
    /// and column.
    fn deserialize<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ScenarioError> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| self.line_col(s.start)).unzip();
            let message = e.message().trim();
            if message == "duplicate key"
                && let Some(span) = e.span()
                && let Some(err) = self.duplicate_key(span)
            {
                return err;
            }
            ScenarioError {
                file: self.path.to_path_buf(),
                line,
                column,
                key: None,
                message: message.to_string(),
            }
        })
    }

    /// toml's "duplicate key" error, which does not say which: the key at
    /// `span` named with its table (`network.neurons`, or the table of a
    /// repeated `[header]`) and where it was first set, if that line is
    /// found.
    fn duplicate_key(&self, span: Range<usize>) -> Option<ScenarioError> {
        let name = self.text.get(span.clone())?.trim().trim_matches(['"', '\'']);
        let (line, _) = self.line_col(span.start);
        let lines: Vec<&str> = self.text.lines().collect();
        // A line's content without its comment (good enough for keys and headers).
        let code = |l: &str| l.split('#').next().unwrap_or("").trim().to_string();
        let header = |l: &str| {
            let c = code(l);
            c.starts_with('[')
                .then(|| c.trim_matches(['[', ']']).trim().to_string())
        };
        let at = lines.get(line - 1).copied().unwrap_or("");
        let (key, first) = if let Some(table) = header(at) {
            // A table defined twice: `[network]` … `[network]`.
            let first = (0..line - 1).find(|&i| header(lines[i]).as_deref() == Some(table.as_str()));
            (table, first)
        } else {
            // A key set twice in its table: the table starts at the last header above.
            let start = (0..line - 1).rev().find(|&i| header(lines[i]).is_some());
            let table = start.and_then(|i| header(lines[i]));
            let from = start.map_or(0, |i| i + 1);
            let first = (from..line - 1).find(|&i| {
                code(lines[i])
                    .split_once('=')
                    .is_some_and(|(k, _)| k.trim().trim_matches(['"', '\'']) == name)
            });
            let key = match table {
                Some(t) => format!("{t}.{name}"),
                None => name.to_string(),
            };
            (key, first)
        };
        let first = first.map_or(String::new(), |i| format!(" (first set at line {})", i + 1));
        Some(self.err(
            span,
            &key,
            format!("`{name}` is set twice{first}; allowed: each key once per table"),
        ))
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
            + 1;
        (line, column)
    }

    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ScenarioError {
        let (line, column) = self.line_col(span.start);
        ScenarioError {
            file: self.path.to_path_buf(),
            line: Some(line),
            column: Some(column),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    fn count(&self, v: &Spanned<i64>, key: &str, lo: i64, hi: i64) -> Result<usize, ScenarioError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return Err(self.err(v.span(), key, format!("got {x}; allowed: an integer from {lo} to {hi}")));
        }
        Ok(x as usize)
    }

    fn prob(&self, v: &Spanned<f64>, key: &str, open_low: bool, open_high: bool) -> Result<f64, ScenarioError> {
        let x = *v.get_ref();
        let ok = x.is_finite()
            && (if open_low { x > 0.0 } else { x >= 0.0 })
            && (if open_high { x < 1.0 } else { x <= 1.0 });
        if !ok {
            let lo = if open_low { "(0" } else { "[0" };
            let hi = if open_high { "1)" } else { "1]" };
            return Err(self.err(v.span(), key, format!("got {x}; allowed: a probability in {lo}, {hi}")));
        }
        Ok(x)
    }

    fn positive(&self, v: &Spanned<f64>, key: &str) -> Result<f64, ScenarioError> {
        let x = *v.get_ref();
        if !(x.is_finite() && x > 0.0) {
            return Err(self.err(v.span(), key, format!("got {x}; allowed: a positive finite number")));
        }
        Ok(x)
    }

    fn finite(&self, v: &Spanned<f64>, key: &str) -> Result<f64, ScenarioError> {
        let x = *v.get_ref();
        if !x.is_finite() {
            return Err(self.err(v.span(), key, format!("got {x}; allowed: a finite number")));
        }
        Ok(x)
    }

    /// A list of distinct neuron indices below `n`.
    fn neuron_list(&self, list: &[i64], span: Range<usize>, key: &str, n: usize) -> Result<Vec<usize>, ScenarioError> {
        let mut out = Vec::with_capacity(list.len());
        for &k in list {
            if k < 0 || k as usize >= n {
                return Err(self.err(
                    span,
                    key,
                    format!(
                        "neuron index {k} is out of range; allowed: 0 to {} (network.neurons = {n})",
                        n - 1
                    ),
                ));
            }
            if out.contains(&(k as usize)) {
                return Err(self.err(
                    span,
                    key,
                    format!("neuron {k} is listed twice; allowed: distinct indices"),
                ));
            }
            out.push(k as usize);
        }
        Ok(out)
    }
}

/// Check a topology table against the network size.
fn topology_spec(cx: &Cx, t: &Spanned<Topology>, n: usize) -> Result<TopologySpec, ScenarioError> {
    topology_spec_for(cx, t, n, "network.topology", "neurons")
}

/// Check a topology table (at `key`) against the number of agents, named
/// `unit` in messages.
fn topology_spec_for(
    cx: &Cx,
    t: &Spanned<Topology>,
    n: usize,
    key: &str,
    unit: &str,
) -> Result<TopologySpec, ScenarioError> {
    let span = t.span();
    let degree = |k: i64, max: usize, what: &str| -> Result<usize, ScenarioError> {
        if k < 1 || k as usize > max {
            return Err(cx.err(
                span.clone(),
                key,
                format!("{what} = {k}; allowed: 1 to {max} for {n} {unit}"),
            ));
        }
        Ok(k as usize)
    };
    let prob = |p: f64, what: &str| -> Result<f64, ScenarioError> {
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            return Err(cx.err(
                span.clone(),
                key,
                format!("{what} = {p}; allowed: a probability in [0, 1]"),
            ));
        }
        Ok(p)
    };
    Ok(match t.get_ref() {
        Topology::AllToAll => TopologySpec::AllToAll,
        Topology::None => TopologySpec::Edges(Vec::new()),
        Topology::Ring { k } => TopologySpec::Ring {
            k: degree(*k, (n - 1) / 2, "k")?,
        },
        Topology::RandomInDegree { k } => TopologySpec::RandomInDegree {
            k: degree(*k, n - 1, "k")?,
        },
        Topology::ErdosRenyi { p } => TopologySpec::ErdosRenyi { p: prob(*p, "p")? },
        Topology::SmallWorld { k, beta } => TopologySpec::SmallWorld {
            k: degree(*k, (n - 1) / 2, "k")?,
            beta: prob(*beta, "beta")?,
        },
        Topology::Lattice2d {
            width,
            height,
            periodic,
        } => {
            if *width < 1 || *height < 1 || (*width * *height) as usize != n {
                return Err(cx.err(
                    span,
                    key,
                    format!(
                        "lattice2d {width}×{height} has {} sites; allowed: width × height = the number of {unit} = {n}",
                        width * height
                    ),
                ));
            }
            TopologySpec::Lattice2d {
                width: *width as usize,
                height: *height as usize,
                periodic: *periodic,
            }
        }
        Topology::EdgeList { file, allow_self_loops } => {
            let rel = PathBuf::from(file);
            let full = if rel.is_absolute() {
                rel
            } else {
                cx.path.parent().unwrap_or(Path::new(".")).join(rel)
            };
            let text = std::fs::read_to_string(&full).map_err(|e| {
                cx.err(
                    span.clone(),
                    key,
                    format!("cannot read edge list {}: {e}", full.display()),
                )
            })?;
            let edges = crate::topology::parse_edge_list(&text, n, *allow_self_loops)
                .map_err(|(line, msg)| cx.err(span.clone(), key, format!("{}:{line}: {msg}", full.display())))?;
            TopologySpec::Edges(edges)
        }
    })
}

/// The keys every scenario shares: its name (from the file name when absent),
/// seed and output folder.
fn header(
    cx: &Cx,
    name: Option<String>,
    seed: &Option<Spanned<i64>>,
    output: Option<String>,
) -> Result<(String, u64, PathBuf), ScenarioError> {
    let stem = cx
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    let name = name.unwrap_or(stem);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(ScenarioError {
            file: cx.path.to_path_buf(),
            line: None,
            column: None,
            key: Some("name".into()),
            message: format!("got {name:?}; allowed: letters, digits, '-', '_' and '.' (it names the output folder)"),
        });
    }
    let seed = match seed {
        Some(s) if *s.get_ref() < 0 => {
            return Err(cx.err(
                s.span(),
                "seed",
                format!("got {}; allowed: a non-negative integer", s.get_ref()),
            ));
        }
        Some(s) => *s.get_ref() as u64,
        None => 0,
    };
    let output = PathBuf::from(output.unwrap_or_else(|| format!("out/{name}")));

    Ok((name, seed, output))
}

fn build(cx: &Cx, f: File) -> Result<Scenario, ScenarioError> {
    let (name, seed, output) = header(cx, f.name, &f.seed, f.output)?;

    // Network.
    let net = f.network.get_ref();
    let n = cx.count(&net.neurons, "network.neurons", 1, MAX_NEURONS as i64)?;
    let update_name = net
        .update
        .as_ref()
        .map(|u| *u.get_ref())
        .unwrap_or(UpdateName::Asynchronous);
    let update = match (update_name, &net.q) {
        (UpdateName::RandomPartial, Some(q)) => UpdateScheme::RandomPartial {
            q: cx.prob(q, "network.q", true, false)?,
        },
        (UpdateName::RandomPartial, None) => {
            return Err(cx.err(
                net.update.as_ref().map(|u| u.span()).unwrap_or(f.network.span()),
                "network.q",
                "random_partial needs `q`, the probability that each neuron updates per tick; allowed: 0 < q ≤ 1",
            ));
        }
        (other, Some(q)) => {
            return Err(cx.err(
                q.span(),
                "network.q",
                format!(
                    "`q` only applies to update = \"random_partial\", not {other:?}; remove it or change the scheme"
                ),
            ));
        }
        (UpdateName::Asynchronous, None) => UpdateScheme::Asynchronous,
        (UpdateName::Synchronous, None) => UpdateScheme::Synchronous,
    };
    let dead = match &net.dead {
        Some(d) => cx.neuron_list(d.get_ref(), d.span(), "network.dead", n)?,
        None => Vec::new(),
    };
    if dead.len() == n {
        let span = net.dead.as_ref().map(|d| d.span()).unwrap_or(f.network.span());
        return Err(cx.err(
            span,
            "network.dead",
            "every neuron is dead; allowed: at least one living neuron",
        ));
    }
    let topology = match &net.topology {
        None => TopologySpec::AllToAll,
        Some(t) => topology_spec(cx, t, n)?,
    };
    let receives_input = match &net.inputs {
        None => vec![true; n],
        Some(v) => match v.get_ref() {
            InputsValue::Word(w) if w == "all" => vec![true; n],
            InputsValue::Word(w) if w == "none" => vec![false; n],
            InputsValue::Word(w) => {
                return Err(cx.err(
                    v.span(),
                    "network.inputs",
                    format!("got {w:?}; allowed: \"all\", \"none\" or a list of neuron indices"),
                ));
            }
            InputsValue::List(list) => {
                let mut mask = vec![false; n];
                for k in cx.neuron_list(list, v.span(), "network.inputs", n)? {
                    mask[k] = true;
                }
                mask
            }
        },
    };

    // Input process.
    let inp = f.input.get_ref();
    let (values, motor) = match (&inp.values, &inp.maze) {
        (Some(v), None) => {
            for (key, span) in [
                ("goals", inp.goals.as_ref().map(|v| v.span())),
                ("slip", inp.slip.as_ref().map(|v| v.span())),
                ("motor_neurons", inp.motor_neurons.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = span {
                    return Err(cx.err(
                        span,
                        &format!("input.{key}"),
                        "applies to a maze input only; allowed: remove it, or give `input.maze` instead of `values`",
                    ));
                }
            }
            (v.get_ref().clone(), None)
        }
        (None, Some(map)) => {
            let motor = motor_maze(cx, inp, map, n)?;
            let values = (0..motor.maze.states()).map(|s| s as f64).collect();
            (values, Some(motor))
        }
        (Some(v), Some(_)) => {
            return Err(cx.err(
                v.span(),
                "input.values",
                "give either `values` (an input chain) or `maze` (a maze the network drives), not both",
            ));
        }
        (None, None) => {
            return Err(cx.err(
                f.input.span(),
                "input.values",
                "missing; allowed: `values = [...]` with `switch_probability` or `transition`, or `maze = \"\"\"...\"\"\"` \
                 (a maze the network drives)",
            ));
        }
    };
    let values_span = inp.values.as_ref().map_or(f.input.span(), |v| v.span());
    if values.is_empty() || values.len() > MAX_INPUTS {
        return Err(cx.err(
            values_span,
            "input.values",
            format!("got {} values; allowed: 1 to {MAX_INPUTS}", values.len()),
        ));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(cx.err(values_span, "input.values", format!("got {v}; allowed: finite numbers")));
    }
    // Each value names one input state: two equal values would be two
    // states the network cannot tell apart.
    if let Some((i, v)) = values.iter().enumerate().find(|(i, v)| values[..*i].contains(v)) {
        let j = values[..i].iter().position(|u| u == v).expect("found before");
        return Err(cx.err(
            values_span,
            "input.values",
            format!(
                "got {v} twice (values {} and {}); allowed: distinct values",
                j + 1,
                i + 1
            ),
        ));
    }
    let xs = values.len();
    let input = match (&inp.switch_probability, &inp.transition) {
        _ if motor.is_some() => {
            if let Some(span) = inp
                .switch_probability
                .as_ref()
                .map(|v| v.span())
                .or(inp.transition.as_ref().map(|v| v.span()))
            {
                return Err(cx.err(
                    span,
                    "input",
                    "a maze input moves as the network drives it; allowed: no `switch_probability` or `transition`",
                ));
            }
            let m = motor.as_ref().expect("matched");
            m.maze.motor_input(m.per_direction)
        }
        (Some(_), Some(t)) => {
            return Err(cx.err(
                t.span(),
                "input.transition",
                "give either `switch_probability` or `transition`, not both",
            ));
        }
        (None, None) => {
            return Err(cx.err(
                f.input.span(),
                "input",
                "missing the input dynamics; allowed: `switch_probability = p` or `transition = [[...], ...]` (X×X, rows sum to 1)",
            ));
        }
        (Some(p), None) => InputProcess::switching(values, cx.prob(p, "input.switch_probability", false, false)?),
        (None, Some(t)) => {
            let rows = t.get_ref();
            if rows.len() != xs || rows.iter().any(|r| r.len() != xs) {
                return Err(cx.err(
                    t.span(),
                    "input.transition",
                    format!("must be {xs}×{xs} (one row and one column per input value)"),
                ));
            }
            for (i, row) in rows.iter().enumerate() {
                if row.iter().any(|p| !(p.is_finite() && (0.0..=1.0).contains(p))) {
                    return Err(cx.err(
                        t.span(),
                        "input.transition",
                        format!("row {i} has an entry outside [0, 1]; allowed: probabilities"),
                    ));
                }
                let sum: f64 = row.iter().sum();
                if (sum - 1.0).abs() > 1e-9 {
                    return Err(cx.err(
                        t.span(),
                        "input.transition",
                        format!("row {i} sums to {sum}; allowed: rows that sum to 1 (within 1e-9)"),
                    ));
                }
            }
            InputProcess {
                values,
                transition: rows.iter().flatten().copied().collect(),
                control: None,
            }
        }
    };

    // Reward.
    let rw = f.reward.get_ref();
    let kind = *rw.kind.get_ref();
    let (needed, allowed): (&[&str], &[&str]) = match kind {
        RewardKind::TargetCount => (&["targets"], &["targets", "value"]),
        RewardKind::Pattern => (&["on", "off"], &["on", "off", "value", "mode"]),
        RewardKind::Table => (&["file"], &["file"]),
        RewardKind::Goal => (&[], &[]),
    };
    if (kind == RewardKind::Goal) != motor.is_some() {
        return Err(cx.err(
            rw.kind.span(),
            "reward.kind",
            if motor.is_some() {
                "a network driving a maze is rewarded at the maze's goals; allowed: \"goal\""
            } else {
                "\"goal\" rewards the goal cells of a maze input; allowed here: \"target_count\", \"pattern\", \"table\""
            },
        ));
    }
    let present: [(&str, Option<Range<usize>>); 6] = [
        ("targets", rw.targets.as_ref().map(|v| v.span())),
        ("value", rw.value.as_ref().map(|v| v.span())),
        ("on", rw.on.as_ref().map(|v| v.span())),
        ("off", rw.off.as_ref().map(|v| v.span())),
        ("mode", rw.mode.as_ref().map(|v| v.span())),
        ("file", rw.file.as_ref().map(|v| v.span())),
    ];
    for (key, span) in &present {
        if let Some(span) = span
            && !allowed.contains(key)
        {
            return Err(cx.err(
                span.clone(),
                &format!("reward.{key}"),
                format!(
                    "does not apply to kind = {kind:?}; allowed keys: kind, {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    for key in needed {
        if present.iter().any(|(k, s)| k == key && s.is_none()) {
            return Err(cx.err(
                f.reward.span(),
                &format!("reward.{key}"),
                format!("missing; kind = {kind:?} needs {}", needed.join(" and ")),
            ));
        }
    }
    let value = rw
        .value
        .as_ref()
        .map(|v| cx.finite(v, "reward.value"))
        .transpose()?
        .unwrap_or(1.0);
    let reward = match kind {
        RewardKind::TargetCount => {
            let targets = rw.targets.as_ref().expect("checked above");
            let t = targets.get_ref();
            if t.len() != xs {
                return Err(cx.err(
                    targets.span(),
                    "reward.targets",
                    format!(
                        "got {} targets for {xs} input values; allowed: one spike count per input value",
                        t.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(xs);
            for &c in t {
                if c < 0 || c as usize > n {
                    return Err(cx.err(
                        targets.span(),
                        "reward.targets",
                        format!("target count {c} is impossible; allowed: 0 to {n} (network.neurons)"),
                    ));
                }
                out.push(c as usize);
            }
            RewardSpec::TargetCount { targets: out, value }
        }
        RewardKind::Pattern => {
            let on = rw.on.as_ref().expect("checked above");
            let off = rw.off.as_ref().expect("checked above");
            let mut sets = [Vec::new(), Vec::new()];
            for (slot, (list, key)) in [(on, "reward.on"), (off, "reward.off")].into_iter().enumerate() {
                if list.get_ref().len() != xs {
                    return Err(cx.err(
                        list.span(),
                        key,
                        format!(
                            "got {} lists for {xs} input values; allowed: one list of neurons per input value",
                            list.get_ref().len()
                        ),
                    ));
                }
                for l in list.get_ref() {
                    sets[slot].push(cx.neuron_list(l, list.span(), key, n)?);
                }
            }
            for x in 0..xs {
                if let Some(k) = sets[0][x].iter().find(|k| sets[1][x].contains(k)) {
                    return Err(cx.err(
                        on.span(),
                        "reward.on",
                        format!("neuron {k} is both on and off for input {x}; allowed: disjoint sets"),
                    ));
                }
            }
            let [on, off] = sets;
            let all_or_nothing = matches!(rw.mode.as_ref().map(|m| *m.get_ref()), Some(PatternMode::AllOrNothing));
            RewardSpec::Pattern {
                on,
                off,
                value,
                all_or_nothing,
            }
        }
        RewardKind::Table => {
            let file = rw.file.as_ref().expect("checked above");
            if n > MAX_TABULAR_NEURONS {
                return Err(cx.err(
                    file.span(),
                    "reward.file",
                    format!(
                        "a reward table needs 2^n entries per input; allowed: at most {MAX_TABULAR_NEURONS} neurons"
                    ),
                ));
            }
            let rel = PathBuf::from(file.get_ref());
            let full = if rel.is_absolute() {
                rel
            } else {
                cx.path.parent().unwrap_or(Path::new(".")).join(rel)
            };
            let table =
                crate::files::read_reward_table(&full, xs, n).map_err(|e| cx.err(file.span(), "reward.file", e))?;
            RewardSpec::Table(table)
        }
        RewardKind::Goal => RewardSpec::Input(motor.as_ref().expect("checked above").maze.reward()),
    };

    // Coding cost.
    let cost_s = f.cost.get_ref();
    let lambda = cx.positive(&cost_s.lambda, "cost.lambda")?;
    let kind = cost_s
        .kind
        .as_ref()
        .map(|k| *k.get_ref())
        .unwrap_or(CostName::MutualInformation);
    let cost = match (kind, &cost_s.prior) {
        (CostName::MutualInformation, None) => CodingCost::MutualInformation,
        (CostName::MutualInformation, Some(p)) => {
            return Err(cx.err(
                p.span(),
                "cost.prior",
                "`prior` only applies to kind = \"fixed_prior\" (the mutual-information prior is the neurons' own marginal)",
            ));
        }
        (CostName::FixedPrior, None) => {
            return Err(cx.err(
                f.cost.span(),
                "cost.prior",
                "fixed_prior needs `prior`: one firing probability shared by all neurons, or a list with one per neuron, each in (0, 1)",
            ));
        }
        (CostName::FixedPrior, Some(p)) => {
            let list = match p.get_ref() {
                PriorValue::Shared(v) => vec![*v; n],
                PriorValue::PerNeuron(v) => {
                    if v.len() != n {
                        return Err(cx.err(
                            p.span(),
                            "cost.prior",
                            format!(
                                "got {} for {}; allowed: one number, or one per neuron",
                                crate::text::count(v.len() as u64, "prior"),
                                crate::text::count(n as u64, "neuron")
                            ),
                        ));
                    }
                    v.clone()
                }
            };
            if let Some(v) = list.iter().find(|v| !(v.is_finite() && **v > 0.0 && **v < 1.0)) {
                return Err(cx.err(
                    p.span(),
                    "cost.prior",
                    format!("got {v}; allowed: probabilities in (0, 1)"),
                ));
            }
            CodingCost::FixedPrior(list)
        }
    };

    let solver = solver_options(cx, &f.solver)?;

    let study = match &f.study {
        None => StudySpec::default(),
        Some(st) => {
            let sec = st.get_ref();
            let mut spec = StudySpec::default();
            if let Some(v) = &sec.ticks {
                spec.ticks = cx.count(v, "study.ticks", 1, 1 << 40)? as u64;
            }
            if let Some(v) = &sec.bootstrap {
                spec.bootstrap = cx.count(v, "study.bootstrap", 0, 100_000)?;
            }
            if let Some(t) = sec.train {
                spec.train = t;
            }
            if let Some(p) = &sec.perturbations {
                // Checked against the network by `marlin run` before any stage
                // runs; the position is kept for its error message.
                let at = Some(cx.line_col(p.span().start));
                spec.perturbations = Some(p.get_ref().iter().map(|s| Placed { value: s.clone(), at }).collect());
            }
            spec
        }
    };
    let learning = match &f.learning {
        Some(l) => learning_spec(cx, l, n, xs)?,
        None => crate::learn::LearningSpec::default(),
    };
    let logistic = match &f.neurons {
        Some(sec) => Some(neurons_spec(cx, sec, n, &topology)?),
        None => None,
    };

    Ok(Scenario {
        path: cx.path.to_path_buf(),
        name,
        description: f.description.unwrap_or_default(),
        seed,
        output,
        neurons: n,
        update,
        dead,
        topology,
        receives_input,
        input,
        reward,
        lambda,
        cost,
        solver,
        learning,
        study,
        motor,
        logistic,
    })
}

/// `[neurons]`, checked against the network's size and topology.
fn neurons_spec(
    cx: &Cx,
    sec: &Spanned<NeuronsSection>,
    n: usize,
    topology: &TopologySpec,
) -> Result<NeuronsSpec, ScenarioError> {
    let s = sec.get_ref();
    let rule = *s.weights.get_ref();
    let single = |v: &Spanned<f64>, key: &str| -> Result<f32, ScenarioError> {
        let x = cx.finite(v, key)?;
        if x.abs() > f32::MAX as f64 / 1e6 {
            return Err(cx.err(
                v.span(),
                key,
                format!("got {x}; allowed: |w| ≤ 3e32 (single precision)"),
            ));
        }
        Ok(x as f32)
    };
    let need = |v: &Option<Spanned<f64>>, key: &str| -> Result<Spanned<f64>, ScenarioError> {
        v.clone().ok_or_else(|| {
            cx.err(
                s.weights.span(),
                "neurons.weights",
                format!("weights = \"{}\" needs neurons.{key}", rule_name(rule)),
            )
        })
    };
    // Keys that belong to another rule are mistakes, not silently ignored.
    let own: &[&str] = match rule {
        WeightRuleName::Dale => &["excitatory_fraction", "excitatory_weight", "inhibitory_weight"],
        WeightRuleName::Uniform => &["weight"],
        WeightRuleName::EdgeList => &[],
    };
    for (key, v) in [
        ("excitatory_fraction", &s.excitatory_fraction),
        ("excitatory_weight", &s.excitatory_weight),
        ("inhibitory_weight", &s.inhibitory_weight),
        ("weight", &s.weight),
    ] {
        if let Some(v) = v
            && !own.contains(&key)
        {
            return Err(cx.err(
                v.span(),
                &format!("neurons.{key}"),
                format!(
                    "does not apply to weights = \"{}\"; allowed keys: {}",
                    rule_name(rule),
                    if own.is_empty() {
                        "none".to_string()
                    } else {
                        own.join(", ")
                    }
                ),
            ));
        }
    }
    let weights = match rule {
        WeightRuleName::Dale => {
            let f = need(&s.excitatory_fraction, "excitatory_fraction")?;
            let frac = cx.prob(&f, "neurons.excitatory_fraction", false, false)?;
            WeightRule::Dale {
                excitatory: (frac * n as f64).round() as usize,
                w_exc: single(
                    &need(&s.excitatory_weight, "excitatory_weight")?,
                    "neurons.excitatory_weight",
                )?,
                w_inh: single(
                    &need(&s.inhibitory_weight, "inhibitory_weight")?,
                    "neurons.inhibitory_weight",
                )?,
            }
        }
        WeightRuleName::Uniform => WeightRule::Uniform(single(&need(&s.weight, "weight")?, "neurons.weight")?),
        WeightRuleName::EdgeList => {
            let weighted = matches!(topology, TopologySpec::Edges(e) if e.iter().any(|e| e.2.is_some()));
            if !weighted {
                return Err(cx.err(
                    s.weights.span(),
                    "neurons.weights",
                    "weights = \"edge_list\" takes the weights from the edge list's third column; allowed only \
                     with topology = { kind = \"edge_list\", ... } whose lines carry `pre,post,weight`",
                ));
            }
            WeightRule::EdgeList
        }
    };
    if matches!(topology, TopologySpec::AllToAll) {
        return Err(cx.err(
            sec.span(),
            "neurons",
            "fixed logistic neurons run on the sparse engine, which needs explicit partners; allowed: any \
             network.topology but all_to_all",
        ));
    }
    Ok(NeuronsSpec {
        bias: cx.finite(&s.bias, "neurons.bias")?,
        input_weight: match &s.input_weight {
            Some(v) => cx.finite(v, "neurons.input_weight")?,
            None => 0.0,
        },
        weights,
    })
}

fn rule_name(r: WeightRuleName) -> &'static str {
    match r {
        WeightRuleName::Dale => "dale",
        WeightRuleName::Uniform => "uniform",
        WeightRuleName::EdgeList => "edge_list",
    }
}

/// `[solver]`: knobs of the exact solvers over their defaults.
fn solver_options(cx: &Cx, section: &Option<SolverSection>) -> Result<crate::solver::SolveOptions, ScenarioError> {
    let mut solver = crate::solver::SolveOptions::default();
    if let Some(s) = section {
        if let Some(v) = &s.value_tol {
            solver.value_tol = cx.positive(v, "solver.value_tol")?;
        }
        if let Some(v) = &s.prior_tol {
            solver.prior_tol = cx.positive(v, "solver.prior_tol")?;
        }
        if let Some(v) = &s.damping {
            solver.damping = cx.prob(v, "solver.damping", true, false)?;
        }
        if let Some(v) = &s.max_value_sweeps {
            solver.max_value_sweeps = cx.count(v, "solver.max_value_sweeps", 1, 100_000_000)?;
        }
        if let Some(v) = &s.eval_sweeps {
            solver.eval_sweeps = cx.count(v, "solver.eval_sweeps", 0, 1000)?;
        }
        if let Some(v) = &s.max_prior_iterations {
            solver.max_prior_iterations = cx.count(v, "solver.max_prior_iterations", 1, 1_000_000)?;
        }
        if let Some(v) = &s.starts {
            solver.starts = Some(cx.count(v, "solver.starts", 1, 10_000)?);
        }
        if let Some(v) = &s.start_seed {
            solver.start_seed = cx.count(v, "solver.start_seed", 0, i64::MAX)? as u64;
        }
    }

    Ok(solver)
}

fn learning_spec(
    cx: &Cx,
    section: &Spanned<LearningSection>,
    n: usize,
    xs: usize,
) -> Result<crate::learn::LearningSpec, ScenarioError> {
    use crate::learn::{CriticKind, LearningSpec, PolicyKind, Rule, teacher::MAX_TABULAR_CRITIC};
    let l = section.get_ref();
    let mut spec = LearningSpec::default();
    // A name or a list of names, each allowed once, in the given order.
    fn names<T: Copy + PartialEq>(
        cx: &Cx,
        v: &Spanned<OneOrMany<String>>,
        key: &str,
        table: &[(&str, T)],
    ) -> Result<Vec<T>, ScenarioError> {
        let allowed = table
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let list = v.get_ref().to_vec();
        if list.is_empty() {
            return Err(cx.err(
                v.span(),
                key,
                format!("empty list; allowed: one of {allowed}, or a list of them"),
            ));
        }
        let mut out = Vec::new();
        for name in list {
            match table.iter().find(|(n, _)| *n == name) {
                Some(&(_, t)) if !out.contains(&t) => out.push(t),
                Some(_) => {}
                None => {
                    return Err(cx.err(v.span(), key, format!("got \"{name}\"; allowed: {allowed}")));
                }
            }
        }
        Ok(out)
    }
    if let Some(r) = &l.rule {
        spec.rules = names(
            cx,
            r,
            "learning.rule",
            &[("actor_critic", Rule::ActorCritic), ("reinforce", Rule::Reinforce)],
        )?;
    }
    if let Some(p) = &l.policy {
        spec.policies = names(
            cx,
            p,
            "learning.policy",
            &[("tabular", PolicyKind::Tabular), ("logistic", PolicyKind::Logistic)],
        )?;
    }
    if let Some(v) = &l.ticks {
        spec.ticks = cx.count(v, "learning.ticks", 1, 1 << 50)? as u64;
    }
    if let Some(v) = &l.checkpoints {
        spec.checkpoints = cx.count(v, "learning.checkpoints", 1, 100_000)?;
    }
    if let Some(v) = &l.tabular_rate {
        spec.tabular_rate = cx.positive(v, "learning.tabular_rate")?;
    }
    if let Some(v) = &l.logistic_rate {
        spec.logistic_rate = cx.positive(v, "learning.logistic_rate")?;
    }
    if let Some(v) = &l.rate_decay_ticks {
        spec.rate_decay_ticks = Some(cx.positive(v, "learning.rate_decay_ticks")?);
    }
    if let Some(v) = &l.trace_decay {
        spec.trace_decay = cx.prob(v, "learning.trace_decay", false, true)?;
    }
    if let Some(v) = &l.baseline_rate {
        spec.baseline_rate = cx.prob(v, "learning.baseline_rate", true, false)?;
    }
    if let Some(v) = &l.critic_rate {
        spec.critic_rate = cx.prob(v, "learning.critic_rate", true, false)?;
    }
    if let Some(v) = &l.prior_rate {
        spec.prior_rate = cx.prob(v, "learning.prior_rate", true, false)?;
    }
    if let Some(c) = &l.critic {
        spec.critic = Some(match c.get_ref() {
            CriticName::Tabular => {
                if n > MAX_TABULAR_CRITIC || xs << n > 1 << 26 {
                    return Err(cx.err(
                        c.span(),
                        "learning.critic",
                        format!(
                            "a tabular critic needs X·2^n = {xs}·2^{n} values; allowed: at most \
                             {MAX_TABULAR_CRITIC} neurons and 2^26 states — use critic = \"counts\""
                        ),
                    ));
                }
                CriticKind::Tabular
            }
            CriticName::Counts => CriticKind::Counts,
        });
    }
    if let Some(c) = &l.cost {
        spec.own_cost = *c.get_ref() == CostShare::Own;
    }
    if let Some(d) = &l.decoder {
        spec.decoder = Some(decoder_spec(cx, d, n, xs)?);
    }
    Ok(spec)
}

fn decoder_spec(
    cx: &Cx,
    d: &Spanned<DecoderSection>,
    n: usize,
    xs: usize,
) -> Result<crate::learn::decoder::DecoderSpec, ScenarioError> {
    use crate::learn::decoder::{DecoderSpec, MAX_DECODER_NEURONS};
    if n > MAX_DECODER_NEURONS {
        return Err(cx.err(
            d.span(),
            "learning.decoder",
            format!(
                "the decoder keeps one estimate per network state (2^{n}); allowed: at most \
                 {MAX_DECODER_NEURONS} neurons"
            ),
        ));
    }
    let sec = d.get_ref();
    let list = sec.feature.get_ref();
    if list.len() != xs {
        return Err(cx.err(
            sec.feature.span(),
            "learning.decoder.feature",
            format!(
                "got {} entries; allowed: one per input value ({xs}), 1 where y = +1 and 0 where y = −1",
                list.len()
            ),
        ));
    }
    let mut feature = Vec::with_capacity(xs);
    for (i, v) in list.iter().enumerate() {
        feature.push(cx.count(v, &format!("learning.decoder.feature[{i}]"), 0, 1)? == 1);
    }
    if feature.iter().all(|&f| f) || feature.iter().all(|&f| !f) {
        return Err(cx.err(
            sec.feature.span(),
            "learning.decoder.feature",
            "the feature never changes; allowed: both 0 and 1 among the input values",
        ));
    }
    let mut spec = DecoderSpec::new(feature);
    if let Some(v) = &sec.rate {
        spec.rate = cx.prob(v, "learning.decoder.rate", true, false)?;
    }
    if let Some(v) = &sec.reliability {
        let r = *v.get_ref();
        if !(r.is_finite() && (0.5..1.0).contains(&r)) {
            return Err(cx.err(
                v.span(),
                "learning.decoder.reliability",
                format!("got {r}; allowed: a number in [0.5, 1) (0.5: a decoder that knows nothing yet)"),
            ));
        }
        spec.reliability = r;
    }
    Ok(spec)
}
