//! Grid worlds (theory §7): an ASCII map of walls, free cells, start cells
//! and rewarded goal cells, turned into the tabular world ([`Mdp`]) the exact
//! solver, the sampler and inverse RL work on.
//!
//! Owns the map syntax and its checks (every error names the map's row and
//! column), the move rule (N/E/S/W/stay; into a wall or off the map: stay;
//! with probability `slip` the chosen move is replaced by a uniformly drawn
//! one of the five), and the recurrent reset (from a goal the next state is a
//! start cell drawn uniformly, whatever the action). States are the free
//! cells in reading order. Pure data and arithmetic: no I/O.

use crate::solver::mdp::Mdp;
use std::collections::VecDeque;
use std::fmt;

/// The five moves, in action-index order.
pub const ACTIONS: [&str; 5] = ["N", "E", "S", "W", "stay"];
/// Row and column steps of each action.
const STEPS: [(isize, isize); 5] = [(-1, 0), (0, 1), (1, 0), (0, -1), (0, 0)];
/// Largest map side (rows or columns).
pub const MAX_SIDE: usize = 1000;

/// A validated maze.
#[derive(Clone, Debug, PartialEq)]
pub struct Maze {
    pub width: usize,
    pub height: usize,
    /// `free[row·width + col]`.
    pub free: Vec<bool>,
    /// Goal cells (cell index) and their rewards.
    pub goals: Vec<(usize, f64)>,
    /// Cells a goal resets to (the `S` cells, or every free non-goal cell).
    pub starts: Vec<usize>,
    /// Whether the map marked its start cells (`S`).
    pub marked_starts: bool,
    pub slip: f64,
    /// State index → cell index (free cells in reading order).
    pub cells: Vec<usize>,
    /// Cell index → state index.
    pub state_of: Vec<Option<usize>>,
}

