//! Maze scenario files (theory §7): a `[maze]` table with an ASCII map in
//! place of `[network]`, `[input]` and `[reward]`.
//!
//! ```toml
//! name = "maze"
//! seed = 1
//! [maze]
//! map = """
//! #######
//! #S...G#
//! #######
//! """
//! goals = { G = 1.0 }   # goal letters and their rewards (default: G = 1)
//! slip = 0.0            # probability that a move is replaced by a random one
//! [cost]
//! lambda = 0.2
//! kind = "mutual_information"   # or "fixed_prior" with prior = [pN, pE, pS, pW, pstay]
//! [study]
//! trajectories = 100    # demonstrations recorded by `marlin run`
//! steps = 50            # steps per demonstration
//! sweep_lambda = [0.05, 0.2, 1.0]
//! perturbations = ["lambda:1.0", "walls:maze_moved.txt"]
//! ```
//! Map errors are reported at the file's line and column of the offending
//! cell.

use super::{Cx, Placed, ScenarioError, SolverSection, header, solver_options};
use crate::learn::walkers::WalkerView;
use crate::maze::{ACTIONS, MapError, Maze, TeamGoal, map_rows};
use crate::solver::mdp::ActionPrior;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct MazeFile {
    name: Option<String>,
    description: Option<String>,
    seed: Option<Spanned<i64>>,
    output: Option<String>,
    maze: Spanned<MazeSection>,
    cost: Spanned<MazeCost>,
    solver: Option<SolverSection>,
    study: Option<Spanned<MazeStudySection>>,
    team: Option<Spanned<TeamSection>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TeamSection {
    agents: Option<Spanned<i64>>,
    goal: Option<Spanned<String>>,
    view: Option<Spanned<String>>,
    rule: Option<Spanned<String>>,
    ticks: Option<Spanned<i64>>,
    learning_rate: Option<Spanned<f64>>,
    sweep_agents: Option<Spanned<Vec<i64>>>,
    topology: Option<Spanned<super::Topology>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct MazeSection {
    map: Spanned<String>,
    goals: Option<Spanned<BTreeMap<String, f64>>>,
    slip: Option<Spanned<f64>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct MazeCost {
    lambda: Spanned<f64>,
    kind: Option<Spanned<String>>,
    prior: Option<Spanned<Vec<f64>>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct MazeStudySection {
    trajectories: Option<Spanned<i64>>,
    steps: Option<Spanned<i64>>,
    sweep_lambda: Option<Spanned<Vec<f64>>>,
    perturbations: Option<Spanned<Vec<String>>>,
}

/// What `marlin run` does on a maze.
#[derive(Clone, Debug, PartialEq)]
pub struct MazeStudy {
    /// Demonstrations recorded for inverse RL, and their length.
    pub trajectories: usize,
    pub steps: usize,
    /// λ values drawn by the solve stage (visit density and a trajectory each).
    pub sweep_lambda: Vec<f64>,
    /// `marlin predict` specs (`lambda:`, `walls:`); None: λ doubled.
    pub perturbations: Option<Vec<Placed>>,
}

/// Most walkers in a team.
pub const MAX_AGENTS: i64 = 1_000_000;

/// A team of walkers (`[team]`): how many, what they are rewarded for, what
/// each sees, and how they learn. Without `[team]` a maze has one walker.
#[derive(Clone, Debug, PartialEq)]
pub struct TeamSpec {
    pub agents: usize,
    pub goal: TeamGoal,
    pub view: WalkerView,
    /// Actor–critic (true) or REINFORCE.
    pub critic: bool,
    /// Learning steps of `marlin train`.
    pub ticks: u64,
    pub learning_rate: f64,
    /// Team sizes `marlin run` trains (own view) to report scaling.
    pub sweep_agents: Vec<usize>,
    /// Who sees whom (view = "topology"), over the walkers.
    pub topology: Option<crate::topology::TopologySpec>,
}

impl Default for TeamSpec {
    fn default() -> Self {
        TeamSpec {
            agents: 1,
            goal: TeamGoal::AllOnGoals,
            view: WalkerView::Own,
            critic: true,
            ticks: 2_000_000,
            learning_rate: 0.5,
            sweep_agents: Vec::new(),
            topology: None,
        }
    }
}

/// A validated maze scenario.
#[derive(Clone, Debug)]
pub struct MazeScenario {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub output: PathBuf,
    pub maze: Maze,
    /// The goal letters and rewards the map was read with.
    pub goals: Vec<(char, f64)>,
    pub lambda: f64,
    pub cost: ActionPrior,
    pub solver: crate::solver::SolveOptions,
    pub study: MazeStudy,
    /// `Some` when the file has a `[team]` section.
    pub team: Option<TeamSpec>,
}

impl MazeScenario {
    /// The team this scenario describes (its `[team]` section, or one walker
    /// with the defaults).
    pub fn team_spec(&self) -> TeamSpec {
        self.team.clone().unwrap_or_default()
    }

    /// The joint world of `agents` walkers of this maze working for
    /// `spec`'s goal; an error names the scenario file.
    pub fn team_world(&self, agents: usize, spec: &TeamSpec) -> Result<crate::solver::team::Team, ScenarioError> {
        self.maze.team(agents, spec.goal).map_err(|message| ScenarioError {
            file: self.path.clone(),
            line: None,
            column: None,
            key: None,
            message,
        })
    }

    /// Read another map (a `walls:` perturbation) with this scenario's goal
    /// letters and slip; errors name `file`, row and column.
    pub fn read_map(&self, file: &Path) -> Result<Maze, ScenarioError> {
        read_map(file, &self.goals, self.maze.slip)
    }
}

/// Whether the moved-walls map `new` (read from `file`) has the size of the
/// scenario's maze `old`: walls may move, the grid may not.
pub fn check_same_size(file: &Path, new: &Maze, old: &Maze) -> Result<(), String> {
    if (new.width, new.height) == (old.width, old.height) {
        return Ok(());
    }
    Err(format!(
        "{}: the moved-walls map is {}×{} but the scenario's is {}×{}; allowed: the same size",
        file.display(),
        new.height,
        new.width,
        old.height,
        old.width
    ))
}

/// A map file (a maze with its walls moved) with the goal letters and slip
/// of a scenario's maze; errors at the file's line and column.
pub fn read_map(file: &Path, goals: &[(char, f64)], slip: f64) -> Result<Maze, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|e| ScenarioError {
        file: file.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read the map: {e}"),
    })?;
    Maze::parse(&text, goals, slip).map_err(|e| {
        let (line, column) = match (e.row, e.column) {
            (Some(r), c) => {
                let rows = map_rows(&text);
                let (_, lead, raw) = rows[r - 1];
                (Some(raw + 1), c.map(|c| lead + c))
            }
            _ => (None, None),
        };
        ScenarioError {
            file: file.to_path_buf(),
            line,
            column,
            key: None,
            message: e.message,
        }
    })
}

/// Whether a parsed TOML document is a maze scenario.
pub(super) fn is_maze(doc: &toml::Table) -> bool {
    doc.contains_key("maze")
}

pub(super) fn parse(cx: &Cx, text: &str) -> Result<MazeScenario, ScenarioError> {
    let f: MazeFile = cx.deserialize(text)?;
    let (name, seed, output) = header(cx, f.name, &f.seed, f.output)?;
    let sec = f.maze.get_ref();
    let slip = match &sec.slip {
        Some(v) => cx.prob(v, "maze.slip", false, true)?,
        None => 0.0,
    };
    let goals = goal_letters(cx, &sec.goals, "maze.goals")?;
    let maze = Maze::parse(sec.map.get_ref(), &goals, slip).map_err(|e| map_error(cx, &sec.map, "maze.map", e))?;

    let cost_sec = f.cost.get_ref();
    let lambda = cx.positive(&cost_sec.lambda, "cost.lambda")?;
    let kind = cost_sec.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span()));
    let cost = match (kind, &cost_sec.prior) {
        (None | Some(("mutual_information", _)), None) => ActionPrior::Marginal,
        (None | Some(("mutual_information", _)), Some(p)) => {
            return Err(cx.err(
                p.span(),
                "cost.prior",
                "a prior is given but kind is \"mutual_information\" (the prior is the action marginal); \
                 allowed: remove it, or set kind = \"fixed_prior\"",
            ));
        }
        (Some(("fixed_prior", span)), None) => {
            return Err(cx.err(
                span,
                "cost.prior",
                format!("kind = \"fixed_prior\" needs prior = [..] over the actions {ACTIONS:?}"),
            ));
        }
        (Some(("fixed_prior", _)), Some(p)) => {
            let v = p.get_ref();
            if v.len() != ACTIONS.len() || v.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(cx.err(
                    p.span(),
                    "cost.prior",
                    format!(
                        "got {v:?}; allowed: {} positive probabilities for {ACTIONS:?}",
                        ACTIONS.len()
                    ),
                ));
            }
            let total: f64 = v.iter().sum();
            if (total - 1.0).abs() > 1e-6 {
                return Err(cx.err(
                    p.span(),
                    "cost.prior",
                    format!("the probabilities sum to {total}; allowed: a distribution summing to 1"),
                ));
            }
            ActionPrior::Fixed(v.clone())
        }
        (Some((other, span)), _) => {
            return Err(cx.err(
                span,
                "cost.kind",
                format!("unknown cost {other:?}; allowed: \"mutual_information\", \"fixed_prior\""),
            ));
        }
    };
    let mut solver = solver_options(cx, &f.solver)?;
    // Maze worlds are small and Blahut–Arimoto on them slow near λ ≈ 1
    // (about 10³ iterations at a few milliseconds each): allow more.
    if f.solver.as_ref().is_none_or(|s| s.max_prior_iterations.is_none()) {
        solver.max_prior_iterations = 100_000;
    }

    let mut study = MazeStudy {
        trajectories: 100,
        steps: 50,
        sweep_lambda: vec![lambda],
        perturbations: None,
    };
    if let Some(st) = &f.study {
        let s = st.get_ref();
        if let Some(v) = &s.trajectories {
            study.trajectories = cx.count(v, "study.trajectories", 1, 10_000_000)?;
        }
        if let Some(v) = &s.steps {
            study.steps = cx.count(v, "study.steps", 1, 100_000_000)?;
        }
        if let Some(v) = &s.sweep_lambda {
            if v.get_ref().is_empty() || v.get_ref().iter().any(|l| !(l.is_finite() && *l > 0.0)) {
                return Err(cx.err(
                    v.span(),
                    "study.sweep_lambda",
                    format!("got {:?}; allowed: a non-empty list of positive numbers", v.get_ref()),
                ));
            }
            study.sweep_lambda = v.get_ref().clone();
        }
        if let Some(p) = &s.perturbations {
            let at = Some(cx.line_col(p.span().start));
            study.perturbations = Some(p.get_ref().iter().map(|s| Placed { value: s.clone(), at }).collect());
        }
    }
    let team = f.team.as_ref().map(|t| team_spec(cx, t)).transpose()?;
    Ok(MazeScenario {
        team,
        path: cx.path.to_path_buf(),
        name,
        description: f.description.unwrap_or_default(),
        seed,
        output,
        maze,
        goals,
        lambda,
        cost,
        solver,
        study,
    })
}

