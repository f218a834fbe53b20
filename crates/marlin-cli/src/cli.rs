//! The command-line interface: arguments (clap), logging (`-v`, `-q`,
//! `RUST_LOG`), the output folder each run claims, dispatch to
//! [`marlin::commands`] and what is printed. No science happens here.

use clap::{Parser, Subcommand};
use marlin::commands;
use marlin::files::outdir::{self, Mode, RunIdentity};
use marlin::runtime::transport::Ranks;
use marlin::scenario::World;
use std::path::PathBuf;

#[derive(Parser, Debug, Clone)]
#[command(name = "marlin", version, about = "Neural circuits as teams of reinforcement-learning agents", long_about = None)]
pub struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// No progress bars or summaries, only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Replace what the output folder holds (another run's results, files marlin did not write,
    /// or an interrupted run), instead of refusing.
    #[arg(long, global = true)]
    pub overwrite: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// The whole study: solve, train, simulate, infer the reward, predict perturbations.
    #[command(
        after_help = "Example:\n  marlin run scenarios/toy8.toml          # → out/toy8/study/{solve,train,simulate,infer,predict}/, summary.json, report.html"
    )]
    Run {
        /// Scenario file (TOML). Not needed with --resume.
        #[arg(required_unless_present = "resume")]
        scenario: Option<PathBuf>,
        /// Output folder (default: the scenario's `output`/study).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Ticks to simulate for the recording (default: the scenario's `study.ticks`, 200 000).
        #[arg(long)]
        ticks: Option<u64>,
        /// Continue the interrupted study whose output folder is DIR: its stages run again in order,
        /// the interrupted one (train or simulate) from its checkpoint, with the study's own
        /// arguments; the summary and report are those of an uninterrupted study.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["scenario", "out", "ticks"])]
        resume: Option<PathBuf>,
    },
    /// Check a scenario file without running it.
    #[command(after_help = "Example:\n  marlin validate scenarios/toy8.toml")]
    Validate {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Solve a scenario's network exactly: the optimal information-constrained policies.
    #[command(
        after_help = "Examples:\n  marlin solve scenarios/toy8.toml                                  # → out/toy8/solve/\n  marlin solve scenarios/toy8.toml --lambda 1.0                     # → out/toy8/solve_lambda_1/\n  marlin solve scenarios/toy8.toml --sweep-lambda 0.1,0.2,0.5,1,2   # → out/toy8/sweep/lambda_<λ>/"
    )]
    Solve {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output folder (default: the scenario's `output`/solve; with --lambda L,
        /// `output`/solve_lambda_L; with --sweep-lambda, `output`/sweep, one lambda_L folder per λ).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Coding-cost weight λ, overriding the scenario's.
        #[arg(long, allow_negative_numbers = true)]
        lambda: Option<f64>,
        /// Solve for each λ in a comma-separated list and draw the trade-off.
        #[arg(long = "sweep-lambda", value_delimiter = ',', num_args = 1.., allow_negative_numbers = true)]
        sweep_lambda: Option<Vec<f64>>,
    },
    /// Run a network on the actor runtime and record a trajectory.
    #[command(
        after_help = "Examples:\n  marlin solve scenarios/toy8.toml && marlin simulate scenarios/toy8.toml --policy out/toy8/solve/policy.npz --ticks 100000\n  marlin simulate scenarios/toy8.toml --untrained --ticks 10000 --out out/toy8/untrained\n  marlin simulate scenarios/ei_network.toml --ticks 1000 --record-format events   # fixed [neurons], sparse engine"
    )]
    Simulate {
        /// Scenario file (TOML). Not needed with --resume.
        #[arg(required_unless_present = "resume")]
        scenario: Option<PathBuf>,
        /// Policies from `marlin solve` (policy.npz). Needed unless --untrained, or unless the
        /// scenario fixes its neurons in a `[neurons]` section (they then run on the sparse engine).
        #[arg(long, conflicts_with = "untrained")]
        policy: Option<PathBuf>,
        /// State-blind neurons firing at their prior (0.5 for the mutual-information cost).
        #[arg(long)]
        untrained: bool,
        /// Number of ticks to simulate (for a maze: steps per demonstration).
        #[arg(long, required_unless_present = "resume")]
        ticks: Option<u64>,
        /// Maze scenarios: number of demonstrations (default: the scenario's study.trajectories).
        #[arg(long)]
        trajectories: Option<usize>,
        /// Blocks of agents (default: one per thread). Results do not depend on it.
        #[arg(long)]
        shards: Option<usize>,
        /// Threads executing the shards (default: 1 below 4096 neurons, else all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Comma-separated neuron ids to record (default: all).
        #[arg(long = "record-neurons", value_delimiter = ',')]
        record_neurons: Option<Vec<usize>>,
        /// `dense` (spikes[T, m]), `bits` (spikes_bits[T, ⌈m/8⌉], packed little-endian: 8× smaller,
        /// for large networks) or `events` (state changes only, for large sparsely changing networks).
        #[arg(long = "record-format", value_enum, default_value = "dense")]
        record_format: RecordFormat,
        /// Run on the actor engine (clock, environment, observer and shards as actix actors
        /// exchanging messages every tick) with this many agents per shard actor (1: one actor
        /// per neuron). Same results as the default barrier engine, bit for bit, but slower.
        #[arg(long = "actors", value_name = "AGENTS_PER_SHARD")]
        actors: Option<usize>,
        /// Output folder (default: the scenario's `output`/simulate).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Save a checkpoint (tick, RNG states, the recording so far) at least every SECONDS
        /// (default 60). Ctrl-C saves one and stops.
        #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
        checkpoint_every: Option<f64>,
        /// Continue the interrupted run whose output folder is DIR; the trajectory is bit for bit
        /// the one of an uninterrupted run. Takes the scenario and every setting from the checkpoint
        /// (--threads, --shards and --checkpoint-every may change).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["scenario", "policy", "untrained", "ticks", "trajectories", "record_neurons", "actors", "out"])]
        resume: Option<PathBuf>,
    },
    /// Train a network by decentralised learning: every neuron learns alone from the broadcast reward.
    #[command(
        after_help = "Examples:\n  marlin train scenarios/toy8.toml                       # the scenario's [learning] rules and policies\n  marlin train scenarios/toy8.toml --rule actor_critic --policy logistic --ticks 2000000 --seed 3\n  marlin train scenarios/rand64.toml --out out/rand64_train"
    )]
    Train {
        /// Scenario file (TOML). Not needed with --resume.
        #[arg(required_unless_present = "resume")]
        scenario: Option<PathBuf>,
        /// Ticks of learning (default: the scenario's learning.ticks).
        #[arg(long)]
        ticks: Option<u64>,
        /// Learning rules, comma-separated (default: the scenario's).
        #[arg(long, value_enum, value_delimiter = ',')]
        rule: Option<Vec<RuleArg>>,
        /// Policy parametrisations, comma-separated (default: the scenario's).
        #[arg(long, value_enum, value_delimiter = ',')]
        policy: Option<Vec<PolicyArg>>,
        /// Seed, overriding the scenario's.
        #[arg(long)]
        seed: Option<u64>,
        /// Number of checkpoints (exact scores, saved policies).
        #[arg(long)]
        checkpoints: Option<usize>,
        /// Blocks of agents (default: one per thread). Results do not depend on it.
        #[arg(long)]
        shards: Option<usize>,
        /// Threads executing the shards (default: 1 below 4096 neurons, else all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Train on the actor engine (shard actors of this many agents, clock, environment and
        /// critic as actix actors). Same results as the default engine, bit for bit; slower.
        #[arg(long = "actors", value_name = "AGENTS_PER_SHARD")]
        actors: Option<usize>,
        /// Output folder (default: the scenario's `output`/train).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Save a checkpoint (policies, learner state, RNG states, tick) at least every SECONDS,
        /// besides at every evaluation checkpoint (default 60). Ctrl-C saves one and stops.
        #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
        checkpoint_every: Option<f64>,
        /// Continue the interrupted run whose output folder is DIR, from its checkpoint; the
        /// result is bit for bit the one of an uninterrupted run. Takes the scenario and every
        /// setting from the checkpoint (--threads, --shards and --checkpoint-every may change).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["scenario", "ticks", "rule", "policy", "seed", "checkpoints", "actors", "out"])]
        resume: Option<PathBuf>,
    },
    /// Infer the reward a recorded network optimises (inverse RL).
    #[command(
        after_help = "Examples:\n  marlin infer out/toy8/simulate/trajectory.npz --lambda 0.5\n  marlin infer out/toy8/simulate/trajectory.npz --reward-model count --bootstrap 100"
    )]
    Infer {
        /// trajectory.npz (with trajectory.json beside it), as `simulate` writes it.
        trajectory: PathBuf,
        /// λ if known: the reward comes out in reward units; without it, as r/λ.
        #[arg(long, allow_negative_numbers = true)]
        lambda: Option<f64>,
        /// tabular (one reward per state; asynchronous records with actors) | count | pattern |
        /// input (one reward per input value: for networks that move their input, e.g. a maze
        /// walker) | FEATURES.npy (float64 [X, 2^n, P]): all but tabular by maximum likelihood, for
        /// any update scheme. Default: input for a network that moved its input, tabular where it
        /// applies, else count.
        #[arg(long = "reward-model", value_name = "MODEL")]
        reward_model: Option<String>,
        /// The scenario the record came from, if not the one its metadata names: what each neuron
        /// observes (its topology) and the true reward.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Bootstrap replicates over blocks of the record, for 95 % intervals (0: none).
        #[arg(long, default_value_t = 0)]
        bootstrap: usize,
        /// Output folder (default: `infer/` beside the trajectory's folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Predict how a network adapts to a perturbation, from an inferred reward.
    #[command(
        after_help = "Examples:\n  marlin predict --reward out/toy8/infer/reward.npz --scenario scenarios/toy8.toml --perturb lambda:1.0\n  marlin predict --reward out/toy8/infer/reward.npz --scenario scenarios/toy8.toml --perturb kill:0,3\n  marlin predict --reward out/toy8/infer/reward.npz --scenario scenarios/toy8.toml --perturb input:0.97,0.03;0.01,0.99"
    )]
    Predict {
        /// reward.npz written by `marlin infer`.
        #[arg(long)]
        reward: PathBuf,
        /// The scenario the record came from (its true reward gives the truth).
        #[arg(long)]
        scenario: PathBuf,
        /// kill:K[,K...] | lambda:L | input:P (switching probability) | input:a,b;c,d (matrix rows).
        #[arg(long)]
        perturb: String,
        /// Which inferred reward to use: count (the (input, count) rewards) or tabular.
        #[arg(long = "reward-model", default_value = "count")]
        reward_model: String,
        /// best: every network at the solver's best optimum (several starts); recorded: the truth
        /// continues from the recorded optimum and the prediction from the equilibrium that
        /// explained the record (the fitted policies of a parametric reward.npz), each to the
        /// local optimum it reaches — for networks with several equilibria.
        #[arg(long, default_value = "best")]
        equilibrium: String,
        /// Output folder (default: the scenario's `output`/predict).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Convert a real recording (spike times and a stimulus table, CSV) into a trajectory for `infer`.
    #[command(
        after_help = "Example:\n  marlin import docs/examples/spikes.csv --stimulus docs/examples/stimulus.csv --bin 0.005 --update asynchronous --out data/rec1\n  marlin infer data/rec1/trajectory.npz --reward-model count\n\nspikes.csv: `neuron,time` rows (time in seconds; a header row is allowed).\nstimulus.csv: `time,input` rows: from `time` on, the input is `input`.\nBin t covers [start + t·bin, start + (t+1)·bin); a neuron is active in a bin if it spiked\nthere (several spikes count once; import.json reports how many were merged)."
    )]
    Import {
        /// CSV of spikes: `neuron,time` (seconds), one per row.
        spikes: PathBuf,
        /// CSV of the input: `time,input` change points (default: one input throughout).
        #[arg(long)]
        stimulus: Option<PathBuf>,
        /// Bin width in seconds.
        #[arg(long, allow_negative_numbers = true)]
        bin: f64,
        /// Number of neurons (default: the largest id + 1; at most 1 000 000).
        #[arg(long)]
        neurons: Option<usize>,
        /// Window start in seconds (default: the first spike or stimulus change).
        #[arg(long, allow_negative_numbers = true)]
        start: Option<f64>,
        /// Window end in seconds (default: one bin after the last event).
        #[arg(long, allow_negative_numbers = true)]
        end: Option<f64>,
        /// How consecutive bins relate: synchronous (each bin is every neuron's response to the
        /// previous one), asynchronous (neurons change one at a time) or random_partial (with --q).
        #[arg(long, default_value = "synchronous")]
        update: String,
        /// random_partial: the probability that a neuron updates in a bin.
        #[arg(long, allow_negative_numbers = true)]
        q: Option<f64>,
        /// Output folder (trajectory.npz, trajectory.json, import.json).
        #[arg(long)]
        out: PathBuf,
    },
    /// List the shipped scenarios.
    Scenarios {
        /// Folder to list.
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
    },
}

