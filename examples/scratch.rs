use marlin::model::*;
use marlin::solver::*;
fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(8);
    let sync = args.get(2).map(|s| s == "sync").unwrap_or(false);
    let targets = if n == 8 { vec![2, 6] } else { vec![n / 4, 3 * n / 4] };
    let net = Network {
        n,
        alive: vec![true; n],
        input: InputProcess::switching(vec![-1.0, 1.0], 0.02),
        reward: rewards::target_count(n, &targets, 1.0),
        lambda: 0.5,
        cost: CodingCost::MutualInformation,
        update: if sync { UpdateScheme::Synchronous } else { UpdateScheme::Asynchronous },
    };
    let t = std::time::Instant::now();
    let sol = solve(&net, &SolveOptions { eval_sweeps: std::env::var("EV").map(|v| v.parse().unwrap()).unwrap_or(3), ..SolveOptions::default() }).unwrap();
    println!("time {:?}", t.elapsed());
    println!("g {} gv {} r {} info {} conv {} it {} sweeps {} vres {:e} pres {:e} statsweeps {}", sol.eval.g, sol.g_value, sol.eval.mean_reward, sol.eval.info_nats, sol.converged, sol.iterations, sol.value_sweeps, sol.value_residual, sol.prior_residual, sol.eval.stationary_sweeps);
    println!("p {:?}", sol.eval.p_fire);
    for d in sol.eval.count_distribution(&net) { println!("{:?}", d.iter().map(|v| format!("{:.3}", v)).collect::<Vec<_>>()); }
    println!("{:?}", sol.warnings);
}
