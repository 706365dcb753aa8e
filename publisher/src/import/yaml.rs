//! A YAML (or JSON) document as a tree whose every node knows the line it starts on, so that the
//! import report can name `file:line` for everything it could not map.
//!
//! Built on `saphyr-parser`'s events. Anchors and aliases are expanded (with a node budget, so a
//! document cannot blow up through nested aliases), and merge keys (`<<: *defaults`) are applied
//! the way Docker Compose applies them: keys written in the mapping win over merged ones.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Most nodes alias expansion may produce in one document.
const ALIAS_BUDGET: usize = 100_000;

/// One node and the line (counted from 1) it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// The line the node starts on, counted from 1.
    pub(crate) line: usize,
    /// What the node holds.
    pub(crate) value: Value,
}

/// A mapping key: its text and its line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// The key as written.
    pub(crate) text: String,
    /// The line the key is on.
    pub(crate) line: usize,
}

/// The three kinds of YAML nodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A scalar's text; `plain` when it was written without quotes (so `true`, `null`, `~` and
    /// the empty scalar keep their YAML meaning).
    Scalar {
        /// The scalar's text, after YAML unescaping.
        text: String,
        /// Written without quotes.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Key, Node)>),
}

/// A document that is not YAML, with where the parser stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    /// The line, counted from 1.
    pub(crate) line: usize,
    /// The column, counted from 1.
    pub(crate) column: usize,
    /// The parser's message.
    pub(crate) message: String,
}

impl Node {
    /// A scalar node (used when a store's own format is rewritten into Compose's shape).
    pub(crate) fn scalar(line: usize, text: impl Into<String>) -> Self {
        Self { line, value: Value::Scalar { text: text.into(), plain: false } }
    }

    /// Whether the node is YAML's null (`~`, `null`, or nothing at all).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The scalar's text, unless the node is null, a sequence or a mapping.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// The scalar as a boolean: `true`/`false` in any of YAML's spellings, quoted or not (Compose
    /// reads `"true"` as true too).
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self.as_str()? {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }

    /// The sequence's items.
    pub(crate) fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The mapping's entries.
    pub(crate) fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The entry of mapping key `key`.
    pub(crate) fn entry(&self, key: &str) -> Option<(&Key, &Node)> {
        self.as_map()?.iter().find(|(k, _)| k.text == key).map(|(k, v)| (k, v))
    }

    /// The value of mapping key `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The value of `key` as text (a scalar that is not null).
    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::as_str)
    }
}

/// Parses the first document of `text`. An empty text is an empty mapping.
pub(crate) fn parse(text: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let line = span.start.line();
        let done =
            builder.event(event, line).map_err(|message| YamlError { line, column: span.start.col() + 1, message })?;
        if done {
            break;
        }
    }
    Ok(builder.root.unwrap_or(Node { line: 1, value: Value::Map(Vec::new()) }))
}

enum Frame {
    Seq { line: usize, anchor: usize, items: Vec<Node> },
    Map { line: usize, anchor: usize, entries: Vec<(Key, Node)>, key: Option<Key> },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    root: Option<Node>,
    aliased: usize,
}

impl Builder {
    /// Feeds one event; `true` once the first document is complete.
    fn event(&mut self, event: Event<'_>, line: usize) -> Result<bool, String> {
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let node =
                    Node { line, value: Value::Scalar { text: text.into_owned(), plain: style == ScalarStyle::Plain } };
                self.complete(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq { line, anchor, items: Vec::new() }),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { line, anchor, entries: Vec::new(), key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq { line, anchor, items }) => (Node { line, value: Value::Seq(items) }, anchor),
                    Some(Frame::Map { line, anchor, entries, .. }) => {
                        (Node { line, value: Value::Map(merge_keys(entries)) }, anchor)
                    }
                    None => return Err("unbalanced collection end".to_owned()),
                };
                self.complete(node.0, node.1)?;
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| "alias to an unknown anchor".to_owned())?;
                self.aliased += count(&node);
                if self.aliased > ALIAS_BUDGET {
                    return Err(format!("aliases expand to more than {ALIAS_BUDGET} nodes"));
                }
                self.complete(Node { line, ..node }, 0)?;
            }
            Event::DocumentEnd => return Ok(self.root.is_some()),
            Event::StreamEnd => return Ok(true),
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => {}
        }
        Ok(false)
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), String> {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => {
                    if entries.iter().any(|(e, _)| e.text == k.text) {
                        return Err(format!("key `{}` appears twice in one mapping", k.text));
                    }
                    entries.push((k, node));
                }
                None => match node.value {
                    Value::Scalar { text, .. } => *key = Some(Key { text, line: node.line }),
                    _ => return Err("a mapping key that is not a scalar".to_owned()),
                },
            },
        }
        Ok(())
    }
}

/// Applies `<<` merge keys: the merged mappings' entries that the mapping does not set itself.
fn merge_keys(entries: Vec<(Key, Node)>) -> Vec<(Key, Node)> {
    if !entries.iter().any(|(k, _)| k.text == "<<") {
        return entries;
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (k, v) in entries {
        if k.text != "<<" {
            own.push((k, v));
            continue;
        }
        let sources = match v.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => items
                .into_iter()
                .filter_map(|n| match n.value {
                    Value::Map(m) => Some(m),
                    _ => None,
                })
                .collect(),
            Value::Scalar { .. } => Vec::new(),
        };
        merged.extend(sources.into_iter().flatten());
    }
    for (k, v) in merged {
        if !own.iter().any(|(o, _)| o.text == k.text) {
            own.push((k, v));
        }
    }
    own
}

fn count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Scalar { .. } => 0,
        Value::Seq(items) => items.iter().map(count).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| 1 + count(v)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_lines() {
        let doc = parse("services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80\"\n").expect("yaml");
        let web = doc.get("services").and_then(|s| s.get("web")).expect("web");
        let (key, image) = web.entry("image").expect("image");
        assert_eq!((key.line, image.as_str()), (3, Some("nginx")));
        let ports = web.get("ports").and_then(Node::as_seq).expect("ports");
        assert_eq!((ports[0].line, ports[0].as_str()), (5, Some("80:80")));
    }

    #[test]
    fn json_with_tabs_parses_with_lines() {
        let doc = parse("{\n\t\"id\": \"x\",\n\t\"port\": 8080,\n\t\"list\": [\n\t\t1\n\t]\n}\n").expect("json");
        assert_eq!(doc.entry("port").map(|(k, v)| (k.line, v.as_str())), Some((3, Some("8080"))));
    }

    #[test]
    fn merge_keys_and_aliases_expand_and_own_keys_win() {
        let doc = parse(
            "x-base: &base\n  restart: always\n  user: \"1000\"\nservices:\n  a:\n    <<: *base\n    user: \"2000\"\n",
        )
        .expect("yaml");
        let a = doc.get("services").and_then(|s| s.get("a")).expect("a");
        assert_eq!(a.get_str("restart"), Some("always"));
        assert_eq!(a.get_str("user"), Some("2000"));
    }

    #[test]
    fn null_bool_and_errors() {
        let doc = parse("a:\nb: ~\nc: 'null'\nd: true\n").expect("yaml");
        assert!(doc.get("a").expect("a").is_null() && doc.get("b").expect("b").is_null());
        assert_eq!(doc.get_str("c"), Some("null"));
        assert_eq!(doc.get("d").and_then(Node::as_bool), Some(true));
        let err = parse("a: [1, 2\nb: 3\n").expect_err("broken");
        assert!(err.line >= 1, "{err:?}");
        assert!(parse("a: 1\na: 2\n").is_err(), "duplicate keys are refused");
    }
}
