//! Who observes whom: the presynaptic partners of every neuron, as a
//! compressed sparse row table indexed by the postsynaptic neuron.
//!
//! Generation is deterministic per seed and independent of thread count:
//! neuron i's partners are drawn from its own RNG stream `(seed, i)`, so the
//! table can be built in parallel, streamed, or rebuilt on another MPI rank
//! for just the neurons it owns. Pure data and math: the edge-list parser
//! takes text; the scenario module reads the file.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// An edge `(pre, post, weight)`.
pub type Edge = (u32, u32, Option<f32>);

/// Topology families of scenario files.
#[derive(Clone, Debug, PartialEq)]
pub enum TopologySpec {
    /// Every neuron observes every other neuron.
    AllToAll,
    /// `k` neighbours on each side on a ring.
    Ring { k: usize },
    /// Exactly `k` distinct presynaptic partners per neuron, uniformly drawn, no self-loops.
    RandomInDegree { k: usize },
    /// Each ordered pair (j → i), j ≠ i, independently with probability `p`.
    ErdosRenyi { p: f64 },
    /// Watts–Strogatz: a ring with `k` neighbours each side, each edge rewired with probability `beta`.
    SmallWorld { k: usize, beta: f64 },
    /// `width × height` grid, 4-neighbourhood, optionally periodic.
    Lattice2d {
        width: usize,
        height: usize,
        periodic: bool,
    },
    /// Explicit edges (pre, post, weight), already validated.
    Edges(Vec<Edge>),
}

impl TopologySpec {
    /// The number of synapses a table for `n` neurons will hold (the mean
    /// for random families), known before building it; 0 for all-to-all,
    /// which stores none.
    pub fn expected_edges(&self, n: usize) -> f64 {
        let n = n as f64;
        match self {
            TopologySpec::AllToAll => 0.0,
            TopologySpec::Ring { k } | TopologySpec::SmallWorld { k, .. } => n * (2 * k) as f64,
            TopologySpec::RandomInDegree { k } => n * *k as f64,
            TopologySpec::ErdosRenyi { p } => n * (n - 1.0) * p,
            TopologySpec::Lattice2d { .. } => 4.0 * n,
            TopologySpec::Edges(e) => e.len() as f64,
        }
    }
}

/// Presynaptic partners of every neuron (CSR by postsynaptic neuron).
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    pub n: usize,
    /// `offsets[i]..offsets[i+1]` indexes the partners of neuron i.
    pub offsets: Vec<u64>,
    /// Presynaptic neuron ids, sorted within each neuron's range.
    pub pre: Vec<u32>,
    /// Optional synaptic weights aligned with `pre` (from edge lists).
    pub weights: Option<Vec<f32>>,
    /// Whether every neuron observes every other (no table is stored then).
    pub all_to_all: bool,
}