/// Learning rules of `train`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
#[value(rename_all = "snake_case")]
pub enum RuleArg {
    ActorCritic,
    Reinforce,
}

/// Policy parametrisations of `train`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PolicyArg {
    Tabular,
    Logistic,
}

/// Spike recording form of `simulate`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RecordFormat {
    Dense,
    Bits,
    Events,
}

/// The output folder `command` writes, resolved as the command's own default
/// does (None: it writes none), and how it may treat what is there.
fn output_folder(cli: &Cli) -> anyhow::Result<Option<(PathBuf, Mode, Option<PathBuf>)>> {
    let inside = |scenario: &std::path::Path, sub: &str| -> anyhow::Result<PathBuf> {
        let world = World::load(scenario).map_err(commands::BadInput::from)?;
        Ok(world.output().join(sub))
    };
    let fresh = if cli.overwrite { Mode::Overwrite } else { Mode::Fresh };
    let pick = |out: &Option<PathBuf>, scenario: &std::path::Path, sub: &str| -> anyhow::Result<PathBuf> {
        match out {
            Some(o) => Ok(o.clone()),
            None => inside(scenario, sub),
        }
    };
    Ok(Some(match &cli.command {
        Command::Validate { .. } | Command::Scenarios { .. } => return Ok(None),
        Command::Run { resume: Some(dir), .. } => (dir.clone(), Mode::Resume, None),
        Command::Run {
            scenario: Some(scenario),
            out,
            ..
        } => (pick(out, scenario, "study")?, fresh, Some(scenario.clone())),
        Command::Run { .. } => return Ok(None),
        Command::Solve {
            scenario,
            out,
            lambda,
            sweep_lambda,
        } => {
            let sub = commands::solve::default_folder(*lambda, sweep_lambda.is_some());
            (pick(out, scenario, &sub)?, fresh, Some(scenario.clone()))
        }
        Command::Simulate { resume: Some(dir), .. } | Command::Train { resume: Some(dir), .. } => {
            (dir.clone(), Mode::Resume, None)
        }
        Command::Simulate {
            scenario: Some(scenario),
            out,
            ..
        } => (pick(out, scenario, "simulate")?, fresh, Some(scenario.clone())),
        Command::Train {
            scenario: Some(scenario),
            out,
            ..
        } => (pick(out, scenario, "train")?, fresh, Some(scenario.clone())),
        Command::Simulate { .. } | Command::Train { .. } => return Ok(None),
        Command::Infer {
            trajectory,
            out,
            scenario,
            ..
        } => {
            let dir = out
                .clone()
                .unwrap_or_else(|| marlin::commands::infer::default_folder(trajectory));
            (dir, fresh, scenario.clone())
        }
        Command::Predict { scenario, out, .. } => (pick(out, scenario, "predict")?, fresh, Some(scenario.clone())),
        Command::Import { out, .. } => (out.clone(), fresh, None),
    }))
}

