//! EventBridge event patterns: the matcher the embedded bus routes with.
//!
//! It evaluates the patterns the topology derives (and that Terraform writes) with
//! EventBridge's semantics: every field of the pattern must match; a leaf is a list of
//! alternatives; an array in the event matches when any element does. Supported matchers:
//! exact values, `prefix`, `suffix`, `equals-ignore-case`, `anything-but`, `exists`,
//! `numeric`, and `$or`.

use serde_json::{Map, Value};

/// Why a pattern is not a valid EventBridge pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event pattern at `{path}`: {rule}")]
pub struct PatternError {
    path: String,
    rule: String,
}

/// A parsed event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Every field must match; any one `$or` branch set must match.
    Fields(Vec<(String, Node)>, Vec<Vec<Node>>),
    /// Any one matcher must match the value.
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    Exists(bool),
    Numeric(Vec<(String, f64)>),
}

impl Pattern {
    /// Parses a pattern (a JSON object).
    pub fn parse(pattern: &Value) -> Result<Self, PatternError> {
        match pattern {
            Value::Object(map) => Ok(Self(parse_fields(map, "")?)),
            _ => Err(err("", "a pattern must be a JSON object")),
        }
    }

    /// Whether the event matches.
    pub fn matches(&self, event: &Value) -> bool {
        matches_node(&self.0, Some(event))
    }
}

fn err(path: &str, rule: impl Into<String>) -> PatternError {
    PatternError {
        path: if path.is_empty() {
            "$".into()
        } else {
            path.to_owned()
        },
        rule: rule.into(),
    }
}

fn parse_fields(map: &Map<String, Value>, path: &str) -> Result<Node, PatternError> {
    let mut fields = Vec::new();
    let mut ors = Vec::new();
    for (key, value) in map {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if key == "$or" {
            let branches = value
                .as_array()
                .filter(|a| a.len() >= 2)
                .ok_or_else(|| err(&here, "$or takes an array of at least two patterns"))?;
            let mut parsed = Vec::new();
            for b in branches {
                let obj = b
                    .as_object()
                    .ok_or_else(|| err(&here, "each $or branch must be an object"))?;
                parsed.push(parse_fields(obj, path)?);
            }
            ors.push(parsed);
            continue;
        }
        let node = match value {
            Value::Object(inner) => parse_fields(inner, &here)?,
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(err(&here, "a list of values must not be empty"));
                }
                Node::Leaf(
                    items
                        .iter()
                        .map(|m| parse_matcher(m, &here))
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => return Err(err(&here, "must be an object or a list of values")),
        };
        fields.push((key.clone(), node));
    }
    Ok(Node::Fields(fields, ors))
}

fn parse_matcher(m: &Value, path: &str) -> Result<Matcher, PatternError> {
    let Value::Object(obj) = m else {
        return Ok(Matcher::Exact(m.clone()));
    };
    let (op, arg) = match obj.iter().next() {
        Some(pair) if obj.len() == 1 => pair,
        _ => return Err(err(path, "a matcher object has exactly one key")),
    };
    let string = |what: &str| {
        arg.as_str()
            .map(str::to_owned)
            .ok_or_else(|| err(path, format!("{what} takes a string")))
    };
    Ok(match op.as_str() {
        "prefix" => Matcher::Prefix(string("prefix")?),
        "suffix" => Matcher::Suffix(string("suffix")?),
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(string("equals-ignore-case")?),
        "exists" => Matcher::Exists(
            arg.as_bool()
                .ok_or_else(|| err(path, "exists takes true or false"))?,
        ),
        "anything-but" => match arg {
            Value::Array(values) => Matcher::AnythingBut(values.clone()),
            Value::Object(inner) => match inner.get("prefix").and_then(Value::as_str) {
                Some(p) if inner.len() == 1 => Matcher::AnythingButPrefix(p.to_owned()),
                _ => {
                    return Err(err(
                        path,
                        "anything-but takes a value, a list or {\"prefix\": …}",
                    ))
                }
            },
            scalar => Matcher::AnythingBut(vec![scalar.clone()]),
        },
        "numeric" => {
            let items = arg
                .as_array()
                .filter(|a| !a.is_empty() && a.len() % 2 == 0)
                .ok_or_else(|| err(path, "numeric takes pairs of operator and number"))?;
            let mut conds = Vec::new();
            for pair in items.chunks(2) {
                let op = pair[0]
                    .as_str()
                    .filter(|o| ["<", "<=", "=", ">", ">="].contains(o));
                let n = pair[1].as_f64();
                match (op, n) {
                    (Some(op), Some(n)) => conds.push((op.to_owned(), n)),
                    _ => {
                        return Err(err(
                            path,
                            "numeric takes operators <, <=, =, >, >= and numbers",
                        ))
                    }
                }
            }
            Matcher::Numeric(conds)
        }
        other => return Err(err(path, format!("unknown matcher {other:?}"))),
    })
}

