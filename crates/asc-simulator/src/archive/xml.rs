//! A tiny element tree over quick-xml, enough to query a xar table of
//! contents and an installer's `PackageInfo` or `Distribution` by element
//! name, attribute and text.

use quick_xml::events::{BytesStart, Event};

/// Deeper nesting than this is refused (the documents read here nest a
/// handful of levels; a hostile one could nest millions).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
pub(super) struct Element {
    pub name: String,
    attrs: Vec<(String, String)>,
    /// The element's own text, trimmed.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The whole document under an unnamed root.
    pub fn parse(xml: &str) -> Result<Element, String> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut open = vec![Element::default()];
        loop {
            let event = reader.read_event().map_err(|e| format!("not XML: {e}"))?;
            match event {
                Event::Start(tag) => {
                    if open.len() > MAX_DEPTH {
                        return Err(format!("XML nested deeper than {MAX_DEPTH} elements"));
                    }
                    open.push(Element::open(&tag));
                }
                Event::Empty(tag) => top(&mut open).children.push(Element::open(&tag)),
                Event::Text(t) => top(&mut open).text.push_str(t.xml10_content().trim()),
                Event::CData(t) => top(&mut open).text.push_str(t.xml10_content().trim()),
                Event::GeneralRef(r) => {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        top(&mut open).text.push(c);
                    } else if let Some(c) = predefined(&r.into_inner()) {
                        top(&mut open).text.push(c);
                    }
                }
                Event::End(_) => {
                    if open.len() < 2 {
                        return Err("XML closes an element it never opened".into());
                    }
                    let done = open.pop().unwrap_or_default();
                    top(&mut open).children.push(done);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        match open.len() {
            1 => Ok(open.pop().unwrap_or_default()),
            _ => Err("XML ends inside an element".into()),
        }
    }

    fn open(tag: &BytesStart) -> Element {
        Element {
            name: tag.name().as_ref().to_string(),
            attrs: tag
                .attributes()
                .flatten()
                .map(|a| {
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned());
                    (a.key.as_ref().to_string(), value.unwrap_or_default())
                })
                .collect(),
            ..Element::default()
        }
    }

    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first direct child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every element called `name` below this one, in document order.
    pub fn descendants<'a>(&'a self, name: &str) -> Vec<&'a Element> {
        let mut found = Vec::new();
        let mut todo: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(e) = todo.pop() {
            if e.name == name {
                found.push(e);
            }
            todo.extend(e.children.iter().rev());
        }
        found
    }
}

fn top(open: &mut [Element]) -> &mut Element {
    open.last_mut().expect("the root stays open")
}

fn predefined(entity: &str) -> Option<char> {
    Some(match entity {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}
