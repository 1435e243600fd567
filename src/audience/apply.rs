//! Carrying out an audience plan: groups first, then public links, then
//! testers in batches through the relationship endpoints (one request per
//! `beta::BATCH` ids), new testers created a few at a time. Every write is
//! checked against the hourly request budget the client tracks; a run that
//! would exhaust it stops early and a re-run resumes from what landed.

use super::plan::{Change, Plan, link_change};
use super::{Actual, LinkState, Person};
use crate::api::{ApiError, ApiErrorKind, Client, beta};
use crate::error::Error;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// New testers created at once (each is its own request).
const CREATE_CONCURRENCY: usize = 4;

/// What an apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub groups_created: Vec<String>,
    pub links_changed: Vec<String>,
    /// (group, email) of testers added.
    pub added: Vec<(String, String)>,
    /// Testers Apple already had in the group (its 409): no-ops.
    pub already_there: usize,
    pub removed: Vec<(String, String)>,
    /// Group name -> public link URL, for every managed group with an open link.
    pub public_links: BTreeMap<String, String>,
    /// Write requests sent.
    pub writes: usize,
}

/// Requests kept back from the hourly budget for the rest of the pipeline.
fn reserve(limit: u64) -> u64 {
    (limit / 50).max(10)
}

/// Counts writes and refuses one the hourly budget cannot afford.
struct Budget<'a> {
    api: &'a Client,
    writes: AtomicUsize,
}

impl Budget<'_> {
    fn spend(&self) -> Result<(), Error> {
        if let Some(rl) = self.api.rate_limit()
            && rl.remaining <= reserve(rl.limit)
        {
            return Err(Error::transient(format!(
                "stopped before App Store Connect's hourly request budget ran out ({} of {} left) after {} write(s)",
                rl.remaining, rl.limit, self.writes.load(Ordering::SeqCst)
            ))
            .with_hint("run it again later: changes already made are kept and a re-run only sends what is missing"));
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub async fn apply(
    api: &Client,
    app_id: &str,
    plan: &Plan,
    actual: &Actual,
) -> Result<Applied, Error> {
    let budget = Budget {
        api,
        writes: AtomicUsize::new(0),
    };
    let mut out = Applied::default();
    let mut ids: BTreeMap<String, String> = actual
        .groups
        .iter()
        .map(|g| (g.name.to_lowercase(), g.id.clone()))
        .collect();
    for g in &actual.groups {
        if let Some(u) = g.link.url.as_ref().filter(|_| g.link.enabled) {
            out.public_links.insert(g.name.clone(), u.clone());
        }
    }
    create_groups(api, app_id, plan, &budget, &mut ids, &mut out).await?;
    set_links(api, plan, &budget, &ids, &mut out).await?;
    add_testers(api, plan, actual, &budget, &ids, &mut out).await?;
    remove_testers(api, plan, &budget, &ids, &mut out).await?;
    out.writes = budget.writes.load(Ordering::SeqCst);
    // Only the links of groups this plan or the audience manages matter to callers.
    Ok(out)
}

fn group_id<'a>(ids: &'a BTreeMap<String, String>, name: &str) -> Result<&'a String, Error> {
    ids.get(&name.to_lowercase())
        .ok_or_else(|| Error::transient(format!("beta group {name:?} vanished during the run")))
}

async fn create_groups(
    api: &Client,
    app_id: &str,
    plan: &Plan,
    budget: &Budget<'_>,
    ids: &mut BTreeMap<String, String>,
    out: &mut Applied,
) -> Result<(), Error> {
    for c in &plan.changes {
        let Change::CreateGroup {
            group,
            external,
            public_link,
        } = c
        else {
            continue;
        };
        let link = public_link
            .map(|l| link_change(&LinkState::default(), &l).unwrap_or_default())
            .unwrap_or_default();
        budget.spend()?;
        let made = match beta::create_group(api, app_id, group, !external, &link).await {
            Ok(g) => g,
            // A create is not idempotent: look before trying again.
            Err(e) if e.kind == ApiErrorKind::Conflict || e.ambiguous => {
                find_group(api, app_id, group).await?.ok_or(e)?
            }
            Err(e) => return Err(Error::from(e).context(format!("creating beta group {group:?}"))),
        };
        let a = made.attrs();
        if let Some(u) = a
            .public_link
            .filter(|_| a.public_link_enabled == Some(true))
        {
            out.public_links.insert(group.clone(), u);
        }
        ids.insert(group.to_lowercase(), made.id);
        out.groups_created.push(group.clone());
    }
    Ok(())
}