fn matches_node(node: &Node, value: Option<&Value>) -> bool {
    match node {
        Node::Fields(fields, ors) => {
            let Some(Value::Object(obj)) = value else {
                return false;
            };
            fields.iter().all(|(k, n)| matches_node(n, obj.get(k)))
                && ors
                    .iter()
                    .all(|branches| branches.iter().any(|b| matches_node(b, value)))
        }
        Node::Leaf(matchers) => matchers.iter().any(|m| matches_leaf(m, value)),
    }
}

fn matches_leaf(m: &Matcher, value: Option<&Value>) -> bool {
    match (m, value) {
        (Matcher::Exists(want), v) => v.is_some() == *want,
        (_, None) => false,
        (m, Some(Value::Array(items))) => items.iter().any(|v| matches_scalar(m, v)),
        (m, Some(v)) => matches_scalar(m, v),
    }
}

fn matches_scalar(m: &Matcher, v: &Value) -> bool {
    let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    };
    match m {
        Matcher::Exact(want) => same(want, v),
        Matcher::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        Matcher::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
        Matcher::EqualsIgnoreCase(p) => v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(p)),
        Matcher::AnythingBut(values) => !values.iter().any(|w| same(w, v)),
        Matcher::AnythingButPrefix(p) => v.as_str().is_some_and(|s| !s.starts_with(p.as_str())),
        Matcher::Exists(_) => true,
        Matcher::Numeric(conds) => v.as_f64().is_some_and(|x| {
            conds.iter().all(|(op, n)| match op.as_str() {
                "<" => x < *n,
                "<=" => x <= *n,
                "=" => x == *n,
                ">" => x > *n,
                _ => x >= *n,
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Pattern {
        Pattern::parse(&v).unwrap()
    }

    #[test]
    fn leaf_lists_are_alternatives_and_arrays_match_any_element() {
        let pat = p(json!({"detail": {"to": ["alex", "kate"]}}));
        assert!(pat.matches(&json!({"detail": {"to": "kate"}})));
        assert!(!pat.matches(&json!({"detail": {"to": "moebi"}})));
        assert!(pat.matches(&json!({"detail": {"to": ["x", "alex"]}})));
        assert!(!pat.matches(&json!({"detail": {}})));
        assert!(!pat.matches(&json!({"detail": "alex"})));
    }

    #[test]
    fn content_filters() {
        let ev = json!({"a": "store-1", "n": 5, "flag": true});
        assert!(p(json!({"a": [{"prefix": "store-"}]})).matches(&ev));
        assert!(p(json!({"a": [{"suffix": "-1"}]})).matches(&ev));
        assert!(p(json!({"a": [{"equals-ignore-case": "STORE-1"}]})).matches(&ev));
        assert!(!p(json!({"a": [{"anything-but": ["store-1"]}]})).matches(&ev));
        assert!(p(json!({"a": [{"anything-but": {"prefix": "shop"}}]})).matches(&ev));
        assert!(p(json!({"missing": [{"exists": false}]})).matches(&ev));
        assert!(!p(json!({"a": [{"exists": false}]})).matches(&ev));
        assert!(p(json!({"n": [{"numeric": [">", 1, "<=", 5]}]})).matches(&ev));
        assert!(p(json!({"n": [5.0]})).matches(&ev));
        assert!(p(json!({"flag": [true]})).matches(&ev));
        assert!(p(json!({"$or": [{"a": ["x"]}, {"n": [5]}]})).matches(&ev));
        assert!(!p(json!({"$or": [{"a": ["x"]}, {"n": [6]}]})).matches(&ev));
    }

    #[test]
    fn malformed_patterns_are_named() {
        let e = Pattern::parse(&json!({"detail": {"to": []}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid event pattern at `detail.to`: a list of values must not be empty"
        );
        assert!(Pattern::parse(&json!({"a": "x"})).is_err());
        assert!(Pattern::parse(&json!({"a": [{"regex": "x"}]})).is_err());
        assert!(Pattern::parse(&json!([1])).is_err());
    }
}
