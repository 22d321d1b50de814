//! `${name}` references in YAML text, shared by topology and workflow files.
//!
//! Substitution happens on the text before it is parsed, so a reference may stand anywhere a
//! value may (`above: ${threshold}` yields a number). `$${` escapes a literal `${`. Lines are
//! preserved, so parse errors keep their line numbers.

use std::collections::BTreeMap;

/// A `${name}` occurrence, 1-based line and column of its `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// The text a JSON value stands for when substituted or passed as `NAME=VALUE`: a string
/// as it is (no quotes), anything else as JSON (`50`, `true`).
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every reference in `text`, in order.
pub fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    scan(text, |reference| {
        found.push(reference.clone());
        Some(String::new())
    });
    found
}

/// Replaces each reference with its value; the first unknown name is returned as the error.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, Reference> {
    let mut missing = None;
    let out = scan(text, |reference| match values.get(&reference.name) {
        Some(value) => Some(value.clone()),
        None => {
            missing.get_or_insert_with(|| reference.clone());
            None
        }
    });
    match missing {
        Some(reference) => Err(reference),
        None => Ok(out),
    }
}

/// Replaces every reference with a plain word, so that the text parses as YAML even where a
/// reference would not (`{ above: ${x} }` is not a valid flow mapping).
pub fn mask(text: &str) -> String {
    scan(text, |_| Some("weir_reference".into()))
}

fn scan(text: &str, mut replace: impl FnMut(&Reference) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for (line_index, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let reference = Reference {
                name: after[..end].trim().to_string(),
                line: line_index + 1,
                column: line[..line.len() - rest.len() + start].chars().count() + 1,
            };
            match replace(&reference) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[start..start + 2 + end + 1]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_substitutes_and_escapes() {
        let text = "a: ${x}\nb: [${y}, $${x}]\n";
        let refs = references(text);
        assert_eq!(refs.len(), 2);
        assert_eq!(
            (refs[1].name.as_str(), refs[1].line, refs[1].column),
            ("y", 2, 5)
        );
        let values = BTreeMap::from([
            ("x".to_string(), "1".to_string()),
            ("y".to_string(), "2".to_string()),
        ]);
        assert_eq!(substitute(text, &values).unwrap(), "a: 1\nb: [2, ${x}]\n");
        let missing = substitute(text, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            (missing.name.as_str(), missing.line, missing.column),
            ("x", 1, 4)
        );
        assert_eq!(mask("a: { b: ${x} }"), "a: { b: weir_reference }");
    }
}
