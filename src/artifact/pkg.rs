//! `.pkg`: a XAR archive. Its zlib-compressed XML table of contents lists the
//! files; a component's `PackageInfo` names the app bundle with its
//! `CFBundleShortVersionString` and `CFBundleVersion`, and `Distribution`
//! names the product id and version.

use super::limits::{MAX_DEPTH, MAX_ENTRIES, MAX_MEMBER, MAX_PLIST, MAX_TOC, human, read_capped};
use super::{ArtifactError, BundleInfo};
use crate::api::models::Platform;
use quick_xml::events::Event;
use std::io::{Read, Seek, SeekFrom};

const MAGIC: &[u8; 4] = b"xar!";

#[derive(Debug, Clone, Default)]
struct Member {
    name: String,
    offset: u64,
    length: u64,
    gzip: bool,
}

pub fn read<R: Read + Seek>(mut f: R, len: u64, shown: &str) -> Result<BundleInfo, ArtifactError> {
    let bad = |m: String| ArtifactError::NotXar(shown.to_string(), m);
    let mut header = [0u8; 28];
    f.read_exact(&mut header)
        .map_err(|_| bad("shorter than a xar header".into()))?;
    if &header[..4] != MAGIC {
        return Err(bad("missing the xar! signature".into()));
    }
    let header_size = u16::from_be_bytes([header[4], header[5]]) as u64;
    let toc_len = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
    if toc_len == 0 || header_size < 28 {
        return Err(bad(format!(
            "implausible table of contents ({toc_len} bytes)"
        )));
    }
    if toc_len > MAX_TOC {
        return Err(ArtifactError::TooLarge(
            shown.into(),
            format!(
                "the header declares a {toc_len}-byte table of contents (at most {})",
                human(MAX_TOC)
            ),
        ));
    }
    if header_size.saturating_add(toc_len) > len {
        return Err(bad(format!(
            "the header declares a {toc_len}-byte table of contents, past the end of the {len}-byte file"
        )));
    }
    f.seek(SeekFrom::Start(header_size))
        .map_err(|e| bad(e.to_string()))?;
    let mut compressed = vec![0u8; toc_len as usize];
    f.read_exact(&mut compressed)
        .map_err(|_| bad("truncated table of contents".into()))?;
    let toc = read_capped(
        flate2::read::ZlibDecoder::new(&compressed[..]),
        MAX_TOC,
        shown,
        "the table of contents",
    )?;
    let toc =
        String::from_utf8(toc).map_err(|_| bad("the table of contents is not UTF-8".into()))?;
    let heap = header_size + toc_len;
    let members = members(&toc, shown)?;
    let mut info = BundleInfo {
        platform: Some(Platform::MacOs),
        ..BundleInfo::default()
    };
    for m in members.iter().filter(|m| m.name == "PackageInfo") {
        let xml = member_text(&mut f, heap, len, m, shown)?;
        if let Some((id, short, build)) = bundle_from_package_info(&xml) {
            info.bundle_id = Some(id);
            info.version = short;
            info.build_number = build;
            break;
        }
    }
    if info.bundle_id.is_none() || info.version.is_none() {
        for m in members.iter().filter(|m| m.name == "Distribution") {
            let xml = member_text(&mut f, heap, len, m, shown)?;
            if let Some((id, version)) = product_from_distribution(&xml) {
                info.bundle_id = info.bundle_id.or(Some(id));
                info.version = info.version.or(version);
            }
        }
    }
    Ok(info)
}