async fn find_group(api: &Client, app_id: &str, name: &str) -> Result<Option<beta::Group>, Error> {
    Ok(beta::list_groups(api, app_id)
        .await?
        .into_iter()
        .find(|g| g.attrs().name.is_some_and(|n| n.eq_ignore_ascii_case(name))))
}

async fn set_links(
    api: &Client,
    plan: &Plan,
    budget: &Budget<'_>,
    ids: &BTreeMap<String, String>,
    out: &mut Applied,
) -> Result<(), Error> {
    for c in &plan.changes {
        let Change::SetLink { group, from, to } = c else {
            continue;
        };
        let Some(ch) = link_change(from, to) else {
            continue;
        };
        budget.spend()?;
        let g = beta::update_group_link(api, group_id(ids, group)?, &ch)
            .await
            .map_err(|e| Error::from(e).context(format!("setting {group:?}'s public link")))?;
        let a = g.attrs();
        match a
            .public_link
            .filter(|_| a.public_link_enabled == Some(true))
        {
            Some(u) => out.public_links.insert(group.clone(), u),
            None => out.public_links.remove(group),
        };
        out.links_changed.push(group.clone());
    }
    Ok(())
}

/// Testers to add, per group, in plan order.
fn adds_by_group(plan: &Plan) -> Vec<(String, Vec<Person>)> {
    let mut out: Vec<(String, Vec<Person>)> = Vec::new();
    for c in &plan.changes {
        if let Change::AddTester { group, person } = c {
            match out.iter_mut().find(|(g, _)| g == group) {
                Some((_, v)) => v.push(person.clone()),
                None => out.push((group.clone(), vec![person.clone()])),
            }
        }
    }
    out
}

async fn add_testers(
    api: &Client,
    plan: &Plan,
    actual: &Actual,
    budget: &Budget<'_>,
    ids: &BTreeMap<String, String>,
    out: &mut Applied,
) -> Result<(), Error> {
    let mut known = actual.known_ids();
    for (group, people) in adds_by_group(plan) {
        let gid = group_id(ids, &group)?.clone();
        let unknown: Vec<String> = people
            .iter()
            .map(Person::key)
            .filter(|k| !known.contains_key(k))
            .collect();
        for chunk in unknown.chunks(beta::EMAIL_LOOKUP_BATCH) {
            for t in beta::find_testers_by_email(api, chunk).await? {
                if let Some(e) = t.attrs().email {
                    known.insert(e.to_ascii_lowercase(), t.id);
                }
            }
        }
        let (existing, new): (Vec<&Person>, Vec<&Person>) =
            people.iter().partition(|p| known.contains_key(&p.key()));
        let existing_ids: Vec<String> = existing.iter().map(|p| known[&p.key()].clone()).collect();
        for chunk in existing_ids.chunks(beta::BATCH) {
            budget.spend()?;
            beta::add_testers_to_group(api, &gid, chunk)
                .await
                .map_err(|e| Error::from(e).context(format!("adding testers to {group:?}")))?;
        }
        out.added
            .extend(existing.iter().map(|p| (group.clone(), p.email.clone())));
        let results: Vec<Result<Created, Error>> = stream::iter(new)
            .map(|p| create_one(api, budget, &gid, p))
            .buffer_unordered(CREATE_CONCURRENCY)
            .collect()
            .await;
        for r in results {
            match r? {
                Created::Added(email) => out.added.push((group.clone(), email)),
                Created::AlreadyThere => out.already_there += 1,
            }
        }
    }
    Ok(())
}

