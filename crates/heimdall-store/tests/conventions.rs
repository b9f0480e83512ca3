//! Conventions of the store's source, checked on the files themselves:
//! columns are read by name (`r.try_get("id")`), never by position, so that
//! a reordered column list cannot silently shift values; and every module
//! stays under 600 lines (one concern per module).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn sources() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    assert!(
        out.len() > 10,
        "found the store's modules in {}",
        dir.display()
    );
    out
}

/// `try_get(` or `try_get::<…>(` followed by a digit.
fn positional_reads(line: &str) -> bool {
    let mut rest = line;
    while let Some(at) = rest.find("try_get") {
        let mut tail = &rest[at + "try_get".len()..];
        if let Some(generic) = tail.strip_prefix("::<") {
            // Skip the turbofish, nested generics included.
            let mut depth = 1;
            let mut end = generic.len();
            for (i, c) in generic.char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            tail = &generic[end..];
        }
        if let Some(arg) = tail.strip_prefix('(')
            && arg.trim_start().starts_with(|c: char| c.is_ascii_digit())
        {
            return true;
        }
        rest = tail;
    }
    false
}

#[test]
fn the_checker_sees_positional_reads() {
    assert!(positional_reads("let id: i64 = r.try_get(0)?;"));
    assert!(positional_reads("r.try_get::<Option<String>, _>(2)?"));
    assert!(positional_reads(
        "a: r.try_get(\"a\")?, b: r.try_get::<i64, _>( 1)?"
    ));
    assert!(!positional_reads("r.try_get(\"id\")?"));
    assert!(!positional_reads(
        "r.try_get::<Option<String>, _>(\"description\")?"
    ));
    assert!(!positional_reads("row.try_get(name)?"));
}

#[test]
fn rows_are_read_by_column_name() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            if positional_reads(line) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "read by position:\n{}", found.join("\n"));
}

#[test]
fn every_module_is_under_600_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|(_, text)| text.lines().count() >= 600)
        .map(|(p, text)| format!("{}: {} lines", p.display(), text.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "split these by concern:\n{}",
        long.join("\n")
    );
}
