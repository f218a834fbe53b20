//! Random-number streams. Every agent and every control-plane role draws from
//! its own stream, derived from `(seed, domain, id)` by SplitMix64 mixing, so
//! what an agent draws never depends on how agents are laid out over shards,
//! threads or MPI ranks.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator of every stream (fast, 32 bytes of state, serialisable).
pub type Stream = Xoshiro256PlusPlus;

/// Stream domains: the same id in two domains gives unrelated streams.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Domain {
    Agent = 1,
    Clock = 2,
    Environment = 3,
    Topology = 4,
    Learner = 5,
}

/// SplitMix64 finaliser of `seed` combined with `id`.
pub fn mix(seed: u64, id: u64) -> u64 {
    let mut z = seed
        ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream of `id` in `domain` for a run seeded with `seed`.
pub fn stream(seed: u64, domain: Domain, id: u64) -> Stream {
    Stream::seed_from_u64(mix(mix(seed, domain as u64), id))
}

/// A stream's state as four words (to send it between MPI ranks).
pub fn to_words(s: &Stream) -> [u64; 4] {
    let bytes = bincode::serde::encode_to_vec(s, bincode::config::standard().with_fixed_int_encoding())
        .expect("a stream's state encodes");
    let mut words = [0u64; 4];
    for (w, b) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    }
    words
}

/// The stream whose state is `words` (from [`to_words`]).
pub fn from_words(words: [u64; 4]) -> Stream {
    let mut seed = [0u8; 32];
    for (b, w) in seed.chunks_exact_mut(8).zip(words) {
        b.copy_from_slice(&w.to_le_bytes());
    }
    Stream::from_seed(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_id_domain_and_seed_and_repeat() {
        let draw = |s: &mut Stream| (0..4).map(|_| s.random::<u64>()).collect::<Vec<_>>();
        let a = draw(&mut stream(1, Domain::Agent, 0));
        assert_eq!(a, draw(&mut stream(1, Domain::Agent, 0)));
        assert_ne!(a, draw(&mut stream(1, Domain::Agent, 1)));
        assert_ne!(a, draw(&mut stream(1, Domain::Clock, 0)));
        assert_ne!(a, draw(&mut stream(2, Domain::Agent, 0)));
    }

    #[test]
    fn streams_round_trip_through_words() {
        let mut s = stream(3, Domain::Agent, 7);
        s.random::<u64>();
        let mut back = from_words(to_words(&s));
        assert_eq!(back, s);
        assert_eq!(back.random::<u64>(), s.random::<u64>());
    }
}
