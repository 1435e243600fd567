//! `flightdeck testers list|add|remove|import|export`: one-off tester work.
//! Adds and imports go through the same planner and batched apply as the
//! pipeline's audience, so they repeat nothing and Apple's "already a
//! tester" answers are no-ops.

use super::Invocation;
use super::report::{self, Report};
use crate::api::beta;
use crate::audience::{self, Desired, DesiredGroup, Mode, Person, csv};
use crate::cli::{AppArgs, TestersCmd};
use crate::config::Settings;
use crate::context::Ctx;
use crate::error::Error;
use serde_json::json;
use std::collections::BTreeMap;

pub(super) async fn run(
    cmd: &TestersCmd,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let s = inv.settings;
    // Files are read (and refused) before anything is sent.
    let imported = match cmd {
        TestersCmd::Import { file, .. } => Some(read_csv(file, s)?),
        _ => None,
    };
    let ctx = inv.ctx()?;
    let app = inv.app_id(&ctx, app_args(cmd)).await?;
    match cmd {
        TestersCmd::List { group, .. } => list(&ctx, &app, group, report).await,
        TestersCmd::Add {
            group,
            email,
            first_name,
            last_name,
            ..
        } => {
            audience::check_email(email).map_err(|e| Error::flag("--email", e))?;
            let p = Person {
                email: email.clone(),
                first_name: first_name.clone(),
                last_name: last_name.clone(),
            };
            add(&ctx, &app, group, vec![p], report).await
        }
        TestersCmd::Import { group, .. } => {
            let people = imported.unwrap_or_default();
            add(&ctx, &app, group, people, report).await
        }
        TestersCmd::Remove { email, group, .. } => {
            remove(&ctx, &app, email, group.as_deref(), report).await
        }
        TestersCmd::Export { group, out, .. } => {
            export(&ctx, &app, group.as_deref(), out, s, report).await
        }
    }
}

fn app_args(cmd: &TestersCmd) -> &AppArgs {
    match cmd {
        TestersCmd::List { app, .. }
        | TestersCmd::Add { app, .. }
        | TestersCmd::Remove { app, .. }
        | TestersCmd::Import { app, .. }
        | TestersCmd::Export { app, .. } => app,
    }
}

fn read_csv(file: &std::path::Path, s: &Settings) -> Result<Vec<Person>, Error> {
    let shown = s.display_path(file);
    let text =
        std::fs::read_to_string(file).map_err(|e| Error::read("the tester file", &shown, &e))?;
    let (rows, mut problems) = csv::parse_all(&text, &shown);
    let a = audience::Audience {
        prune: false,
        groups: vec![audience::GroupSpec {
            name: String::new(),
            external: None,
            public_link: None,
            inline_at: rows
                .iter()
                .map(|r| crate::error::Location {
                    file: shown.clone(),
                    line: r.line,
                    column: 1,
                })
                .collect(),
            testers: audience::Testers::Inline(rows.into_iter().map(|r| r.person).collect()),
            at: None,
        }],
        confirmed: false,
    };
    // `load` folds duplicates and refuses conflicting names, naming both lines.
    let loaded = audience::load(&a, |p| s.display_path(p));
    let people = match loaded {
        Ok(d) => d.groups.into_iter().next().and_then(|g| g.testers),
        Err(e) => {
            let rel = e.related.clone();
            problems.push(Error {
                related: vec![],
                ..e
            });
            problems.extend(rel);
            None
        }
    };
    problems.sort_by_key(|e| e.location.as_deref().map(|l| l.line));
    match Error::many(problems) {
        Some(e) => Err(e),
        None => Ok(people.unwrap_or_default()),
    }
}

async fn find_group(ctx: &Ctx, app_id: &str, name: &str) -> Result<beta::Group, Error> {
    let all = beta::list_groups(&ctx.api, app_id).await?;
    let names: Vec<String> = all.iter().filter_map(|g| g.attrs().name).collect();
    all.into_iter()
        .find(|g| g.attrs().name.is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            Error::input(format!(
                "there is no beta group named {name:?} for this app"
            ))
            .with_hint(format!("groups: {}", names.join(", ")))
        })
}

