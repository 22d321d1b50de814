//! `weir members run SPEC`: the supervisor that keeps the processes of a multi-process local
//! instance (a Kafka cluster's brokers). Started by the local runtime, not by people.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, Subcommand};
use weir_supervisor::members::{read_member_set, supervise};

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Start every member of SPEC, start a member that dies again, read SPEC again on
    /// SIGHUP (starting the members it adds, stopping those it drops), stop them all on
    /// SIGTERM or SIGINT.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The member spec the local runtime wrote (`members-spec.json` in the instance's
    /// directory); the status goes to `members.json` beside it.
    spec: PathBuf,
}

pub fn run(command: MembersCommand) -> anyhow::Result<ExitCode> {
    let MembersCommand::Run(args) = command;
    let set = read_member_set(&args.spec)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())?;
    supervise(set, &args.spec, &stop, &reload)?;
    Ok(ExitCode::SUCCESS)
}
