//! Which app a command or step is about, and the one way to find its id:
//! an id is used as given, a bundle id is looked up once.

use crate::api::{Client, resources as r};
use crate::error::Error;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppRef {
    Id(String),
    BundleId(String),
}

impl AppRef {
    /// The app's id; no app named at all is an input error.
    pub async fn resolve(app: Option<&AppRef>, api: &Client) -> Result<String, Error> {
        match app.ok_or_else(Error::missing_app)? {
            AppRef::Id(id) => Ok(id.clone()),
            AppRef::BundleId(b) => r::find_app_by_bundle_id(api, b)
                .await?
                .map(|a| a.id)
                .ok_or_else(|| Error::no_app(b)),
        }
    }
}
