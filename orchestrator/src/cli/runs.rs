//! `weir run`, `weir runs [show]`, `weir approve`, `weir reject`.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use weir::engine::{self, RunOptions};
use weir::home::WeirHome;
use weir::offered::workflow_file;
use weir::runs::{Answer, Answered, RunState};
use weir::store::Store;
use weir::workflow;

use super::backend::BackendArgs;
use super::{parse_assignment, runtime, signals};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file, or the name of a shipped workflow (e.g. `bitcoin-yuan`).
    workflow: String,
    /// Set a workflow variable (`weir validate WORKFLOW --vars` lists them).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    set: Vec<(String, String)>,
    /// Print how the run ended as JSON on standard output (progress stays on standard error).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
    /// Use this run id (the web UI chooses it to answer at once).
    #[arg(long, hide = true)]
    run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    command: Option<RunsCommand>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// One run with its tasks and topic counts.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// The run awaiting approval.
    id: String,
    /// The task whose approval this answers; needed when several wait at once.
    #[arg(long)]
    task: Option<String>,
}

fn store() -> anyhow::Result<Store> {
    Ok(Store::open(&WeirHome::from_env().database())?)
}

/// Exit status of a run stopped by Ctrl-C or SIGTERM, as shells report a SIGINT.
const INTERRUPTED: u8 = 130;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let home = WeirHome::from_env();
    let file = workflow_file(&args.workflow, home.root())?;
    let loaded = workflow::load(&file, &args.set)?;
    let command_line = rerun_line(&file, &args.set);
    let (outcome, interrupted) = runtime()?.block_on(async move {
        let interrupts = signals::run_interrupts();
        let interrupted = interrupts.stop.clone();
        let runtime = args.backend.connect().await?;
        let options = RunOptions {
            home,
            interrupt: interrupts.stop,
            skip_results: interrupts.skip_results,
            id: args.run_id,
            command_line: Some(command_line),
        };
        let outcome = engine::run(loaded, runtime, options).await?;
        anyhow::Ok((outcome, interrupted.is_cancelled()))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(match (outcome.state, interrupted) {
        (_, true) => ExitCode::from(INTERRUPTED),
        (RunState::Succeeded, false) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// `weir run FILE --set …` as typed, for lines that repeat it with other values.
fn rerun_line(file: &std::path::Path, set: &[(String, String)]) -> String {
    let mut line = format!("weir run {}", file.display());
    for (name, value) in set {
        line.push_str(&format!(" --set {name}={}", weir::shell::word(value)));
    }
    line
}

pub fn runs(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = store()?;
    match args.command {
        Some(RunsCommand::Show { id, json }) => {
            let Some(run) = store.run(&id)? else {
                bail!("no run `{id}`; `weir runs` lists them");
            };
            let tasks = store.tasks(&id)?;
            if json || args.json {
                let mut value = serde_json::to_value(&run)?;
                value["tasks"] = serde_json::to_value(&tasks)?;
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "run {}  workflow {}  state {}  backend {}{}",
                run.id,
                run.workflow,
                run.state.as_str(),
                run.backend,
                run.namespace
                    .as_deref()
                    .map(|ns| format!("  namespace {ns}"))
                    .unwrap_or_default()
            );
            println!(
                "created {}  finished {}",
                run.created,
                run.finished.as_deref().unwrap_or("-")
            );
            if let Some(error) = &run.error {
                println!("error: {error}");
            }
            for pending in &run.approvals {
                println!(
                    "awaiting approval of `{task}`: {message}  (weir approve {id} --task {task} / weir reject {id} --task {task})",
                    task = pending.task,
                    message = pending.message
                );
            }
            println!(
                "\n{:<20} {:<16} {:<10} {:<22} ERROR",
                "TASK", "KIND", "STATE", "STARTED"
            );
            for t in &tasks {
                println!(
                    "{:<20} {:<16} {:<10} {:<22} {}",
                    t.name,
                    t.kind,
                    t.state.as_str(),
                    t.started.as_deref().unwrap_or("-"),
                    t.error.as_deref().unwrap_or("")
                );
            }
            if let Some(topics) = run.topics.as_object().filter(|t| !t.is_empty()) {
                println!("\ntopics:");
                for (topic, count) in topics {
                    println!("  {topic:<30} {count}");
                }
            }
            if let Some(missing) = run.unavailable.as_object().filter(|t| !t.is_empty()) {
                println!("\nunavailable results:");
                for (what, why) in missing {
                    println!("  {what}: {}", why.as_str().unwrap_or_default());
                }
            }
            if let Some(reason) = &run.simulated {
                println!("\nSIMULATED: {reason}");
            }
            if !run.events.is_empty() {
                println!("\nwhat happened to its instances:");
                for event in &run.events {
                    println!("  {}  {}: {}", event.at, event.instance, event.what);
                }
            }
            println!("\nartifacts: {}", run.artifacts);
        }
        None => {
            let runs = store.runs()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(ExitCode::SUCCESS);
            }
            if runs.is_empty() {
                println!("no runs yet (start one with `weir run workflows/bitcoin-yuan.yaml`)");
            } else {
                println!(
                    "{:<16} {:<22} {:<18} {:<11} CREATED",
                    "ID", "WORKFLOW", "STATE", "BACKEND"
                );
            }
            for run in runs {
                println!(
                    "{:<16} {:<22} {:<18} {:<11} {}",
                    run.id,
                    run.workflow,
                    run.state.as_str(),
                    run.backend,
                    run.created
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn answer(args: AnswerArgs, answer: Answer) -> anyhow::Result<ExitCode> {
    let store = store()?;
    let Some(run) = store.run(&args.id)? else {
        bail!("no run `{}`; `weir runs` lists them", args.id);
    };
    let task = match store.answer_approval(&args.id, args.task.as_deref(), answer)? {
        Answered::Recorded(task) => task,
        Answered::Ambiguous(pending) => bail!(
            "run {} awaits several approvals; say which with --task ({})",
            args.id,
            pending.join(", ")
        ),
        Answered::NotAwaiting(pending) if pending.is_empty() => bail!(
            "run {} is {}, not awaiting approval (or was already answered)",
            args.id,
            run.state.as_str()
        ),
        Answered::NotAwaiting(pending) => bail!(
            "task `{}` of run {} awaits no approval; these do: {}",
            args.task.as_deref().unwrap_or_default(),
            args.id,
            pending.join(", ")
        ),
    };
    println!("{} run {}", answer.as_str(), args.id);
    eprintln!("(the approval of task `{task}`)");
    Ok(ExitCode::SUCCESS)
}
