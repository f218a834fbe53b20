//! The downstream reader of a self-consistent code (theory §8): a decoder
//! that learns p(y = +1 | σ) online from the network's own responses, and
//! rewards the network with `r_t = log p̂(y(x_t) | σ_t)`.
//!
//! The efficient-coding reward is the log-posterior of a feature of the
//! input under the network's **own** code, so it moves while the code is
//! learned. The exact solver meets that by alternation (solve → posterior →
//! solve); decentralised learners meet it with this decoder in the
//! environment: each tick it scores the state with its current estimate
//! and then updates the estimate of that σ with the tick's feature. The
//! estimate starts from a prior decoder (the alternation's starting
//! posterior, as if seen `PSEUDO_VISITS` times) and is a running mean with
//! step `max(1/(visits + PSEUDO_VISITS + 1), rate)`: exact averaging at
//! first, then a window of about `1/rate` visits that follows the code as
//! it changes.
//!
//! Owned by the environment side of the runtime ([`crate::runtime::RunState`]
//! carries it; every tick thread replays it from identical inputs). No I/O.

use crate::coding::{POSTERIOR_FLOOR, initial_posterior};
use serde::{Deserialize, Serialize};

/// Largest network a decoder tabulates (one estimate per σ).
pub const MAX_DECODER_NEURONS: usize = 20;
/// Weight of the prior decoder, in visits.
pub const PSEUDO_VISITS: f64 = 2.0;

/// What a scenario says about the decoder (`[learning] decoder`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecoderSpec {
    /// y(x) = +1 for input index x (the rest: −1).
    pub feature: Vec<bool>,
    /// Floor of the running mean's step (window ≈ 1/rate visits of a σ).
    pub rate: f64,
    /// Reliability of the prior decoder: each spike reads as a vote for
    /// y = +1 right with this probability (½: an uninformed decoder).
    pub reliability: f64,
}

impl DecoderSpec {
    /// Defaults for a feature: rate 10⁻⁴, the alternation's starting reliability.
    pub fn new(feature: Vec<bool>) -> Self {
        DecoderSpec {
            feature,
            rate: 1e-4,
            reliability: crate::coding::CodingOptions::default().initial_reliability,
        }
    }
}

/// The online decoder's state: p̂(y = +1 | σ) and the visits of each σ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnlineDecoder {
    feature: Vec<bool>,
    mask: u64,
    rate: f64,
    posterior: Vec<f64>,
    visits: Vec<u64>,
}

impl OnlineDecoder {
    /// A decoder of `n` neurons (≤ [`MAX_DECODER_NEURONS`]) whose prior
    /// decoder assumes p(y = +1) = `prior_on` (the feature's stationary
    /// frequency).
    pub fn new(n: usize, spec: &DecoderSpec, prior_on: f64) -> Self {
        assert!(n <= MAX_DECODER_NEURONS, "a decoder of {n} neurons");
        OnlineDecoder {
            feature: spec.feature.clone(),
            mask: (1u64 << n) - 1,
            rate: spec.rate,
            posterior: initial_posterior(n, prior_on, spec.reliability),
            visits: vec![0; 1 << n],
        }
    }

    #[inline]
    fn sigma(&self, frame: &[u64]) -> usize {
        (frame[0] & self.mask) as usize
    }

    /// `log p̂(y(x) | σ)` (p̂ floored at [`POSTERIOR_FLOOR`], as the exact
    /// alternation's reward).
    #[inline]
    pub fn reward(&self, x: usize, frame: &[u64]) -> f64 {
        self.log_posterior(x, self.sigma(frame))
    }

    /// Count one visit of σ with input x.
    #[inline]
    pub fn learn(&mut self, x: usize, frame: &[u64]) {
        self.visit(x, self.sigma(frame));
    }

    /// Score the state, then learn from it: the reward of one tick.
    #[inline]
    pub fn step(&mut self, x: usize, frame: &[u64]) -> f64 {
        let s = self.sigma(frame);
        let r = self.log_posterior(x, s);
        self.visit(x, s);
        r
    }

    #[inline]
    fn log_posterior(&self, x: usize, s: usize) -> f64 {
        let p = self.posterior[s];
        let p = if self.feature[x] { p } else { 1.0 - p };
        p.max(POSTERIOR_FLOOR).ln()
    }

    #[inline]
    fn visit(&mut self, x: usize, s: usize) {
        let v = self.visits[s] as f64;
        let step = (1.0 / (v + PSEUDO_VISITS + 1.0)).max(self.rate);
        let target = if self.feature[x] { 1.0 } else { 0.0 };
        self.posterior[s] += step * (target - self.posterior[s]);
        self.visits[s] += 1;
    }

    /// p̂(y = +1 | σ) for every σ.
    pub fn posterior(&self) -> &[f64] {
        &self.posterior
    }

    /// Visits of every σ so far.
    pub fn visits(&self) -> &[u64] {
        &self.visits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Feature and responses drawn from a known joint: the estimate ends
    /// within its sampling error of the true posterior, and the reward is
    /// its log.
    #[test]
    fn the_estimate_converges_to_the_posterior_of_a_fixed_code() {
        let n = 2;
        // x ∈ {0, 1, 2}: y = + for x = 2. Responses: σ depends on x.
        let spec = DecoderSpec {
            feature: vec![false, false, true],
            rate: 1e-6,
            reliability: 0.5,
        };
        let px = [0.3, 0.3, 0.4];
        let p_sigma_given_x = [[0.7, 0.1, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]];
        let mut d = OnlineDecoder::new(n, &spec, 0.4);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draw = |rng: &mut rand::rngs::StdRng, p: &[f64]| {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            p.iter()
                .position(|&q| {
                    acc += q;
                    u < acc
                })
                .unwrap_or(p.len() - 1)
        };
        for _ in 0..400_000 {
            let x = draw(&mut rng, &px);
            let s = draw(&mut rng, &p_sigma_given_x[x]);
            d.learn(x, &[s as u64]);
        }
        for s in 0..4 {
            let joint: Vec<f64> = (0..3).map(|x| px[x] * p_sigma_given_x[x][s]).collect();
            let truth = joint[2] / joint.iter().sum::<f64>();
            let visits = d.visits()[s] as f64;
            let se = (truth * (1.0 - truth) / visits).sqrt();
            assert!(
                (d.posterior()[s] - truth).abs() < 5.0 * se,
                "σ = {s}: {} vs {truth}",
                d.posterior()[s]
            );
            assert_eq!(d.reward(2, &[s as u64]), d.posterior()[s].ln());
            assert_eq!(d.reward(0, &[s as u64]), (1.0 - d.posterior()[s]).ln());
        }
    }

    /// With the floor rate the estimate forgets: after the code flips, it
    /// follows within a few windows.
    #[test]
    fn the_floor_rate_follows_a_changing_code() {
        let spec = DecoderSpec {
            feature: vec![false, true],
            rate: 1e-2,
            reliability: 0.5,
        };
        let mut d = OnlineDecoder::new(1, &spec, 0.5);
        // σ = 1 always with y = +1 for 10⁴ visits, then always with y = −1.
        for _ in 0..10_000 {
            d.learn(1, &[1]);
        }
        assert!(d.posterior()[1] > 0.999);
        for _ in 0..1_000 {
            d.learn(0, &[1]);
        }
        assert!(d.posterior()[1] < 1e-3, "{}", d.posterior()[1]);
        // The reward scores before it learns.
        let before = d.reward(1, &[1]);
        assert_eq!(d.step(1, &[1]), before);
        // A σ never visited keeps the prior decoder's estimate.
        assert_eq!(d.posterior()[0], 0.5);
    }
}
