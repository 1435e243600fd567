//! Desired audience vs what App Store Connect has -> the changes that make
//! them agree. Pure: no I/O, so `--dry-run` and `apply` see the same list.

use super::{Actual, Desired, DesiredGroup, LinkSpec, LinkState, Person};
use crate::api::beta::LinkChange;
use crate::error::Error;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    CreateGroup {
        group: String,
        external: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        public_link: Option<LinkSpec>,
    },
    SetLink {
        group: String,
        #[serde(skip)]
        from: LinkState,
        to: LinkSpec,
    },
    AddTester {
        group: String,
        #[serde(flatten)]
        person: Person,
    },
    RemoveTester {
        group: String,
        email: String,
        #[serde(skip)]
        tester_id: String,
    },
}

fn limit_text(enabled: bool, limit: Option<i64>) -> String {
    match (enabled, limit) {
        (true, Some(n)) => n.to_string(),
        _ => "none".into(),
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateGroup {
                group,
                external,
                public_link,
            } => {
                let kind = if *external { "external" } else { "internal" };
                write!(f, "+ group {group} ({kind}")?;
                if let Some(l) = public_link.filter(|l| l.enabled) {
                    write!(f, ", public link, limit {}", limit_text(true, l.limit))?;
                }
                write!(f, ")")
            }
            Change::SetLink { group, from, to } => {
                let mut parts = Vec::new();
                if from.enabled != to.enabled {
                    let s = |b: bool| if b { "on" } else { "off" };
                    parts.push(format!("{} -> {}", s(from.enabled), s(to.enabled)));
                }
                let (was, now) = (
                    limit_text(from.limit_enabled, from.limit),
                    limit_text(to.limit.is_some(), to.limit),
                );
                if to.enabled && was != now {
                    parts.push(format!("limit {was} -> {now}"));
                }
                write!(f, "~ {group} public link: {}", parts.join(", "))
            }
            Change::AddTester { group, person } => {
                write!(f, "+ tester {} -> {group}", person.email)
            }
            Change::RemoveTester { group, email, .. } => {
                write!(f, "- tester {email} from {group}")
            }
        }
    }
}

/// Every change, plus the groups a prune would leave with no testers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Groups pruned to zero testers (need `--yes` when interactive).
    pub emptied: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn count(&self, f: impl Fn(&Change) -> bool) -> usize {
        self.changes.iter().filter(|c| f(c)).count()
    }

    /// The plan as people read it, one change per line.
    pub fn render(&self) -> String {
        if self.changes.is_empty() {
            return "audience: no changes (App Store Connect already matches)\n".into();
        }
        let mut out = String::new();
        for c in &self.changes {
            out.push_str(&format!("  {c}\n"));
        }
        for g in &self.emptied {
            out.push_str(&format!(
                "  ! {g} would be left with no testers (needs prune: true, and --yes when interactive)\n"
            ));
        }
        let adds = self.count(|c| matches!(c, Change::AddTester { .. }));
        let removes = self.count(|c| matches!(c, Change::RemoveTester { .. }));
        out.push_str(&format!(
            "audience: {} change(s): {adds} tester(s) to add, {removes} to remove\n",
            self.changes.len()
        ));
        out
    }
}

/// The link settings to send so `actual` becomes `want`, if any differ.
pub fn link_change(actual: &LinkState, want: &LinkSpec) -> Option<LinkChange> {
    let mut ch = LinkChange::default();
    if actual.enabled != want.enabled {
        ch.enabled = Some(want.enabled);
    }
    if want.enabled {
        match want.limit {
            Some(n) => {
                if !actual.limit_enabled {
                    ch.limit_enabled = Some(true);
                }
                if actual.limit != Some(n) {
                    ch.limit = Some(n);
                }
            }
            None if actual.limit_enabled => ch.limit_enabled = Some(false),
            None => {}
        }
    }
    (ch != LinkChange::default()).then_some(ch)
}

