//! TestFlight audience as code: the groups, testers and public links a
//! pipeline's `audience:` declares, compared with what App Store Connect has,
//! turned into a list of changes (`plan`), and applied in batches (`apply`).
//! Build expiry (`expire`) lives here too: it is the other half of deciding
//! who can test what.
//!
//! Flow: pipeline spec -> `Audience` (validated, no I/O) -> `load` reads the
//! CSV files into a `Desired` audience (every bad line reported at once) ->
//! `read_actual` -> `plan::plan` -> `apply::apply` -> `apply::Applied`.
//! Nothing here prints or sets CI outputs.

pub mod apply;
pub mod csv;
pub mod expire;
pub mod plan;

use crate::api::Client;
use crate::api::beta;
use crate::error::{Error, Location};
use crate::spec;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A tester as a file or the pipeline lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

impl Person {
    /// Emails compare case-insensitively, as App Store Connect does.
    pub fn key(&self) -> String {
        self.email.to_ascii_lowercase()
    }
}

/// Desired public link settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkSpec {
    pub enabled: bool,
    /// Cap on testers joining through the link; None: no cap.
    pub limit: Option<i64>,
}

/// Where a group's testers come from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Testers {
    /// Not given: the group's testers are left alone.
    Unmanaged,
    /// A fastlane tester CSV.
    File(PathBuf),
    Inline(Vec<Person>),
}

/// One group of the pipeline's audience, validated, before any file is read.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSpec {
    pub name: String,
    /// None: whatever the group is (created as external when missing).
    pub external: Option<bool>,
    pub public_link: Option<LinkSpec>,
    pub testers: Testers,
    /// Where each inline tester was written (parallel to `Testers::Inline`).
    #[serde(skip)]
    pub inline_at: Vec<Location>,
    #[serde(skip)]
    pub at: Option<Location>,
}

/// The pipeline's `audience:`.
#[derive(Debug, Clone, Serialize)]
pub struct Audience {
    pub prune: bool,
    pub groups: Vec<GroupSpec>,
    /// `--yes`: emptying a group by pruning was confirmed.
    #[serde(skip)]
    pub confirmed: bool,
}

/// How a reconcile runs.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// false: plan only, send no write.
    pub apply: bool,
    /// A person at a terminal could confirm (stdin is a TTY, no CI).
    pub interactive: bool,
    /// `--yes` was given.
    pub confirmed: bool,
}

/// A reconcile's result: the plan, and what applying it did.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    pub plan: plan::Plan,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<apply::Applied>,
    /// Public link URL per managed group whose link is open.
    pub public_links: BTreeMap<String, String>,
}

/// Read App Store Connect, plan, and (in apply mode) apply.
pub async fn reconcile(
    api: &Client,
    app_id: &str,
    desired: &Desired,
    mode: Mode,
) -> Result<Reconciled, Error> {
    let names: Vec<&str> = desired.groups.iter().map(|g| g.name.as_str()).collect();
    let actual = read_actual(api, app_id, &names).await?;
    let plan = plan::plan(desired, &actual)?;
    let managed = |name: &str| names.iter().any(|n| n.eq_ignore_ascii_case(name));
    let mut links: BTreeMap<String, String> = actual
        .groups
        .iter()
        .filter(|g| managed(&g.name) && g.link.enabled)
        .filter_map(|g| Some((g.name.clone(), g.link.url.clone()?)))
        .collect();
    if !mode.apply {
        return Ok(Reconciled {
            plan,
            applied: None,
            public_links: links,
        });
    }
    if !plan.emptied.is_empty() && mode.interactive && !mode.confirmed {
        return Err(Error::input(format!(
            "pruning would leave {} with no testers",
            plan.emptied.join(", ")
        ))
        .with_hint("check the tester lists; pass --yes to go ahead"));
    }
    let applied = apply::apply(api, app_id, &plan, &actual).await?;
    links = applied
        .public_links
        .iter()
        .filter(|(g, _)| managed(g))
        .map(|(g, u)| (g.clone(), u.clone()))
        .collect();
    Ok(Reconciled {
        plan,
        applied: Some(applied),
        public_links: links,
    })
}