/// The command as run into the staging folder `work` of its output folder.
fn into_folder(command: &Command, work: &std::path::Path) -> Command {
    let mut c = command.clone();
    let work = Some(work.to_path_buf());
    match &mut c {
        Command::Run { out, .. }
        | Command::Solve { out, .. }
        | Command::Infer { out, .. }
        | Command::Predict { out, .. } => *out = work,
        Command::Simulate { out, resume, .. } | Command::Train { out, resume, .. } => match resume.is_some() {
            true => *resume = work,
            false => *out = work,
        },
        Command::Import { out, .. } => *out = work.expect("given"),
        Command::Validate { .. } | Command::Scenarios { .. } => {}
    }
    c
}

/// The interrupted study `identity` (as its folder's manifest records it),
/// to run again into its staging folder `work` with its own arguments,
/// resuming its stages from their checkpoints.
fn study_to_resume(identity: &RunIdentity, work: &std::path::Path) -> anyhow::Result<Command> {
    let args = ["marlin".to_string(), identity.command.clone()]
        .into_iter()
        .chain(identity.settings.iter().cloned());
    let parsed = Cli::try_parse_from(args).map_err(|e| {
        commands::BadInput(format!(
            "cannot resume {}: its record of the study's arguments does not parse ({e})",
            outdir::final_path(work).display()
        ))
    })?;
    let Command::Run {
        scenario: Some(scenario),
        ticks,
        ..
    } = parsed.command
    else {
        return Err(commands::BadInput(format!(
            "cannot resume {} with `marlin run --resume`: it holds an interrupted `{}`",
            outdir::final_path(work).display(),
            identity.describe()
        ))
        .into());
    };
    let now = marlin::checkpoint::sha256_file(&scenario).map_err(commands::BadInput)?;
    if identity.scenario_sha256.as_ref().is_some_and(|then| *then != now) {
        return Err(commands::BadInput(format!(
            "cannot resume {}: {} changed since the study was interrupted; allowed: the same file (or start \
             again with --overwrite)",
            outdir::final_path(work).display(),
            scenario.display()
        ))
        .into());
    }
    Ok(Command::Run {
        scenario: Some(scenario),
        out: Some(work.to_path_buf()),
        ticks,
        resume: Some(work.to_path_buf()),
    })
}

/// What a run is, for its output folder: the subcommand and the arguments
/// that change results (not where it writes, how many threads, how often
/// it checkpoints, or how much it prints), and the scenario's digest.
fn run_identity(args: &[String], scenario: Option<&std::path::Path>) -> RunIdentity {
    const WITH_VALUE: [&str; 5] = ["--out", "--threads", "--shards", "--checkpoint-every", "--resume"];
    const ALONE: [&str; 4] = ["--quiet", "--verbose", "--overwrite", "--"];
    let mut command = None;
    let mut settings = Vec::new();
    let mut skip = false;
    for a in args.iter().skip(1) {
        if std::mem::take(&mut skip) {
            continue;
        }
        let flag = a.split('=').next().unwrap_or(a);
        if WITH_VALUE.contains(&flag) {
            skip = !a.contains('=');
            continue;
        }
        let short_global =
            a.len() > 1 && a.starts_with('-') && !a.starts_with("--") && a[1..].chars().all(|c| "vq".contains(c));
        if ALONE.contains(&a.as_str()) || short_global {
            continue;
        }
        match command {
            None if !a.starts_with('-') => command = Some(a.clone()),
            // `--ticks=100` is the same setting as `--ticks 100`.
            _ => match a.split_once('=').filter(|_| a.starts_with("--")) {
                Some((flag, value)) => settings.extend([flag.to_string(), value.to_string()]),
                None => settings.push(a.clone()),
            },
        }
    }
    let scenario_sha256 = scenario.and_then(|p| marlin::checkpoint::sha256_file(p).ok());
    RunIdentity {
        command: command.unwrap_or_default(),
        scenario: scenario.map(|p| p.display().to_string()),
        scenario_sha256,
        settings,
    }
}

/// A count in a summary (JSON) and its noun, singular for one.
fn count_of(v: &serde_json::Value, noun: &str) -> String {
    match v.as_u64() {
        Some(n) => marlin::text::count(n, noun),
        None => format!("{v} {noun}s"),
    }
}

/// The staging folder and the output folder it becomes, for messages.
static SHOWN: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// `text` with the staging folder's path shown as the output folder's (a
/// user is told where results land, and which folder to resume).
fn show(text: impl std::fmt::Display) -> String {
    let text = text.to_string();
    match SHOWN.get() {
        Some((work, dir)) => text.replace(work.as_str(), dir),
        None => text,
    }
}

