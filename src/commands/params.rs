//! What a policy was solved (or trained) for, sealed with its archive.
//!
//! Every policy archive marlin writes (`policy.npz` of `solve`,
//! `learned_policy.npz` of `train`, the maze and team policies) carries, in
//! the JSON file beside it (`policy.json` for `policy.npz`), the parameters
//! of the world it was solved for: λ, the input chain, the reward, the
//! network's size, update scheme and coding cost (for mazes: the map, goals,
//! slip, λ and cost; for teams also the walkers and their goal). The
//! archive's seal holds that file's digest ([`crate::files::Seal`]), so the
//! two travel together. A command that runs a policy in a scenario
//! ([`check`]) refuses one solved for another world, naming each parameter
//! that differs and both values; a policy from an older marlin (policy format
//! version 1, which recorded none of this) is refused with a request to
//! solve it again.

use super::BadInput;
use crate::files::{Archive, Npz, canonical_json, check_seal, sha256_hex, write_sealed_json};
use crate::model::{CodingCost, Network, UpdateScheme};
use crate::scenario::MazeScenario;
use crate::solver::mdp::ActionPrior;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// The policy format version whose archives carry their parameters (version
/// 1 did not).
pub const VERSION: u32 = 2;

/// Inputs up to this many values keep their transition matrix in the
/// parameters (larger chains: its SHA-256 only).
const INLINE_TRANSITION: usize = 32;

/// The parameters file beside a policy archive: `NAME.json` for `NAME.npz`.
pub fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("json")
}

/// The parameters file: which archive it belongs to, who wrote it for which
/// scenario (its name, for people), and what the policy was solved for
/// (`solved_for`, what [`check`] compares). Nothing in it depends on where
/// the files are, so the same run writes the same bytes in any folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed<P> {
    pub format: String,
    pub format_version: u32,
    /// `marlin solve`, `marlin train`.
    pub written_by: String,
    pub scenario: String,
    pub solved_for: P,
}

impl<P: Serialize> Sealed<P> {
    pub fn new(format: &str, written_by: &str, scenario: &str, solved_for: P) -> Self {
        Sealed {
            format: format.into(),
            format_version: VERSION,
            written_by: written_by.into(),
            scenario: scenario.into(),
            solved_for,
        }
    }

    /// An empty archive of this format, sealed with these parameters.
    pub fn archive(&self) -> Npz {
        Npz::sealed(&self.format, VERSION, Some(&canonical_json(self)))
    }

    /// Write `npz` (made by [`Sealed::archive`]) at `path` and the
    /// parameters beside it, each atomically.
    pub fn write(&self, npz: Npz, path: &Path) -> Result<()> {
        write_sealed_json(&sidecar(path), self).with_context(|| format!("writing {}", sidecar(path).display()))?;
        npz.write(path).with_context(|| format!("writing {}", path.display()))
    }
}

/// What a network's policy was solved for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkParams {
    pub neurons: usize,
    /// Dead neurons (clamped silent).
    pub dead: Vec<usize>,
    /// `asynchronous`, `synchronous` or `random_partial`…
    pub update: String,
    /// …with this q (random_partial only).
    pub q: Option<f64>,
    pub lambda: f64,
    /// `mutual_information` or `fixed_prior`…
    pub cost: String,
    /// …with these priors (fixed_prior only).
    pub prior: Option<Vec<f64>>,
    pub input_values: Vec<f64>,
    /// The input's transition matrix (rows: from), up to 32 values…
    pub transition: Option<Vec<Vec<f64>>>,
    /// …else the SHA-256 of its float64 bytes (little-endian, row-major).
    pub transition_sha256: Option<String>,
    /// For an input the network moves (a maze walker): the SHA-256 of its
    /// motor rule (group size, then each command's matrix, then the start).
    pub input_control_sha256: Option<String>,
    /// SHA-256 of the reward table r[x, σ] (float64, little-endian, row-major).
    pub reward_sha256: String,
    /// What each neuron observes, when not the whole state (partially observed networks).
    pub observes: Option<Vec<Observed>>,
}

/// What one neuron of a partially observed network observes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    pub input: bool,
    /// Its own and its presynaptic partners' ids.
    pub neurons: Vec<usize>,
}

fn sha256_f64(values: impl IntoIterator<Item = f64>) -> String {
    let bytes: Vec<u8> = values.into_iter().flat_map(f64::to_le_bytes).collect();
    sha256_hex(&bytes)
}

