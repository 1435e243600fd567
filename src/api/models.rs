//! Typed JSON:API models for the App Store Connect resources flightdeck uses.
//!
//! Attributes are all optional (a `fields[...]` query can omit any of them) and
//! state enums keep unknown values (`Unknown(String)`) so a state Apple adds
//! later does not break a release job.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// An enum of Apple's SCREAMING_CASE strings with a catch-all.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)+ Unknown(String) }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self { $(Self::$variant => $text,)+ Self::Unknown(s) => s }
            }
            pub const ALL: &'static [&'static str] = &[$($text),+];
        }
        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s { $($text => Self::$variant,)+ other => Self::Unknown(other.to_string()) })
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(s.parse().unwrap_or_else(|e| match e {}))
            }
        }
    };
}

string_enum!(
    /// Apple's `Platform`.
    Platform { Ios = "IOS", MacOs = "MAC_OS", TvOs = "TV_OS", VisionOs = "VISION_OS" }
);
string_enum!(
    /// `BuildUpload.attributes.state.state`.
    BuildUploadState { AwaitingUpload = "AWAITING_UPLOAD", Processing = "PROCESSING", Failed = "FAILED", Complete = "COMPLETE" }
);
string_enum!(
    /// `BuildUploadFile.attributes.assetDeliveryState.state`.
    AssetDeliveryState { AwaitingUpload = "AWAITING_UPLOAD", UploadComplete = "UPLOAD_COMPLETE", Complete = "COMPLETE", Failed = "FAILED" }
);
string_enum!(
    /// `Build.attributes.processingState`.
    ProcessingState { Processing = "PROCESSING", Failed = "FAILED", Invalid = "INVALID", Valid = "VALID" }
);
string_enum!(
    /// `BetaAppReviewSubmission.attributes.betaReviewState`.
    BetaReviewState { WaitingForReview = "WAITING_FOR_REVIEW", InReview = "IN_REVIEW", Rejected = "REJECTED", Approved = "APPROVED" }
);

impl BuildUploadState {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }
}

impl ProcessingState {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Valid | Self::Failed | Self::Invalid)
    }
}

/// `{ data: T, included?, links? }`
#[derive(Debug, Deserialize)]
pub struct Document<T> {
    pub data: T,
    #[serde(default)]
    pub included: Vec<Value>,
}

#[derive(Debug, Deserialize, Default)]
pub struct PagedLinks {
    #[serde(default)]
    pub next: Option<String>,
}

/// `{ data: [T], included?, links: { next? } }`
#[derive(Debug, Deserialize)]
pub struct ListDocument<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub included: Vec<Value>,
    #[serde(default)]
    pub links: Option<PagedLinks>,
}

/// A JSON:API resource object.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource<A> {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default = "Option::default")]
    pub attributes: Option<A>,
    #[serde(default)]
    pub relationships: Option<Value>,
}

impl<A: Default + Clone> Resource<A> {
    pub fn attrs(&self) -> A {
        self.attributes.clone().unwrap_or_default()
    }
}

impl<A> Resource<A> {
    /// `relationships.<name>.data.id` of a to-one relationship.
    pub fn related_id(&self, name: &str) -> Option<String> {
        self.relationships
            .as_ref()?
            .get(name)?
            .get("data")?
            .get("id")?
            .as_str()
            .map(str::to_string)
    }
}