fn member_text<R: Read + Seek>(
    f: &mut R,
    heap: u64,
    len: u64,
    m: &Member,
    shown: &str,
) -> Result<String, ArtifactError> {
    let bad = |msg: String| ArtifactError::NotXar(shown.to_string(), msg);
    if m.length > MAX_MEMBER {
        return Err(ArtifactError::TooLarge(
            shown.into(),
            format!(
                "{} is {} bytes (at most {})",
                m.name,
                m.length,
                human(MAX_MEMBER)
            ),
        ));
    }
    let start = heap
        .checked_add(m.offset)
        .filter(|s| s.saturating_add(m.length) <= len)
        .ok_or_else(|| bad(format!("{} lies past the end of the file", m.name)))?;
    f.seek(SeekFrom::Start(start))
        .map_err(|e| bad(e.to_string()))?;
    let mut raw = vec![0u8; m.length as usize];
    f.read_exact(&mut raw)
        .map_err(|_| bad(format!("{} lies past the end of the file", m.name)))?;
    let bytes = if m.gzip {
        read_capped(
            flate2::read::ZlibDecoder::new(&raw[..]),
            MAX_PLIST,
            shown,
            &m.name,
        )?
    } else {
        raw
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The members of the TOC with their heap location (files at any depth, up
/// to `MAX_DEPTH` elements and `MAX_ENTRIES` files).
fn members(toc: &str, shown: &str) -> Result<Vec<Member>, ArtifactError> {
    let too_large = |m: String| ArtifactError::TooLarge(shown.to_string(), m);
    let mut reader = quick_xml::Reader::from_str(toc);
    let mut out = Vec::new();
    let mut stack: Vec<Member> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    loop {
        match reader.read_event().map_err(|e| {
            ArtifactError::NotXar(shown.into(), format!("table of contents is not XML: {e}"))
        })? {
            Event::Start(e) => {
                if path.len() >= MAX_DEPTH {
                    return Err(too_large(format!(
                        "the table of contents nests deeper than {MAX_DEPTH} elements"
                    )));
                }
                let name = e.name().as_ref().to_string();
                if name == "file" {
                    stack.push(Member::default());
                }
                path.push(name);
            }
            Event::Empty(e) => {
                if e.name().as_ref() == "encoding"
                    && let Some(m) = stack.last_mut()
                {
                    let style = e.attributes().flatten().find(|a| a.key.as_ref() == "style");
                    m.gzip = style.is_some_and(|a| {
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|v| v.contains("gzip"))
                            .unwrap_or(false)
                    });
                }
            }
            Event::Text(t) => {
                let text = t.trim().to_string();
                let (Some(tag), Some(m)) = (path.last(), stack.last_mut()) else {
                    continue;
                };
                let parent = path
                    .len()
                    .checked_sub(2)
                    .and_then(|i| path.get(i))
                    .map(String::as_str);
                match (parent, tag.as_str()) {
                    (Some("file"), "name") => m.name = text,
                    (Some("data"), "offset") => m.offset = text.parse().unwrap_or(0),
                    (Some("data"), "length") => m.length = text.parse().unwrap_or(0),
                    _ => {}
                }
            }
            Event::End(e) => {
                if e.name().as_ref() == "file"
                    && let Some(m) = stack.pop()
                    && m.length > 0
                {
                    if out.len() >= MAX_ENTRIES {
                        return Err(too_large(format!(
                            "the table of contents lists more than {MAX_ENTRIES} files"
                        )));
                    }
                    out.push(m);
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn attrs(e: &quick_xml::events::BytesStart) -> Vec<(String, String)> {
    e.attributes()
        .flatten()
        .map(|a| {
            (
                a.key.as_ref().to_string(),
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map(|v| v.into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// Bundle id, CFBundleShortVersionString, CFBundleVersion.
type BundleVersions = (String, Option<String>, Option<String>);

/// `<bundle id=… CFBundleShortVersionString=… CFBundleVersion=… path=…>`: the
/// top-most `.app` bundle.
fn bundle_from_package_info(xml: &str) -> Option<BundleVersions> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut best: Option<(usize, BundleVersions)> = None;
    while let Ok(ev) = reader.read_event() {
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) if e.name().as_ref() == "bundle" => {
                let a = attrs(e);
                let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let (Some(id), Some(path)) = (get("id"), get("path")) else {
                    continue;
                };
                if !path.trim_end_matches('/').ends_with(".app") {
                    continue;
                }
                let depth = path.matches('/').count();
                let cand = (
                    id,
                    get("CFBundleShortVersionString"),
                    get("CFBundleVersion"),
                );
                if best.as_ref().is_none_or(|(d, _)| depth < *d) {
                    best = Some((depth, cand));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    best.map(|(_, b)| b)
}

/// `<product id=… version=…/>` of a Distribution file.
fn product_from_distribution(xml: &str) -> Option<(String, Option<String>)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    while let Ok(ev) = reader.read_event() {
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) if e.name().as_ref() == "product" => {
                let a = attrs(e);
                let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                return get("id").map(|id| (id, get("version")));
            }
            Event::Eof => return None,
            _ => {}
        }
    }
    None
}
