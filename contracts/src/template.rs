//! `${name}` references in YAML text, shared by topology and workflow files.
//!
//! Substitution happens on the text before it is parsed, so a reference may stand anywhere a
//! value may (`above: ${threshold}` yields a number), and lines are preserved so that parse
//! errors keep their line numbers. A value is always exactly one value, whatever characters it
//! holds: inside a quoted string it is escaped for that string; standing alone as an unquoted
//! scalar it is written as a quoted string when YAML would otherwise read structure into it;
//! and where neither is possible (in the middle of an unquoted scalar) it is refused with the
//! reference's line and column. `$${` escapes a literal `${`. References in comments are left
//! alone.

use std::collections::BTreeMap;

/// A `${name}` occurrence, 1-based line and column of its `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// Why a reference could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    #[error("unknown name `{}`", .0.name)]
    Unknown(Reference),
    /// The value cannot be written where the reference stands without changing the
    /// document's structure.
    #[error("the value of `{}` {reason}", .reference.name)]
    Unsafe {
        reference: Reference,
        reason: UnsafeValue,
    },
}

/// Why a value cannot be written where its reference stands (the message follows "the value
/// of `name`").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeValue {
    #[error("holds a line break, which a single-quoted YAML string cannot keep; write the reference in double quotes")]
    LineBreakInSingleQuotes,
    #[error("({0:?}) holds characters YAML reads as structure in an unquoted scalar; put the whole scalar in double quotes")]
    StructureInPlainScalar(String),
}

impl SubstituteError {
    pub fn reference(&self) -> &Reference {
        match self {
            SubstituteError::Unknown(reference) | SubstituteError::Unsafe { reference, .. } => {
                reference
            }
        }
    }
}

/// The text a JSON value stands for when substituted or passed as `NAME=VALUE`: a string
/// as it is (no quotes), anything else as JSON (`50`, `true`).
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Where a reference stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// An unquoted scalar; `whole` when the reference is all of it.
    Plain {
        whole: bool,
    },
    DoubleQuoted,
    SingleQuoted,
}

/// Every reference in `text` outside comments, in order.
pub fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    scan(text, |reference, _| {
        found.push(reference.clone());
        Ok(String::new())
    })
    .expect("listing never fails");
    found
}

/// Replaces each reference with its value, written so that it stays one scalar; the first
/// unknown name or unsafe value is the error.
pub fn substitute(
    text: &str,
    values: &BTreeMap<String, String>,
) -> Result<String, SubstituteError> {
    scan(text, |reference, context| {
        let value = values
            .get(&reference.name)
            .ok_or_else(|| SubstituteError::Unknown(reference.clone()))?;
        write_value(value, context).map_err(|reason| SubstituteError::Unsafe {
            reference: reference.clone(),
            reason,
        })
    })
}

/// Replaces every reference with a plain word, so that the text parses as YAML even where a
/// reference would not (`{ above: ${x} }` is not a valid flow mapping).
pub fn mask(text: &str) -> String {
    scan(text, |_, _| Ok("weir_reference".into())).expect("masking never fails")
}

/// `value` as it must be written in `context` to be read back as itself, one scalar.
fn write_value(value: &str, context: Context) -> Result<String, UnsafeValue> {
    match context {
        Context::DoubleQuoted => {
            let quoted = serde_json::to_string(value).expect("strings serialize");
            Ok(quoted[1..quoted.len() - 1].to_string())
        }
        Context::SingleQuoted if value.contains(['\n', '\r']) => {
            Err(UnsafeValue::LineBreakInSingleQuotes)
        }
        Context::SingleQuoted => Ok(value.replace('\'', "''")),
        Context::Plain { .. } if plain_safe(value) => Ok(value.to_string()),
        Context::Plain { whole: false } if value.is_empty() => Ok(String::new()),
        // A JSON string is a YAML double-quoted scalar.
        Context::Plain { whole: true } => {
            Ok(serde_json::to_string(value).expect("strings serialize"))
        }
        Context::Plain { whole: false } => {
            Err(UnsafeValue::StructureInPlainScalar(value.to_string()))
        }
    }
}

