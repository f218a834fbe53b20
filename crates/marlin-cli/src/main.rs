//! The `marlin` command: its arguments, what it prints and its exit codes.
//! All the work happens in the `marlin` library.
mod cli;
mod progress;

fn main() {
    std::process::exit(cli::main());
}
