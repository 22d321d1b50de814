//! `weir logs NAME`: a running instance's log (a local process's file or a pod's log), and
//! `weir logs --run ID [NAME]`: the logs a run kept before its teardown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use weir::home::WeirHome;
use weir::runtime::{self, inventory, LogSpan};
use weir::suggest::did_you_mean;

use super::backend::BackendArgs;
use super::runtime;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The instance (see `weir instances`); with --run, one of the run's kept logs.
    name: Option<String>,
    /// Read the logs run ID kept with its artifacts (they outlive its teardown).
    #[arg(long, value_name = "ID")]
    run: Option<String>,
    /// Show the last N lines.
    #[arg(short = 'n', long, default_value_t = 100, conflicts_with = "all")]
    tail: usize,
    /// Show the whole log.
    #[arg(long)]
    all: bool,
}

pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let span = if args.all {
        LogSpan::Whole
    } else {
        LogSpan::Last(args.tail)
    };
    match (&args.run, &args.name) {
        (Some(run), name) => kept_logs(&WeirHome::from_env(), run, name.as_deref(), span),
        (None, Some(name)) => live_log(name, span),
        (None, None) => {
            bail!("name an instance (`weir instances` lists them) or a run: `weir logs --run ID`")
        }
    }
}

fn live_log(name: &str, span: LogSpan) -> anyhow::Result<ExitCode> {
    let config = BackendArgs::default().config()?;
    let text = runtime()?.block_on(async {
        let Some(instance) = inventory::locate(&config, name).await? else {
            let known = inventory::instances(&config, None).await?.instances;
            let hint = did_you_mean(name, known.iter().map(|i| i.name.as_str()));
            bail!(
                "no instance `{name}`{hint} (`weir instances` lists them; a finished run's logs: \
                 `weir logs --run ID`)"
            );
        };
        let runtime = runtime::connect(config.for_instance(&instance)).await?;
        anyhow::Ok(runtime.logs(&instance.scope(), name, span).await?)
    })?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The logs under the run's artifacts: one instance's, or every one with a header line each.
fn kept_logs(
    home: &WeirHome,
    run: &str,
    name: Option<&str>,
    span: LogSpan,
) -> anyhow::Result<ExitCode> {
    let dir = home.run_dir(run).join("logs");
    if !home.run_dir(run).is_dir() {
        bail!("no run `{run}` kept anything here; `weir runs` lists the runs");
    }
    let kept = kept_files(&dir);
    if kept.is_empty() {
        bail!(
            "run {run} kept no logs in {} (its collection step had not run, or could not read them)",
            dir.display()
        );
    }
    let names: Vec<&str> = kept.iter().map(|(name, _)| name.as_str()).collect();
    let chosen: Vec<&(String, PathBuf)> = match name {
        Some(wanted) => match kept.iter().find(|(name, _)| name == wanted) {
            Some(found) => vec![found],
            None => bail!(
                "run {run} kept no log of `{wanted}`{}; it kept: {}",
                did_you_mean(wanted, names.iter().copied()),
                names.join(", ")
            ),
        },
        None => kept.iter().collect(),
    };
    let several = chosen.len() > 1;
    for (name, path) in chosen {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        if several {
            println!("==> {name} ({}) <==", path.display());
        }
        print!("{}", last_lines(&text, span));
    }
    Ok(ExitCode::SUCCESS)
}

/// `(instance, file)` of every `*.log` in `dir`, by name.
fn kept_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p)))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn last_lines(text: &str, span: LogSpan) -> &str {
    let LogSpan::Last(lines) = span else {
        return text;
    };
    let body = text.strip_suffix('\n').unwrap_or(text);
    match body.rmatch_indices('\n').nth(lines.saturating_sub(1)) {
        Some((at, _)) if lines > 0 => &text[at + 1..],
        _ if lines == 0 => "",
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_are_counted_from_the_end_whatever_the_final_newline() {
        let text = "a\nb\nc\n";
        assert_eq!(last_lines(text, LogSpan::Last(2)), "b\nc\n");
        assert_eq!(last_lines(text, LogSpan::Last(3)), text);
        assert_eq!(last_lines(text, LogSpan::Last(10)), text);
        assert_eq!(last_lines(text, LogSpan::Last(0)), "");
        assert_eq!(last_lines("a\nb", LogSpan::Last(1)), "b");
        assert_eq!(last_lines(text, LogSpan::Whole), text);
    }
}