/// The included resource of `kind` and `id`, decoded.
pub fn find_included<A: serde::de::DeserializeOwned>(
    included: &[Value],
    kind: &str,
    id: &str,
) -> Option<Resource<A>> {
    included
        .iter()
        .find(|v| v["type"] == kind && v["id"] == id)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct StateDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl StateDetail {
    pub fn to_detail(&self) -> crate::error::Detail {
        crate::error::Detail {
            code: self.code.clone().unwrap_or_else(|| "UNSPECIFIED".into()),
            message: self.description.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UploadStateInfo {
    pub state: Option<BuildUploadState>,
    #[serde(default)]
    pub errors: Option<Vec<StateDetail>>,
    #[serde(default)]
    pub warnings: Option<Vec<StateDetail>>,
    #[serde(default)]
    pub infos: Option<Vec<StateDetail>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildUploadAttributes {
    pub cf_bundle_short_version_string: Option<String>,
    pub cf_bundle_version: Option<String>,
    pub platform: Option<Platform>,
    pub created_date: Option<String>,
    pub uploaded_date: Option<String>,
    pub state: Option<UploadStateInfo>,
}

pub type BuildUpload = Resource<BuildUploadAttributes>;

impl BuildUpload {
    pub fn state(&self) -> Option<BuildUploadState> {
        self.attrs().state.and_then(|s| s.state)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct HttpHeader {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UploadOperation {
    pub method: Option<String>,
    pub url: Option<String>,
    pub length: Option<u64>,
    pub offset: Option<u64>,
    #[serde(default)]
    pub request_headers: Option<Vec<HttpHeader>>,
    pub expiration: Option<String>,
    pub part_number: Option<u64>,
    pub entity_tag: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssetDelivery {
    pub state: Option<AssetDeliveryState>,
    #[serde(default)]
    pub errors: Option<Vec<StateDetail>>,
    #[serde(default)]
    pub warnings: Option<Vec<StateDetail>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildUploadFileAttributes {
    pub asset_delivery_state: Option<AssetDelivery>,
    pub asset_type: Option<String>,
    pub file_name: Option<String>,
    pub file_size: Option<u64>,
    pub uti: Option<String>,
    #[serde(default)]
    pub upload_operations: Option<Vec<UploadOperation>>,
    /// `{ file: { hash, algorithm } }` as committed.
    #[serde(default)]
    pub source_file_checksums: Option<Value>,
}

impl BuildUploadFileAttributes {
    /// The committed whole-file checksum: (algorithm, lowercase hex).
    pub fn file_checksum(&self) -> Option<(String, String)> {
        let f = self.source_file_checksums.as_ref()?.get("file")?;
        Some((
            f.get("algorithm")?.as_str()?.to_string(),
            f.get("hash")?.as_str()?.to_ascii_lowercase(),
        ))
    }
}

pub type BuildUploadFile = Resource<BuildUploadFileAttributes>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppAttributes {
    pub bundle_id: Option<String>,
    pub name: Option<String>,
    pub sku: Option<String>,
}
pub type App = Resource<AppAttributes>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildAttributes {
    pub version: Option<String>,
    pub uploaded_date: Option<String>,
    pub processing_state: Option<ProcessingState>,
    pub uses_non_exempt_encryption: Option<bool>,
    pub expired: Option<bool>,
}
pub type Build = Resource<BuildAttributes>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BetaGroupAttributes {
    pub name: Option<String>,
    pub is_internal_group: Option<bool>,
    pub has_access_to_all_builds: Option<bool>,
}
pub type BetaGroup = Resource<BetaGroupAttributes>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BetaBuildLocalizationAttributes {
    pub locale: Option<String>,
    pub whats_new: Option<String>,
}
pub type BetaBuildLocalization = Resource<BetaBuildLocalizationAttributes>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BetaAppReviewSubmissionAttributes {
    pub beta_review_state: Option<BetaReviewState>,
    pub submitted_date: Option<String>,
}
pub type BetaAppReviewSubmission = Resource<BetaAppReviewSubmissionAttributes>;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttributes {
    pub enabled: Option<bool>,
    pub event_types: Option<Vec<String>>,
    pub name: Option<String>,
    pub url: Option<String>,
}
pub type Webhook = Resource<WebhookAttributes>;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryAttributes {
    pub created_date: Option<String>,
    pub delivery_state: Option<String>,
    pub error_message: Option<String>,
    pub redelivery: Option<bool>,
    pub sent_date: Option<String>,
    pub request: Option<Value>,
    pub response: Option<Value>,
}
pub type WebhookDelivery = Resource<WebhookDeliveryAttributes>;

/// The feedback attributes flightdeck writes out; everything else is kept raw.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackAttributes {
    pub created_date: Option<String>,
    pub comment: Option<String>,
    pub email: Option<String>,
    pub device_model: Option<String>,
    pub os_version: Option<String>,
    #[serde(default)]
    pub screenshots: Option<Vec<ScreenshotImage>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenshotImage {
    pub url: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub expiration_date: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_states_are_kept_not_fatal() {
        let s: BuildUploadState = serde_json::from_str("\"QUANTUM\"").unwrap();
        assert_eq!(s, BuildUploadState::Unknown("QUANTUM".into()));
        assert!(!s.is_final());
        let s: BuildUploadState = serde_json::from_str("\"COMPLETE\"").unwrap();
        assert!(s.is_final());
        assert_eq!(
            serde_json::to_string(&Platform::VisionOs).unwrap(),
            "\"VISION_OS\""
        );
    }

    #[test]
    fn build_upload_state_is_nested_and_relationship_found() {
        let doc: Document<BuildUpload> = serde_json::from_str(
            r#"{"data":{"type":"buildUploads","id":"u1","attributes":{"state":{"state":"FAILED","errors":[{"code":"E1","description":"bad"}]}},
               "relationships":{"build":{"data":{"type":"builds","id":"b1"}}}},"links":{"self":"x"}}"#,
        )
        .unwrap();
        assert_eq!(doc.data.state(), Some(BuildUploadState::Failed));
        assert_eq!(doc.data.related_id("build").as_deref(), Some("b1"));
        assert_eq!(
            doc.data.attrs().state.unwrap().errors.unwrap()[0]
                .code
                .as_deref(),
            Some("E1")
        );
    }
}
