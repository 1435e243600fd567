//! Writes the starting corpus for each fuzz target into `fuzz/corpus/<target>/`:
//! the generated artifact fixtures and nasty corpus (small ones only), the
//! example pipeline, webhook samples and key forms.

use asc_simulator::fixture::{AppSpec, write_ipa, write_pkg};
use std::path::Path;

/// Inputs larger than this make every mutation slow; the caps they exercise
/// are covered by the test suite.
const MAX_SEED: usize = 64 * 1024;

fn put(target: &str, name: &str, bytes: &[u8]) {
    if bytes.len() > MAX_SEED {
        return;
    }
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let tmp = std::env::temp_dir().join("flightdeck-fuzz-seed");
    std::fs::create_dir_all(&tmp).expect("temp dir");
    for (i, binary) in [false, true].into_iter().enumerate() {
        let spec = AppSpec {
            payload_bytes: 512,
            binary_plist: binary,
            ..AppSpec::new("com.example.app", "1.0", "1")
        };
        let ipa = tmp.join("a.ipa");
        write_ipa(&ipa, &spec).expect("ipa");
        let mut bytes = vec![0u8];
        bytes.extend(std::fs::read(&ipa).expect("read ipa"));
        put("artifact", &format!("good-{i}.ipa"), &bytes);
    }
    let pkg = tmp.join("a.pkg");
    write_pkg(
        &pkg,
        &AppSpec {
            payload_bytes: 512,
            ..AppSpec::new("com.example.app", "1.0", "1")
        },
    )
    .expect("pkg");
    let mut bytes = vec![1u8];
    bytes.extend(std::fs::read(&pkg).expect("read pkg"));
    put("artifact", "good.pkg", &bytes);
    for n in flightdeck::artifact::nasty::corpus() {
        let mut bytes = vec![u8::from(n.name.ends_with(".pkg"))];
        bytes.extend(&n.bytes);
        put("artifact", n.name, &bytes);
    }
    let root = Path::new("..");
    for (target, dir, ext) in [
        ("pipeline", "examples", "yml"),
        ("webhook", "tests/fixtures", "json"),
    ] {
        for e in std::fs::read_dir(root.join(dir))
            .expect("seed dir")
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == ext) {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                put(target, &name, &std::fs::read(&p).expect("seed file"));
            }
        }
    }
    let (pem, _) = flightdeck::auth::key::generate();
    for (i, seed) in flightdeck::fuzzing::credential_seeds(pem.expose())
        .iter()
        .enumerate()
    {
        put("credentials", &format!("seed-{i}"), seed.as_bytes());
    }
}
