//! The trajectory reader on arbitrary .npz bytes (beside valid metadata):
//! an error or a validated trajectory, never a panic. Seeds: `seeds/trajectory`.
#![no_main]

use libfuzzer_sys::fuzz_target;

const META: &str = include_str!("../seeds/trajectory.json");

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("trajectory.json"), META).expect("write");
    let npz = dir.path().join("trajectory.npz");
    std::fs::write(&npz, data).expect("write");
    if let Ok(t) = marlin::record::read(&npz, |_| Ok(())) {
        assert!(t.x.iter().all(|&x| x < t.meta.inputs));
        assert!(t.spikes.iter().flatten().all(|&s| s <= 1));
    }
});
