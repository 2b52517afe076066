//! The `tickwatch` command line: parse the arguments, run the command, turn its outcome into the
//! exit code. The commands are in `cli/`; the work is in the library.

mod cli {
    pub mod args;
    pub mod bench;
    pub mod book;
    pub mod convert;
    pub mod demo;
    pub mod export;
    pub mod feed;
    pub mod files;
    pub mod gen;
    pub mod inspect;
    pub mod inspect_capture;
    pub mod inspect_live;
    pub mod listen;
    pub mod memory;
    pub mod progress;
    pub mod record;
    pub mod report;
    pub mod run;
    pub mod send;
    pub mod surv;
    pub mod values;
}

use clap::error::ErrorKind;
use cli::args::{Cmd, ConvertCmd};
use std::io;

fn main() {
    // Like other Unix command-line tools, die quietly when the reader of standard output goes
    // away (`tickwatch demo | head`), instead of panicking on the broken pipe in `println!`.
    // SAFETY: called first thing, before any other thread exists; restores the default
    // disposition of one signal and touches no memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::listen::parse().unwrap_or_else(|e| usage_error(e));
    let result = match cli.cmd {
        Cmd::Inspect(a) => cli::inspect::cmd_inspect(a),
        Cmd::Book(a) => cli::book::cmd_book(a),
        Cmd::Gen(a) => cli::gen::cmd_gen(a),
        Cmd::GenIndep(a) => cli::gen::cmd_gen_indep(a),
        Cmd::Surveil(a) => cli::surv::cmd_surveil(a),
        Cmd::Eval(a) => cli::surv::cmd_eval(a),
        Cmd::Rules(a) => cli::surv::cmd_rules(a),
        Cmd::Convert(ConvertCmd::Lobster(a)) => cli::convert::cmd_lobster(a),
        Cmd::Convert(ConvertCmd::Itch(a)) => cli::convert::cmd_itch(a),
        Cmd::Convert(ConvertCmd::Pcap(a)) => cli::convert::cmd_pcap(a),
        Cmd::Demo(a) => cli::demo::cmd_demo(a),
        Cmd::Bench(a) => cli::bench::cmd_bench(a),
        Cmd::Run(a) => cli::run::cmd_run(a),
        Cmd::Export(a) => cli::export::cmd_export(a),
        Cmd::Bars(a) => cli::run::cmd_bars(a),
        Cmd::Send(a) => cli::send::cmd_send(a),
        Cmd::Record(a) => cli::record::cmd_record(a),
    };
    if let Err(e) = result {
        if e.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        }) {
            std::process::exit(0);
        }
        eprintln!("tickwatch: error: {e:#}");
        std::process::exit(1);
    }
}

/// A flag value out of its range (or unreadable) is an error like any other: `tickwatch: error:`
/// naming the flag and its range, exit code 1. Other usage errors, `--help` and `--version` are
/// clap's.
fn usage_error(e: clap::Error) -> ! {
    if e.kind() != ErrorKind::ValueValidation {
        e.exit()
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    eprintln!(
        "tickwatch: error: {}",
        first.strip_prefix("error: ").unwrap_or(first)
    );
    std::process::exit(1)
}
