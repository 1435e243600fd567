//! Fixed caps on what reading an artifact may cost, so a hostile or broken
//! file (zip bomb, endless nesting, bogus lengths) ends with a clear error
//! instead of exhausting memory, stack or time.

use super::ArtifactError;
use std::io::Read;

/// Inflated bytes of an Info.plist, PackageInfo or Distribution.
pub const MAX_PLIST: u64 = 8 * 1024 * 1024;
/// Inflated bytes of a `.pkg` table of contents (and its compressed size).
pub const MAX_TOC: u64 = 16 * 1024 * 1024;
/// Compressed bytes of a `.pkg` member flightdeck reads.
pub const MAX_MEMBER: u64 = 4 * 1024 * 1024;
/// Entries in an `.ipa`'s zip directory, files in a `.pkg` TOC.
pub const MAX_ENTRIES: usize = 200_000;
/// Nesting of plist collections and TOC XML elements.
pub const MAX_DEPTH: usize = 128;
/// Plist events (values, collection starts and ends) in one Info.plist: a
/// binary plist may share one object many times, which multiplies them.
pub const MAX_PLIST_EVENTS: usize = 1_000_000;

pub fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

/// Read at most `cap` bytes from `r`; more than that is an error naming `what`.
pub fn read_capped(
    r: impl Read,
    cap: u64,
    shown: &str,
    what: &str,
) -> Result<Vec<u8>, ArtifactError> {
    let mut out = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| ArtifactError::Corrupt(shown.into(), format!("{what}: {e}")))?;
    if out.len() as u64 > cap {
        return Err(ArtifactError::TooLarge(
            shown.into(),
            format!("{what} inflates past {}", human(cap)),
        ));
    }
    Ok(out)
}

/// Marks a limit error raised inside the plist walk.
const LIMIT: &str = "flightdeck limit: ";

/// Walk a plist without building it: refuse deep nesting and value floods
/// before `plist` builds a value (recursively, one stack frame per level).
pub fn check_plist_shape(bytes: &[u8], shown: &str) -> Result<(), ArtifactError> {
    match plist::from_bytes::<Checked>(bytes) {
        Ok(Checked) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            match msg.split_once(LIMIT) {
                Some((_, limit)) => Err(ArtifactError::TooLarge(
                    shown.into(),
                    limit.trim_end_matches(['"', ')']).to_string(),
                )),
                None => Err(ArtifactError::BadPlist(shown.into(), msg)),
            }
        }
    }
}

/// A plist that passed the walk.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::DeserializeSeed;
        let count = std::cell::Cell::new(0usize);
        Shape {
            depth: 0,
            count: &count,
        }
        .deserialize(d)?;
        Ok(Checked)
    }
}

/// One value at `depth`; `count` is shared by the whole walk.
struct Shape<'a> {
    depth: usize,
    count: &'a std::cell::Cell<usize>,
}

impl<'a> Shape<'a> {
    fn tick<E: serde::de::Error>(&self) -> Result<(), E> {
        let n = self.count.get() + 1;
        self.count.set(n);
        if n > MAX_PLIST_EVENTS {
            return Err(E::custom(format!(
                "{LIMIT}Info.plist has more than {MAX_PLIST_EVENTS} values"
            )));
        }
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format!(
                "{LIMIT}Info.plist nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn child(&self) -> Shape<'a> {
        Shape {
            depth: self.depth + 1,
            count: self.count,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Shape<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! leaf {
    ($($name:ident: $t:ty),*) => {
        $(fn $name<E: serde::de::Error>(self, _v: $t) -> Result<(), E> {
            self.tick()
        })*
    };
}

impl<'de> serde::de::Visitor<'de> for Shape<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a property list")
    }

    leaf!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64,
          visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(self.child())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick()?;
        while map.next_key_seed(self.child())?.is_some() {
            map.next_value_seed(self.child())?;
        }
        Ok(())
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.tick()?;
        let ((), v) = data.variant_seed(self.child())?;
        v.newtype_variant_seed(self.child())
    }
}
