//! Faults in the runtime: an agent that panics mid-run stops the run on
//! every engine — scoped threads, shard-host actors, message-passing actors
//! — with a message naming the agent and the tick, and never leaves the
//! other threads waiting at the barrier (a hang would time the test out).

use marlin::agents::{Agent, Observation};
use marlin::rng::{Domain, Stream, stream};
use marlin::runtime::{Engine, Fault, Layout, NoObserver, RunError, RunState, RuntimeNetwork, run};
use marlin::scenario::Scenario;
use std::cell::Cell;
use std::path::Path;

/// Fires with probability ½; agent `bomb` panics at its `at`-th decision.
#[derive(Clone)]
struct Bomb {
    id: usize,
    bomb: usize,
    at: u64,
    decisions: Cell<u64>,
    rng: Stream,
}

impl Agent for Bomb {
    fn fire_probability(&self, _: &Observation) -> f64 {
        let d = self.decisions.get() + 1;
        self.decisions.set(d);
        if self.id == self.bomb && d == self.at {
            panic!("bomb {} went off", self.id);
        }
        0.5
    }
    fn rng(&mut self) -> &mut Stream {
        &mut self.rng
    }
    fn prior(&self) -> f64 {
        0.5
    }
}

fn network(update: &str) -> RuntimeNetwork {
    let scheme = if update == "random_partial" {
        "update = \"random_partial\"\nq = 0.5".to_string()
    } else {
        format!("update = \"{update}\"")
    };
    let text = std::fs::read_to_string("scenarios/toy8.toml")
        .unwrap()
        .replace("update = \"asynchronous\"", &scheme);
    assert!(text.contains(update), "toy8.toml names its update scheme");
    Scenario::parse(&text, Path::new("toy.toml")).unwrap().runtime_network()
}

fn agents(n: usize, bomb: usize, at: u64) -> Vec<Bomb> {
    (0..n)
        .map(|k| Bomb {
            id: k,
            bomb,
            at,
            decisions: Cell::new(0),
            rng: stream(1, Domain::Agent, k as u64),
        })
        .collect()
}

#[test]
fn scoped_threads_stop_and_name_the_agent_and_tick() {
    // Synchronous: every agent decides every tick, so agent 5's 40th
    // decision is at tick 39.
    let net = network("synchronous");
    let layout = Layout { shards: 4, threads: 2 };
    let mut a = agents(8, 5, 40);
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&net, &mut a, layout, RunState::initial(&net, 1), 1000, &mut NoObserver)
    }));
    let payload = got.expect_err("the run goes on after a panic");
    let m = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        m.contains("agent 5 panicked at tick 39") && m.contains("bomb 5 went off"),
        "{m}"
    );
}

#[test]
fn the_hosted_engine_returns_the_fault_for_any_thread_and_scheme() {
    for (update, threads, bomb) in [
        ("synchronous", 2, 0),
        ("synchronous", 2, 7),
        ("asynchronous", 2, 6),
        ("random_partial", 3, 2),
    ] {
        let net = network(update);
        let layout = Layout { shards: 4, threads };
        let engine = Engine::new(layout, None);
        let got = engine.run(
            &net,
            agents(8, bomb, 5),
            RunState::initial(&net, 1),
            100_000,
            NoObserver,
        );
        match got {
            Err(RunError::Fault(Fault::Panic { agent, message, tick })) => {
                assert_eq!(agent, Some(bomb), "{update}");
                assert!(message.contains(&format!("bomb {bomb} went off")), "{message}");
                assert!(tick < 100_000);
            }
            Err(e) => panic!("{update}: another error: {e}"),
            Ok(_) => panic!("{update}: the run finished although agent {bomb} panicked"),
        }
    }
}

#[test]
fn the_actor_engine_stops_with_an_error() {
    let net = network("synchronous");
    let layout = Layout { shards: 4, threads: 2 };
    let engine = Engine::new(layout, Some(2));
    let got = engine.run(&net, agents(8, 3, 10), RunState::initial(&net, 1), 1000, NoObserver);
    assert!(got.is_err(), "the actor engine finished although an agent panicked");
}