enum Created {
    Added(String),
    AlreadyThere,
}

/// Create one tester in a group. Apple's 409 for a tester already in the
/// group is a no-op; after an ambiguous failure, read back before retrying.
async fn create_one(
    api: &Client,
    budget: &Budget<'_>,
    group_id: &str,
    p: &Person,
) -> Result<Created, Error> {
    budget.spend()?;
    let first = p.first_name.as_deref();
    let last = p.last_name.as_deref();
    match beta::create_tester(api, &p.email, first, last, group_id).await {
        Ok(_) => Ok(Created::Added(p.email.clone())),
        Err(e) if e.kind == ApiErrorKind::Conflict && already_tester(&e) => {
            Ok(Created::AlreadyThere)
        }
        Err(e) if e.ambiguous => {
            let found = beta::find_testers_by_email(api, std::slice::from_ref(&p.key())).await?;
            match found.first() {
                // It landed (or existed): the relationship add is idempotent.
                Some(t) => {
                    budget.spend()?;
                    beta::add_testers_to_group(api, group_id, std::slice::from_ref(&t.id)).await?;
                    Ok(Created::Added(p.email.clone()))
                }
                None => {
                    budget.spend()?;
                    beta::create_tester(api, &p.email, first, last, group_id).await?;
                    Ok(Created::Added(p.email.clone()))
                }
            }
        }
        Err(e) => Err(Error::from(e).context(format!("adding tester {}", p.email))),
    }
}

/// Apple's conflict for an email that is already a tester there.
fn already_tester(e: &ApiError) -> bool {
    e.errors.iter().any(|x| {
        let d = x.detail.to_ascii_lowercase();
        d.contains("already") || x.code.contains("DUPLICATE")
    })
}

async fn remove_testers(
    api: &Client,
    plan: &Plan,
    budget: &Budget<'_>,
    ids: &BTreeMap<String, String>,
    out: &mut Applied,
) -> Result<(), Error> {
    let mut by_group: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for c in &plan.changes {
        if let Change::RemoveTester {
            group,
            email,
            tester_id,
        } = c
        {
            match by_group.iter_mut().find(|(g, _)| g == group) {
                Some((_, v)) => v.push((tester_id.clone(), email.clone())),
                None => by_group.push((group.clone(), vec![(tester_id.clone(), email.clone())])),
            }
        }
    }
    for (group, testers) in by_group {
        let gid = group_id(ids, &group)?;
        for chunk in testers.chunks(beta::BATCH) {
            let tids: Vec<String> = chunk.iter().map(|(t, _)| t.clone()).collect();
            budget.spend()?;
            beta::remove_testers_from_group(api, gid, &tids)
                .await
                .map_err(|e| Error::from(e).context(format!("removing testers from {group:?}")))?;
            out.removed
                .extend(chunk.iter().map(|(_, e)| (group.clone(), e.clone())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apples_already_a_tester_conflict_is_recognised() {
        let body = br#"{"errors":[{"status":"409","code":"ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE","title":"t","detail":"'a@b.co' is already a tester in this beta group."}]}"#;
        let e = ApiError::from_status(409, "POST", "/v1/betaTesters", body, None);
        assert!(e.kind == ApiErrorKind::Conflict && already_tester(&e));
        let other = br#"{"errors":[{"status":"409","code":"ENTITY_ERROR.RELATIONSHIP.INVALID","title":"t","detail":"There is no beta group 'x'."}]}"#;
        let e = ApiError::from_status(409, "POST", "/v1/betaTesters", other, None);
        assert!(!already_tester(&e));
    }

    #[test]
    fn the_reserve_keeps_a_slice_of_the_hour() {
        assert_eq!(reserve(3500), 70);
        assert_eq!(reserve(100), 10);
    }
}
