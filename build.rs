//! Collects the doc comments of the surveillance rules' fields (`src/surv/*.rs`: the `Rules`
//! struct, every `…Rules` struct and `Capacity`), so that `tickwatch rules` prints each key with
//! its meaning and default from the one place they are written: the source.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new("src/surv");
    println!("cargo:rerun-if-changed=src/surv");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("src/surv")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    let mut rows = String::new();
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let text = std::fs::read_to_string(&f).expect("readable source");
        let mut within: Option<String> = None;
        let mut doc: Vec<String> = Vec::new();
        for line in text.lines() {
            let t = line.trim();
            if let Some(name) = t
                .strip_prefix("pub struct ")
                .and_then(|r| r.strip_suffix(" {"))
            {
                let wanted = name == "Rules" || name == "Capacity" || name.ends_with("Rules");
                within = wanted.then(|| name.to_string());
                doc.clear();
                continue;
            }
            let Some(strukt) = &within else { continue };
            if t == "}" {
                within = None;
                continue;
            }
            if let Some(d) = t.strip_prefix("///") {
                doc.push(d.trim().to_string());
            } else if t.starts_with("#[") {
            } else if let Some(field) = t
                .strip_prefix("pub ")
                .and_then(|r| r.split_once(':'))
                .map(|(n, _)| n.trim())
            {
                let ty = t.split_once(':').map_or("", |(_, ty)| ty.trim());
                let ty = ty.trim_end_matches(',').rsplit("::").next().unwrap_or("");
                writeln!(
                    rows,
                    "    ({:?}, {:?}, {:?}, {:?}),",
                    strukt,
                    field,
                    ty,
                    doc.join(" ")
                )
                .unwrap();
                doc.clear();
            } else {
                doc.clear();
            }
        }
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("rule_docs.rs");
    std::fs::write(
        out,
        format!(
            "/// (struct, field, field type, doc comment) of every rules field, from the source.\n\
             pub static RULE_DOCS: &[(&str, &str, &str, &str)] = &[\n{rows}];\n"
        ),
    )
    .expect("writing rule_docs.rs");
}
