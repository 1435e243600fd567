//! A `.pkg` is a xar archive: a fixed header, a zlib-compressed XML table of
//! contents, then the heap its `<file>` entries point into. The app's id and
//! versions come from a component's `PackageInfo` (`<bundle>` of the
//! outermost `.app`), with the product archive's `Distribution`
//! (`<product id version>`) filling in what is left.

use super::xml::Element;
use super::{Found, Platform};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bounds on what is inflated into memory.
const TOC_LIMIT: u64 = 16 << 20;
const MEMBER_LIMIT: u64 = 4 << 20;

/// A file stored in the heap.
struct Member {
    name: String,
    offset: u64,
    length: u64,
    zlib: bool,
}

pub(super) fn read(path: &Path) -> Result<Found, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let (toc, heap_start) = table_of_contents(&mut file)?;
    let members = members(&toc);
    let mut found = Found {
        platform: Some(Platform::MacOs),
        ..Found::default()
    };
    for m in members.iter().filter(|m| m.name == "PackageInfo") {
        let info = Element::parse(&member_text(&mut file, heap_start, m)?)
            .map_err(|e| format!("PackageInfo: {e}"))?;
        if let Some(app) = outermost_app(&info) {
            found.bundle_id = app.attr("id").map(String::from);
            found.version = app.attr("CFBundleShortVersionString").map(String::from);
            found.build_number = app.attr("CFBundleVersion").map(String::from);
            break;
        }
    }
    if found.bundle_id.is_some() && found.version.is_some() {
        return Ok(found);
    }
    for m in members.iter().filter(|m| m.name == "Distribution") {
        let dist = Element::parse(&member_text(&mut file, heap_start, m)?)
            .map_err(|e| format!("Distribution: {e}"))?;
        if let Some(product) = dist.descendants("product").first().copied()
            && let Some(id) = product.attr("id")
        {
            found.bundle_id.get_or_insert_with(|| id.to_string());
            if found.version.is_none() {
                found.version = product.attr("version").map(String::from);
            }
        }
    }
    Ok(found)
}

/// The parsed table of contents and where the heap starts.
fn table_of_contents(file: &mut File) -> Result<(Element, u64), String> {
    // magic "xar!", u16 header size, u16 version, u64 compressed TOC
    // length, u64 uncompressed length, u32 checksum algorithm; big-endian.
    let mut header = [0u8; 28];
    file.read_exact(&mut header)
        .map_err(|_| "too short for a xar header".to_string())?;
    if !header.starts_with(b"xar!") {
        return Err("not a xar archive (no xar! signature)".into());
    }
    let header_len = u64::from(u16::from_be_bytes([header[4], header[5]]));
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[8..16]);
    let toc_len = u64::from_be_bytes(len);
    if header_len < 28 || toc_len == 0 || toc_len > TOC_LIMIT {
        return Err(format!(
            "xar header is implausible (header {header_len} bytes, table of contents {toc_len})"
        ));
    }
    file.seek(SeekFrom::Start(header_len))
        .map_err(|e| e.to_string())?;
    let mut compressed = Vec::new();
    file.by_ref()
        .take(toc_len)
        .read_to_end(&mut compressed)
        .map_err(|e| e.to_string())?;
    if compressed.len() as u64 != toc_len {
        return Err("the xar table of contents is cut short".into());
    }
    let toc = inflate(&compressed, TOC_LIMIT)
        .map_err(|e| format!("the xar table of contents does not inflate: {e}"))?;
    let toc = Element::parse(&toc).map_err(|e| format!("xar table of contents: {e}"))?;
    Ok((toc, header_len + toc_len))
}

/// Every `<file>` with data in the heap, at any depth.
fn members(toc: &Element) -> Vec<Member> {
    let number = |data: &Element, field: &str| {
        data.child(field)
            .and_then(|e| e.text.parse::<u64>().ok())
            .unwrap_or(0)
    };
    toc.descendants("file")
        .into_iter()
        .filter_map(|f| {
            let data = f.child("data")?;
            let style = data.child("encoding").and_then(|e| e.attr("style"));
            Some(Member {
                name: f.child("name")?.text.clone(),
                offset: number(data, "offset"),
                length: number(data, "length"),
                zlib: style.is_some_and(|s| s.contains("gzip")),
            })
        })
        .filter(|m| m.length > 0)
        .collect()
}

fn member_text(file: &mut File, heap_start: u64, m: &Member) -> Result<String, String> {
    if m.length > MEMBER_LIMIT {
        return Err(format!("{} is too large ({} bytes)", m.name, m.length));
    }
    let start = heap_start
        .checked_add(m.offset)
        .ok_or_else(|| format!("{} has an impossible offset", m.name))?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    file.by_ref()
        .take(m.length)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    if raw.len() as u64 != m.length {
        return Err(format!("{} runs past the end of the file", m.name));
    }
    if m.zlib {
        inflate(&raw, MEMBER_LIMIT).map_err(|e| format!("{} does not inflate: {e}", m.name))
    } else {
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }
}

/// xar's "application/x-gzip" encoding is a zlib stream.
fn inflate(compressed: &[u8], limit: u64) -> std::io::Result<String> {
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(limit)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The `<bundle>` whose path is the shallowest `.app` (nested helpers are
/// bundles too).
fn outermost_app(package_info: &Element) -> Option<&Element> {
    package_info
        .descendants("bundle")
        .into_iter()
        .filter(|b| b.attr("id").is_some())
        .filter_map(|b| {
            let path = b.attr("path")?.trim_end_matches('/');
            path.ends_with(".app")
                .then(|| (path.matches('/').count(), b))
        })
        .min_by_key(|(depth, _)| *depth)
        .map(|(_, b)| b)
}
