use super::*;
use asc_simulator::fixture::{self, AppSpec, write_ipa, write_pkg};

fn spec() -> AppSpec {
    AppSpec::new("com.example.app", "1.2.3", "45")
}

#[test]
fn reads_ipa_with_xml_and_binary_plists() {
    let dir = tempfile::tempdir().unwrap();
    for binary in [false, true] {
        let p = dir.path().join(format!("A{binary}.ipa"));
        write_ipa(
            &p,
            &AppSpec {
                binary_plist: binary,
                ..spec()
            },
        )
        .unwrap();
        let a = inspect(&p).unwrap();
        assert_eq!(
            (
                a.bundle_id.as_str(),
                a.version.as_str(),
                a.build_number.as_str()
            ),
            ("com.example.app", "1.2.3", "45")
        );
        assert_eq!(a.platform, Platform::Ios);
        assert_eq!(a.kind.uti(), "com.apple.ipa");
        assert_eq!(a.uses_non_exempt_encryption, Some(false));
        assert_eq!(a.size, std::fs::metadata(&p).unwrap().len());
    }
}

#[test]
fn platforms_from_the_plist() {
    let dir = tempfile::tempdir().unwrap();
    for (written, platform) in [
        (fixture::Platform::TvOs, Platform::TvOs),
        (fixture::Platform::VisionOs, Platform::VisionOs),
    ] {
        let p = dir.path().join("P.ipa");
        write_ipa(
            &p,
            &AppSpec {
                platform: written,
                ..spec()
            },
        )
        .unwrap();
        assert_eq!(inspect(&p).unwrap().platform, platform);
    }
}

#[test]
fn reads_pkg_package_info() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("Mac.pkg");
    write_pkg(
        &p,
        &AppSpec {
            platform: fixture::Platform::MacOs,
            ..spec()
        },
    )
    .unwrap();
    let a = inspect(&p).unwrap();
    assert_eq!(
        (
            a.bundle_id.as_str(),
            a.version.as_str(),
            a.build_number.as_str()
        ),
        ("com.example.app", "1.2.3", "45")
    );
    assert_eq!(a.platform, Platform::MacOs);
    assert_eq!(a.kind.uti(), "com.apple.pkg");
}

#[test]
fn each_bad_artifact_has_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    std::fs::write(d("empty.ipa"), b"").unwrap();
    std::fs::write(d("text.ipa"), b"hello, not a zip").unwrap();
    std::fs::write(d("app.zip"), b"x").unwrap();
    std::fs::write(d("bad.pkg"), b"not a xar archive at all, no").unwrap();
    {
        let f = std::fs::File::create(d("noplist.ipa")).unwrap();
        let mut z = zip::ZipWriter::new(f);
        z.start_file("Payload/X.app/X", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.finish().unwrap();
    }
    {
        let f = std::fs::File::create(d("badplist.ipa")).unwrap();
        let mut z = zip::ZipWriter::new(f);
        z.start_file(
            "Payload/X.app/Info.plist",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(&mut z, b"<plist><dict><key>CFBundleIdentifier</key>").unwrap();
        z.finish().unwrap();
    }
    let show = |n: &str| d(n).display().to_string();
    assert_eq!(
        inspect(&d("missing.ipa")).unwrap_err(),
        ArtifactError::Missing(show("missing.ipa"))
    );
    assert_eq!(
        inspect(&d("empty.ipa")).unwrap_err(),
        ArtifactError::Empty(show("empty.ipa"))
    );
    assert_eq!(
        inspect(&d("app.zip")).unwrap_err(),
        ArtifactError::UnknownKind(show("app.zip"))
    );
    assert!(matches!(
        inspect(&d("text.ipa")).unwrap_err(),
        ArtifactError::NotZip(..)
    ));
    assert!(matches!(
        inspect(&d("bad.pkg")).unwrap_err(),
        ArtifactError::NotXar(..)
    ));
    assert_eq!(
        inspect(&d("noplist.ipa")).unwrap_err(),
        ArtifactError::NoInfoPlist(show("noplist.ipa"))
    );
    assert!(matches!(
        inspect(&d("badplist.ipa")).unwrap_err(),
        ArtifactError::BadPlist(..)
    ));
    assert!(matches!(
        inspect(dir.path()).unwrap_err(),
        ArtifactError::UnknownKind(..)
    ));
}

#[test]
fn info_plist_entry_must_be_at_bundle_root() {
    let names = [
        "Payload/A.app/Info.plist",
        "Payload/A.app/Frameworks/F.framework/Info.plist",
        "Payload/A.app/PlugIns/W.appex/Info.plist",
    ];
    assert_eq!(
        ipa::info_plist_entries(names.into_iter()),
        ["Payload/A.app/Info.plist"]
    );
}

#[test]
fn every_nasty_artifact_is_refused_with_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for n in super::nasty::corpus() {
        let p = dir.path().join(n.name);
        std::fs::write(&p, &n.bytes).unwrap();
        let e = inspect(&p).expect_err(n.name);
        let text = e.to_string();
        assert!(text.contains(n.name), "{}: {text}", n.name);
        assert!(text.contains(n.expect), "{}: {text}", n.name);
        let err: crate::error::Error = e.into();
        assert_eq!(err.exit_code(), 2, "{}", n.name);
        // The in-memory reader (the fuzz targets' entry point) agrees.
        let kind = if n.name.ends_with(".ipa") {
            Kind::Ipa
        } else {
            Kind::Pkg
        };
        let e = super::probe(kind, &n.bytes).expect_err(n.name);
        assert!(e.to_string().contains(n.expect), "{}: {e}", n.name);
    }
}

#[test]
fn the_plist_walk_accepts_real_plists_and_dates() {
    let mut d = plist::Dictionary::new();
    d.insert(
        "When".into(),
        plist::Value::Date(std::time::SystemTime::UNIX_EPOCH.into()),
    );
    d.insert("Data".into(), plist::Value::Data(vec![1, 2, 3]));
    d.insert("Real".into(), plist::Value::Real(1.5));
    d.insert("Neg".into(), plist::Value::Integer((-4i64).into()));
    let nested = (0..100).fold(plist::Value::Boolean(true), |v, _| {
        plist::Value::Array(vec![v])
    });
    d.insert("Nested".into(), nested);
    for binary in [false, true] {
        let mut out = Vec::new();
        let mut d = d.clone();
        if binary {
            d.insert("Uid".into(), plist::Value::Uid(plist::Uid::new(3)));
        }
        let v = plist::Value::Dictionary(d);
        if binary {
            v.to_writer_binary(&mut out).unwrap();
        } else {
            v.to_writer_xml(&mut out).unwrap();
        }
        super::limits::check_plist_shape(&out, "x").unwrap();
    }
}
