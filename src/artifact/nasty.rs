//! Hostile and broken artifacts, generated (no binary blobs in git): zip
//! bombs, path traversal names, truncation, huge and deeply nested plists,
//! xar archives with bogus lengths or a bomb for a table of contents. The
//! tests read each within the caps of `limits`; the fuzz targets start from
//! them.

use super::limits::{MAX_DEPTH, MAX_PLIST};
use asc_simulator::fixture::{AppSpec, write_ipa, write_pkg};
use std::io::Write;

/// One generated input: a file name (its extension picks the reader), its
/// bytes, and a phrase the error must contain.
pub struct Nasty {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub expect: &'static str,
}

/// Raw deflate data that inflates to about `gib` GiB of zeros: one
/// self-contained, byte-aligned chunk (full flush) repeated.
pub fn deflate_bomb(gib: u64) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut chunk = Vec::with_capacity(4096);
    c.compress_vec(&vec![0u8; 1 << 20], &mut chunk, flate2::FlushCompress::Full)
        .expect("deflate a zero block");
    chunk.repeat((gib * 1024) as usize)
}

/// A zip with the given (name, method, declared size, data) entries, written
/// by hand so sizes can lie. The checksum is that of `data` (right for
/// stored entries; a bomb never reaches its end).
pub fn raw_zip(entries: &[(&str, u16, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, method, declared, data) in entries {
        let offset = out.len() as u32;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();
        let head = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes());
            }
            h.extend(20u16.to_le_bytes());
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(method.to_le_bytes());
            h.extend(0u32.to_le_bytes()); // time, date
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend(declared.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend([0u8; 6]); // comment length, disk, internal attrs
                h.extend(0u32.to_le_bytes()); // external attrs
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(head(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

const PLIST: &str = "Payload/Bomb.app/Info.plist";

fn xml_plist(inner: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>CFBundleIdentifier</key><string>com.example.app</string><key>X</key>{inner}</dict></plist>"#
    )
    .into_bytes()
}

/// A binary plist of `objects` (each already encoded), the last as the top.
fn bplist(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for o in objects {
        offsets.push(out.len() as u32);
        out.extend(o);
    }
    let table = out.len() as u64;
    for o in &offsets {
        out.extend(o.to_be_bytes());
    }
    out.extend([0u8; 6]);
    out.push(4); // offset size
    out.push(4); // object ref size
    out.extend((objects.len() as u64).to_be_bytes());
    out.extend((objects.len() as u64 - 1).to_be_bytes()); // top object
    out.extend(table.to_be_bytes());
    out
}

/// Object i is a two-element array referring twice to object i-1: sharing
/// turns `n` objects into 2^n values.
pub fn shared_plist(n: u32) -> Vec<u8> {
    let mut objects = vec![vec![0x10, 0x00]]; // integer 0
    for i in 1..n {
        let mut o = vec![0xA2];
        o.extend((i - 1).to_be_bytes());
        o.extend((i - 1).to_be_bytes());
        objects.push(o);
    }
    bplist(&objects)
}

/// Each object an array holding the previous one: `n` levels deep.
pub fn deep_binary_plist(n: u32) -> Vec<u8> {
    let mut objects = vec![vec![0x10, 0x00]];
    for i in 1..n {
        let mut o = vec![0xA1];
        o.extend((i - 1).to_be_bytes());
        objects.push(o);
    }
    bplist(&objects)
}

fn ipa_with_plist(plist: &[u8]) -> Vec<u8> {
    raw_zip(&[(PLIST, 0, plist.len() as u32, plist)])
}

fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        zip.start_file(*name, o).expect("zip entry");
        zip.write_all(data).expect("zip data");
    }
    zip.finish().expect("zip").into_inner()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("zlib");
    e.finish().expect("zlib")
}

/// A xar header declaring `toc_len` compressed TOC bytes, then `rest`.
pub fn xar(toc_len: u64, rest: &[u8]) -> Vec<u8> {
    let mut f = b"xar!".to_vec();
    f.extend(28u16.to_be_bytes());
    f.extend(1u16.to_be_bytes());
    f.extend(toc_len.to_be_bytes());
    f.extend(0u64.to_be_bytes());
    f.extend(0u32.to_be_bytes());
    f.extend(rest);
    f
}

fn xar_with_toc(toc: &str) -> Vec<u8> {
    let z = zlib(toc.as_bytes());
    xar(z.len() as u64, &z)
}

fn good(kind: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join(format!("good.{kind}"));
    let spec = AppSpec {
        payload_bytes: 4096,
        ..AppSpec::new("com.example.app", "1.0", "1")
    };
    if kind == "ipa" {
        write_ipa(&p, &spec).expect("ipa");
    } else {
        write_pkg(&p, &spec).expect("pkg");
    }
    std::fs::read(p).expect("read fixture")
}

/// The whole corpus.
pub fn corpus() -> Vec<Nasty> {
    let deep = MAX_DEPTH * 800;
    let bomb = deflate_bomb(2);
    let mut toc_bomb = vec![0x78, 0x01];
    toc_bomb.extend(deflate_bomb(2));
    let mut bomb_member = vec![0x78, 0x01];
    bomb_member.extend(deflate_bomb(1));
    let member_toc = format!(
        r#"<xar><toc><file id="1"><name>PackageInfo</name><data><length>{}</length><offset>0</offset><encoding style="application/x-gzip"/></data></file></toc></xar>"#,
        bomb_member.len()
    );
    let member_toc_z = zlib(member_toc.as_bytes());
    let mut member_bomb_pkg = xar(member_toc_z.len() as u64, &member_toc_z);
    member_bomb_pkg.extend(&bomb_member);
    let mut truncated_ipa = good("ipa");
    truncated_ipa.truncate(truncated_ipa.len() / 2);
    let mut truncated_pkg = good("pkg");
    truncated_pkg.truncate(40);
    let inner = good("ipa");
    let nested = (0..8).fold(inner, |z, i| {
        stored_zip(&[(if i % 2 == 0 { "inner.ipa" } else { "inner.zip" }, &z)])
    });
    vec![
        Nasty {
            name: "zip-bomb.ipa",
            // Declares 1000 bytes, inflates to 2 GiB: stopped at the declared size.
            bytes: raw_zip(&[(PLIST, 8, 1000, &bomb)]),
            expect: "larger than its declared uncompressed size",
        },
        Nasty {
            name: "declared-huge.ipa",
            bytes: raw_zip(&[(PLIST, 8, u32::MAX - 1, &bomb[..4096])]),
            expect: "declares 4294967294 bytes",
        },
        Nasty {
            name: "huge-plist.ipa",
            bytes: stored_zip(&[(
                PLIST,
                &xml_plist(&format!(
                    "<string>{}</string>",
                    "a".repeat(MAX_PLIST as usize)
                )),
            )]),
            expect: "bytes (at most 8 MiB)",
        },
        Nasty {
            name: "nested-zips.ipa",
            bytes: nested,
            expect: "no Payload/<Name>.app/Info.plist",
        },
        Nasty {
            name: "traversal.ipa",
            bytes: stored_zip(&[("../../etc/passwd", b"x"), (PLIST, &xml_plist(""))]),
            expect: "unsafe path: `../../etc/passwd`",
        },
        Nasty {
            name: "absolute.ipa",
            bytes: stored_zip(&[("/etc/passwd", b"x"), (PLIST, &xml_plist(""))]),
            expect: "unsafe path: `/etc/passwd`",
        },
        Nasty {
            name: "truncated.ipa",
            bytes: truncated_ipa,
            expect: "not a valid .ipa",
        },
        Nasty {
            name: "deep-xml-plist.ipa",
            bytes: ipa_with_plist(&xml_plist(&format!(
                "{}{}",
                "<array>".repeat(deep),
                "</array>".repeat(deep)
            ))),
            expect: "nests deeper than 128 levels",
        },
        Nasty {
            name: "deep-binary-plist.ipa",
            bytes: ipa_with_plist(&deep_binary_plist(deep as u32)),
            expect: "nests deeper than 128 levels",
        },
        Nasty {
            name: "shared-binary-plist.ipa",
            bytes: ipa_with_plist(&shared_plist(64)),
            expect: "more than 1000000 values",
        },
        Nasty {
            name: "bogus-toc-length.pkg",
            bytes: xar(10 * 1024 * 1024, b"tiny"),
            expect: "past the end of the",
        },
        Nasty {
            name: "huge-toc-length.pkg",
            bytes: xar(u64::MAX, b"tiny"),
            expect: "-byte table of contents (at most 16 MiB)",
        },
        Nasty {
            name: "toc-bomb.pkg",
            bytes: xar(toc_bomb.len() as u64, &toc_bomb),
            expect: "the table of contents inflates past 16 MiB",
        },
        Nasty {
            name: "member-bomb.pkg",
            bytes: member_bomb_pkg,
            expect: "PackageInfo inflates past 8 MiB",
        },
        Nasty {
            name: "deep-toc.pkg",
            bytes: xar_with_toc(&format!("<xar>{}", "<a>".repeat(deep))),
            expect: "nests deeper than 128 elements",
        },
        Nasty {
            name: "member-offset-overflow.pkg",
            bytes: xar_with_toc(&format!(
                r#"<xar><toc><file id="1"><name>PackageInfo</name><data><length>10</length><offset>{}</offset></data></file></toc></xar>"#,
                u64::MAX
            )),
            expect: "PackageInfo lies past the end of the file",
        },
        Nasty {
            name: "truncated.pkg",
            bytes: truncated_pkg,
            expect: "past the end of the 40-byte file",
        },
    ]
}
