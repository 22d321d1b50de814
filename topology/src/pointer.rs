//! JSON pointers (RFC 6901) split into their reference tokens once, when a topology is
//! compiled, instead of on every lookup (`serde_json::Value::pointer` unescapes each token
//! anew, allocating, for every record).

use serde_json::Value;

/// A JSON pointer such as `/data/amount`, its tokens unescaped (`~1` is `/`, `~0` is `~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    text: String,
    tokens: Vec<String>,
}

impl JsonPointer {
    /// Splits `text`; the empty pointer names the whole document. A text that does not start
    /// with `/` is not a pointer (the topology's validation refuses it first).
    pub fn parse(text: &str) -> Option<Self> {
        if !(text.is_empty() || text.starts_with('/')) {
            return None;
        }
        let tokens = (text.split('/').skip(1))
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect();
        Some(Self {
            text: text.to_string(),
            tokens,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The unescaped reference tokens, outermost first.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The value the pointer reaches in `document`: what `Value::pointer` finds.
    pub fn lookup<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.lookup_below(document, 0)
    }

    /// The value the pointer reaches in `value`, the value its first `depth` tokens reached.
    pub fn lookup_below<'v>(&self, value: &'v Value, depth: usize) -> Option<&'v Value> {
        (self.tokens.iter().skip(depth)).try_fold(value, |value, token| match value {
            Value::Object(members) => members.get(token),
            Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
            _ => None,
        })
    }
}

/// An array index as RFC 6901 writes one: digits without a sign or a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_what_serde_json_finds() {
        let doc = json!({
            "data": {"amount": "478012.35"},
            "list": [10, 20, {"x": 1}],
            "a/b": {"m~n": 3},
            "": {"": 4},
            "s": "text",
        });
        for text in [
            "",
            "/data/amount",
            "/data/missing",
            "/list/1",
            "/list/01",
            "/list/+1",
            "/list/2/x",
            "/list/9",
            "/a~1b/m~0n",
            "/",
            "//",
            "/s/0",
            "/data/amount/deeper",
        ] {
            let pointer = JsonPointer::parse(text).unwrap();
            assert_eq!(pointer.lookup(&doc), doc.pointer(text), "{text}");
        }
        assert!(JsonPointer::parse("data/amount").is_none());
    }
}