/// Whether YAML reads `value` back as itself (a number, a word, a URL…) when written
/// unquoted: no indicators, no `: ` or ` #`, no surrounding spaces, no line breaks.
fn plain_safe(value: &str) -> bool {
    !value.is_empty()
        && value.trim() == value
        && !value.contains(|c: char| c.is_control() || "{}[],&*!|>'\"%@`#".contains(c))
        && !value.contains(": ")
        && !value.ends_with(':')
        && !value.starts_with("- ")
        && !value.starts_with("? ")
        && value != "-"
        && value != "?"
}

/// Walks the text, tracking quoted scalars and comments, and replaces each reference with
/// what `replace` returns for it.
fn scan(
    text: &str,
    mut replace: impl FnMut(&Reference, Context) -> Result<String, SubstituteError>,
) -> Result<String, SubstituteError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut in_comment = false;
    // The last character outside quotes on this line that was not a space; `None` at the
    // start of a line. Decides whether a quote opens a quoted scalar.
    let mut last_significant: Option<char> = None;
    let (mut line, mut column) = (1, 1);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            out.push(c);
            (line, column) = (line + 1, 1);
            last_significant = None;
            in_comment = false;
            i += 1;
            continue;
        }
        if !in_comment && c == '$' && next == Some('$') && chars.get(i + 2) == Some(&'{') {
            out.push_str("${");
            (i, column) = (i + 3, column + 3);
            last_significant = Some('{');
            continue;
        }
        if !in_comment && c == '$' && next == Some('{') {
            let close = chars[i + 2..]
                .iter()
                .take_while(|&&c| c != '\n')
                .position(|&c| c == '}');
            if let Some(close) = close {
                let end = i + 2 + close;
                let reference = Reference {
                    name: chars[i + 2..end].iter().collect::<String>().trim().into(),
                    line,
                    column,
                };
                let context = match quote {
                    Some('"') => Context::DoubleQuoted,
                    Some(_) => Context::SingleQuoted,
                    None => Context::Plain {
                        whole: starts_scalar(last_significant) && ends_scalar(&chars[end + 1..]),
                    },
                };
                out.push_str(&replace(&reference, context)?);
                column += end + 1 - i;
                i = end + 1;
                if quote.is_none() {
                    last_significant = Some('}');
                }
                continue;
            }
        }
        out.push(c);
        i += 1;
        column += 1;
        if in_comment {
            continue;
        }
        match quote {
            Some('"') if c == '\\' => {
                if let Some(escaped) = next.filter(|&n| n != '\n') {
                    out.push(escaped);
                    i += 1;
                    column += 1;
                }
            }
            Some('"') if c == '"' => quote = None,
            Some('\'') if c == '\'' && next == Some('\'') => {
                out.push('\'');
                i += 1;
                column += 1;
            }
            Some('\'') if c == '\'' => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'') && starts_scalar(last_significant) => quote = Some(c),
            None if c == '#'
                && (i == 1
                    || chars
                        .get(i.wrapping_sub(2))
                        .is_some_and(|p| p.is_whitespace())) =>
            {
                in_comment = true
            }
            None => {}
        }
        if !c.is_whitespace() && !in_comment {
            // `-`, `?` and `:` are indicators only before a space (`- item`, `key: value`);
            // elsewhere (`pre-`, `http://`) they are part of a scalar.
            let indicator = !matches!(c, '-' | '?' | ':')
                || next.is_none_or(|n| n == ' ' || n == '\t' || n == '\n' || n == '\r');
            last_significant = Some(if indicator { c } else { 'a' });
        }
    }
    Ok(out)
}

/// A scalar may start after these (or at the start of a line).
fn starts_scalar(last_significant: Option<char>) -> bool {
    matches!(
        last_significant,
        None | Some(':' | '-' | '[' | '{' | ',' | '?')
    )
}

