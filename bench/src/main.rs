//! `tailcast-bench`: the benchmark harness of tailcast (see bench/README.md).
//!
//! `tailcast-bench suite [--quick] ...` runs everything and prints the table; the other
//! subcommands are the client processes it starts (and `soak`, the long-running check,
//! `archive`, search and pages on disk against ripgrep, and `cluster`, the Redis cluster against
//! one plain tailcast).

mod archive;
mod clients;
mod cluster;
mod common;
mod procs;
mod soak;
mod suite;

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        eprintln!("usage: tailcast-bench suite|cluster|archive|soak|ws|poll|pipe [options]  (see bench/README.md)");
        std::process::exit(2);
    }
    let cmd = argv.remove(0);
    let args = common::Args(argv);
    match cmd.as_str() {
        "suite" => suite::suite_main(args),
        "archive" => archive::archive_main(args),
        "cluster" => cluster::cluster_main(args),
        "soak" => soak::soak_main(args),
        "ws" => clients::ws_main(args),
        "poll" => clients::poll_main(args),
        "pipe" => clients::pipe_main(args),
        other => {
            eprintln!("tailcast-bench: unknown command {other}");
            std::process::exit(2);
        }
    }
}
