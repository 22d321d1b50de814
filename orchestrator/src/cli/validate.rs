//! `weir validate WORKFLOW [--vars] [--json]`: every problem of a workflow at once, and the
//! variables it takes.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use weir::home::WeirHome;
use weir::offered::workflow_file;
use weir::workflow::{self, LoadedWorkflow, Problem};

use super::parse_assignment;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The workflow file, or the name of a shipped workflow (e.g. `bitcoin-yuan`).
    workflow: String,
    /// Set a workflow variable, as `weir run` would.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    set: Vec<(String, String)>,
    /// List the workflow's variables: type, default, allowed values and description.
    #[arg(long)]
    vars: bool,
    /// Print the result as JSON: `valid`, the `problems` (line, column, message) or the
    /// workflow's tasks and variables.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Validated<'a> {
    file: &'a Path,
    valid: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<Problem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tasks: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    variables: Vec<serde_json::Value>,
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let file = workflow_file(&args.workflow, WeirHome::from_env().root())?;
    let loaded = workflow::load(&file, &args.set);
    if args.json {
        return print_json(&file, &loaded);
    }
    let loaded = loaded?;
    if args.vars {
        print_variables(&loaded);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: workflow `{}` is valid ({} tasks, {} variables; `--vars` lists them)",
        file.display(),
        loaded.workflow.name,
        loaded.workflow.tasks.len(),
        loaded.values.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_json(
    file: &Path,
    loaded: &Result<LoadedWorkflow, workflow::WorkflowError>,
) -> anyhow::Result<ExitCode> {
    let validated = match loaded {
        Ok(loaded) => Validated {
            file,
            valid: true,
            problems: Vec::new(),
            workflow: Some(&loaded.workflow.name),
            tasks: (loaded.workflow.tasks.iter())
                .map(|t| t.name.as_str())
                .collect(),
            variables: variables(loaded)?,
        },
        Err(error) => Validated {
            file,
            valid: false,
            problems: error.problems.clone(),
            workflow: None,
            tasks: Vec::new(),
            variables: Vec::new(),
        },
    };
    println!("{}", serde_json::to_string_pretty(&validated)?);
    Ok(match validated.valid {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// Each declared variable as declared, with its `name` and the `value` it takes here.
fn variables(loaded: &LoadedWorkflow) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut listed = Vec::new();
    for (name, declared) in &loaded.workflow.variables {
        let mut entry = serde_json::to_value(declared)?;
        entry["name"] = name.as_str().into();
        entry["value"] = loaded.values.get(name).map(String::as_str).into();
        listed.push(entry);
    }
    Ok(listed)
}

fn print_variables(loaded: &LoadedWorkflow) {
    let declared = &loaded.workflow.variables;
    println!(
        "workflow `{}`: {} variables, set with --set NAME=VALUE",
        loaded.workflow.name,
        declared.len()
    );
    let width = declared.keys().map(String::len).max().unwrap_or(4).max(4);
    println!(
        "{:<width$}  {:<8}  {:<24}  DESCRIPTION",
        "NAME", "TYPE", "VALUE"
    );
    for (name, def) in declared {
        let value = loaded.values.get(name).map(String::as_str).unwrap_or("-");
        let value = match def.default_text() {
            Some(default) if default == value => value.to_string(),
            Some(default) => format!("{value} (default {default})"),
            None => format!("{value} (required)"),
        };
        let mut notes = Vec::new();
        if !def.values.is_empty() {
            notes.push(format!("one of {}", def.values.join(", ")));
        }
        match (def.min, def.max) {
            (Some(min), Some(max)) => notes.push(format!("{min} to {max}")),
            (Some(min), None) => notes.push(format!("at least {min}")),
            (None, Some(max)) => notes.push(format!("at most {max}")),
            (None, None) => {}
        }
        if let Some(pattern) = &def.pattern {
            notes.push(format!("matching {pattern}"));
        }
        let notes = match notes.is_empty() {
            true => String::new(),
            false => format!(" [{}]", notes.join("; ")),
        };
        let kind = def.kind.as_str();
        println!(
            "{name:<width$}  {kind:<8}  {value:<24}  {}{notes}",
            def.description
        );
    }
}
