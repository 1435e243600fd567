//! fastlane's tester CSV (`first name,last name,email[,groups]`, header
//! optional, groups separated by `;`), so teams bring their lists as they
//! are. Parsing reports every bad line at once, each as file:line; writing
//! produces a file `parse` reads back to the same rows.

use super::Person;
use crate::error::{Error, Location};

/// One tester line of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub person: Person,
    /// The optional fourth column: group names.
    pub groups: Vec<String>,
    /// 1-based line in the file.
    pub line: u32,
}

/// Parse a tester CSV. `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Vec<Row>, Error> {
    let (rows, problems) = parse_all(text, file);
    Error::many(problems).map_or(Ok(rows), Err)
}

/// The good rows and a problem per bad line, so callers can check the good
/// rows further and still report everything at once.
pub fn parse_all(text: &str, file: &str) -> (Vec<Row>, Vec<Error>) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let at = |line: u32| Location {
        file: file.to_string(),
        line,
        column: 1,
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i as u32 + 1;
        let raw = raw.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let fields = match split(raw) {
            Ok(f) => f,
            Err(e) => {
                problems.push(Error::input(e).at(at(line)));
                continue;
            }
        };
        if rows.is_empty() && problems.is_empty() && is_header(&fields) {
            continue;
        }
        if !(3..=4).contains(&fields.len()) {
            problems.push(
                Error::input(format!(
                    "expected `first name,last name,email[,groups]`, got {} field(s)",
                    fields.len()
                ))
                .at(at(line)),
            );
            continue;
        }
        let email = fields[2].trim().to_string();
        if let Err(e) = super::check_email(&email) {
            problems.push(Error::input(e).at(at(line)));
            continue;
        }
        rows.push(Row {
            person: Person {
                email,
                first_name: non_empty(&fields[0]),
                last_name: non_empty(&fields[1]),
            },
            groups: fields
                .get(3)
                .map(|g| {
                    g.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            line,
        });
    }
    (rows, problems)
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A header names the email column instead of holding an address.
fn is_header(fields: &[String]) -> bool {
    fields.len() >= 3 && {
        let e = fields[2].trim().to_ascii_lowercase();
        !e.contains('@') && e.contains("mail")
    }
}

/// Split one line into fields: commas, with `"` quoting and `""` escapes.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() && !was_quoted => {
                cur.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err("a quote in the middle of an unquoted field".into()),
            (false, ',') => {
                fields.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) if was_quoted && !c.is_whitespace() => {
                return Err("text after a closing quote".into());
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed on this line".into());
    }
    fields.push(cur);
    Ok(fields)
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', ';', '\n']) || field.trim() != field {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Write rows with a header, in fastlane's column order.
pub fn write(rows: &[Row]) -> String {
    let mut out = String::from("First Name,Last Name,Email,Groups\n");
    for r in rows {
        let groups = r.groups.join(";");
        let fields = [
            r.person.first_name.as_deref().unwrap_or(""),
            r.person.last_name.as_deref().unwrap_or(""),
            r.person.email.as_str(),
            groups.as_str(),
        ];
        let line: Vec<String> = fields.iter().map(|f| quote(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(first: &str, last: &str, email: &str) -> Person {
        Person {
            email: email.into(),
            first_name: non_empty(first),
            last_name: non_empty(last),
        }
    }

    #[test]
    fn fastlane_format_with_and_without_header() {
        let with = "First,Last,Email,Groups\nAda,Lovelace,ada@example.com,Beta;QA\n";
        let rows = parse(with, "t.csv").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].person, person("Ada", "Lovelace", "ada@example.com"));
        assert_eq!(rows[0].groups, vec!["Beta", "QA"]);
        assert_eq!(rows[0].line, 2);
        let without = "Ada,Lovelace,ada@example.com\n\n# comment\n,,bob@example.com\r\n";
        let rows = parse(without, "t.csv").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].person, person("", "", "bob@example.com"));
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn quoted_fields_and_escapes() {
        let rows = parse("\"Smith, Jr.\",\"O\"\"Neil\",a@b.co\n", "t.csv").unwrap();
        assert_eq!(rows[0].person, person("Smith, Jr.", "O\"Neil", "a@b.co"));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_line() {
        let text = "Ada,Lovelace,ada@example.com\nonly,two\nBob,B,not-an-email\n\"open,x,y@z.io\nC,D,c@d.io\n";
        let e = parse(text, "beta.csv").unwrap_err();
        let all: Vec<String> = std::iter::once(&e)
            .chain(e.related.iter())
            .map(|x| x.to_string())
            .collect();
        assert_eq!(all.len(), 3, "{all:#?}");
        assert!(all[0].starts_with("beta.csv:2:1: expected"), "{}", all[0]);
        assert!(all[1].starts_with("beta.csv:3:1: "), "{}", all[1]);
        assert!(all[1].contains("not-an-email"), "{}", all[1]);
        assert!(
            all[2].starts_with("beta.csv:4:1: a quoted field"),
            "{}",
            all[2]
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn write_round_trips_through_parse() {
        let rows = vec![
            Row {
                person: person("Smith, Jr.", "O\"Neil", "a@b.co"),
                groups: vec!["Beta".into(), "QA Team".into()],
                line: 2,
            },
            Row {
                person: person("", "", "b@c.co"),
                groups: vec![],
                line: 3,
            },
        ];
        let text = write(&rows);
        assert_eq!(parse(&text, "x.csv").unwrap(), rows);
    }
}
