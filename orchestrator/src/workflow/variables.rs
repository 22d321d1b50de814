//! Typed workflow variables: declaration, validation of defaults and `--set` values.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A declared variable.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    #[serde(rename = "type")]
    pub kind: VariableType,
    #[serde(default)]
    pub description: String,
    /// Used when no value is given. Without a default the variable is required.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Inclusive bounds for `int`, `float` and `duration` (in seconds).
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// A regular expression a `string` must match in full.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The allowed values of an `enum`.
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariableType {
    String,
    Int,
    Float,
    Bool,
    Duration,
    Url,
    Enum,
}

impl VariableType {
    /// The name a workflow file writes after `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            VariableType::String => "string",
            VariableType::Int => "int",
            VariableType::Float => "float",
            VariableType::Bool => "bool",
            VariableType::Duration => "duration",
            VariableType::Url => "url",
            VariableType::Enum => "enum",
        }
    }
}

/// Why a variable's value is refused: what was expected instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadValue {
    #[error("must be at least {min}{unit}")]
    BelowMin { min: f64, unit: &'static str },
    #[error("must be at most {max}{unit}")]
    AboveMax { max: f64, unit: &'static str },
    #[error("the pattern `{pattern}` is not a valid regular expression: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("does not match the pattern `{0}`")]
    NoMatch(String),
    #[error("expected a whole number")]
    NotAWholeNumber,
    #[error("expected a number")]
    NotANumber,
    #[error("expected true or false")]
    NotABool,
    #[error("is not a duration; write e.g. 30s, 2m or 500ms")]
    NotADuration,
    #[error("expected an http:// or https:// URL")]
    NotAUrl,
    #[error("expected one of {0}")]
    NotOneOf(String),
}

impl VariableDef {
    /// Checks a value written as text and returns its canonical text form (what is
    /// substituted for `${name}`).
    pub fn check(&self, raw: &str) -> Result<String, BadValue> {
        let value = raw.trim();
        let in_range = |n: f64, unit: &'static str| -> Result<(), BadValue> {
            match (self.min, self.max) {
                (Some(min), _) if n < min => Err(BadValue::BelowMin { min, unit }),
                (_, Some(max)) if n > max => Err(BadValue::AboveMax { max, unit }),
                _ => Ok(()),
            }
        };
        match self.kind {
            VariableType::String => {
                if let Some(pattern) = &self.pattern {
                    let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                        BadValue::BadPattern {
                            pattern: pattern.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    if !re.is_match(raw) {
                        return Err(BadValue::NoMatch(pattern.clone()));
                    }
                }
                Ok(raw.to_string())
            }
            VariableType::Int => {
                let n: i64 = value.parse().map_err(|_| BadValue::NotAWholeNumber)?;
                in_range(n as f64, "")?;
                Ok(n.to_string())
            }
            VariableType::Float => {
                let n: f64 = value
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite())
                    .ok_or(BadValue::NotANumber)?;
                in_range(n, "")?;
                Ok(value.to_string())
            }
            VariableType::Bool => match value {
                "true" | "yes" | "on" => Ok("true".into()),
                "false" | "no" | "off" => Ok("false".into()),
                _ => Err(BadValue::NotABool),
            },
            VariableType::Duration => {
                let d = weir_contracts::duration::parse_duration(value)
                    .map_err(|_| BadValue::NotADuration)?;
                in_range(d.as_secs_f64(), "s")?;
                Ok(value.to_string())
            }
            VariableType::Url => {
                let ok = (value.starts_with("http://") || value.starts_with("https://"))
                    && value.len() > "https://".len()
                    && !value.contains(char::is_whitespace);
                if ok {
                    Ok(value.to_string())
                } else {
                    Err(BadValue::NotAUrl)
                }
            }
            VariableType::Enum => {
                if self.values.iter().any(|v| v == value) {
                    Ok(value.to_string())
                } else {
                    Err(BadValue::NotOneOf(self.values.join(", ")))
                }
            }
        }
    }

    /// The default as text, if there is one.
    pub fn default_text(&self) -> Option<String> {
        self.default
            .as_ref()
            .map(weir_contracts::template::value_text)
    }
}