fn team_spec(cx: &Cx, section: &Spanned<TeamSection>) -> Result<TeamSpec, ScenarioError> {
    let t = section.get_ref();
    let mut spec = TeamSpec::default();
    if let Some(v) = &t.agents {
        spec.agents = cx.count(v, "team.agents", 1, MAX_AGENTS)?;
    }
    let word = |v: &Spanned<String>, key: &str, allowed: &[&str]| -> Result<usize, ScenarioError> {
        allowed.iter().position(|a| a == v.get_ref()).ok_or_else(|| {
            let names: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
            cx.err(
                v.span(),
                key,
                format!("got {:?}; allowed: {}", v.get_ref(), names.join(", ")),
            )
        })
    };
    if let Some(v) = &t.goal {
        spec.goal = [TeamGoal::AllOnGoals, TeamGoal::Meet][word(v, "team.goal", &["all_on_goals", "meet"])?];
    }
    if let Some(v) = &t.view {
        spec.view = [WalkerView::Own, WalkerView::Joint, WalkerView::Topology]
            [word(v, "team.view", &["own", "joint", "topology"])?];
    }
    match (&t.topology, spec.view) {
        (Some(top), WalkerView::Topology) => {
            spec.topology = Some(super::topology_spec_for(
                cx,
                top,
                spec.agents,
                "team.topology",
                "walkers",
            )?);
        }
        (None, WalkerView::Topology) => {
            return Err(cx.err(
                t.view.as_ref().expect("the view was read").span(),
                "team.view",
                "view = \"topology\" needs team.topology (e.g. topology = { kind = \"ring\", k = 1 }); \
                 allowed without it: \"own\", \"joint\"",
            ));
        }
        (Some(top), _) => {
            return Err(cx.err(
                top.span(),
                "team.topology",
                "a topology applies with view = \"topology\" only",
            ));
        }
        (None, _) => {}
    }
    if let Some(v) = &t.rule {
        spec.critic = word(v, "team.rule", &["actor_critic", "reinforce"])? == 0;
    }
    if let Some(v) = &t.ticks {
        spec.ticks = cx.count(v, "team.ticks", 1, 1_000_000_000_000)? as u64;
    }
    if let Some(v) = &t.learning_rate {
        spec.learning_rate = cx.positive(v, "team.learning_rate")?;
    }
    if let Some(v) = &t.sweep_agents {
        if v.get_ref().iter().any(|&a| !(1..=MAX_AGENTS).contains(&a)) {
            return Err(cx.err(
                v.span(),
                "team.sweep_agents",
                format!("got {:?}; allowed: team sizes from 1 to {MAX_AGENTS}", v.get_ref()),
            ));
        }
        spec.sweep_agents = v.get_ref().iter().map(|&a| a as usize).collect();
    }
    Ok(spec)
}