/// Parse arguments, set up logging, dispatch; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    // The library's progress reports: bars on a terminal, stage lines.
    marlin::progress::set_reporter(Box::new(crate::progress::Bars));
    // Ctrl-C (and SIGTERM, as batch schedulers send before a time limit):
    // runs that checkpoint save at their next block and stop; a second
    // signal, or one while nothing checkpoints, stops at once.
    let _ = ctrlc::set_handler(|| {
        if marlin::checkpoint::stop_requested() || !marlin::checkpoint::saving() {
            eprintln!("\nstopped");
            std::process::exit(130);
        }
        eprintln!("\nstopping after the next checkpoint (Ctrl-C again to stop at once)");
        marlin::checkpoint::request_stop();
    });
    #[cfg(feature = "mpi")]
    let world = match marlin::runtime::mpi::MpiWorld::from_launcher() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: MPI: {e}");
            return 1;
        }
    };
    #[cfg(feature = "mpi")]
    let ranks = world.as_ref().map(|w| w as &Ranks);
    #[cfg(not(feature = "mpi"))]
    let ranks = None;
    // A rank that fails or panics while the others run would leave them
    // waiting in a collective: under MPI it ends the whole job instead.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&cli, ranks)));
    let code = match ran {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("error: {}", show(format!("{e:#}")));
            commands::exit_code(&e)
        }
        Err(_) => 101, // the panic hook printed the message
    };
    #[cfg(feature = "mpi")]
    if code != 0
        && code != 130 // every rank stops together after a checkpoint
        && let Some(w) = world.as_ref().filter(|w| w.distributed())
    {
        w.abort(code);
    }
    code
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("marlin={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn print_maze_study(s: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "maze study of {} in {:.2} s:",
        s["scenario"].as_str().unwrap_or("?"),
        f(&s["seconds"])
    );
    for r in s["solve"].as_array().into_iter().flatten() {
        println!(
            "  solve     λ = {}: goal rate {:.4}/step, I(S;A) = {:.3} bits/step",
            r["lambda"],
            f(&r["mean_reward"]),
            f(&r["info_bits"])
        );
    }
    println!(
        "  simulate  {} of {}",
        count_of(&s["simulate"]["trajectories"], "demonstration"),
        count_of(&s["simulate"]["steps"], "step")
    );
    for m in s["infer"]["methods"].as_array().into_iter().flatten() {
        println!(
            "  infer     {:<12} argmax is the goal: {}, correlation with the truth {:.3}",
            m["model"].as_str().unwrap_or("?"),
            m["argmax_is_goal"],
            f(&m["correlation_with_truth"])
        );
    }
    for p in s["predict"].as_array().into_iter().flatten() {
        println!(
            "  predict   {}: TV to the truth {:.4} (naive {:.4})",
            p["perturbation"].as_str().unwrap_or("?"),
            f(&p["tv_pred_truth"]),
            f(&p["tv_naive_truth"])
        );
    }
    println!("  → {}", show(s["output"].as_str().unwrap_or("?")));
}

fn print_team_study(s: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "team maze study of {} ({}, {}) in {:.2} s:",
        s["scenario"].as_str().unwrap_or("?"),
        count_of(&s["agents"], "walker"),
        s["goal"].as_str().unwrap_or("?"),
        f(&s["seconds"])
    );
    if !s["solve"].is_null() {
        println!(
            "  solve     g* = {:.4}, team reward {:.4}/step",
            f(&s["solve"]["g"]),
            f(&s["solve"]["mean_reward"])
        );
    }
    let inf = &s["inverse"]["infer"];
    if !inf.is_null() {
        println!(
            "  infer     {} × {}: {}/{} of the top-ranked joint states rewarded, correlation with the true \
             reward {:.3}{}",
            count_of(&inf["trajectories"], "demonstration"),
            count_of(&inf["steps"], "step"),
            inf["top_rewarded"],
            inf["rewarded_states"],
            f(&inf["correlation_with_truth"]),
            if inf["notes"].as_array().is_some_and(|n| n
                .iter()
                .any(|n| n.as_str().is_some_and(|n| n.contains("never demonstrated"))))
            {
                " (some moves never demonstrated: weakly identified)"
            } else {
                ""
            }
        );
    }
    for p in s["inverse"]["predict"].as_array().into_iter().flatten() {
        println!(
            "  predict   {}: total variation from the truth {:.4} (naive {:.4}); team reward truth {:.4}, predicted \
             {:.4}, naive {:.4}/step",
            p["perturbation"].as_str().unwrap_or("?"),
            f(&p["tv_pred_truth"]),
            f(&p["tv_naive_truth"]),
            f(&p["team_rate_truth"]),
            f(&p["team_rate_pred"]),
            f(&p["team_rate_naive"])
        );
    }
    for r in s["train"].as_array().into_iter().flatten() {
        println!(
            "  train     view {}: exact g = {:.4} = {:.3}·g*, team reward {:.4}/step",
            r["view"].as_str().unwrap_or("?"),
            f(&r["exact_g"]),
            f(&r["g_over_optimum"]),
            f(&r["mean_reward"])
        );
    }
    for r in s["scaling"].as_array().into_iter().flatten() {
        println!(
            "  scaling   {} (own view): team reward {:.4}/step, running g = {:.4}",
            count_of(&r["agents"], "walker"),
            f(&r["mean_reward"]),
            f(&r["running_g"])
        );
    }
    println!("  → {}", show(s["output"].as_str().unwrap_or("?")));
}

fn print_coding_study(s: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "sensory-coding study of {} in {:.2} s:",
        s["scenario"].as_str().unwrap_or("?"),
        f(&s["seconds"])
    );
    let code = |c: &serde_json::Value| {
        format!(
            "I(Y;Σ) = {:.3} bits (independent {:.3}), cell types {}",
            f(&c["information_y_bits"]),
            f(&c["independent_information_y_bits"]),
            c["cell_types"]
        )
    };
    println!("  solve     {}", code(&s["solve"]));
    println!("  simulate  {}", count_of(&s["simulate"]["ticks"], "tick"));
    let t = &s["train"];
    if !t.is_null() {
        println!(
            "  train     objective {:.4} learned, {:.4} refined by alternation, {:.4} solved; learned {}",
            f(&t["g"]),
            f(&t["refined"]["objective"]),
            f(&t["solved_objective"]),
            code(&t["learned"])
        );
    }
    println!(
        "  infer     correlation with log p(y | σ) {:.3} (tabular {:.3}), scale {:.3}, y(m) recovered: {}",
        f(&s["infer"]["correlation_with_truth"]),
        f(&s["infer_tabular"]["correlation_with_truth"]),
        f(&s["infer"]["scale"]),
        s["infer"]["feature_recovered"]
    );
    for p in s["predict"].as_array().into_iter().flatten() {
        println!("  predict   {}:", p["perturbation"].as_str().unwrap_or("?"));
        println!("              truth              {}", code(&p["truth"]));
        println!(
            "              inferred objective {} (rate error {:.3})",
            code(&p["predicted_objective"]),
            f(&p["rate_error_objective"])
        );
        println!(
            "              inferred table     {} (rate error {:.3})",
            code(&p["predicted_table"]),
            f(&p["rate_error_table"])
        );
        println!(
            "              naive              cell types {} (rate error {:.3})",
            p["naive"]["cell_types"],
            f(&p["rate_error_naive"])
        );
    }
    for w in s["warnings"].as_array().into_iter().flatten() {
        println!("  warning: {}", w.as_str().unwrap_or("?"));
    }
    println!("  → {}", show(s["output"].as_str().unwrap_or("?")));
}