/// The changes that make App Store Connect match `desired`.
pub fn plan(desired: &Desired, actual: &Actual) -> Result<Plan, Error> {
    let mut out = Plan::default();
    let mut problems = Vec::new();
    for g in &desired.groups {
        match actual.group(&g.name) {
            None => plan_new_group(g, &mut out),
            Some(a) => {
                if let Some(ext) = g.external
                    && ext == a.internal
                {
                    let (want, is) = if ext {
                        ("external", "internal")
                    } else {
                        ("internal", "external")
                    };
                    problems.push(
                        Error::input(format!(
                            "beta group {:?} is {is} in App Store Connect but the audience says {want}",
                            g.name
                        ))
                        .with_hint("a group cannot change kind; rename one of them, or fix `external:`"),
                    );
                    continue;
                }
                if let Some(want) = &g.public_link
                    && link_change(&a.link, want).is_some()
                {
                    if a.internal && want.enabled {
                        problems.push(Error::input(format!(
                            "beta group {:?} is internal: public links are for external groups",
                            g.name
                        )));
                        continue;
                    }
                    out.changes.push(Change::SetLink {
                        group: a.name.clone(),
                        from: a.link.clone(),
                        to: *want,
                    });
                }
                plan_members(g, a, desired.prune, &mut out);
            }
        }
    }
    Error::many(problems).map_or(Ok(out), Err)
}

fn plan_new_group(g: &DesiredGroup, out: &mut Plan) {
    out.changes.push(Change::CreateGroup {
        group: g.name.clone(),
        external: g.external.unwrap_or(true),
        public_link: g.public_link,
    });
    for p in g.testers.iter().flatten() {
        out.changes.push(Change::AddTester {
            group: g.name.clone(),
            person: p.clone(),
        });
    }
}