/// A problem with one variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableProblem {
    pub name: String,
    pub message: String,
    /// Where the value came from: `default` or `--set`.
    pub origin: &'static str,
}

/// Resolves every variable from `--set` values and defaults, reporting all problems.
pub fn resolve(
    declared: &BTreeMap<String, VariableDef>,
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, String>, Vec<VariableProblem>> {
    let mut problems = Vec::new();
    let mut values = BTreeMap::new();
    for (name, _) in overrides {
        if !declared.contains_key(name) {
            problems.push(VariableProblem {
                name: name.clone(),
                message: format!(
                    "the workflow declares no such variable{} (`weir validate FILE --vars` lists \
                     the {} it declares)",
                    crate::suggest::did_you_mean(name, declared.keys().map(String::as_str)),
                    declared.len()
                ),
                origin: "--set",
            });
        }
    }
    for (name, def) in declared {
        let given = overrides
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        let (raw, origin) = match (given, def.default_text()) {
            (Some(value), _) => (value, "--set"),
            (None, Some(default)) => (default, "default"),
            (None, None) => {
                problems.push(VariableProblem {
                    name: name.clone(),
                    message: format!("is required: pass --set {name}=VALUE"),
                    origin: "--set",
                });
                continue;
            }
        };
        match def.check(&raw) {
            Ok(text) => {
                values.insert(name.clone(), text);
            }
            Err(message) => problems.push(VariableProblem {
                name: name.clone(),
                message: format!("`{raw}`: {message}"),
                origin,
            }),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(kind: VariableType) -> VariableDef {
        VariableDef {
            kind,
            description: String::new(),
            default: None,
            min: None,
            max: None,
            pattern: None,
            values: vec![],
        }
    }

    #[test]
    fn each_type_is_checked() {
        let mut threshold = var(VariableType::Float);
        threshold.min = Some(0.0);
        assert_eq!(threshold.check("50"), Ok("50".into()));
        assert!(threshold
            .check("-1")
            .unwrap_err()
            .to_string()
            .contains("at least 0"));
        assert!(threshold.check("fifty").is_err());
        let mut name = var(VariableType::String);
        name.pattern = Some("[a-z][a-z0-9-]*".into());
        assert!(name.check("kafka-1").is_ok());
        assert!(name
            .check("Kafka 1")
            .unwrap_err()
            .to_string()
            .contains("pattern"));
        assert_eq!(var(VariableType::Bool).check("yes"), Ok("true".into()));
        let mut duration = var(VariableType::Duration);
        duration.max = Some(3600.0);
        assert!(duration
            .check("2h")
            .unwrap_err()
            .to_string()
            .contains("at most 3600s"));
        assert!(duration.check("120").is_ok());
        let mut kind = var(VariableType::Enum);
        kind.values = vec!["http".into(), "replay".into()];
        assert!(kind
            .check("ftp")
            .unwrap_err()
            .to_string()
            .contains("one of http, replay"));
        assert!(var(VariableType::Url).check("localhost:80").is_err());
    }

    #[test]
    fn resolution_reports_every_problem() {
        let mut declared = BTreeMap::new();
        declared.insert(
            "a".to_string(),
            VariableDef {
                default: Some(serde_json::json!(3)),
                ..var(VariableType::Int)
            },
        );
        declared.insert("b".to_string(), var(VariableType::String));
        let problems = resolve(
            &declared,
            &[("a".into(), "x".into()), ("c".into(), "1".into())],
        )
        .unwrap_err();
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["c", "a", "b"]);
        let values = resolve(&declared, &[("b".into(), "hi".into())]).unwrap();
        assert_eq!(values["a"], "3");
    }
}
