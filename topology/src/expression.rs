//! Expressions in topologies, in CEL (the Common Expression Language of Kubernetes validation
//! rules and of kafka-ui's message filters): `filter` keeps the records for which one is true,
//! `set` computes fields.
//!
//! An expression is compiled once, when the topology loads, and reads the record's fields by
//! name, with `key` (the message key, a string or null) and `timestamp` (the message's time in
//! epoch milliseconds). Only the names it uses are bound for each record.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::operators::Record;

/// Names every expression may read besides the record's fields.
pub const BUILT_IN: [&str; 2] = ["key", "timestamp"];

/// Why an expression has no value for a record (the record then goes to the error topic).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluationError {
    #[error("field `{0}` is not set on the record")]
    FieldNotSet(String),
    #[error("`{text}` failed: {reason}")]
    Failed { text: String, reason: String },
    #[error("`{text}` gave a value JSON cannot hold: {reason}")]
    NotJson { text: String, reason: String },
    #[error("`{text}` gave {value}, not true or false")]
    NotABoolean { text: String, value: Value },
}

/// A compiled expression. A topology file's expressions compile as the file is read, so a
/// bad one is an error at the place the file wrote it.
#[derive(Clone, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Expression {
    text: String,
    program: Arc<cel::Program>,
    /// The names it reads, each once.
    variables: Vec<String>,
}

impl TryFrom<String> for Expression {
    type Error = ExpressionError;

    fn try_from(text: String) -> Result<Self, ExpressionError> {
        Self::compile(&text)
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.text).finish()
    }
}

/// Why an expression does not compile: each problem with its place in the expression (line
/// and column, from 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{text}` is not a valid CEL expression: {problems}")]
pub struct ExpressionError {
    pub text: String,
    pub problems: String,
}

impl Expression {
    pub fn compile(text: &str) -> Result<Self, ExpressionError> {
        let program = cel::Program::compile(text).map_err(|errors| ExpressionError {
            text: text.to_string(),
            problems: (errors.errors.iter())
                .map(|e| format!("{} (at {}:{})", e.msg, e.pos.0, e.pos.1 + 1))
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        let mut variables: Vec<String> = (program.references().variables().into_iter())
            .map(str::to_string)
            .collect();
        variables.sort();
        variables.dedup();
        Ok(Self {
            text: text.to_string(),
            program: Arc::new(program),
            variables,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The names the expression reads.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// The expression's value for `record`, or why it has none.
    pub fn evaluate(&self, record: &Record) -> Result<Value, EvaluationError> {
        let mut context = cel::Context::with_env(standard_environment());
        for name in &self.variables {
            let value = match name.as_str() {
                "key" => record
                    .key
                    .as_ref()
                    .map_or(cel::Value::Null, |key| key.to_string().into()),
                "timestamp" => cel::Value::Int(record.timestamp_ms),
                field => match record.fields.get(field) {
                    Some(value) => to_cel(value),
                    None => return Err(EvaluationError::FieldNotSet(field.to_string())),
                },
            };
            context.add_variable_from_value(name.as_str(), value);
        }
        let value = self
            .program
            .execute(&context)
            .map_err(|e| EvaluationError::Failed {
                text: self.text.clone(),
                reason: e.to_string(),
            })?;
        value.json().map_err(|e| EvaluationError::NotJson {
            text: self.text.clone(),
            reason: e.to_string(),
        })
    }

    /// Whether `record` passes, for a `filter`: the expression must give a boolean.
    pub fn passes(&self, record: &Record) -> Result<bool, EvaluationError> {
        match self.evaluate(record)? {
            Value::Bool(passes) => Ok(passes),
            value => Err(EvaluationError::NotABoolean {
                text: self.text.clone(),
                value,
            }),
        }
    }
}

/// CEL's standard functions and macros, built once: building them for each record cost far
/// more than evaluating the expression.
fn standard_environment() -> Arc<cel::Env> {
    static ENVIRONMENT: std::sync::LazyLock<Arc<cel::Env>> =
        std::sync::LazyLock::new(|| Arc::new(cel::Env::stdlib()));
    ENVIRONMENT.clone()
}

/// A JSON value as CEL sees it. A whole number is an `int` (CEL's integer literals are
/// ints, and it adds no uint to an int), anything else with a fraction a `double`.
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(members) => (members.iter())
            .map(|(name, value)| (name.clone(), to_cel(value)))
            .collect::<std::collections::HashMap<String, cel::Value>>()
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record() -> Record {
        let mut record = Record::new(Some("BTC-CNY".into()), 1_700_000_000_000);
        record.fields.insert("rate", json!(478012.35));
        record.fields.insert("count", json!(3));
        record.fields.insert("pair", json!("BTC-CNY"));
        record
    }

    #[test]
    fn reads_fields_key_and_timestamp() {
        let r = record();
        let eval = |text: &str| Expression::compile(text).unwrap().evaluate(&r);
        assert_eq!(eval("rate * 2.0"), Ok(json!(956024.7)));
        assert_eq!(eval("count + 1"), Ok(json!(4)));
        assert_eq!(eval("key == pair"), Ok(json!(true)));
        assert_eq!(eval("timestamp / 1000"), Ok(json!(1_700_000_000)));
        assert_eq!(eval("rate > 100.0 && count >= 3"), Ok(json!(true)));
        assert!(eval("missing + 1")
            .unwrap_err()
            .to_string()
            .contains("`missing` is not set"));
        assert!(eval("pair + 1").is_err(), "a string plus a number fails");
    }

    #[test]
    fn a_filter_needs_a_boolean() {
        let r = record();
        assert_eq!(
            Expression::compile("rate > 5.0").unwrap().passes(&r),
            Ok(true)
        );
        let error = Expression::compile("rate")
            .unwrap()
            .passes(&r)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not true or false"), "{error}");
    }

    #[test]
    fn a_bad_expression_says_where() {
        let error = Expression::compile("rate > ").unwrap_err();
        assert!(error.problems.contains("at 1:"), "{error}");
        let compiled = Expression::compile("a + b * a").unwrap();
        assert_eq!(compiled.variables(), ["a", "b"]);
    }
}
