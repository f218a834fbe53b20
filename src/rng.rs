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
/// `rand_xoshiro` 0.7 does not expose the state but serialises it (one
/// field, `s: [u64; 4]`): it is read back from postcard, and the words
/// checked to rebuild the same stream, so a change of that layout fails
/// here rather than sending another stream.
pub fn to_words(s: &Stream) -> [u64; 4] {
    let mut buf = [0u8; 4 * 10]; // four varints of at most 10 bytes
    let bytes = postcard::to_slice(s, &mut buf).expect("a stream's state encodes in 40 bytes");
    let words = match postcard::take_from_bytes::<[u64; 4]>(bytes) {
        Ok((words, [])) => words,
        _ => panic!("a stream's state is not four words: rand_xoshiro's serialised layout changed"),
    };
    assert!(from_words(words) == *s, "a stream's four words do not rebuild it");
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

    /// `mix` is SplitMix64's output function of `seed ^ (id·γ + c)`: where
    /// that argument is the generator's i-th state from 0 (i·γ), `mix`
    /// gives SplitMix64's published first outputs from seed 0. Streams
    /// merely differing (above) would not notice another mixer, which
    /// would change every run's numbers.
    #[test]
    fn mix_is_splitmix64() {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        const C: u64 = 0xD1B5_4A32_D192_ED03;
        let published = [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F];
        for (i, want) in (1..).zip(published) {
            let state = GAMMA.wrapping_mul(i);
            assert_eq!(mix(state ^ C, 0), want, "output {i}, id 0");
            let id = i + 5;
            let seed = state ^ id.wrapping_mul(GAMMA).wrapping_add(C);
            assert_eq!(mix(seed, id), want, "output {i}, id {id}");
        }
    }

    #[test]
    fn streams_round_trip_through_words() {
        let mut s = stream(3, Domain::Agent, 7);
        s.random::<u64>();
        let mut back = from_words(to_words(&s));
        assert_eq!(back, s);
        assert_eq!(back.random::<u64>(), s.random::<u64>());
    }

    /// The words are the generator's state as its seed reads it (four
    /// little-endian u64): the full 64-bit range survives, four words of
    /// the longest encoding included.
    #[test]
    fn words_are_the_state() {
        for w in [
            [1, 2, 3, 4],
            [u64::MAX, 0, 1 << 63, 0x0123_4567_89AB_CDEF],
            [u64::MAX, 1 << 63, u64::MAX - 1, 1 << 63],
        ] {
            assert_eq!(to_words(&from_words(w)), w);
        }
    }
}