/// The audience with every file read and checked.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub prune: bool,
    pub groups: Vec<DesiredGroup>,
}

#[derive(Debug, Clone)]
pub struct DesiredGroup {
    pub name: String,
    pub external: Option<bool>,
    pub public_link: Option<LinkSpec>,
    /// None: unmanaged (never pruned, never added to).
    pub testers: Option<Vec<Person>>,
}

/// A group as App Store Connect has it.
#[derive(Debug, Clone, Default)]
pub struct ActualGroup {
    pub id: String,
    pub name: String,
    pub internal: bool,
    pub link: LinkState,
    /// Loaded only for the groups the audience manages.
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    pub enabled: bool,
    pub limit_enabled: bool,
    pub limit: Option<i64>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub person: Person,
}

#[derive(Debug, Clone, Default)]
pub struct Actual {
    pub groups: Vec<ActualGroup>,
}

impl Actual {
    pub fn group(&self, name: &str) -> Option<&ActualGroup> {
        self.groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }

    /// Email key -> tester id, over every loaded group.
    pub fn known_ids(&self) -> BTreeMap<String, String> {
        self.groups
            .iter()
            .flat_map(|g| &g.members)
            .map(|m| (m.person.key(), m.id.clone()))
            .collect()
    }
}

/// What App Store Connect accepts as an email, checked before anything is sent.
pub fn check_email(email: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{email:?} is not a valid email address ({why})"));
    let Some((local, domain)) = email.split_once('@') else {
        return bad("no @");
    };
    if local.is_empty() || domain.is_empty() {
        return bad("empty before or after the @");
    }
    if domain.contains('@') {
        return bad("more than one @");
    }
    if email.chars().any(|c| c.is_whitespace() || c == ',') {
        return bad("spaces or commas");
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return bad("the domain needs a dot, like example.com");
    }
    Ok(())
}

/// Resolve the pipeline's `audience:` (values, `${VAR}`s, emails), collecting problems.
pub fn from_spec(
    a: &spec::AudienceSpec,
    env: &crate::config::env::Env,
    file: &str,
    problems: &mut Vec<Error>,
) -> Audience {
    let flag = |t: &Option<spec::Text>, what: &str, problems: &mut Vec<Error>| {
        let t = t.as_ref()?;
        let v = t.resolve(env, file).map_err(|e| problems.push(e)).ok()?;
        crate::plan::parse_bool(&v)
            .map_err(|e| problems.push(Error::input(format!("{what}: {e}")).at(t.location(file))))
            .ok()
    };
    let prune = flag(&a.prune, "prune", problems).unwrap_or(false);
    let mut groups = Vec::new();
    for g in &a.groups {
        let name = g.name.resolve(env, file).map_err(|e| problems.push(e));
        let external = flag(&g.external, "external", problems);
        let public_link = g.public_link.as_ref().map(|l| LinkSpec {
            enabled: flag(&l.enabled, "public-link.enabled", problems).unwrap_or(true),
            limit: l.limit.as_ref().and_then(|t| {
                let v = t.resolve(env, file).map_err(|e| problems.push(e)).ok()?;
                match v.trim().parse::<i64>() {
                    Ok(n @ 1..=10_000) => Some(n),
                    _ => {
                        problems.push(
                            Error::input(format!(
                                "public-link.limit: expected a whole number from 1 to 10000, got {v:?}"
                            ))
                            .at(t.location(file)),
                        );
                        None
                    }
                }
            }),
        });
        let (testers, inline_at) = testers_of(g, env, file, problems);
        if let Ok(name) = name {
            groups.push(GroupSpec {
                name,
                external,
                public_link,
                testers,
                inline_at,
                at: Some(g.name.location(file)),
            });
        }
    }
    check_unique_groups(&groups, problems);
    Audience {
        prune,
        groups,
        confirmed: false,
    }
}

