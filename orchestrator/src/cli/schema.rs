//! `weir schema workflow|topology`: print a file kind's JSON Schema.

use std::process::ExitCode;

use weir::schema::SchemaFile;

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which file kind.
    #[arg(value_enum)]
    file: SchemaFile,
}

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&args.file.schema())?);
    Ok(ExitCode::SUCCESS)
}
