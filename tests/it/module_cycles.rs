//! No module imports one that imports it back (DESIGN.md, layout): reads every `.rs` file of the
//! library, the binary and the loopback AWS server from their crate roots, builds the import graph
//! at file granularity (module_cycles/graph.rs says what counts as an edge) and fails naming each
//! cycle. Also fails when a `.rs` file under the source trees is reached by no crate root, so a
//! file cannot escape the check by not being found, and when a layer imports one above it
//! ([`LAYER_RULES`]: the model imports nothing, report never detect or aws, pkgdb never detect).

mod graph;
mod lex;

use graph::{CrateRoot, Graph, build, cycles};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The crates of this repository whose module structure the design speaks for.
fn crates() -> Vec<CrateRoot> {
    let c = |root: &str, name: Option<&str>, uses: &[&str]| CrateRoot {
        root: PathBuf::from(root),
        name: name.map(str::to_string),
        uses: uses.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        c("src/lib.rs", Some("amiscan"), &[]),
        c("src/main.rs", None, &["amiscan"]),
        c("aws-test-server/src/lib.rs", Some("aws_test_server"), &[]),
        c("aws-test-server/src/main.rs", None, &["aws_test_server"]),
    ]
}

/// Each cycle as `a.rs → b.rs → a.rs`, with the other files of its component when there are more.
fn describe(g: &Graph) -> Vec<String> {
    cycles(g)
        .into_iter()
        .map(|(cycle, comp)| {
            let name = |i: &usize| g.files[*i].display().to_string();
            let mut s = cycle.iter().map(name).collect::<Vec<_>>().join(" → ");
            if comp.len() + 1 > cycle.len() {
                let all: Vec<String> = comp.iter().map(name).collect();
                s.push_str(&format!(
                    "  (component of {} files: {})",
                    comp.len(),
                    all.join(", ")
                ));
            }
            s
        })
        .collect()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let g = build(&crates(), &|p| std::fs::read_to_string(base.join(p)).ok());
    assert!(
        g.missing.is_empty(),
        "declared modules without a file: {:?}",
        g.missing
    );

    let mut on_disk = Vec::new();
    rs_files(&base.join("src"), &mut on_disk);
    rs_files(&base.join("aws-test-server/src"), &mut on_disk);
    let reached: Vec<PathBuf> = g.files.iter().map(|f| base.join(f)).collect();
    let unreached: Vec<_> = on_disk.iter().filter(|f| !reached.contains(f)).collect();
    assert!(
        unreached.is_empty(),
        "files no crate root declares: {unreached:?}"
    );
    assert!(
        g.edges.len() > g.files.len(),
        "too few imports found: the reader is broken"
    );

    let found = describe(&g);
    assert!(
        found.is_empty(),
        "{} module cycle(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The layers the design names (DESIGN.md, layout): what a layer's files may not import.
const LAYER_RULES: &[(&str, &[&str])] = &[
    // The ground floor imports nothing of the crate.
    ("src/model.rs", &["src/"]),
    // Package databases: bytes in, records out.
    (
        "src/pkgdb/",
        &[
            "src/detect/",
            "src/scan/",
            "src/report/",
            "src/fs/",
            "src/aws/",
        ],
    ),
    // Writers only: they see the model, never detection, scanning or the AWS layer.
    (
        "src/report/",
        &[
            "src/aws/",
            "src/detect/",
            "src/scan/",
            "src/fs/",
            "src/volume/",
            "src/source/",
        ],
    ),
    // Readers below detection.
    ("src/fs/", &["src/detect/", "src/scan/", "src/report/"]),
    ("src/volume/", &["src/detect/", "src/scan/", "src/report/"]),
];

#[test]
fn layers_import_only_downwards() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let g = build(&crates(), &|p| std::fs::read_to_string(base.join(p)).ok());
    let mut bad = Vec::new();
    for &(a, b) in &g.edges {
        let (from, to) = (g.files[a].to_string_lossy(), g.files[b].to_string_lossy());
        for (layer, forbidden) in LAYER_RULES {
            let inside = |p: &str| p.starts_with(layer);
            if inside(&from) && !inside(&to) && forbidden.iter().any(|f| to.starts_with(f)) {
                bad.push(format!("{from} imports {to}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

/// The graph of an in-memory tree with one crate rooted at `lib.rs`.
fn graph_of(files: &[(&str, &str)]) -> (Graph, Vec<String>) {
    let map: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), s.to_string()))
        .collect();
    let roots = [CrateRoot {
        root: "lib.rs".into(),
        name: None,
        uses: vec![],
    }];
    let g = build(&roots, &|p| map.get(p).cloned());
    let d = describe(&g);
    (g, d)
}

fn edge_names(g: &Graph) -> Vec<String> {
    g.edges
        .iter()
        .map(|&(a, b)| format!("{} -> {}", g.files[a].display(), g.files[b].display()))
        .collect()
}

#[test]
fn a_child_using_its_parent_that_uses_it_back_is_a_cycle() {
    let (_, found) = graph_of(&[
        ("lib.rs", "pub mod a;"),
        (
            "a/mod.rs",
            "mod b;\npub struct Shared;\npub fn f() { b::g() }\nuse self::b::G;",
        ),
        ("a/b.rs", "use super::Shared;\npub struct G;"),
    ]);
    assert_eq!(found, vec!["a/b.rs → a/mod.rs → a/b.rs"]);
}

#[test]
fn a_mod_declaration_alone_is_no_edge() {
    let (g, found) = graph_of(&[
        ("lib.rs", "pub mod a;"),
        (
            "a.rs",
            "pub mod b;\n#[cfg(test)]\nmod tests { use super::*; }",
        ),
        ("a/b.rs", "use super::super::a;\nuse crate::a::Thing;"),
    ]);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(edge_names(&g), vec!["a/b.rs -> a.rs"]);
}

#[test]
fn grouped_uses_and_paths_in_code_count_and_literals_do_not() {
    let (g, found) = graph_of(&[
        ("lib.rs", "pub mod x;\npub mod y;\npub mod z;\npub mod w;"),
        (
            "x.rs",
            "use crate::{y::{self, Y}, z::Z as Zed};\n// crate::w::gone\nconst S: &str = \"crate::w\";",
        ),
        ("y.rs", "pub struct Y; fn f() { let _ = crate::z::make(); }"),
        ("z.rs", "pub struct Z; pub fn make() { crate::x::touch() }"),
        ("w.rs", ""),
    ]);
    assert_eq!(
        edge_names(&g),
        vec![
            "x.rs -> y.rs",
            "x.rs -> z.rs",
            "y.rs -> z.rs",
            "z.rs -> x.rs"
        ]
    );
    assert_eq!(
        found,
        vec!["x.rs → z.rs → x.rs  (component of 3 files: x.rs, y.rs, z.rs)"]
    );
}

#[test]
fn inline_modules_belong_to_their_file_and_resolve_super_from_inside() {
    let (g, found) = graph_of(&[
        ("lib.rs", "pub mod p;\npub mod q;"),
        (
            "p.rs",
            "pub mod build { use super::super::q::Q; }\n#[cfg(test)] mod tests { use super::build; }",
        ),
        ("q.rs", "pub struct Q;"),
    ]);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(edge_names(&g), vec!["p.rs -> q.rs"]);
}
