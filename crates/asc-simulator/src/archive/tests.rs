use super::*;
use crate::fixture::{AppSpec, write_ipa, write_pkg};
use std::io::Write;

fn spec() -> AppSpec {
    AppSpec::new("com.example.app", "1.2.3", "45")
}

#[test]
fn reads_an_ipa_with_an_xml_or_a_binary_info_plist() {
    let dir = tempfile::tempdir().unwrap();
    for binary_plist in [false, true] {
        let p = dir.path().join(format!("App{binary_plist}.ipa"));
        write_ipa(
            &p,
            &AppSpec {
                binary_plist,
                ..spec()
            },
        )
        .unwrap();
        assert_eq!(
            read(&p).unwrap(),
            AppInfo {
                bundle_id: "com.example.app".into(),
                version: "1.2.3".into(),
                build_number: "45".into(),
                platform: Platform::Ios,
                uses_non_exempt_encryption: Some(false),
            }
        );
    }
}

#[test]
fn the_platform_and_the_encryption_answer_come_from_the_plist() {
    let dir = tempfile::tempdir().unwrap();
    for platform in [Platform::TvOs, Platform::VisionOs, Platform::Ios] {
        let p = dir.path().join("P.ipa");
        write_ipa(
            &p,
            &AppSpec {
                platform,
                uses_non_exempt_encryption: None,
                ..spec()
            },
        )
        .unwrap();
        let info = read(&p).unwrap();
        assert_eq!(info.platform, platform);
        assert_eq!(info.uses_non_exempt_encryption, None);
    }
}

#[test]
fn reads_a_pkg_from_the_outermost_app_in_package_info() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("Mac.pkg");
    write_pkg(
        &p,
        &AppSpec {
            platform: Platform::MacOs,
            ..spec()
        },
    )
    .unwrap();
    let info = read(&p).unwrap();
    // The fixture also lists a nested helper app (9.9, build 1).
    assert_eq!(
        (
            info.bundle_id.as_str(),
            info.version.as_str(),
            info.build_number.as_str(),
            info.platform
        ),
        ("com.example.app", "1.2.3", "45", Platform::MacOs)
    );
}

/// A zip with the given entries and contents.
fn zip_with(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, body) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn a_broken_archive_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    std::fs::write(at("junk.ipa"), b"not a zip at all").unwrap();
    std::fs::write(at("junk.pkg"), b"not a xar archive, only text").unwrap();
    std::fs::write(at("App.zip"), b"PK").unwrap();
    zip_with(&at("empty.ipa"), &[("Payload/readme.txt", b"hi")]);
    zip_with(
        &at("two.ipa"),
        &[
            ("Payload/A.app/Info.plist", b"x"),
            ("Payload/B.app/Info.plist", b"x"),
        ],
    );
    zip_with(&at("bad.ipa"), &[("Payload/A.app/Info.plist", b"<nope")]);
    let plist = br#"<?xml version="1.0"?><plist version="1.0"><dict><key>CFBundleIdentifier</key><string>a.b</string><key>CFBundleShortVersionString</key><string> </string><key>CFBundleVersion</key><string>1</string></dict></plist>"#;
    zip_with(&at("blank.ipa"), &[("Payload/A.app/Info.plist", plist)]);
    let cases = [
        ("junk.ipa", "not a zip archive"),
        ("junk.pkg", "no xar! signature"),
        ("App.zip", "neither an .ipa nor a .pkg"),
        ("empty.ipa", "no Payload/<Name>.app/Info.plist"),
        ("two.ipa", "several apps in Payload/"),
        ("bad.ipa", "not a property list"),
        ("blank.ipa", "CFBundleShortVersionString is missing"),
    ];
    for (name, want) in cases {
        let err = read(&at(name)).unwrap_err();
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn a_nested_bundle_plist_is_not_the_app_plist() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nested.ipa");
    zip_with(
        &p,
        &[("Payload/A.app/Frameworks/F.framework/Info.plist", b"x")],
    );
    assert!(
        read(&p)
            .unwrap_err()
            .contains("no Payload/<Name>.app/Info.plist")
    );
}

#[test]
fn xml_depth_is_bounded() {
    let deep = "<a>".repeat(100) + &"</a>".repeat(100);
    assert!(xml::Element::parse(&deep).unwrap_err().contains("deeper"));
    let tree = xml::Element::parse("<r><b id=\"x&amp;y\">t&lt;1</b></r>").unwrap();
    let b = tree.descendants("b")[0];
    assert_eq!((b.attr("id"), b.text.as_str()), (Some("x&y"), "t<1"));
}