fn plan_members(g: &DesiredGroup, a: &super::ActualGroup, prune: bool, out: &mut Plan) {
    let Some(want) = &g.testers else {
        return;
    };
    let have: BTreeSet<String> = a.members.iter().map(|m| m.person.key()).collect();
    for p in want {
        if !have.contains(&p.key()) {
            out.changes.push(Change::AddTester {
                group: a.name.clone(),
                person: p.clone(),
            });
        }
    }
    if !prune {
        return;
    }
    let keep: BTreeSet<String> = want.iter().map(Person::key).collect();
    let mut removed = 0;
    for m in &a.members {
        if !keep.contains(&m.person.key()) {
            removed += 1;
            out.changes.push(Change::RemoveTester {
                group: a.name.clone(),
                email: m.person.email.clone(),
                tester_id: m.id.clone(),
            });
        }
    }
    if want.is_empty() && removed > 0 {
        out.emptied.push(a.name.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::{ActualGroup, Member};

    fn person(email: &str) -> Person {
        Person {
            email: email.into(),
            first_name: None,
            last_name: None,
        }
    }

    fn want(name: &str, testers: &[&str]) -> DesiredGroup {
        DesiredGroup {
            name: name.into(),
            external: None,
            public_link: None,
            testers: Some(testers.iter().map(|e| person(e)).collect()),
        }
    }

    fn have(name: &str, testers: &[&str]) -> ActualGroup {
        ActualGroup {
            id: format!("id-{name}"),
            name: name.into(),
            internal: false,
            link: LinkState::default(),
            members: testers
                .iter()
                .map(|e| Member {
                    id: format!("t-{e}"),
                    person: person(e),
                })
                .collect(),
        }
    }

    fn lines(p: &Plan) -> Vec<String> {
        p.changes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn empty_app_gets_every_change() {
        let mut beta = want("Beta", &["a@x.io", "b@x.io"]);
        beta.public_link = Some(LinkSpec {
            enabled: true,
            limit: Some(500),
        });
        let d = Desired {
            prune: false,
            groups: vec![beta],
        };
        let p = plan(&d, &Actual::default()).unwrap();
        assert_eq!(
            lines(&p),
            vec![
                "+ group Beta (external, public link, limit 500)",
                "+ tester a@x.io -> Beta",
                "+ tester b@x.io -> Beta",
            ]
        );
    }

    #[test]
    fn matching_audience_plans_nothing_and_emails_ignore_case() {
        let d = Desired {
            prune: true,
            groups: vec![want("beta", &["A@x.io"])],
        };
        let a = Actual {
            groups: vec![have("Beta", &["a@X.io"])],
        };
        let p = plan(&d, &a).unwrap();
        assert!(p.is_empty(), "{:?}", lines(&p));
        assert!(p.render().contains("no changes"));
    }

    #[test]
    fn prune_removes_only_unlisted_testers_of_listed_groups() {
        let d = Desired {
            prune: true,
            groups: vec![want("Beta", &["a@x.io", "c@x.io"])],
        };
        let a = Actual {
            groups: vec![have("Beta", &["a@x.io", "b@x.io"]), have("QA", &["z@x.io"])],
        };
        let p = plan(&d, &a).unwrap();
        assert_eq!(
            lines(&p),
            vec!["+ tester c@x.io -> Beta", "- tester b@x.io from Beta"]
        );
        assert!(p.emptied.is_empty());
        let keep = Desired {
            prune: false,
            ..d.clone()
        };
        assert_eq!(
            lines(&plan(&keep, &a).unwrap()),
            vec!["+ tester c@x.io -> Beta"]
        );
    }

    #[test]
    fn pruning_to_zero_is_reported() {
        let d = Desired {
            prune: true,
            groups: vec![want("Beta", &[])],
        };
        let a = Actual {
            groups: vec![have("Beta", &["a@x.io"])],
        };
        let p = plan(&d, &a).unwrap();
        assert_eq!(p.emptied, vec!["Beta"]);
        assert!(p.render().contains("! Beta would be left with no testers"));
    }

    #[test]
    fn unmanaged_testers_are_left_alone() {
        let mut g = want("Beta", &[]);
        g.testers = None;
        let d = Desired {
            prune: true,
            groups: vec![g],
        };
        let a = Actual {
            groups: vec![have("Beta", &["a@x.io"])],
        };
        assert!(plan(&d, &a).unwrap().is_empty());
    }

    #[test]
    fn public_link_changes_show_from_and_to() {
        let mut g = want("Beta", &[]);
        g.testers = None;
        g.public_link = Some(LinkSpec {
            enabled: true,
            limit: Some(500),
        });
        let mut a = have("Beta", &[]);
        a.link = LinkState {
            enabled: true,
            limit_enabled: true,
            limit: Some(100),
            url: Some("https://testflight.apple.com/join/x".into()),
        };
        let d = Desired {
            prune: false,
            groups: vec![g],
        };
        let p = plan(
            &d,
            &Actual {
                groups: vec![a.clone()],
            },
        )
        .unwrap();
        assert_eq!(lines(&p), vec!["~ Beta public link: limit 100 -> 500"]);
        assert_eq!(
            link_change(&a.link, &d.groups[0].public_link.unwrap()),
            Some(LinkChange {
                limit: Some(500),
                ..Default::default()
            })
        );
        a.link.limit = Some(500);
        assert!(plan(&d, &Actual { groups: vec![a] }).unwrap().is_empty());
    }

    #[test]
    fn kind_mismatch_and_internal_links_are_refused() {
        let mut g = want("QA", &[]);
        g.external = Some(true);
        let mut a = have("QA", &[]);
        a.internal = true;
        let d = Desired {
            prune: false,
            groups: vec![g],
        };
        let e = plan(
            &d,
            &Actual {
                groups: vec![a.clone()],
            },
        )
        .unwrap_err();
        assert!(e.message.contains("internal in App Store Connect"), "{e}");
        let mut g = want("QA", &[]);
        g.public_link = Some(LinkSpec {
            enabled: true,
            limit: None,
        });
        let d = Desired {
            prune: false,
            groups: vec![g],
        };
        let e = plan(&d, &Actual { groups: vec![a] }).unwrap_err();
        assert!(e.message.contains("public links are for external"), "{e}");
    }
}
