//! The checks that talk to App Store Connect: the clock against its `Date`
//! header, whether it accepts the key (401: wrong key; 403: missing role),
//! whether the app resolves, and a TestFlight read that needs the key's role.

use super::{Check, Inputs};
use crate::api::error::{ApiError, ApiErrorKind};
use crate::api::retry::RetryPolicy;
use crate::api::{Client, resources as r};
use crate::auth::{SystemClock, TokenSource};
use crate::config::Credentials;
use crate::error::ExitKind;
use crate::plan::AppRef;
use std::sync::Arc;
use std::time::Duration;

/// Largest clock difference accepted: tokens are backdated by 60 s.
pub const MAX_SKEW_SECS: i64 = 60;

/// Few, quick retries: doctor should answer in seconds, not minutes.
fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        min_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
        retry_after_cap: Duration::from_secs(5),
        budget: Duration::from_secs(10),
        jitter: true,
    }
}

pub async fn all(
    inputs: &Inputs<'_>,
    creds: Option<&Credentials>,
    app: Option<AppRef>,
    checks: &mut Vec<Check>,
) {
    let base = &inputs.settings.api_base;
    let clock = clock(base).await;
    let clock_failed = clock.failed();
    checks.push(clock);
    let Some(creds) = creds else {
        for name in ["api", "app", "testflight"] {
            checks.push(Check::skip(name, "the credentials are not usable"));
        }
        return;
    };
    let mut tokens = TokenSource::new(
        &creds.key_id,
        creds.issuer.clone(),
        &creds.key,
        Arc::new(SystemClock),
    );
    if let Some(f) = &inputs.on_token {
        tokens = tokens.on_new_token(f.clone());
    }
    let client = match Client::new(base, Arc::new(tokens), policy()) {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::from_error("api", &e));
            return;
        }
    };
    let api = api(&client, clock_failed).await;
    let api_ok = !api.failed();
    checks.push(api);
    if !api_ok {
        for name in ["app", "testflight"] {
            checks.push(Check::skip(
                name,
                "App Store Connect did not accept the key",
            ));
        }
        return;
    }
    let (app_check, app_id) = resolve_app(&client, app).await;
    checks.push(app_check);
    checks.push(match app_id {
        Some(id) => testflight(&client, &id).await,
        None => Check::skip("testflight", "no app to check it for"),
    });
}

/// The server's time from the `Date` header of any response (no token needed).
async fn server_time(base: &str) -> Result<jiff::Timestamp, String> {
    let http = crate::api::client::transfer_client().map_err(|e| e.message)?;
    let url = format!("{}/v1/apps?limit=1", base.trim_end_matches('/'));
    let resp = tokio::time::timeout(Duration::from_secs(15), http.get(&url).send())
        .await
        .map_err(|_| "no answer within 15 s".to_string())?
        .map_err(|e| crate::api::error::describe_transport(&e))?;
    let date = resp
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .ok_or("the response has no Date header")?;
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .map_err(|e| format!("cannot read its Date header {date:?}: {e}"))
}

pub async fn clock(base: &str) -> Check {
    let server = match server_time(base).await {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                "clock",
                ExitKind::Transient,
                format!("cannot reach App Store Connect at {base}: {e}"),
                "check the runner's network and proxy (HTTPS_PROXY), and ASC_API_BASE_URL",
            );
        }
    };
    let skew = jiff::Timestamp::now().as_second() - server.as_second();
    let how = if skew > 0 { "ahead of" } else { "behind" };
    if skew.abs() > MAX_SKEW_SECS {
        return Check::fail(
            "clock",
            ExitKind::Auth,
            format!(
                "this machine's clock is {}s {how} App Store Connect's (more than {MAX_SKEW_SECS}s): tokens will be refused",
                skew.abs()
            ),
            "sync the clock (timedatectl set-ntp true, or ntpdate/chrony); in containers, the host's clock counts",
        );
    }
    Check::pass(
        "clock",
        format!("within {}s of App Store Connect's Date header", skew.abs()),
    )
}