/// A bad map: 1-based row and column within the map (None: the whole map).
#[derive(Clone, Debug, PartialEq)]
pub struct MapError {
    pub row: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row, self.column) {
            (Some(r), Some(c)) => write!(f, "map row {r}, column {c}: {}", self.message),
            (Some(r), None) => write!(f, "map row {r}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for MapError {}

fn map_err(row: Option<usize>, column: Option<usize>, message: impl Into<String>) -> MapError {
    MapError {
        row,
        column,
        message: message.into(),
    }
}

/// The map's rows: blank lines at the start and end dropped, each line
/// trimmed of surrounding whitespace. Returns (row text, leading whitespace
/// count, index of the line in `map`).
/// Largest joint world ([`Maze::team`]) tabulated: joint states × joint actions.
pub const MAX_TEAM_ENTRIES: usize = 4_000_000;

/// What a team of walkers is rewarded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamGoal {
    /// Every walker on a goal cell (any goal; the reward is the mean of
    /// their goals' rewards).
    AllOnGoals,
    /// Every walker on the same cell (reward 1).
    Meet,
}

impl TeamGoal {
    pub fn name(&self) -> &'static str {
        match self {
            TeamGoal::AllOnGoals => "all_on_goals",
            TeamGoal::Meet => "meet",
        }
    }

    /// The shared reward of walkers at states `cells`.
    pub fn reward(&self, maze: &Maze, cells: &[usize]) -> f64 {
        match self {
            TeamGoal::AllOnGoals => {
                let mut total = 0.0;
                for &s in cells {
                    match maze.goals.iter().find(|g| maze.state_of[g.0] == Some(s)) {
                        Some(g) => total += g.1,
                        None => return 0.0,
                    }
                }
                total / cells.len() as f64
            }
            TeamGoal::Meet => {
                if cells.windows(2).all(|w| w[0] == w[1]) {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Whether walkers at `cells` have finished: every walker restarts.
    pub fn done(&self, maze: &Maze, cells: &[usize]) -> bool {
        match self {
            TeamGoal::AllOnGoals => cells.iter().all(|&s| maze.is_goal(s)),
            TeamGoal::Meet => cells.windows(2).all(|w| w[0] == w[1]),
        }
    }
}

/// The joint state Σ_k s_k·S^k of walkers at `cells` (S = `ns` cells each).
pub fn joint_index(cells: &[usize], ns: usize) -> usize {
    cells.iter().rev().fold(0, |j, &s| j * ns + s)
}

/// Walker k's cell in joint state `j` (the inverse of [`joint_index`]).
#[inline]
pub fn joint_cell(j: usize, ns: usize, k: usize) -> usize {
    j / ns.pow(k as u32) % ns
}

/// Walker k's visit density over the `ns` cells, from a distribution `rho`
/// over joint states.
pub fn walker_density(rho: &[f64], ns: usize, k: usize) -> Vec<f64> {
    let mut d = vec![0.0; ns];
    for (j, &p) in rho.iter().enumerate() {
        d[joint_cell(j, ns, k)] += p;
    }
    d
}

/// The cells of the `m` walkers in joint state `j`.
pub fn joint_cells(j: usize, ns: usize, m: usize) -> Vec<usize> {
    (0..m).map(|k| joint_cell(j, ns, k)).collect()
}

pub fn map_rows(map: &str) -> Vec<(&str, usize, usize)> {
    let lines: Vec<&str> = map.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(lines.len());
    let last = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    (first..last.max(first))
        .map(|i| {
            let l = lines[i];
            let lead = l.len() - l.trim_start().len();
            (l.trim(), lead, i)
        })
        .collect()
}

impl Maze {
    /// Parse a map: `#` wall, `.` free, `S` start, and each goal letter of
    /// `goals` (e.g. `('G', 1.0)`) a free cell with that reward. Rows and
    /// columns in errors count the map's rows from 1 (blank leading lines
    /// skipped).
    pub fn parse(map: &str, goals: &[(char, f64)], slip: f64) -> Result<Maze, MapError> {
        if !(0.0..1.0).contains(&slip) {
            return Err(map_err(
                None,
                None,
                format!("slip = {slip}; allowed: a probability in [0, 1)"),
            ));
        }
        for &(c, r) in goals {
            if "#.S".contains(c) || !c.is_ascii_graphic() {
                return Err(map_err(
                    None,
                    None,
                    format!(
                        "goal letter {c:?} is not allowed; allowed: a printable character other than '#', '.', 'S'"
                    ),
                ));
            }
            if !r.is_finite() {
                return Err(map_err(
                    None,
                    None,
                    format!("reward of goal {c:?} is {r}; allowed: finite"),
                ));
            }
        }
        let rows = map_rows(map);
        if rows.is_empty() {
            return Err(map_err(None, None, "the map is empty"));
        }
        let width = rows[0].0.chars().count();
        if rows.len() > MAX_SIDE || width > MAX_SIDE {
            return Err(map_err(
                None,
                None,
                format!(
                    "the map is {} × {width}; allowed: at most {MAX_SIDE} rows and columns",
                    rows.len()
                ),
            ));
        }
        let height = rows.len();
        let mut free = vec![false; width * height];
        let mut goal_cells = Vec::new();
        let mut starts = Vec::new();
        for (r, (text, _, _)) in rows.iter().enumerate() {
            let len = text.chars().count();
            if len != width {
                return Err(map_err(
                    Some(r + 1),
                    None,
                    format!(
                        "the row has {} but the first row has {width}; allowed: rows of equal length",
                        crate::text::count(len as u64, "cell")
                    ),
                ));
            }
            for (c, ch) in text.chars().enumerate() {
                let cell = r * width + c;
                match ch {
                    '#' => {}
                    '.' => free[cell] = true,
                    'S' => {
                        free[cell] = true;
                        starts.push(cell);
                    }
                    _ => match goals.iter().find(|g| g.0 == ch) {
                        Some(&(_, reward)) => {
                            free[cell] = true;
                            goal_cells.push((cell, reward));
                        }
                        None => {
                            let letters: String = goals.iter().map(|g| format!(" '{}'", g.0)).collect();
                            return Err(map_err(
                                Some(r + 1),
                                Some(c + 1),
                                format!(
                                    "unknown character {ch:?}; allowed: '#' (wall), '.' (free), 'S' (start) and the \
                                     goal letters{letters}"
                                ),
                            ));
                        }
                    },
                }
            }
        }
        if goal_cells.is_empty() {
            let letters: Vec<String> = goals.iter().map(|g| format!("'{}'", g.0)).collect();
            return Err(map_err(
                None,
                None,
                format!("the map has no goal cell; mark one with {}", letters.join(" or ")),
            ));
        }
        let marked_starts = !starts.is_empty();
        if starts.is_empty() {
            starts = (0..width * height)
                .filter(|&c| free[c] && !goal_cells.iter().any(|g| g.0 == c))
                .collect();
            if starts.is_empty() {
                return Err(map_err(
                    None,
                    None,
                    "the map has no free cell besides its goals to start from",
                ));
            }
        }
        let mut state_of = vec![None; width * height];
        let mut cells = Vec::new();
        for c in 0..width * height {
            if free[c] {
                state_of[c] = Some(cells.len());
                cells.push(c);
            }
        }
        let maze = Maze {
            width,
            height,
            free,
            goals: goal_cells,
            starts,
            marked_starts,
            slip,
            cells,
            state_of,
        };
        let reach = maze.reachable_from_starts();
        if let Some(&(g, _)) = maze.goals.iter().find(|g| !reach[g.0]) {
            return Err(map_err(
                Some(g / width + 1),
                Some(g % width + 1),
                "this goal cannot be reached from any start cell (walls enclose it)",
            ));
        }
        Ok(maze)
    }

    /// Number of states (free cells).
    pub fn states(&self) -> usize {
        self.cells.len()
    }

    /// (row, column), 0-based, of state `s`.
    pub fn position(&self, s: usize) -> (usize, usize) {
        let c = self.cells[s];
        (c / self.width, c % self.width)
    }

    /// Whether state `s` is a goal.
    pub fn is_goal(&self, s: usize) -> bool {
        let c = self.cells[s];
        self.goals.iter().any(|g| g.0 == c)
    }

    /// The cell a move leads to from `cell` (walls and edges: stay).
    pub fn step(&self, cell: usize, action: usize) -> usize {
        let (r, c) = ((cell / self.width) as isize, (cell % self.width) as isize);
        let (dr, dc) = STEPS[action];
        let (nr, nc) = (r + dr, c + dc);
        if nr < 0 || nc < 0 || nr >= self.height as isize || nc >= self.width as isize {
            return cell;
        }
        let next = nr as usize * self.width + nc as usize;
        if self.free[next] { next } else { cell }
    }

    fn reachable_from_starts(&self) -> Vec<bool> {
        let mut seen = vec![false; self.free.len()];
        let mut queue: VecDeque<usize> = self.starts.iter().copied().collect();
        for &s in &self.starts {
            seen[s] = true;
        }
        while let Some(c) = queue.pop_front() {
            for a in 0..4 {
                let n = self.step(c, a);
                if !seen[n] {
                    seen[n] = true;
                    queue.push_back(n);
                }
            }
        }
        seen
    }

    /// Shortest number of moves from each state to the nearest goal (None:
    /// no path).
    pub fn distance_to_goal(&self) -> Vec<Option<usize>> {
        let mut dist = vec![None; self.free.len()];
        let mut queue = VecDeque::new();
        for &(g, _) in &self.goals {
            dist[g] = Some(0);
            queue.push_back(g);
        }
        // Moves are symmetric (a free neighbour can step back), so a search
        // from the goals outwards gives distances to them.
        while let Some(c) = queue.pop_front() {
            let d = dist[c].unwrap_or(0);
            for a in 0..4 {
                let n = self.step(c, a);
                if dist[n].is_none() {
                    dist[n] = Some(d + 1);
                    queue.push_back(n);
                }
            }
        }
        self.cells.iter().map(|&c| dist[c]).collect()
    }

    /// The reward of each state: the goal's value on goals, 0 elsewhere.
    pub fn reward(&self) -> Vec<f64> {
        self.cells
            .iter()
            .map(|&c| self.goals.iter().find(|g| g.0 == c).map_or(0.0, |g| g.1))
            .collect()
    }

    /// The tabular world with the maze's own reward.
    pub fn mdp(&self) -> Mdp {
        self.mdp_with_reward(self.reward())
    }

    /// The tabular world with another reward over the states.
    /// Where action `a` takes the walker from state `s` (a goal's reset
    /// aside): `(s', P)` with the slip spread over all moves.
    pub fn move_row(&self, s: usize, a: usize) -> Vec<(usize, f64)> {
        let na = ACTIONS.len();
        let cell = self.cells[s];
        let mut row: Vec<(usize, f64)> = Vec::with_capacity(na);
        let mut add = |t: usize, p: f64| {
            if p == 0.0 {
                return;
            }
            match row.iter_mut().find(|e| e.0 == t) {
                Some(e) => e.1 += p,
                None => row.push((t, p)),
            }
        };
        add(
            self.state_of[self.step(cell, a)].expect("moves stay on free cells"),
            1.0 - self.slip,
        );
        for b in 0..na {
            add(
                self.state_of[self.step(cell, b)].expect("moves stay on free cells"),
                self.slip / na as f64,
            );
        }
        row
    }

    /// The start distribution of the reset: `(s, P)` uniform over the start cells.
    pub fn reset_row(&self) -> Vec<(usize, f64)> {
        let start_p = 1.0 / self.starts.len() as f64;
        self.starts
            .iter()
            .map(|&c| (self.state_of[c].expect("start cells are free"), start_p))
            .collect()
    }

    /// The world of `agents` walkers in this maze (theory §7, many agents):
    /// joint state `Σ_k s_k·S^k`, joint actions in mixed radix (agent 0
    /// least significant), walkers move independently (cells may be
    /// shared), and the shared reward of `goal`; from a finished joint state
    /// ([`TeamGoal::done`]) every walker restarts at a start cell drawn
    /// uniformly. Refuses more
    /// than [`MAX_TEAM_ENTRIES`] transition rows.
    pub fn team(&self, agents: usize, goal: TeamGoal) -> Result<crate::solver::team::Team, String> {
        let ns = self.states();
        let na = ACTIONS.len();
        let total = u32::try_from(agents)
            .ok()
            .and_then(|a| Some((ns.checked_pow(a)?, na.checked_pow(a)?)))
            .filter(|(t, j)| t.checked_mul(*j).is_some_and(|e| e <= MAX_TEAM_ENTRIES))
            .map(|(t, _)| t);
        let Some(total) = total else {
            return Err(format!(
                "{agents} walkers in a maze of {ns} free cells is {ns}^{agents} joint states × {na}^{agents} joint \
                 actions, above the exact solver's limit of {MAX_TEAM_ENTRIES} transition rows; train them by \
                 learning instead"
            ));
        };
        let nj = na.pow(agents as u32);
        let cells = |j: usize| joint_cells(j, ns, agents);
        let reward: Vec<f64> = (0..total).map(|j| goal.reward(self, &cells(j))).collect();
        let done: Vec<bool> = (0..total).map(|j| goal.done(self, &cells(j))).collect();
        // The reset: every walker independently at a start cell.
        let mut reset = vec![(0usize, 1.0f64)];
        for k in 0..agents {
            let stride = ns.pow(k as u32);
            reset = reset
                .iter()
                .flat_map(|&(j, p)| self.reset_row().into_iter().map(move |(s, q)| (j + s * stride, p * q)))
                .collect();
        }
        let mut next = Vec::with_capacity(total * nj);
        for j in 0..total {
            let here = cells(j);
            for ja in 0..nj {
                if done[j] {
                    next.push(reset.clone());
                    continue;
                }
                let mut row = vec![(0usize, 1.0f64)];
                for (k, &s) in here.iter().enumerate() {
                    let a = ja / na.pow(k as u32) % na;
                    let stride = ns.pow(k as u32);
                    let moves = self.move_row(s, a);
                    row = row
                        .iter()
                        .flat_map(|&(t, p)| moves.iter().map(move |&(u, q)| (t + u * stride, p * q)))
                        .collect();
                }
                next.push(row);
            }
        }
        let joint = Mdp {
            states: total,
            actions: nj,
            next,
            reward,
        };
        crate::solver::team::Team::new(joint, agents, na)
    }

    /// The walker's moves under a motor rule (theory §7): groups of
    /// `per_direction` neurons for N, E, S, W (neuron k in group
    /// k / per_direction; neurons past the groups are hidden); after the
    /// neurons update, the group with the most spikes moves the walker
    /// (ties and silence: stay); from a goal the walker restarts. The
    /// input index is the walker's cell (state index).
    pub fn motor_input(&self, per_direction: usize) -> crate::model::InputProcess {
        let ns = self.states();
        let na = ACTIONS.len();
        let law = self.transition_law();
        // One dense X×X matrix per move (the walker's law, action-major).
        let transitions: Vec<Vec<f64>> = (0..na)
            .map(|a| {
                let mut p = vec![0.0; ns * ns];
                for s in 0..ns {
                    for &(t, q) in &law[s * na + a] {
                        p[s * ns + t] += q;
                    }
                }
                p
            })
            .collect();
        let mut start = vec![0.0; ns];
        for (t, q) in self.reset_row() {
            start[t] += q;
        }
        crate::model::InputProcess {
            values: (0..ns).map(|s| s as f64).collect(),
            transition: transitions[ACTIONS.len() - 1].clone(),
            control: Some(Box::new(crate::model::InputControl {
                per_group: per_direction,
                transitions,
                start,
            })),
        }
    }

    /// The network of `n` neurons (the first `4·per_direction` motor
    /// neurons, the rest hidden) driving the walker, asynchronous updates,
    /// rewarded by the goal's reward in the cell the walker is in, with the
    /// mutual-information cost at `lambda`.
    pub fn motor_network(&self, per_direction: usize, n: usize, lambda: f64) -> crate::model::Network {
        assert!(n >= 4 * per_direction, "{n} neurons for 4 groups of {per_direction}");
        let input = self.motor_input(per_direction);
        crate::model::Network {
            n,
            alive: vec![true; n],
            reward: crate::model::RewardSpec::Input(self.reward()).tabulate(n),
            input,
            lambda,
            cost: crate::model::CodingCost::MutualInformation,
            update: crate::model::UpdateScheme::Asynchronous,
            observes: None,
        }
    }

    pub fn mdp_with_reward(&self, reward: Vec<f64>) -> Mdp {
        Mdp {
            states: self.states(),
            actions: ACTIONS.len(),
            next: self.transition_law(),
            reward,
        }
    }

    /// The walker's law `P(s' | s, a)` as rows `[s·A + a]` of (s', p):
    /// the move rule, and from a goal the reset to a start cell.
    fn transition_law(&self) -> Vec<Vec<(usize, f64)>> {
        let na = ACTIONS.len();
        let reset = self.reset_row();
        let mut next = Vec::with_capacity(self.states() * na);
        for s in 0..self.states() {
            for a in 0..na {
                next.push(if self.is_goal(s) {
                    reset.clone()
                } else {
                    self.move_row(s, a)
                });
            }
        }
        next
    }

    /// Per-state values as a height × width grid, NaN on walls.
    pub fn grid(&self, values: &[f64]) -> Vec<Vec<f64>> {
        let mut g = vec![vec![f64::NAN; self.width]; self.height];
        for (s, &v) in values.iter().enumerate() {
            let (r, c) = self.position(s);
            g[r][c] = v;
        }
        g
    }

    /// The map drawn back as text (goals as their letter given by `letter`).
    pub fn render(&self, letter: impl Fn(f64) -> char) -> String {
        let mut out = String::new();
        for r in 0..self.height {
            for c in 0..self.width {
                let cell = r * self.width + c;
                let ch = if !self.free[cell] {
                    '#'
                } else if let Some(g) = self.goals.iter().find(|g| g.0 == cell) {
                    letter(g.1)
                } else if self.marked_starts && self.starts.contains(&cell) {
                    'S'
                } else {
                    '.'
                };
                out.push(ch);
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: &[(char, f64)] = &[('G', 1.0)];

    #[test]
    fn parses_and_builds_a_valid_world() {
        let m = Maze::parse("\n  #####\n  #S.G#\n  #####\n", G, 0.1).unwrap();
        assert_eq!((m.width, m.height, m.states()), (5, 3, 3));
        assert_eq!(m.reward(), vec![0.0, 0.0, 1.0]);
        let mdp = m.mdp();
        mdp.validate().unwrap();
        // From the goal, every action resets to S.
        for a in 0..5 {
            assert_eq!(mdp.next[2 * 5 + a], vec![(0, 1.0)]);
        }
        // East from S: 0.9 + 0.1·(1/5) to the middle; the other slips stay or go east.
        let row = &mdp.next[1]; // state 0, action E (index 1)
        let p_mid: f64 = row.iter().filter(|e| e.0 == 1).map(|e| e.1).sum();
        assert!((p_mid - (0.9 + 0.1 / 5.0)).abs() < 1e-12);
        assert_eq!(m.distance_to_goal(), vec![Some(2), Some(1), Some(0)]);
    }

    #[test]
    fn bad_maps_name_row_and_column() {
        let e = Maze::parse("###\n#G.#\n", G, 0.0).unwrap_err();
        assert_eq!(e.row, Some(2));
        assert!(e.message.contains("equal length"), "{e}");
        let e = Maze::parse("####\n#GX#\n####", G, 0.0).unwrap_err();
        assert_eq!((e.row, e.column), (Some(2), Some(3)));
        assert!(e.to_string().contains("unknown character 'X'"), "{e}");
        let e = Maze::parse("####\n#S.#\n####", G, 0.0).unwrap_err();
        assert!(e.message.contains("no goal"), "{e}");
        let e = Maze::parse("#####\n#S#G#\n#####", G, 0.0).unwrap_err();
        assert_eq!((e.row, e.column), (Some(2), Some(4)));
        assert!(e.message.contains("cannot be reached"), "{e}");
        assert!(Maze::parse("#G#", G, 1.0).is_err());
        assert!(Maze::parse("", G, 0.0).is_err());
    }

    #[test]
    fn several_goals_with_their_rewards() {
        let m = Maze::parse("A..B", &[('A', 1.0), ('B', 0.5)], 0.0).unwrap();
        assert_eq!(m.reward(), vec![1.0, 0.0, 0.0, 0.5]);
        // No S: every free non-goal cell is a start.
        assert_eq!(m.starts, vec![1, 2]);
        assert_eq!(m.render(|r| if r == 1.0 { 'A' } else { 'B' }), "A..B\n");
    }
}
