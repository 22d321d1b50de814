//! A topology's parameters: their declared defaults, the `--set` overrides, and their values
//! put in place of each `${name}`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use weir_contracts::template;

use super::{yaml_error, SpecError};

/// Reads only the `params` block, before substitution, to learn the declared defaults.
pub(super) fn declared_params(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, serde_json::Value>, SpecError> {
    #[derive(Deserialize, schemars::JsonSchema)]
    struct ParamsOnly {
        #[serde(default)]
        params: BTreeMap<String, serde_json::Value>,
    }
    // References are not valid YAML everywhere (`{ above: ${x} }` breaks a flow mapping), so
    // they are masked before this first read; parameter values themselves hold no references.
    let masked = template::mask(text);
    let only: ParamsOnly = serde_saphyr::from_str(&masked).map_err(|e| yaml_error(path, &e))?;
    Ok(only.params)
}

pub(super) fn resolve_params(
    path: &Path,
    mut params: BTreeMap<String, serde_json::Value>,
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, String>, SpecError> {
    for (name, value) in overrides {
        match params.get_mut(name) {
            Some(slot) => *slot = serde_json::Value::String(value.clone()),
            None => {
                return Err(SpecError::UnknownOverride {
                    path: path.to_owned(),
                    name: name.clone(),
                    declared: declared_list(&params),
                })
            }
        }
    }
    Ok(params
        .into_iter()
        .map(|(k, v)| (k, template::value_text(&v)))
        .collect())
}

fn declared_list<V>(params: &BTreeMap<String, V>) -> String {
    if params.is_empty() {
        "none".into()
    } else {
        params.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

pub(super) fn substitute(
    path: &Path,
    text: &str,
    values: &BTreeMap<String, String>,
) -> Result<String, SpecError> {
    template::substitute(text, values).map_err(|error| match error {
        template::SubstituteError::Unknown(reference) => SpecError::UnknownParam {
            path: path.to_owned(),
            line: reference.line,
            column: reference.column,
            name: reference.name,
            declared: declared_list(values),
        },
        template::SubstituteError::Unsafe { reference, reason } => SpecError::UnsafeParam {
            path: path.to_owned(),
            line: reference.line,
            column: reference.column,
            name: reference.name,
            reason,
        },
    })
}