/// A map error at the file's line and column: the map string starts after
/// its opening quotes (and the newline TOML drops after `"""`).
/// The goal letters and their rewards (`key` = { G = 1.0, ... }; default G = 1).
pub(super) fn goal_letters(
    cx: &Cx,
    goals: &Option<Spanned<BTreeMap<String, f64>>>,
    key: &str,
) -> Result<Vec<(char, f64)>, ScenarioError> {
    let Some(g) = goals else {
        return Ok(vec![('G', 1.0)]);
    };
    let mut out = Vec::new();
    for (k, v) in g.get_ref() {
        let mut chars = k.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(cx.err(
                g.span(),
                key,
                format!("goal key {k:?} is not one character; allowed: single letters such as G = 1.0"),
            ));
        };
        if "#.S".contains(c) || !c.is_ascii_graphic() {
            return Err(cx.err(
                g.span(),
                key,
                format!("goal letter {c:?}; allowed: a printable character other than '#', '.' and 'S'"),
            ));
        }
        if !v.is_finite() {
            return Err(cx.err(g.span(), key, format!("reward of {c:?} is {v}; allowed: finite")));
        }
        out.push((c, *v));
    }
    if out.is_empty() {
        return Err(cx.err(g.span(), key, "no goal letter; allowed: e.g. { G = 1.0 }"));
    }
    Ok(out)
}