/// Run the command; `ranks` when launched by `mpirun` (feature `mpi`).
/// Claim the command's output folder (rank 0 under MPI), run the command
/// into its staging folder, and put the results in place when it succeeds.
fn run(cli: &Cli, ranks: Option<&Ranks>) -> anyhow::Result<()> {
    let Some((dir, mode, scenario)) = output_folder(cli)? else {
        return dispatch(cli, ranks);
    };
    let work = outdir::staging(&dir);
    let writes = ranks.is_none_or(|r| r.size() == 1 || r.rank() == 0);
    let claim = match writes {
        true => {
            let args: Vec<String> = std::env::args().collect();
            let identity = run_identity(&args, scenario.as_deref());
            Some(outdir::claim(&dir, identity, mode).map_err(|e| commands::BadInput(e.0))?)
        }
        false => None,
    };
    let work = claim.as_ref().map_or(work, |c| c.work().to_path_buf());
    let _ = SHOWN.set((work.display().to_string(), dir.display().to_string()));
    let command = match (&cli.command, &claim) {
        (Command::Run { resume: Some(_), .. }, Some(c)) => study_to_resume(c.identity(), &work)?,
        _ => into_folder(&cli.command, &work),
    };
    let staged = Cli { command, ..cli.clone() };
    dispatch(&staged, ranks)?;
    match claim {
        Some(c) => c.commit(),
        None => Ok(()),
    }
}