impl NetworkParams {
    /// The parameters of a tabulated network.
    pub fn of(net: &Network) -> Self {
        let xs = net.input.len();
        let small = xs <= INLINE_TRANSITION;
        NetworkParams {
            neurons: net.n,
            dead: (0..net.n).filter(|&k| !net.alive[k]).collect(),
            update: net.update.name().into(),
            q: match net.update {
                UpdateScheme::RandomPartial { q } => Some(q),
                _ => None,
            },
            lambda: net.lambda,
            cost: net.cost.name().into(),
            prior: match &net.cost {
                CodingCost::FixedPrior(p) => Some(p.clone()),
                CodingCost::MutualInformation => None,
            },
            input_values: net.input.values.clone(),
            transition: small.then(|| net.input.transition.chunks(xs).map(<[f64]>::to_vec).collect()),
            transition_sha256: (!small).then(|| sha256_f64(net.input.transition.iter().copied())),
            input_control_sha256: net.input.control.as_ref().map(|c| {
                sha256_f64(
                    std::iter::once(c.per_group as f64)
                        .chain(c.transitions.iter().flatten().copied())
                        .chain(c.start.iter().copied()),
                )
            }),
            reward_sha256: sha256_f64(net.reward.iter().copied()),
            observes: net.observes.as_ref().map(|o| {
                o.iter()
                    .map(|ob| Observed {
                        input: ob.input,
                        neurons: (0..net.n).filter(|&j| ob.mask >> j & 1 == 1).collect(),
                    })
                    .collect()
            }),
        }
    }
}

/// What a maze walker's policy (or a team's) was solved for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MazeParams {
    /// The map's rows as the scenario draws them (`#` wall, `.` free, `S`
    /// start, goal letters).
    pub map: Vec<String>,
    /// Goal letters and their rewards.
    pub goals: Vec<(char, f64)>,
    pub slip: f64,
    pub lambda: f64,
    /// `mutual_information` or `fixed_prior`…
    pub cost: String,
    /// …with this prior over the moves (fixed_prior only).
    pub prior: Option<Vec<f64>>,
    /// Teams: the number of walkers and what rewards them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_goal: Option<String>,
    /// Learned team policies: what each walker sees (its table's layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
}

impl MazeParams {
    /// A single walker's parameters at λ = `lambda`.
    pub fn walker(sc: &MazeScenario, lambda: f64) -> Self {
        MazeParams {
            map: crate::record::demos::map_rows(&sc.maze, &sc.goals),
            goals: sc.goals.clone(),
            slip: sc.maze.slip,
            lambda,
            cost: match &sc.cost {
                ActionPrior::Marginal => "mutual_information",
                ActionPrior::Fixed(_) => "fixed_prior",
            }
            .into(),
            prior: match &sc.cost {
                ActionPrior::Fixed(p) => Some(p.clone()),
                ActionPrior::Marginal => None,
            },
            agents: None,
            team_goal: None,
            view: None,
        }
    }

    /// A team's parameters (its `[team]` walkers and goal, the scenario's λ).
    pub fn team(sc: &MazeScenario) -> Self {
        let spec = sc.team.clone().unwrap_or_default();
        MazeParams {
            agents: Some(spec.agents),
            team_goal: Some(spec.goal.name().into()),
            ..Self::walker(sc, sc.lambda)
        }
    }
}

/// A parameter's name for messages.
fn label(key: &str) -> String {
    let what = match key {
        "neurons" => "network size",
        "dead" => "dead neurons",
        "update" => "update scheme",
        "q" => "random_partial q",
        "lambda" => "λ",
        "cost" => "coding cost",
        "prior" => "fixed prior",
        "input_values" => "input values",
        "transition" => "input transition matrix",
        "transition_sha256" => "input transition matrix's SHA-256",
        "input_control_sha256" => "motor rule of the input's SHA-256",
        "reward_sha256" => "reward table's SHA-256",
        "observes" => "what each neuron observes",
        "map" => "maze map",
        "goals" => "goals",
        "slip" => "slip",
        "agents" => "walkers",
        "team_goal" => "team goal",
        "view" => "what each walker sees",
        other => return other.to_string(),
    };
    format!("{what} ({key})")
}

/// A value for messages (long ones cut).
fn shown(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => "none".to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// Whether two parameter values are the same (numbers to 1 part in 10¹²,
/// which a scenario written out and read back keeps).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::{Array, Number, Object};
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Object(x), Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

/// The parameters that differ between a policy's and a scenario's, as
/// `(name, policy value, scenario value)`.
pub fn differences<P: Serialize>(policy: &P, scenario: &P) -> Vec<(String, String, String)> {
    let (a, b) = (
        serde_json::to_value(policy).expect("parameters serialise"),
        serde_json::to_value(scenario).expect("parameters serialise"),
    );
    let null = serde_json::Value::Null;
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).collect();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null));
            (!same(x, y)).then(|| (label(k), shown(x), shown(y)))
        })
        .collect()
}