impl Topology {
    /// Partners of neuron i (empty for all-to-all, where everyone is a partner).
    pub fn partners(&self, i: usize) -> &[u32] {
        if self.all_to_all {
            return &[];
        }
        &self.pre[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub fn in_degree(&self, i: usize) -> usize {
        if self.all_to_all {
            self.n - 1
        } else {
            (self.offsets[i + 1] - self.offsets[i]) as usize
        }
    }

    /// Number of synapses.
    pub fn edges(&self) -> u64 {
        if self.all_to_all {
            (self.n as u64) * (self.n as u64 - 1)
        } else {
            self.pre.len() as u64
        }
    }

    /// Bytes held by the table.
    pub fn bytes(&self) -> u64 {
        (self.offsets.len() * 8 + self.pre.len() * 4 + self.weights.as_ref().map_or(0, |w| w.len() * 4)) as u64
    }

    /// Build the table for `n` neurons. Deterministic in `seed`.
    pub fn build(spec: &TopologySpec, n: usize, seed: u64) -> Topology {
        match spec {
            TopologySpec::AllToAll => Topology {
                n,
                offsets: vec![],
                pre: vec![],
                weights: None,
                all_to_all: true,
            },
            TopologySpec::Ring { k } => from_lists(n, |i, _| ring_partners(n, i, *k), seed),
            TopologySpec::RandomInDegree { k } => from_lists(n, |i, rng| sample_distinct(n, i, *k, rng), seed),
            TopologySpec::ErdosRenyi { p } => from_lists(n, |i, rng| erdos_renyi(n, i, *p, rng), seed),
            TopologySpec::SmallWorld { k, beta } => from_lists(
                n,
                |i, rng| {
                    let mut list = ring_partners(n, i, *k);
                    for slot in 0..list.len() {
                        if rng.random::<f64>() < *beta {
                            // Rewire to a uniformly drawn neuron that is neither i nor a current partner.
                            if list.len() + 1 < n {
                                loop {
                                    let j = rng.random_range(0..n) as u32;
                                    if j as usize != i && !list.contains(&j) {
                                        list[slot] = j;
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    list
                },
                seed,
            ),
            TopologySpec::Lattice2d {
                width,
                height,
                periodic,
            } => {
                let (w, h, per) = (*width, *height, *periodic);
                from_lists(
                    n,
                    |i, _| {
                        let (x, y) = ((i % w) as i64, (i / w) as i64);
                        let mut out = Vec::with_capacity(4);
                        for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                            let (mut nx, mut ny) = (x + dx, y + dy);
                            if per {
                                nx = nx.rem_euclid(w as i64);
                                ny = ny.rem_euclid(h as i64);
                            } else if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                                continue;
                            }
                            let j = (ny as usize * w + nx as usize) as u32;
                            if j as usize != i && !out.contains(&j) {
                                out.push(j);
                            }
                        }
                        out
                    },
                    seed,
                )
            }
            TopologySpec::Edges(edges) => {
                let mut lists: Vec<Vec<(u32, Option<f32>)>> = vec![Vec::new(); n];
                for &(pre, post, w) in edges {
                    lists[post as usize].push((pre, w));
                }
                let has_w = edges.iter().any(|e| e.2.is_some());
                let mut offsets = Vec::with_capacity(n + 1);
                offsets.push(0u64);
                let mut pre = Vec::with_capacity(edges.len());
                let mut weights = Vec::with_capacity(if has_w { edges.len() } else { 0 });
                for l in &mut lists {
                    l.sort_by_key(|e| e.0);
                    for &(p, w) in l.iter() {
                        pre.push(p);
                        if has_w {
                            weights.push(w.unwrap_or(1.0));
                        }
                    }
                    offsets.push(pre.len() as u64);
                }
                Topology {
                    n,
                    offsets,
                    pre,
                    weights: has_w.then_some(weights),
                    all_to_all: false,
                }
            }
        }
    }
}

/// Per-neuron RNG stream for topology generation, independent of the agents'.
fn stream(seed: u64, i: usize) -> Xoshiro256PlusPlus {
    crate::rng::stream(seed, crate::rng::Domain::Topology, i as u64)
}

/// Build CSR from a per-neuron generator run in parallel, in fixed blocks.
fn from_lists(
    n: usize,
    partners_of: impl Fn(usize, &mut Xoshiro256PlusPlus) -> Vec<u32> + Sync,
    seed: u64,
) -> Topology {
    const BLOCK: usize = 4096;
    let blocks: Vec<(Vec<u64>, Vec<u32>)> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut counts = Vec::with_capacity(BLOCK);
            let mut pre = Vec::new();
            for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                let mut list = partners_of(i, &mut stream(seed, i));
                list.sort_unstable();
                counts.push(list.len() as u64);
                pre.extend_from_slice(&list);
            }
            (counts, pre)
        })
        .collect();
    let total: usize = blocks.iter().map(|b| b.1.len()).sum();
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0u64);
    let mut pre = Vec::with_capacity(total);
    for (counts, p) in blocks {
        for c in counts {
            let last = *offsets.last().unwrap();
            offsets.push(last + c);
        }
        pre.extend_from_slice(&p);
    }
    Topology {
        n,
        offsets,
        pre,
        weights: None,
        all_to_all: false,
    }
}

fn ring_partners(n: usize, i: usize, k: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(2 * k);
    for d in 1..=k {
        for j in [(i + d) % n, (i + n - d % n) % n] {
            if j != i && !out.contains(&(j as u32)) {
                out.push(j as u32);
            }
        }
    }
    out
}

/// `k` distinct ids from `0..n` without `i` (Floyd's algorithm on n−1 slots).
fn sample_distinct(n: usize, i: usize, k: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<u32> {
    let m = n - 1;
    let k = k.min(m);
    let mut chosen: Vec<u32> = Vec::with_capacity(k);
    for j in m - k..m {
        let t = rng.random_range(0..=j) as u32;
        let v = if chosen.contains(&t) { j as u32 } else { t };
        chosen.push(v);
    }
    // Map slots 0..n−1 onto ids skipping i.
    chosen.iter_mut().for_each(|v| {
        if *v as usize >= i {
            *v += 1;
        }
    });
    chosen
}

fn erdos_renyi(n: usize, i: usize, p: f64, rng: &mut Xoshiro256PlusPlus) -> Vec<u32> {
    let mut out = Vec::new();
    if p <= 0.0 {
        return out;
    }
    if p >= 1.0 {
        return (0..n as u32).filter(|&j| j as usize != i).collect();
    }
    // Geometric skipping over the n−1 candidates.
    let ln_q = (1.0 - p).ln();
    let mut pos: f64 = -1.0;
    loop {
        let u: f64 = rng.random::<f64>();
        pos += 1.0 + ((1.0 - u).ln() / ln_q).floor();
        if pos >= (n - 1) as f64 {
            break;
        }
        let slot = pos as usize;
        out.push(if slot >= i { slot as u32 + 1 } else { slot as u32 });
    }
    out
}

/// Parse an edge-list CSV (`pre,post[,weight]`, optional header line, `#`
/// comments). Errors name the line and say what is allowed.
pub fn parse_edge_list(text: &str, n: usize, allow_self_loops: bool) -> Result<Vec<Edge>, (usize, String)> {
    let mut edges = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut header_seen = false;
    for (ln, raw) in text.lines().enumerate() {
        let line_no = ln + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(|f| f.trim()).collect();
        // A header is allowed as the first line with content: words only.
        let is_header = fields
            .iter()
            .all(|f| f.chars().next().is_some_and(|c| c.is_ascii_alphabetic()));
        if edges.is_empty() && !header_seen && is_header {
            header_seen = true;
            continue;
        }
        if fields.len() < 2 || fields.len() > 3 {
            return Err((
                line_no,
                format!("{} fields; allowed: pre,post or pre,post,weight", fields.len()),
            ));
        }
        let id = |f: &str, what: &str| -> Result<u32, (usize, String)> {
            let v: i64 = f
                .parse()
                .map_err(|_| (line_no, format!("{what} {f:?} is not an integer")))?;
            if v < 0 || v as usize >= n {
                return Err((line_no, format!("{what} {v} is out of range; allowed: 0 to {}", n - 1)));
            }
            Ok(v as u32)
        };
        let pre = id(fields[0], "pre")?;
        let post = id(fields[1], "post")?;
        if pre == post && !allow_self_loops {
            return Err((
                line_no,
                format!("self-loop {pre} → {post}; allowed: pre ≠ post (set allow_self_loops = true to permit)"),
            ));
        }
        if !seen.insert((pre, post)) {
            return Err((
                line_no,
                format!("duplicate edge {pre} → {post}; allowed: each edge once"),
            ));
        }
        let w = match fields.get(2) {
            Some(f) => {
                let w: f32 = f
                    .parse()
                    .map_err(|_| (line_no, format!("weight {f:?} is not a number")))?;
                if !w.is_finite() {
                    return Err((line_no, format!("weight {w} is not finite")));
                }
                Some(w)
            }
            None => None,
        };
        edges.push((pre, post, w));
    }
    if edges.is_empty() {
        return Err((
            0,
            "no edges found; allowed: lines `pre,post` or `pre,post,weight`".into(),
        ));
    }
    Ok(edges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_simple(t: &Topology) {
        for i in 0..t.n {
            let p = t.partners(i);
            assert!(
                p.iter().all(|&j| (j as usize) < t.n && j as usize != i),
                "no self-loops, in range"
            );
            assert!(p.windows(2).all(|w| w[0] < w[1]), "sorted and no duplicates");
        }
    }

    #[test]
    fn random_in_degree_has_exactly_k_distinct_partners() {
        for (n, k) in [(10, 9), (50, 5), (1000, 100)] {
            let t = Topology::build(&TopologySpec::RandomInDegree { k }, n, 7);
            check_simple(&t);
            assert!((0..n).all(|i| t.in_degree(i) == k));
        }
    }

    #[test]
    fn random_in_degree_partners_are_uniform() {
        // Over many neurons, every candidate offset is about equally likely.
        let (n, k) = (101, 10);
        let t = Topology::build(&TopologySpec::RandomInDegree { k }, n, 3);
        let mut hits = vec![0usize; n];
        for i in 0..n {
            for &j in t.partners(i) {
                hits[(j as usize + n - i) % n] += 1;
            }
        }
        assert_eq!(hits[0], 0);
        let expect = (n * k) as f64 / (n - 1) as f64;
        let chi2: f64 = hits[1..].iter().map(|&h| (h as f64 - expect).powi(2) / expect).sum();
        assert!(chi2 < 160.0, "chi² = {chi2} over 100 dof");
    }

    #[test]
    fn generation_is_deterministic_per_seed() {
        let spec = TopologySpec::SmallWorld { k: 3, beta: 0.3 };
        assert_eq!(Topology::build(&spec, 500, 1), Topology::build(&spec, 500, 1));
        assert_ne!(Topology::build(&spec, 500, 1), Topology::build(&spec, 500, 2));
    }

    #[test]
    fn ring_and_lattice_have_the_expected_neighbours() {
        let t = Topology::build(&TopologySpec::Ring { k: 2 }, 10, 0);
        assert_eq!(t.partners(0), &[1, 2, 8, 9]);
        let t = Topology::build(
            &TopologySpec::Lattice2d {
                width: 3,
                height: 3,
                periodic: false,
            },
            9,
            0,
        );
        assert_eq!(t.partners(4), &[1, 3, 5, 7]);
        assert_eq!(t.partners(0), &[1, 3]);
        let t = Topology::build(
            &TopologySpec::Lattice2d {
                width: 4,
                height: 4,
                periodic: true,
            },
            16,
            0,
        );
        assert_eq!(t.partners(0), &[1, 3, 4, 12]);
    }

    #[test]
    fn small_world_keeps_degree_and_rewires_about_beta() {
        let (n, k, beta) = (2000, 4, 0.25);
        let t = Topology::build(&TopologySpec::SmallWorld { k, beta }, n, 9);
        check_simple(&t);
        let ring = Topology::build(&TopologySpec::Ring { k }, n, 0);
        let mut moved = 0;
        for i in 0..n {
            assert_eq!(t.in_degree(i), 2 * k);
            moved += t.partners(i).iter().filter(|j| !ring.partners(i).contains(j)).count();
        }
        let frac = moved as f64 / (n * 2 * k) as f64;
        assert!((frac - beta).abs() < 0.03, "rewired fraction {frac}");
    }

    #[test]
    fn erdos_renyi_density_matches_p() {
        let (n, p) = (400, 0.05);
        let t = Topology::build(&TopologySpec::ErdosRenyi { p }, n, 5);
        check_simple(&t);
        let dens = t.edges() as f64 / (n * (n - 1)) as f64;
        assert!((dens - p).abs() < 0.005, "density {dens}");
    }

    #[test]
    fn edge_list_errors_name_the_line() {
        assert_eq!(parse_edge_list("pre,post\n0,1\n1,0,0.5\n", 2, false).unwrap().len(), 2);
        let e = parse_edge_list("0,1\n0,5\n", 3, false).unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("out of range") && e.1.contains("0 to 2"));
        let e = parse_edge_list("0,1\n1,1\n", 3, false).unwrap_err();
        assert!(e.0 == 2 && e.1.contains("self-loop"));
        assert!(parse_edge_list("1,1\n", 3, true).is_ok());
        let e = parse_edge_list("0,1\n# c\n0,1\n", 3, false).unwrap_err();
        assert!(e.0 == 3 && e.1.contains("duplicate"));
        let e = parse_edge_list("0;1\n", 3, false).unwrap_err();
        assert!(e.0 == 1 && e.1.contains("fields"), "{}", e.1);
        let e = parse_edge_list("pre,post\n# nothing\n", 3, false).unwrap_err();
        assert!(e.1.contains("no edges"), "{}", e.1);
    }

    #[test]
    fn edge_list_builds_csr_with_weights() {
        let edges = parse_edge_list("2,0,0.5\n1,0,-1\n0,2\n", 3, false).unwrap();
        let t = Topology::build(&TopologySpec::Edges(edges), 3, 0);
        assert_eq!(t.partners(0), &[1, 2]);
        assert_eq!(t.weights.as_ref().unwrap()[..2], [-1.0, 0.5]);
        assert_eq!(t.partners(1), &[] as &[u32]);
        assert_eq!(t.partners(2), &[0]);
    }
}
