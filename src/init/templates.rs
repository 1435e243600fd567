//! The starter files' text. Values go in as JSON strings, which YAML reads as
//! double-quoted scalars, so any bundle id or path stays one safe value.

use super::Starter;

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub fn pipeline(s: &Starter) -> String {
    let app = match &s.bundle_id {
        Some(b) => format!("app: {{ bundle-id: {} }}\n", quoted(b)),
        None => {
            "# app: { bundle-id: com.example.app }   # default: read from the artifact\n".into()
        }
    };
    let file = match &s.artifact {
        Some(a) => format!("      file: {}\n", quoted(a)),
        None => "      file: build/App.ipa                  # the .ipa (or macOS .pkg) your build writes\n"
            .into(),
    };
    format!(
        "# flightdeck pipeline: upload, wait for processing, hand the build to TestFlight.\n\
         # Check the set-up with `flightdeck doctor`; rehearse with `flightdeck run --dry-run`.\n\
         # yaml-language-server: $schema=https://flightdeck.dev/schema/flightdeck.schema.json\n\
         version: 1\n\
         {app}\
         steps:\n\
         \x20 - upload:\n\
         {file}\
         \x20 - wait:\n\
         \x20     timeout: 45m\n\
         \x20 - testflight:\n\
         \x20     # groups: [QA]                       # beta groups, by name or id\n\
         \x20     whats-new: {{ en-US: \"A new build from CI\" }}\n"
    )
}

pub fn github(s: &Starter) -> String {
    let artifact = s.artifact.as_deref().unwrap_or("build/App.ipa");
    format!(
        "# Uploads the build to App Store Connect and TestFlight with flightdeck.\n\
         # Secrets: ASC_KEY_ID, ASC_ISSUER_ID and ASC_PRIVATE_KEY (the .p8 contents).\n\
         name: TestFlight\n\
         on:\n\
         \x20 workflow_dispatch:\n\
         \x20 push:\n\
         \x20   tags: [\"v*\"]\n\
         permissions:\n\
         \x20 contents: read\n\
         jobs:\n\
         \x20 testflight:\n\
         \x20   runs-on: ubuntu-latest\n\
         \x20   steps:\n\
         \x20     - uses: actions/checkout@v4\n\
         \x20     # Build {artifact} before this step, or download it from the macOS job that built it.\n\
         \x20     - uses: flightdeck-dev/flightdeck@v0\n\
         \x20       id: flightdeck\n\
         \x20       with:\n\
         \x20         pipeline: flightdeck.yml\n\
         \x20         api-key-id: ${{{{ secrets.ASC_KEY_ID }}}}\n\
         \x20         api-issuer-id: ${{{{ secrets.ASC_ISSUER_ID }}}}\n\
         \x20         api-private-key: ${{{{ secrets.ASC_PRIVATE_KEY }}}}\n\
         \x20     - run: echo \"build ${{{{ steps.flightdeck.outputs.build-id }}}} is ${{{{ steps.flightdeck.outputs.processing-state }}}}\"\n"
    )
}

pub fn gitlab() -> String {
    "# Uploads the build to App Store Connect and TestFlight with flightdeck.\n\
     # Credentials: the App Store Connect integration (Settings > Integrations), or masked\n\
     # variables ASC_KEY_ID, ASC_ISSUER_ID and ASC_PRIVATE_KEY.\n\
     include:\n\
     \x20 - remote: https://github.com/flightdeck-dev/flightdeck/releases/latest/download/flightdeck.gitlab-ci.yml\n\
     testflight:\n\
     \x20 extends: .flightdeck\n\
     \x20 variables:\n\
     \x20   FLIGHTDECK_PIPELINE: flightdeck.yml\n"
        .into()
}

pub fn bitrise(s: &Starter) -> String {
    let artifact = s.artifact.as_deref().unwrap_or("build/App.ipa");
    format!(
        "# Uploads the build to App Store Connect and TestFlight with flightdeck.\n\
         # Secrets: ASC_KEY_ID, ASC_ISSUER_ID and ASC_PRIVATE_KEY (the .p8 contents).\n\
         # The pipeline uploads {artifact}; point its upload.file at $BITRISE_IPA_PATH's file if Xcode Archive writes it.\n\
         format_version: \"13\"\n\
         default_step_lib_source: https://github.com/bitrise-io/bitrise-steplib.git\n\
         workflows:\n\
         \x20 testflight:\n\
         \x20   steps:\n\
         \x20     - git::https://github.com/flightdeck-dev/flightdeck.git@main:\n\
         \x20         title: flightdeck\n\
         \x20         inputs:\n\
         \x20           - pipeline: flightdeck.yml\n\
         \x20           - api_key_id: $ASC_KEY_ID\n\
         \x20           - api_issuer_id: $ASC_ISSUER_ID\n\
         \x20           - api_private_key: $ASC_PRIVATE_KEY\n"
    )
}