/// What follows a reference ends its scalar.
fn ends_scalar(rest: &[char]) -> bool {
    let after = rest.iter().position(|c| *c != ' ' && *c != '\t');
    match after.map(|p| (p, rest[p])) {
        None | Some((_, '\n' | '\r' | ',' | ']' | '}')) => true,
        Some((p, '#')) => p > 0,
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn finds_substitutes_and_escapes() {
        let text = "a: ${x}\nb: [${y}, $${x}]\n";
        let refs = references(text);
        assert_eq!(refs.len(), 2);
        assert_eq!(
            (refs[1].name.as_str(), refs[1].line, refs[1].column),
            ("y", 2, 5)
        );
        let subst = substitute(text, &values(&[("x", "1"), ("y", "2")])).unwrap();
        assert_eq!(subst, "a: 1\nb: [2, ${x}]\n");
        let missing = substitute(text, &BTreeMap::new()).unwrap_err();
        let reference = missing.reference();
        assert_eq!(
            (reference.name.as_str(), reference.line, reference.column),
            ("x", 1, 4)
        );
        assert_eq!(mask("a: { b: ${x} }"), "a: { b: weir_reference }");
    }

    #[test]
    fn each_value_stays_one_scalar_wherever_it_stands() {
        let hostile = "a\"b: {c: [d]}\n  e: 'f' # g";
        let text = "p: ${v}\nq: \"pre-${v}\"\nr: 'pre-${v}'\ns: { t: ${v} }\nu: [${v}, x]\n";
        let out = substitute(text, &values(&[("v", hostile)]));
        // A single-quoted string cannot keep the line break: refused, with its position.
        let error = out.unwrap_err();
        assert_eq!(error.reference().line, 3);
        assert!(error.to_string().contains("line break"), "{error}");

        let text = "p: ${v}\nq: \"pre-${v}\"\ns: { t: ${v} }\nu: [${v}, x]\n";
        let out = substitute(text, &values(&[("v", hostile)])).unwrap();
        let parsed: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(parsed["p"], hostile);
        assert_eq!(parsed["q"], format!("pre-{hostile}"));
        assert_eq!(parsed["s"]["t"], hostile);
        assert_eq!(parsed["u"][0], hostile);
        assert_eq!(parsed["u"][1], "x");
        assert_eq!(parsed.as_object().unwrap().len(), 4, "no key was added");

        let out = substitute("r: 'it''s ${v}'\n", &values(&[("v", "a 'b' c")])).unwrap();
        let parsed: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(parsed["r"], "it's a 'b' c");
    }

    #[test]
    fn plain_values_keep_their_type_and_unsafe_partial_ones_are_refused() {
        let out = substitute(
            "n: ${n}\nb: ${b}\nurl: ${u}\nword: pre-${w}\n",
            &values(&[
                ("n", "50"),
                ("b", "true"),
                ("u", "http://h:1/p"),
                ("w", "x"),
            ]),
        )
        .unwrap();
        let parsed: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(parsed["n"], 50);
        assert_eq!(parsed["b"], true);
        assert_eq!(parsed["url"], "http://h:1/p");
        assert_eq!(parsed["word"], "pre-x");

        let error = substitute("word: pre-${w}\n", &values(&[("w", "x: y")])).unwrap_err();
        assert_eq!((error.reference().line, error.reference().column), (1, 11));
        assert!(error.to_string().contains("double quotes"), "{error}");
        // An empty value alone is an empty string, not null.
        let out = substitute("e: ${w}\n", &values(&[("w", "")])).unwrap();
        let parsed: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(parsed["e"], "");
    }

    #[test]
    fn comments_are_left_alone() {
        let out = substitute("a: 1 # uses ${nothing}\n", &BTreeMap::new()).unwrap();
        assert_eq!(out, "a: 1 # uses ${nothing}\n");
    }
}
