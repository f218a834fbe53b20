//! The `marlin` binary: all work happens in the library.
fn main() {
    std::process::exit(marlin::cli::main());
}