fn testers_of(
    g: &spec::AudienceGroupSpec,
    env: &crate::config::env::Env,
    file: &str,
    problems: &mut Vec<Error>,
) -> (Testers, Vec<Location>) {
    let Some(t) = &g.testers else {
        return (Testers::Unmanaged, vec![]);
    };
    match &t.0.value {
        spec::TestersList::File(path) => {
            let loc = t.0.referenced;
            match crate::spec::text::interpolate(path, env) {
                Ok(p) => (Testers::File(PathBuf::from(p)), vec![]),
                Err(e) => {
                    problems.push(Error::input(e).at(Location {
                        file: file.into(),
                        line: loc.line() as u32,
                        column: loc.column() as u32,
                    }));
                    (Testers::Unmanaged, vec![])
                }
            }
        }
        spec::TestersList::Inline(list) => {
            let mut people = Vec::new();
            let mut at = Vec::new();
            for p in list {
                let res = |t: &Option<spec::Text>, problems: &mut Vec<Error>| {
                    t.as_ref()
                        .and_then(|t| t.resolve(env, file).map_err(|e| problems.push(e)).ok())
                        .filter(|s| !s.trim().is_empty())
                };
                let Ok(email) = p.email.resolve(env, file).map_err(|e| problems.push(e)) else {
                    continue;
                };
                let email = email.trim().to_string();
                if let Err(e) = check_email(&email) {
                    problems.push(Error::input(e).at(p.email.location(file)));
                    continue;
                }
                people.push(Person {
                    email,
                    first_name: res(&p.first_name, problems),
                    last_name: res(&p.last_name, problems),
                });
                at.push(p.email.location(file));
            }
            (Testers::Inline(people), at)
        }
    }
}

fn check_unique_groups(groups: &[GroupSpec], problems: &mut Vec<Error>) {
    for (i, g) in groups.iter().enumerate() {
        if groups[..i]
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&g.name))
        {
            let mut e = Error::input(format!("beta group {:?} is listed twice", g.name));
            if let Some(at) = &g.at {
                e = e.at(at.clone());
            }
            problems.push(e);
        }
    }
}

/// A tester and where it was read, for duplicate checks.
struct Seen {
    person: Person,
    at: Location,
}

/// Read every CSV and check the whole audience: bad lines and emails listed
/// twice with different names are all reported at once, before any write.
pub fn load(a: &Audience, show: impl Fn(&std::path::Path) -> String) -> Result<Desired, Error> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut groups = Vec::new();
    for g in &a.groups {
        let testers = listed(g, &show, &mut problems).map(|l| dedupe(l, &mut seen, &mut problems));
        groups.push(DesiredGroup {
            name: g.name.clone(),
            external: g.external,
            public_link: g.public_link,
            testers,
        });
    }
    problems.sort_by_key(|e| e.location.as_deref().map(|l| (l.file.clone(), l.line)));
    match Error::many(problems) {
        Some(e) => Err(e),
        None => Ok(Desired {
            prune: a.prune,
            groups,
        }),
    }
}

/// A group's testers with where each was written; None when unmanaged.
fn listed(
    g: &GroupSpec,
    show: &impl Fn(&std::path::Path) -> String,
    problems: &mut Vec<Error>,
) -> Option<Vec<(Person, Location)>> {
    match &g.testers {
        Testers::Unmanaged => None,
        Testers::Inline(people) => Some(
            people
                .iter()
                .cloned()
                .zip(g.inline_at.iter().cloned())
                .collect(),
        ),
        Testers::File(path) => {
            let shown = show(path);
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    let mut err = Error::read("the tester file", &shown, &e);
                    if let Some(at) = &g.at {
                        err = err.at(at.clone());
                    }
                    problems.push(err);
                    return Some(vec![]);
                }
            };
            let (rows, bad) = csv::parse_all(&text, &shown);
            problems.extend(bad);
            Some(
                rows.into_iter()
                    .map(|r| {
                        let at = Location {
                            file: shown.clone(),
                            line: r.line,
                            column: 1,
                        };
                        (r.person, at)
                    })
                    .collect(),
            )
        }
    }
}