async fn list(
    ctx: &Ctx,
    app_id: &str,
    group: &Option<String>,
    report: &mut Report,
) -> Result<(), Error> {
    let testers = match group {
        Some(g) => beta::group_testers(&ctx.api, &find_group(ctx, app_id, g).await?.id).await?,
        None => beta::app_testers(&ctx.api, app_id).await?,
    };
    let mut text = String::new();
    let mut data = Vec::new();
    for t in testers {
        let a = t.attrs();
        let name = [a.first_name.as_deref(), a.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let email = a.email.clone().unwrap_or_default();
        let state = a.state.clone().unwrap_or_default();
        text.push_str(&format!("{email}\t{name}\t{state}\n"));
        data.push(
            json!({"id": t.id, "email": email, "first-name": a.first_name,
                         "last-name": a.last_name, "state": state}),
        );
    }
    report.row("testers", format!("{} tester(s)", data.len()));
    report.text = Some(text);
    report.data = Some(json!(data));
    Ok(())
}

async fn add(
    ctx: &Ctx,
    app_id: &str,
    group: &str,
    people: Vec<Person>,
    report: &mut Report,
) -> Result<(), Error> {
    // One-off commands never create groups.
    let g = find_group(ctx, app_id, group).await?;
    let desired = Desired {
        prune: false,
        groups: vec![DesiredGroup {
            name: g.attrs().name.unwrap_or_default(),
            external: None,
            public_link: None,
            testers: Some(people),
        }],
    };
    let mode = Mode {
        apply: true,
        interactive: false,
        confirmed: false,
    };
    let rec = audience::reconcile(&ctx.api, app_id, &desired, mode).await?;
    report::audience_plan(&ctx.ci, report, &rec);
    Ok(())
}

async fn remove(
    ctx: &Ctx,
    app_id: &str,
    email: &str,
    group: Option<&str>,
    report: &mut Report,
) -> Result<(), Error> {
    let found = beta::find_testers_by_email(&ctx.api, &[email.to_string()]).await?;
    let Some(t) = found.into_iter().next() else {
        return Err(Error::input(format!("there is no beta tester {email}")));
    };
    let (removed, result) = match group {
        Some(name) => {
            let g = find_group(ctx, app_id, name).await?;
            let members = beta::group_testers(&ctx.api, &g.id).await?;
            if members.iter().any(|m| m.id == t.id) {
                beta::remove_testers_from_group(&ctx.api, &g.id, std::slice::from_ref(&t.id))
                    .await?;
                (1, format!("removed {email} from {name}"))
            } else {
                (0, format!("{email} was not in {name}"))
            }
        }
        None => {
            beta::remove_testers_from_app(&ctx.api, app_id, std::slice::from_ref(&t.id)).await?;
            (1, format!("removed {email} from the app"))
        }
    };
    report::tester_removed(&ctx.ci, report, removed, result);
    Ok(())
}

async fn export(
    ctx: &Ctx,
    app_id: &str,
    group: Option<&str>,
    out: &std::path::Path,
    s: &Settings,
    report: &mut Report,
) -> Result<(), Error> {
    let groups = match group {
        Some(g) => vec![find_group(ctx, app_id, g).await?],
        None => beta::list_groups(&ctx.api, app_id).await?,
    };
    let mut rows: BTreeMap<String, csv::Row> = BTreeMap::new();
    for g in groups {
        let name = g.attrs().name.unwrap_or_default();
        for t in beta::group_testers(&ctx.api, &g.id).await? {
            let m = audience::member(t);
            let row = rows.entry(m.person.key()).or_insert_with(|| csv::Row {
                person: m.person.clone(),
                groups: vec![],
                line: 0,
            });
            row.groups.push(name.clone());
        }
    }
    let rows: Vec<csv::Row> = rows.into_values().collect();
    let shown = s.display_path(out);
    std::fs::write(out, csv::write(&rows)).map_err(|e| Error::io("write", &shown, e))?;
    let result = format!("{} tester(s) to {shown}", rows.len());
    report.text = Some(format!("{result}\n"));
    report.row("testers", result);
    Ok(())
}