fn dispatch(cli: &Cli, ranks: Option<&Ranks>) -> anyhow::Result<()> {
    let ranks = ranks.filter(|r| r.size() > 1);
    if let Some(r) = ranks
        && !matches!(cli.command, Command::Simulate { .. } | Command::Train { .. })
    {
        return Err(commands::BadInput(format!(
            "launched on {} MPI ranks: only `marlin simulate` and `marlin train` run distributed (each rank a \
             block of neurons, or of maze walkers); run this command without mpirun",
            r.size()
        ))
        .into());
    }
    match &cli.command {
        Command::Run {
            scenario,
            out,
            ticks,
            resume,
        } => {
            let scenario = scenario.as_ref().expect("given, or read back for --resume");
            let resume = resume.is_some();
            let world = World::load(scenario).map_err(commands::BadInput::from)?;
            if let World::Coding(c) = &world {
                let dir = out.clone().unwrap_or_else(|| c.output.join("study"));
                marlin::checkpoint::resume_as("run", &dir);
                let s = commands::coding::study(c, &dir, *ticks, resume, cli.quiet)?;
                if !cli.quiet {
                    print_coding_study(&s);
                }
                return Ok(());
            }
            if let World::Maze(m) = &world
                && m.team.is_some()
            {
                if ticks.is_some() {
                    return Err(commands::BadInput(
                        "--ticks does not apply to a team maze; set team.ticks in the scenario".into(),
                    )
                    .into());
                }
                let dir = out.clone().unwrap_or_else(|| m.output.join("study"));
                let s = commands::team::study(m, &dir, cli.quiet)?;
                if !cli.quiet {
                    print_team_study(&s);
                }
                return Ok(());
            }
            if let World::Maze(m) = world {
                if ticks.is_some() {
                    return Err(commands::BadInput(
                        "--ticks does not apply to a maze; set study.trajectories and study.steps in the scenario"
                            .into(),
                    )
                    .into());
                }
                let dir = out.clone().unwrap_or_else(|| m.output.join("study"));
                let s = commands::maze::study(&m, &dir, cli.quiet)?;
                if !cli.quiet {
                    print_maze_study(&s);
                }
                return Ok(());
            }
            let args = commands::study::StudyArgs {
                scenario: scenario.clone(),
                out: out.clone(),
                ticks: *ticks,
                resume,
                quiet: cli.quiet,
            };
            let s = commands::study::run_study(&args)?;
            if !cli.quiet {
                println!("study of {} in {:.2} s:", s.scenario, s.seconds);
                println!(
                    "  solve     g = {:.4}, ⟨r⟩ = {:.4}, information = {:.4} nats/tick",
                    s.solve.g, s.solve.mean_reward, s.solve.info_nats
                );
                for r in &s.train {
                    println!(
                        "  train     {}: g = {:.4} = {:.3}·g* after {}",
                        r.label,
                        r.g.unwrap_or(f64::NAN),
                        r.g_over_optimum.unwrap_or(f64::NAN),
                        marlin::text::count(r.ticks, "tick")
                    );
                }
                println!(
                    "  simulate  {}, ⟨r⟩ = {:.4}",
                    marlin::text::count(s.simulate.ticks, "tick"),
                    s.simulate.mean_reward
                );
                if let Some(i) = &s.infer {
                    println!("  infer     {}", i.headline);
                }
                for p in &s.predict {
                    println!(
                        "  predict   {}: TV to the truth {:.4} (naive {:.4})",
                        p.perturbation, p.tv_pred_truth, p.tv_naive_truth
                    );
                }
                println!("  → {}", show(&s.output));
            }
            Ok(())
        }
        Command::Validate { scenario } => {
            let s = match World::load(scenario).map_err(commands::BadInput::from)? {
                World::Network(s) => s,
                World::Coding(c) => {
                    commands::coding::study_perturbations(&c)?;
                    if !cli.quiet {
                        let t = &c.task;
                        println!(
                            "{}: ok — sensory coding: {} on with probability {}, y = +1 above {} on, \
                             redrawn with probability {} per tick, {}, λ = {}",
                            scenario.display(),
                            marlin::text::count(t.pixels as u64, "pixel"),
                            t.pixel_probability,
                            t.threshold,
                            t.change_probability,
                            marlin::text::count(t.neurons as u64, "neuron"),
                            t.lambda
                        );
                    }
                    return Ok(());
                }
                World::Maze(m) => {
                    commands::maze::study_perturbations(&m)?;
                    if !cli.quiet {
                        println!(
                            "{}: ok — maze {}×{}, {}, {}, slip {}, λ = {}{}",
                            scenario.display(),
                            m.maze.height,
                            m.maze.width,
                            marlin::text::count(m.maze.states() as u64, "free cell"),
                            marlin::text::count(m.maze.goals.len() as u64, "goal"),
                            m.maze.slip,
                            m.lambda,
                            m.team
                                .as_ref()
                                .map(|t| format!(
                                    ", a team of {} ({}, view {})",
                                    marlin::text::count(t.agents as u64, "walker"),
                                    t.goal.name(),
                                    t.view.name()
                                ))
                                .unwrap_or_default()
                        );
                    }
                    return Ok(());
                }
            };
            // What `marlin run` checks before its first stage.
            commands::study::study_perturbations(&s)?;
            if !cli.quiet {
                let input = match &s.motor {
                    Some(m) => m.describe(),
                    None => marlin::text::count(s.input.len() as u64, "input value"),
                };
                println!(
                    "{}: ok — {}, {input}, {} updates, {} reward, λ = {}, {} cost{}",
                    scenario.display(),
                    marlin::text::count(s.neurons as u64, "neuron"),
                    s.update,
                    s.reward.kind(),
                    s.lambda,
                    s.cost.name(),
                    s.logistic
                        .as_ref()
                        .map(|l| format!("; fixed logistic neurons ({}) for simulate", l.describe()))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Solve {
            scenario,
            out,
            lambda,
            sweep_lambda,
        } => {
            let world = World::load(scenario).map_err(commands::BadInput::from)?;
            if let World::Coding(c) = &world {
                if lambda.is_some() || sweep_lambda.is_some() {
                    return Err(commands::BadInput(
                        "--lambda and --sweep-lambda do not apply to a sensory-coding scenario; set cost.lambda in it"
                            .into(),
                    )
                    .into());
                }
                let dir = commands::coding::solve_dir(c, out.as_ref());
                let s = commands::coding::solve(c, &dir, cli.quiet)?;
                if !cli.quiet {
                    println!(
                        "code: I(Y;Σ) = {:.4} bits (independent neurons: {:.4}), cost {:.4} nats/tick, cell types {:?}, \
                         p(y=+1 | count) monotone: {}, {} {} → {}",
                        s.information_y_bits,
                        s.independent_information_y_bits,
                        s.info_nats,
                        s.cell_types,
                        s.posterior_monotone,
                        marlin::text::count(s.alternations as u64, "alternation"),
                        if s.converged { "(converged)" } else { "(NOT CONVERGED)" },
                        show(dir.display())
                    );
                    println!(
                        "objective {:.4}: the best fixed point of the alternation from the symmetric decoder, not \
                         necessarily the optimum (`marlin train` on this scenario searches from learned codes)",
                        s.objective
                    );
                }
                return Ok(());
            }
            if let World::Maze(m) = &world
                && m.team.is_some()
            {
                if lambda.is_some() || sweep_lambda.is_some() {
                    return Err(commands::BadInput(
                        "--lambda and --sweep-lambda apply to one walker; set cost.lambda in a team scenario".into(),
                    )
                    .into());
                }
                let dir = out.clone().unwrap_or_else(|| m.output.join("solve"));
                let (r, _, _) = commands::team::solve(m, &dir, cli.quiet)?;
                if !cli.quiet {
                    println!(
                        "{} ({}), λ = {}: g = {:.6}  team reward = {:.6}/step  I = {:.4} bits/step per walker  {} ({:.2} s) → {}",
                        marlin::text::count(r.agents as u64, "walker"),
                        r.goal,
                        r.lambda,
                        r.g,
                        r.mean_reward,
                        r.info_bits_per_walker,
                        if r.converged { "converged" } else { "NOT CONVERGED" },
                        r.seconds,
                        show(dir.display())
                    );
                }
                return Ok(());
            }
            if let World::Maze(m) = world {
                let lambdas = commands::solve::lambdas(sweep_lambda.as_deref(), *lambda, m.lambda)?;
                let dir = out.clone().unwrap_or_else(|| {
                    m.output
                        .join(commands::solve::default_folder(*lambda, sweep_lambda.is_some()))
                });
                let records = commands::maze::solve(&m, &lambdas, &dir, sweep_lambda.is_some(), cli.quiet)?;
                if !cli.quiet {
                    for r in &records {
                        println!(
                            "λ = {:<6} g = {:.6}  goal rate = {:.6}/step  I(S;A) = {:.4} bits/step  {} ({:.2} s) → {}",
                            r.lambda,
                            r.g,
                            r.mean_reward,
                            r.info_bits,
                            if r.converged { "converged" } else { "NOT CONVERGED" },
                            r.seconds,
                            show(dir.display())
                        );
                    }
                }
                return Ok(());
            }
            let args = commands::solve::SolveArgs {
                scenario: scenario.clone(),
                out: out.clone(),
                lambda: *lambda,
                sweep: sweep_lambda.clone(),
                quiet: cli.quiet,
            };
            let records = commands::solve::run(&args)?;
            if !cli.quiet {
                for r in &records {
                    println!(
                        "λ = {:<6} g = {:.6}  ⟨r⟩ = {:.6}  info = {:.6} nats/tick  {} ({}, {}, {:.2} s)",
                        r.lambda,
                        r.g,
                        r.mean_reward,
                        r.info_nats,
                        if r.converged { "converged" } else { "NOT CONVERGED" },
                        marlin::text::count(r.iterations as u64, "Blahut–Arimoto iteration"),
                        marlin::text::count(r.value_sweeps as u64, "sweep"),
                        r.seconds
                    );
                }
            }
            Ok(())
        }
        Command::Simulate {
            scenario,
            policy,
            untrained,
            ticks,
            trajectories,
            shards,
            threads,
            record_neurons,
            record_format,
            actors,
            out,
            checkpoint_every,
            resume,
        } => {
            let maze = match scenario {
                Some(s) => match World::load(s).map_err(commands::BadInput::from)? {
                    World::Maze(m) => Some(m),
                    _ => None,
                },
                None => None,
            };
            if let Some(m) = maze {
                if checkpoint_every.is_some() {
                    return Err(commands::BadInput(
                        "--checkpoint-every applies to networks: maze demonstrations are written at once".into(),
                    )
                    .into());
                }
                if ranks.is_some() {
                    return Err(commands::BadInput(
                        "maze demonstrations are recorded in one process: run them without mpirun".into(),
                    )
                    .into());
                }
                if policy.is_none() && !untrained {
                    return Err(commands::BadInput(
                        "simulate on a maze needs --policy POLICY.npz or --untrained".into(),
                    )
                    .into());
                }
                let dir = out.clone().unwrap_or_else(|| m.output.join("simulate"));
                let n = trajectories.unwrap_or(m.study.trajectories);
                let steps = ticks.expect("required without --resume") as usize;
                let (r, file) = if m.team.is_some() {
                    let r = commands::team_irl::simulate(&m, policy.as_deref(), n, steps, &dir)?;
                    (r, "team_demonstrations.npz")
                } else {
                    let r = commands::maze::simulate(&m, policy.as_deref(), n, steps, &dir)?;
                    (r, "demonstrations.npz")
                };
                if !cli.quiet {
                    println!(
                        "{} of {} in {:.2} s: {} rate {:.4}/step → {}",
                        marlin::text::count(r.trajectories as u64, "demonstration"),
                        marlin::text::count(r.steps as u64, "step"),
                        r.seconds,
                        if m.team.is_some() { "team reward" } else { "goal" },
                        r.mean_reward,
                        show(dir.join(file).display())
                    );
                }
                return Ok(());
            }
            if trajectories.is_some() {
                return Err(commands::BadInput("--trajectories applies to maze scenarios only".into()).into());
            }
            let args = commands::simulate::SimulateArgs {
                scenario: scenario.clone().unwrap_or_default(),
                policy: policy.clone(),
                untrained: *untrained,
                ticks: ticks.unwrap_or_default(),
                shards: *shards,
                threads: *threads,
                record_neurons: record_neurons.clone(),
                form: match record_format {
                    RecordFormat::Dense => marlin::record::stream::SpikeForm::Dense,
                    RecordFormat::Bits => marlin::record::stream::SpikeForm::Bits,
                    RecordFormat::Events => marlin::record::stream::SpikeForm::Events,
                },
                out: out.clone(),
                quiet: cli.quiet,
                actors: *actors,
                checkpoint_every: *checkpoint_every,
                resume: resume.clone(),
            };
            let r = commands::simulate::run_simulate_on(&args, ranks)?;
            if !cli.quiet && ranks.is_none_or(|r| r.rank() == 0) {
                let t = r.totals.ticks as f64;
                println!(
                    "{} in {:.2} s ({:.3e} ticks/s): ⟨r⟩ = {:.4}, information = {:.4} nats/tick, mean spike count = {:.3} → {}",
                    marlin::text::count(r.totals.ticks, "tick"),
                    r.seconds,
                    t / r.seconds,
                    r.totals.reward / t,
                    r.totals.info / t,
                    r.totals.spikes as f64 / t,
                    show(r.out.display())
                );
            }
            Ok(())
        }
        Command::Train {
            scenario,
            ticks,
            rule,
            policy,
            seed,
            checkpoints,
            shards,
            threads,
            actors,
            out,
            checkpoint_every,
            resume,
        } => {
            use marlin::learn::{PolicyKind, Rule};
            // A resumed coding run finds its task beside the code it solved.
            let copy = resume
                .as_ref()
                .map(|d| d.join("code").join(commands::coding::CODING_SCENARIO))
                .filter(|p| p.exists());
            let (maze, coding) = match scenario.as_ref().or(copy.as_ref()) {
                Some(s) => match World::load(s).map_err(commands::BadInput::from)? {
                    World::Maze(m) => (Some(m), None),
                    World::Coding(c) => (None, Some(c)),
                    _ => (None, None),
                },
                None => (None, None),
            };
            if coding.is_some() && ranks.is_some() {
                return Err(commands::BadInput(
                    "a sensory-coding network is small (≤ 12 neurons): run `marlin train` on it without mpirun".into(),
                )
                .into());
            }
            if let Some(mut m) = maze {
                if policy.is_some() || actors.is_some() || checkpoints.is_some() || checkpoint_every.is_some() {
                    return Err(commands::BadInput(
                        "--policy, --actors, --checkpoints and --checkpoint-every apply to networks; maze walkers \
                         learn tabular policies (set [team] in the scenario)"
                            .into(),
                    )
                    .into());
                }
                let mut spec = m.team_spec();
                if let Some(t) = ticks {
                    spec.ticks = *t;
                }
                if let Some(s) = seed {
                    m.seed = *s;
                }
                match rule.as_deref() {
                    None => {}
                    Some([RuleArg::ActorCritic]) => spec.critic = true,
                    Some([RuleArg::Reinforce]) => spec.critic = false,
                    Some(_) => {
                        return Err(commands::BadInput("a maze team learns with one --rule at a time".into()).into());
                    }
                }
                m.team = Some(spec);
                let dir = out.clone().unwrap_or_else(|| m.output.join("train"));
                let layout = (threads.is_some() || shards.is_some()).then(|| {
                    let threads = threads.unwrap_or(1);
                    marlin::runtime::Layout {
                        shards: shards.unwrap_or(threads),
                        threads,
                    }
                });
                let placement = commands::team::Placement { layout, ranks };
                let r = commands::team::train_scenario(&m, placement, &dir, cli.quiet)?;
                if !cli.quiet && ranks.is_none_or(|r| r.rank() == 0) {
                    println!(
                        "{}, view {}, {} in {:.2} s: team reward {:.4}/step, running g = {:.4}{} → {}",
                        marlin::text::count(r.agents as u64, "walker"),
                        r.view,
                        marlin::text::count(r.ticks, "step"),
                        r.seconds,
                        r.mean_reward,
                        r.running_g,
                        match (r.exact_g, r.g_over_optimum) {
                            (Some(g), Some(q)) => format!(", exact g = {g:.4} = {q:.3}·g*"),
                            _ => String::new(),
                        },
                        show(dir.display())
                    );
                }
                return Ok(());
            }
            let args = commands::train::TrainArgs {
                scenario: scenario.clone().unwrap_or_default(),
                ticks: *ticks,
                rules: rule.as_ref().map(|v| {
                    v.iter()
                        .map(|r| match r {
                            RuleArg::ActorCritic => Rule::ActorCritic,
                            RuleArg::Reinforce => Rule::Reinforce,
                        })
                        .collect()
                }),
                policies: policy.as_ref().map(|v| {
                    v.iter()
                        .map(|p| match p {
                            PolicyArg::Tabular => PolicyKind::Tabular,
                            PolicyArg::Logistic => PolicyKind::Logistic,
                        })
                        .collect()
                }),
                seed: *seed,
                checkpoints: *checkpoints,
                shards: *shards,
                threads: *threads,
                actors: *actors,
                out: out.clone(),
                quiet: cli.quiet,
                checkpoint_every: *checkpoint_every,
                resume: resume.clone(),
            };
            let (s, learned) = match &coding {
                Some(c) => {
                    let (s, l) = commands::coding::train(c, &args)?;
                    (s, Some(l))
                }
                None => (commands::train::run_train_on(&args, ranks)?, None),
            };
            if !cli.quiet && ranks.is_none_or(|r| r.rank() == 0) {
                if let Some(g) = s.optimum_g {
                    println!("optimum g* = {g:.4} ({})", s.optimum_note);
                }
                let u = &s.untrained;
                println!(
                    "untrained       ⟨r⟩ = {:.4}{}",
                    u.running_reward,
                    u.exact
                        .as_ref()
                        .map(|e| format!(", exact g = {:.4}", e.g))
                        .unwrap_or_default()
                );
                for r in &s.runs {
                    let last = r.checkpoints.last().expect("at least one checkpoint");
                    let exact = match r.final_exact() {
                        Some(e) => format!(
                            "exact g = {:.4}{}",
                            e.g,
                            e.ratio.map(|q| format!(" = {:.3}·g*", q)).unwrap_or_default()
                        ),
                        None => format!("running g = {:.4}", last.running_g),
                    };
                    println!(
                        "{:<15} {} in {:.1} s ({:.2e} ticks/s): ⟨r⟩ = {:.4}, {exact}{}",
                        r.label,
                        marlin::text::count(r.ticks, "tick"),
                        r.seconds,
                        r.ticks_per_second,
                        last.running_reward,
                        r.weights
                            .as_ref()
                            .map(|w| format!(
                                "; mean input weight {:+.3}, mean recurrent weight {:+.3}",
                                w.mean_input_weight, w.mean_recurrent_weight
                            ))
                            .unwrap_or_default()
                    );
                }
                for (r, l) in s.runs.iter().zip(learned.iter().flatten()) {
                    println!(
                        "{:<15} learned code: objective {:.4} with its own posterior, I(Y;Σ) = {:.3} bits, {} cell \
                         type(s); refined by alternation {:.4}; the solved code {:.4}",
                        r.label,
                        l.learned.objective,
                        l.learned.information_y_bits,
                        l.learned.cell_types.len(),
                        l.refined.objective,
                        l.solved_objective
                    );
                }
                for w in &s.warnings {
                    println!("warning: {w}");
                }
            }
            Ok(())
        }
        Command::Infer {
            trajectory,
            lambda,
            reward_model,
            scenario,
            bootstrap,
            out,
        } => {
            // A maze record's default output: infer/ beside its simulate/ folder.
            let demo_dir = || {
                out.clone()
                    .unwrap_or_else(|| commands::infer::default_folder(trajectory))
            };
            if marlin::record::team_demos::is_team_demonstrations(trajectory) {
                if reward_model.is_some() || scenario.is_some() || *bootstrap > 0 {
                    return Err(commands::BadInput(
                        "a team record is inverted directly and its truth comes from the map and team goal it \
                         carries: --reward-model, --scenario and --bootstrap do not apply"
                            .into(),
                    )
                    .into());
                }
                let dir = demo_dir();
                let s = commands::team_irl::infer(trajectory, *lambda, &dir)?;
                if !cli.quiet {
                    println!(
                        "{} of {} by {}, {}/{} joint states visited, I(S;A_k) ≈ {} bits/step (plug-in):",
                        marlin::text::count(s.trajectories as u64, "demonstration"),
                        marlin::text::count(s.steps as u64, "step"),
                        marlin::text::count(s.agents as u64, "walker"),
                        s.visited_states,
                        s.joint_states,
                        s.info_bits
                            .iter()
                            .map(|b| format!("{b:.3}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    println!(
                        "  argmax at {:?}{}; {}/{} of the top-ranked joint states rewarded; correlation with the \
                         true reward {}",
                        s.argmax_cells,
                        if s.argmax_is_rewarded {
                            " (rewarded)"
                        } else {
                            " (not rewarded)"
                        },
                        s.top_rewarded,
                        s.rewarded_states,
                        s.correlation_with_truth.map_or("-".into(), |c| format!("{c:.3}"))
                    );
                    for n in &s.notes {
                        println!("  note: {n}");
                    }
                    println!("  → {}", show(dir.display()));
                }
                return Ok(());
            }
            if marlin::record::demos::is_demonstrations(trajectory) {
                if reward_model.is_some() || scenario.is_some() || *bootstrap > 0 {
                    return Err(commands::BadInput(
                        "a maze record is inferred with all three estimators (direct, ml, ml_marginal) and its \
                         truth comes from the map it carries: --reward-model, --scenario and --bootstrap do not apply"
                            .into(),
                    )
                    .into());
                }
                let dir = demo_dir();
                let s = commands::maze::infer(trajectory, *lambda, &dir)?;
                if !cli.quiet {
                    println!(
                        "{} of {}, {}/{} cells visited, I(S;A) ≈ {:.3} bits/step (bias-corrected):",
                        marlin::text::count(s.trajectories as u64, "demonstration"),
                        marlin::text::count(s.steps as u64, "step"),
                        s.visited_states,
                        s.states,
                        s.info_bits_corrected
                    );
                    for m in &s.methods {
                        println!(
                            "  {:<12} argmax at {:?}{}; goal rank {}; correlation with the true reward {}",
                            m.model,
                            m.argmax_cell.unwrap_or((0, 0)),
                            if m.argmax_is_goal {
                                " = the goal"
                            } else {
                                " (not the goal)"
                            },
                            m.goal_rank.map_or("-".into(), |r| r.to_string()),
                            m.correlation_with_truth.map_or("-".into(), |c| format!("{c:.3}"))
                        );
                    }
                    println!("  → {}", show(dir.display()));
                }
                return Ok(());
            }
            let args = commands::infer::InferArgs {
                trajectory: trajectory.clone(),
                lambda: *lambda,
                reward_model: reward_model.as_deref().map(commands::infer::RewardModel::parse),
                scenario: scenario.clone(),
                bootstrap: *bootstrap,
                out: out.clone(),
                quiet: cli.quiet,
            };
            let s = commands::infer::run_infer(&args)?;
            if !cli.quiet {
                println!(
                    "{}, {}/{} states visited; {}",
                    marlin::text::count(s.ticks as u64, "tick"),
                    s.visited_states,
                    s.states,
                    s.headline
                );
            }
            Ok(())
        }
        Command::Predict {
            reward,
            scenario,
            perturb,
            reward_model,
            equilibrium,
            out,
        } => {
            if let World::Maze(m) = World::load(scenario).map_err(commands::BadInput::from)? {
                if m.team.is_some() {
                    if reward_model != "count" || equilibrium != "best" {
                        return Err(commands::BadInput(
                            "a team is predicted from its team_reward.npz: --reward-model and --equilibrium do not \
                             apply"
                                .into(),
                        )
                        .into());
                    }
                    let dir = out.clone().unwrap_or_else(|| m.output.join("predict"));
                    let p = commands::team_irl::predict(&m, reward, perturb, std::path::Path::new("."), &dir)?;
                    if !cli.quiet {
                        println!(
                            "{} ({}): mean total variation from the true policies — prediction {:.4}, naive \
                             {:.4}; team reward truth {:.4}, predicted {:.4}, naive {:.4}/step; the inferred reward \
                             reproduces the unperturbed optimum to {:.4} → {}",
                            p.perturbation,
                            marlin::text::count(p.agents as u64, "walker"),
                            p.tv_pred_truth,
                            p.tv_naive_truth,
                            p.team_rate_truth,
                            p.team_rate_pred,
                            p.team_rate_naive,
                            p.tv_baseline,
                            show(dir.display())
                        );
                        for w in &p.warnings {
                            println!("  warning: {w}");
                        }
                    }
                    return Ok(());
                }
                let model = if reward_model == "count" {
                    commands::maze::DEFAULT_MODEL
                } else {
                    reward_model.as_str()
                };
                let dir = out.clone().unwrap_or_else(|| m.output.join("predict"));
                let p = commands::maze::predict(&m, reward, perturb, model, std::path::Path::new("."), &dir)?;
                if !cli.quiet {
                    println!(
                        "{}: mean total variation from the true policy — prediction {:.4}, naive {:.4}; goal rate \
                         truth {:.4}, predicted {:.4}, naive {:.4}; the inferred reward reproduces the unperturbed \
                         policy to {:.4} → {}",
                        p.perturbation,
                        p.tv_pred_truth,
                        p.tv_naive_truth,
                        p.goal_rate_truth,
                        p.goal_rate_pred,
                        p.goal_rate_naive,
                        p.tv_baseline,
                        show(dir.display())
                    );
                    for w in &p.warnings {
                        println!("  warning: {w}");
                    }
                }
                return Ok(());
            }
            let args = commands::predict::PredictArgs {
                equilibrium: commands::predict::Equilibrium::parse(equilibrium)?,
                reward: reward.clone(),
                scenario: scenario.clone(),
                perturb: perturb.clone(),
                model: reward_model.clone(),
                out: out.clone(),
            };
            let p = commands::predict::run_predict(&args)?;
            if !cli.quiet {
                println!(
                    "{}: total variation from the truth — prediction {:.4}, naive {:.4} (max over inputs); the inferred \
                     reward reproduces the unperturbed network to {:.4}",
                    p.perturbation, p.tv_pred_truth, p.tv_naive_truth, p.tv_baseline
                );
            }
            Ok(())
        }
        Command::Import {
            spikes,
            stimulus,
            bin,
            neurons,
            start,
            end,
            update,
            q,
            out,
        } => {
            let s = commands::import::run_import(&commands::import::ImportArgs {
                spikes: spikes.clone(),
                stimulus: stimulus.clone(),
                bin: *bin,
                neurons: *neurons,
                start: *start,
                end: *end,
                update: update.clone(),
                q: *q,
                out: out.clone(),
            })?;
            if !cli.quiet {
                println!(
                    "{} of {} s × {}, {} ({} outside the window, {} merged in bins), inputs {:?} → {}",
                    marlin::text::count(s.ticks as u64, "bin"),
                    s.bin_seconds,
                    marlin::text::count(s.neurons as u64, "neuron"),
                    marlin::text::count(s.spikes as u64, "spike"),
                    s.spikes_outside_window,
                    s.spikes_merged_in_bins,
                    s.input_values,
                    show(out.join("trajectory.npz").display())
                );
            }
            Ok(())
        }
        Command::Scenarios { dir } => {
            for (name, desc) in commands::shipped_scenarios(dir)? {
                println!("{name:<28} {desc}");
            }
            Ok(())
        }
    }
}