/// One entry per email in a group; the same email with other names anywhere is a problem.
fn dedupe(
    list: Vec<(Person, Location)>,
    seen: &mut BTreeMap<String, Seen>,
    problems: &mut Vec<Error>,
) -> Vec<Person> {
    let mut out: Vec<Person> = Vec::new();
    for (p, at) in list {
        let key = p.key();
        match seen.get(&key) {
            Some(s) if s.person.first_name != p.first_name || s.person.last_name != p.last_name => {
                let names = |p: &Person| {
                    format!(
                        "{:?} {:?}",
                        p.first_name.as_deref().unwrap_or(""),
                        p.last_name.as_deref().unwrap_or("")
                    )
                };
                problems.push(
                    Error::input(format!(
                        "{} is listed again with other names ({} here, {} at {})",
                        p.email,
                        names(&p),
                        names(&s.person),
                        s.at
                    ))
                    .at(at),
                );
                continue;
            }
            Some(_) => {}
            None => {
                seen.insert(
                    key.clone(),
                    Seen {
                        person: p.clone(),
                        at,
                    },
                );
            }
        }
        if !out.iter().any(|o| o.key() == key) {
            out.push(p);
        }
    }
    out
}

/// What App Store Connect has for the app: every group, and the members of
/// the groups in `manage` (by name, case-insensitive).
pub async fn read_actual(api: &Client, app_id: &str, manage: &[&str]) -> Result<Actual, Error> {
    let mut groups = Vec::new();
    for g in beta::list_groups(api, app_id).await? {
        let a = g.attrs();
        let name = a.name.clone().unwrap_or_default();
        let members = if manage.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
            beta::group_testers(api, &g.id)
                .await?
                .into_iter()
                .map(member)
                .collect()
        } else {
            Vec::new()
        };
        groups.push(ActualGroup {
            id: g.id.clone(),
            name,
            internal: a.is_internal_group.unwrap_or(false),
            link: link_state(&a),
            members,
        });
    }
    Ok(Actual { groups })
}

pub fn link_state(a: &beta::GroupAttributes) -> LinkState {
    LinkState {
        enabled: a.public_link_enabled.unwrap_or(false),
        limit_enabled: a.public_link_limit_enabled.unwrap_or(false),
        limit: a.public_link_limit,
        url: a.public_link.clone(),
    }
}

pub fn member(t: beta::BetaTester) -> Member {
    let a = t.attrs();
    Member {
        id: t.id,
        person: Person {
            email: a.email.unwrap_or_default(),
            first_name: a.first_name,
            last_name: a.last_name,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_before_sending() {
        assert!(check_email("a@b.co").is_ok());
        for bad in [
            "", "a", "@b.co", "a@", "a@b", "a@@b.co", "a b@c.co", "a@.co", "a@b.",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }

    fn p(email: &str, first: &str) -> Person {
        Person {
            email: email.into(),
            first_name: Some(first.into()),
            last_name: None,
        }
    }

    fn at(line: u32) -> Location {
        Location {
            file: "t.csv".into(),
            line,
            column: 1,
        }
    }

    #[test]
    fn duplicates_fold_and_conflicting_names_are_problems() {
        let mut seen = BTreeMap::new();
        let mut problems = Vec::new();
        let out = dedupe(
            vec![
                (p("a@b.co", "A"), at(1)),
                (p("A@B.CO", "A"), at(2)),
                (p("a@b.co", "Other"), at(3)),
            ],
            &mut seen,
            &mut problems,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(problems.len(), 1);
        let msg = problems[0].to_string();
        assert!(
            msg.starts_with("t.csv:3:1: a@b.co is listed again"),
            "{msg}"
        );
        assert!(msg.contains("t.csv:1:1"), "{msg}");
    }
}
