//! Writes small but real artifacts: an `.ipa` (zip with an XML or binary
//! Info.plist and a payload) and a `.pkg` (XAR with a zlib TOC and a
//! PackageInfo). Used by `flightdeck demo`, the tests and the benchmarks; the
//! simulator's own reader (`archive`) is tested against it too.

pub use crate::archive::Platform;
use std::io::{self, Write};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct AppSpec {
    pub name: String,
    pub bundle_id: String,
    pub version: String,
    pub build_number: String,
    pub platform: Platform,
    /// Size of the fake executable inside the bundle.
    pub payload_bytes: u64,
    pub uses_non_exempt_encryption: Option<bool>,
    pub binary_plist: bool,
}

impl AppSpec {
    pub fn new(bundle_id: &str, version: &str, build_number: &str) -> Self {
        Self {
            name: "Example".into(),
            bundle_id: bundle_id.into(),
            version: version.into(),
            build_number: build_number.into(),
            platform: Platform::Ios,
            payload_bytes: 64 * 1024,
            uses_non_exempt_encryption: Some(false),
            binary_plist: false,
        }
    }

    fn info_plist(&self) -> io::Result<Vec<u8>> {
        let mut d = plist::Dictionary::new();
        d.insert("CFBundleIdentifier".into(), self.bundle_id.clone().into());
        d.insert(
            "CFBundleShortVersionString".into(),
            self.version.clone().into(),
        );
        d.insert("CFBundleVersion".into(), self.build_number.clone().into());
        d.insert("CFBundleExecutable".into(), self.name.clone().into());
        d.insert("CFBundleName".into(), self.name.clone().into());
        let (platform, family): (&str, u64) = match self.platform {
            Platform::TvOs => ("appletvos", 3),
            Platform::VisionOs => ("xros", 7),
            Platform::MacOs => ("macosx", 2),
            Platform::Ios => ("iphoneos", 1),
        };
        d.insert("DTPlatformName".into(), platform.into());
        d.insert(
            "UIDeviceFamily".into(),
            plist::Value::Array(vec![plist::Value::Integer(family.into())]),
        );
        if let Some(b) = self.uses_non_exempt_encryption {
            d.insert("ITSAppUsesNonExemptEncryption".into(), b.into());
        }
        let mut out = Vec::new();
        let v = plist::Value::Dictionary(d);
        let r = if self.binary_plist {
            v.to_writer_binary(&mut out)
        } else {
            v.to_writer_xml(&mut out)
        };
        r.map_err(io::Error::other)?;
        Ok(out)
    }
}

/// Fill `w` with `n` bytes of a cheap pseudo-random pattern (incompressible enough).
pub fn write_pattern(w: &mut impl Write, n: u64, seed: u64) -> io::Result<()> {
    let mut state = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let take = left.min(buf.len() as u64) as usize;
        w.write_all(&buf[..take])?;
        left -= take as u64;
    }
    Ok(())
}

pub fn write_ipa(path: &Path, spec: &AppSpec) -> io::Result<()> {
    use zip::write::SimpleFileOptions;
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(io::BufWriter::new(file));
    let stored = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(spec.payload_bytes >= u32::MAX as u64);
    let app = format!("Payload/{}.app", spec.name);
    zip.add_directory("Payload/", stored)
        .map_err(io::Error::other)?;
    zip.add_directory(format!("{app}/"), stored)
        .map_err(io::Error::other)?;
    zip.start_file(format!("{app}/Info.plist"), stored)
        .map_err(io::Error::other)?;
    zip.write_all(&spec.info_plist()?)?;
    zip.start_file(format!("{app}/{}", spec.name), stored)
        .map_err(io::Error::other)?;
    write_pattern(&mut zip, spec.payload_bytes, 0x9E37_79B9_7F4A_7C15)?;
    zip.finish().map_err(io::Error::other)?.flush()
}

/// A product archive: `Distribution` plus `<name>.pkg/PackageInfo` and a payload.
pub fn write_pkg(path: &Path, spec: &AppSpec) -> io::Result<()> {
    use flate2::{Compression, write::ZlibEncoder};
    let zlib = |data: &[u8]| -> io::Result<Vec<u8>> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data)?;
        e.finish()
    };
    let distribution = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><installer-gui-script minSpecVersion="2"><product id="{}" version="{}"/><pkg-ref id="{}.pkg"/></installer-gui-script>"#,
        spec.bundle_id, spec.version, spec.bundle_id
    );
    let package_info = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><pkg-info format-version="2" identifier="{id}.pkg" version="{v}" install-location="/Applications"><bundle-version><bundle id="{id}" CFBundleShortVersionString="{v}" CFBundleVersion="{b}" path="./{n}.app"/><bundle id="{id}.helper" CFBundleShortVersionString="9.9" CFBundleVersion="1" path="./{n}.app/Contents/Helpers/H.app"/></bundle-version></pkg-info>"#,
        id = spec.bundle_id,
        v = spec.version,
        b = spec.build_number,
        n = spec.name
    );
    let dist_z = zlib(distribution.as_bytes())?;
    let info_z = zlib(package_info.as_bytes())?;
    let member = |id: u32, name: &str, offset: usize, data_len: usize, size: usize, gzip: bool| {
        let style = if gzip {
            "application/x-gzip"
        } else {
            "application/octet-stream"
        };
        format!(
            r#"<file id="{id}"><data><length>{data_len}</length><offset>{offset}</offset><size>{size}</size><encoding style="{style}"/></data><name>{name}</name><type>file</type></file>"#
        )
    };
    let payload_offset = dist_z.len() + info_z.len();
    let toc = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><xar><toc><creation-time>2026-11-28T00:00:00</creation-time>{}<file id="3"><name>{}.pkg</name><type>directory</type>{}{}</file></toc></xar>"#,
        member(1, "Distribution", 0, dist_z.len(), distribution.len(), true),
        spec.name,
        member(
            2,
            "PackageInfo",
            dist_z.len(),
            info_z.len(),
            package_info.len(),
            true
        ),
        member(
            4,
            "Payload",
            payload_offset,
            spec.payload_bytes as usize,
            spec.payload_bytes as usize,
            false
        ),
    );
    let toc_z = zlib(toc.as_bytes())?;
    let mut f = io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"xar!")?;
    f.write_all(&28u16.to_be_bytes())?;
    f.write_all(&1u16.to_be_bytes())?;
    f.write_all(&(toc_z.len() as u64).to_be_bytes())?;
    f.write_all(&(toc.len() as u64).to_be_bytes())?;
    f.write_all(&0u32.to_be_bytes())?;
    f.write_all(&toc_z)?;
    f.write_all(&dist_z)?;
    f.write_all(&info_z)?;
    write_pattern(&mut f, spec.payload_bytes, 7)?;
    f.flush()
}
