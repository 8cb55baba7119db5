//! The README stays true: every `stride …` example in its code blocks that needs no external
//! file runs successfully (placeholders such as `X`, `x.npy` or `...` are skipped, as are long
//! jobs: training and benchmarks, and `features`, which needs a trained run and is tested in
//! `tests/features.rs`); so does every command in the table of the course's exercises.

mod common;

/// Splits a shell-quoted command line into words (single quotes only, as the README uses).
fn words(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            _ => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn readme_examples_run() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut in_code = false;
    let mut commands = vec![];
    let mut pending = String::new();
    let mut table = vec![];
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            // the exercise table: every `stride …` in a table row is a command too
            if line.starts_with('|') {
                for (i, part) in line.split('`').enumerate() {
                    if let Some(rest) = part.strip_prefix("stride ").filter(|_| i % 2 == 1) {
                        table.push(rest.to_string());
                    }
                }
            }
            continue;
        }
        let l = line.split(" # ").next().unwrap().trim_end();
        if !pending.is_empty() {
            pending.push(' ');
            pending.push_str(l.trim().trim_end_matches('\\').trim());
            if !l.ends_with('\\') {
                commands.push(std::mem::take(&mut pending));
            }
            continue;
        }
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("stride ") {
            if l.ends_with('\\') {
                pending = rest.trim_end_matches('\\').trim().to_string();
            } else {
                commands.push(rest.to_string());
            }
        }
    }
    // placeholders (X, W, GY, ...) and files the reader would supply; long jobs
    let skip = |c: &str| {
        let w = words(c);
        w.iter().any(|t| {
            ["X", "W", "GY", "..."].contains(&t.as_str())
                || t.ends_with(".npy")
                || t.ends_with(".json")
        }) || [
            "train", "bench", "eval", "predict", "features", "export", "import",
        ]
        .contains(&w[0].as_str())
    };
    // the exercise table: at least 30 rows, and every command but training ones runs
    assert!(
        table.len() >= 30,
        "only {} commands in the exercise table",
        table.len()
    );
    commands.extend(table);
    let mut ran = 0;
    for c in &commands {
        if skip(c) {
            continue;
        }
        let args = words(c);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::ok(&args);
        ran += 1;
    }
    assert!(ran >= 40, "only {ran} README examples ran: {commands:#?}");
}