/// Open the policy archive `path` (one of `formats`) with the parameters
/// beside it, checking its seal against them. Refused: a policy from an
/// older marlin (format version 1: no parameters), a sealed policy whose
/// parameters file is missing or does not match. An archive marlin did not
/// write (no seal) comes with the parameters beside it if there are any.
pub fn open<P: Serialize + DeserializeOwned>(
    path: &Path,
    formats: &[&str],
    solve_with: &str,
) -> Result<(Archive, Option<Sealed<P>>), String> {
    let seal = check_seal(path, formats, VERSION, None)?;
    if let Some(seal) = seal.as_ref().filter(|s| s.format_version < VERSION) {
        return Err(format!(
            "a {} of format version {} (an older marlin), which does not record what it was solved for \
             (λ, the input chain, the reward, …), so it cannot be checked against the scenario; solve it \
             again with this marlin ({solve_with}); allowed: policy format version {VERSION}",
            seal.format, seal.format_version
        ));
    }
    let json = sidecar(path);
    let params: Option<Sealed<P>> = match std::fs::read_to_string(&json) {
        Ok(text) => Some(serde_json::from_str(&text).map_err(|e| {
            format!(
                "its parameters file {} is not what marlin writes beside a policy ({e}); allowed: the file \
                 written with the policy",
                json.display()
            )
        })?),
        Err(_) => None,
    };
    if let Some(seal) = &seal {
        let (Some(p), Some(digest)) = (&params, &seal.metadata_sha256) else {
            return Err(format!(
                "needs its parameters {} beside it (written with it: what the policy was solved for); \
                 allowed: the policy with the .json marlin wrote beside it",
                json.display()
            ));
        };
        if sha256_hex(canonical_json(p).as_bytes()) != *digest || p.format != seal.format {
            return Err(format!(
                "its parameters file {} does not match the one marlin wrote with it: damaged, edited, or from \
                 another policy; allowed: the file written with the policy",
                json.display()
            ));
        }
    }
    Ok((Archive::open(path)?, params))
}

/// Refuse a policy (at `path`, solved for `policy`) in a scenario (at
/// `scenario_file`, with `scenario`'s parameters) that differs: every
/// differing parameter named with both values.
pub fn check<P: Serialize>(
    path: &Path,
    policy: &Sealed<P>,
    scenario_file: &Path,
    scenario: &P,
    solve_with: &str,
) -> Result<(), BadInput> {
    let diffs = differences(&policy.solved_for, scenario);
    if diffs.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = diffs
        .iter()
        .map(|(k, p, s)| format!("{k}: the policy's {p}, the scenario's {s}"))
        .collect();
    Err(BadInput(format!(
        "{}: solved for another world than {} (by `{}` for the scenario {:?}); {} — a policy runs only in \
         the world it was solved for; allowed: a policy solved for this scenario ({solve_with}), or the \
         scenario it was solved for",
        path.display(),
        scenario_file.display(),
        policy.written_by,
        policy.scenario,
        list.join("; ")
    )))
}

/// A warning for a policy archive without parameters (one a user's own code
/// wrote): it cannot be checked against the scenario.
pub fn unchecked(path: &Path) {
    tracing::warn!(
        "{}: no parameters beside it ({}), so it is not checked against the scenario (λ, input chain, reward): \
         make sure it was solved for this scenario",
        path.display(),
        sidecar(path).display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_parameter_with_both_values() {
        let a =
            serde_json::json!({"lambda": 0.5, "update": "asynchronous", "transition": [[0.98, 0.02], [0.02, 0.98]]});
        let b = serde_json::json!({"lambda": 1.0, "update": "asynchronous", "transition": [[0.7, 0.3], [0.02, 0.98]]});
        let d = differences(&a, &b);
        assert_eq!(
            d,
            vec![
                ("λ (lambda)".to_string(), "0.5".to_string(), "1.0".to_string()),
                (
                    "input transition matrix (transition)".to_string(),
                    "[[0.98,0.02],[0.02,0.98]]".to_string(),
                    "[[0.7,0.3],[0.02,0.98]]".to_string()
                ),
            ]
        );
        // Numbers within 1e-12 (relative) are the same; beyond are not.
        let c = serde_json::json!({"lambda": 0.5 + 1e-14});
        assert!(differences(&serde_json::json!({"lambda": 0.5}), &c).is_empty());
        let c = serde_json::json!({"lambda": 0.5 + 1e-9});
        assert_eq!(differences(&serde_json::json!({"lambda": 0.5}), &c).len(), 1);
    }
}