/// A map error placed at the file's line and column of the offending cell
/// (`key` names the map's key).
pub(super) fn map_error(cx: &Cx, map: &Spanned<String>, key: &str, e: MapError) -> ScenarioError {
    let Some(row) = e.row else {
        return cx.err(map.span(), key, e.message);
    };
    let src = &cx.text[map.span()];
    let mut start = map.span().start;
    let quote = if src.starts_with("\"\"\"") || src.starts_with("'''") {
        3
    } else {
        1
    };
    start += quote;
    let rest = &cx.text[start..];
    if quote == 3 {
        if rest.starts_with("\r\n") {
            start += 2;
        } else if rest.starts_with('\n') {
            start += 1;
        }
    }
    let rows = map_rows(map.get_ref());
    let (_, lead, raw) = rows[row - 1];
    // Offset of raw line `raw` of the value in the file.
    let mut offset = start;
    for _ in 0..raw {
        match cx.text[offset..].find('\n') {
            Some(i) => offset += i + 1,
            None => break,
        }
    }
    let (line, col0) = cx.line_col(offset);
    let column = e.column.map(|c| col0 + lead + c - 1);
    ScenarioError {
        file: cx.path.to_path_buf(),
        line: Some(line),
        column: column.or(Some(col0)),
        key: Some(key.into()),
        message: e.message,
    }
}