fn apple_words(e: &ApiError) -> String {
    match e.errors.first() {
        Some(a) => format!("{} {}: {}", e.status.unwrap_or(0), a.code, a.title),
        None => e.to_string(),
    }
}

async fn api(client: &Client, clock_failed: bool) -> Check {
    let path = "/v1/apps?limit=1";
    let e = match client.get::<serde_json::Value>(path).await {
        Ok(_) => return Check::pass("api", "App Store Connect accepts this key"),
        Err(e) => e,
    };
    let clock_note = if clock_failed {
        " The clock check failed too: fix the clock first."
    } else {
        ""
    };
    match e.kind {
        ApiErrorKind::Unauthorized => Check::fail(
            "api",
            ExitKind::Auth,
            format!(
                "App Store Connect refused the token ({}): the key id, the issuer id and the private key do not belong together, or the key was revoked.{clock_note}",
                apple_words(&e)
            ),
            "check the key id first: it must be the id of this .p8 (the XXXX of AuthKey_XXXX.p8, listed in App Store Connect > Users and Access > Integrations); then the issuer id shown above the keys there",
        ),
        ApiErrorKind::Forbidden => Check::fail(
            "api",
            ExitKind::Auth,
            format!(
                "the key is valid but its role may not read apps ({})",
                apple_words(&e)
            ),
            "give the key the App Manager (or Admin) role, or create a key with it",
        ),
        _ => Check::fail(
            "api",
            if e.is_transient() {
                ExitKind::Transient
            } else {
                ExitKind::Rejected
            },
            format!("App Store Connect did not answer as expected: {e}"),
            "retry; if it persists, check https://developer.apple.com/system-status/",
        ),
    }
}

async fn resolve_app(client: &Client, app: Option<AppRef>) -> (Check, Option<String>) {
    let found = match &app {
        None => {
            return (
                Check::warn(
                    "app",
                    "no app given, so the app and TestFlight checks were not run",
                    "pass --app-id or --bundle-id, set ASC_APP_ID / ASC_BUNDLE_ID, or name the app in the pipeline",
                ),
                None,
            );
        }
        Some(AppRef::Id(id)) => r::get_app(client, id).await.map(Some),
        Some(AppRef::BundleId(b)) => r::find_app_by_bundle_id(client, b).await,
    };
    match found {
        Ok(Some(a)) => {
            let bundle = a.attrs().bundle_id.clone().unwrap_or_default();
            (
                Check::pass("app", format!("app {} ({bundle}) found", a.id)),
                Some(a.id),
            )
        }
        Ok(None) => (not_found(&app), None),
        Err(e) if e.kind == ApiErrorKind::NotFound => (not_found(&app), None),
        Err(e) => (
            Check::from_error("app", &crate::error::Error::from(e)),
            None,
        ),
    }
}

fn not_found(app: &Option<AppRef>) -> Check {
    let what = match app {
        Some(AppRef::Id(id)) => format!("app id {id}"),
        Some(AppRef::BundleId(b)) => format!("bundle id {b}"),
        None => "the app".into(),
    };
    Check::fail(
        "app",
        ExitKind::Input,
        format!("App Store Connect has no app with {what} for this key's team"),
        "check the id, and that the app exists in App Store Connect > Apps (create it there first; the API cannot)",
    )
}

async fn testflight(client: &Client, app_id: &str) -> Check {
    match r::list_beta_groups(client, app_id).await {
        Ok(groups) => Check::pass(
            "testflight",
            format!(
                "the key may manage TestFlight for this app ({} beta groups)",
                groups.len()
            ),
        ),
        Err(e) if e.kind == ApiErrorKind::Forbidden => Check::fail(
            "testflight",
            ExitKind::Auth,
            format!(
                "the key is valid but its role may not manage TestFlight (403 on beta groups: {})",
                apple_words(&e)
            ),
            "give the key the App Manager or Admin role in App Store Connect > Users and Access > Integrations (roles cannot be changed on an existing key: create a new one)",
        ),
        Err(e) => Check::from_error("testflight", &crate::error::Error::from(e)),
    }
}
