//! `stride summary` end to end: each format (table, markdown, JSON), presets, inline specs and
//! spec files, --input-shape, and every class of bad input (exit 2, one line naming the
//! argument). The numbers themselves are checked against the real network in tests/summary.rs.

mod common;
use common::*;

use stride::nn::models::{INPUT, PRESETS};
use stride::nn::spec::ModelSpec;

#[test]
fn cli_table() {
    let out = ok(&["summary", "lenet5"]);
    assert!(
        out.starts_with("lenet5: input (1, 28, 28), 12 layers, batch size 1"),
        "{out}"
    );
    let row = out.lines().find(|l| l.contains("conv(6,k=5,p=2)")).unwrap();
    for cell in [
        "(6, 28, 28)",
        "156",
        "117,600",
        "235,200",
        "5×5",
        "1×1",
        "-2,-2",
    ] {
        assert!(row.contains(cell), "{row}");
    }
    let total = out
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .unwrap();
    assert!(total.contains("61,706"), "{total}");
    assert!(
        out.contains("receptive field after layer 6 (avgpool(2)): 16×16"),
        "{out}"
    );
    assert!(out.contains("backward: layers with parameters"), "{out}");
    // right-aligned numbers: the FLOPs cell ends where its header does
    let end_of = |line: &str, needle: &str| {
        let b = line.find(needle).unwrap() + needle.len();
        line[..b].chars().count()
    };
    let header = out.lines().find(|l| l.contains("FLOPs fwd")).unwrap();
    assert_eq!(end_of(header, "FLOPs fwd"), end_of(row, "235,200"), "{out}");
}

#[test]
fn cli_markdown() {
    let out = ok(&words(
        "summary lenet5-relu --format markdown --batch-size 256",
    ));
    let table: Vec<&str> = out.lines().filter(|l| l.starts_with('|')).collect();
    // header, alignment, input, 12 layers, total
    assert_eq!(table.len(), 16, "{out}");
    assert!(table[0].contains("| memory ×256 |"), "{out}");
    assert!(table[1].starts_with("| ---: | :--- |"), "{out}");
    let ncols = table[0].matches('|').count();
    assert!(
        table.iter().all(|l| l.matches('|').count() == ncols),
        "{out}"
    );
    assert!(
        table[3].contains("| conv(6,k=5,p=2) | (6, 28, 28) | 156 |"),
        "{out}"
    );
    assert!(
        table[15].contains("| total |") && table[15].contains("| 61,706 |"),
        "{out}"
    );
    assert!(out.contains("- memory: values each layer keeps"), "{out}");
}

#[test]
fn cli_json_is_numbers() {
    let out = ok(&words("summary lenet5 --format json --batch-size 32"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"], "lenet5");
    assert_eq!(v["batch_size"], 32);
    assert_eq!(v["input_shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(v["totals"]["params"], 61_706);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 12);
    assert_eq!(layers[0]["out_shape"], serde_json::json!([6, 28, 28]));
    assert_eq!(layers[0]["macs"], 117_600);
    assert_eq!(layers[0]["flops_forward"], 235_200);
    assert_eq!(
        layers[5]["receptive_field"],
        serde_json::json!([{"size": 16, "jump": 4, "start": -2}, {"size": 16, "jump": 4, "start": -2}])
    );
    assert!(layers[6]["receptive_field"].is_null());
    for l in layers {
        for key in [
            "params",
            "macs",
            "flops_forward",
            "flops_backward",
            "activation_bytes_per_image",
        ] {
            assert!(l[key].is_u64(), "{key}: {l}");
        }
        assert_eq!(
            l["activation_bytes_batch"].as_u64().unwrap(),
            32 * l["activation_bytes_per_image"].as_u64().unwrap()
        );
    }
    assert!(v["rules"].as_array().unwrap().len() >= 5);
    // the spec field parses back to the same network
    let back = ModelSpec::parse(v["spec"].as_str().unwrap(), &INPUT).unwrap();
    assert_eq!(back, ModelSpec::parse(PRESETS[0].spec, &INPUT).unwrap());
}

#[test]
fn cli_user_specs_and_input_shape() {
    // lenet5 on 3×32×32: conv1 has 3·25·6 + 6 weights, the flatten sees 16·6·6
    let out = ok(&words("summary lenet5 --input-shape 3,32,32 --format json"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["layers"][0]["params"], 456);
    assert_eq!(v["layers"][6]["out_shape"], serde_json::json!([576]));
    assert_eq!(
        v["totals"]["params"],
        61_706 - 156 + 456 - 400 * 120 + 576 * 120
    );
    // inline, @file and a plain path give the same report
    let text = "input(3,32,32) conv(8,k=3,p=1) relu maxpool(2) flatten linear(10)";
    let inline = ok(&["summary", text, "--format", "json"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.txt");
    std::fs::write(&path, format!("# a small net\n{text}\n")).unwrap();
    let p = path.to_str().unwrap();
    let at = ok(&["summary", &format!("@{p}"), "--format", "json"]);
    let plain = ok(&["summary", p, "--format", "json"]);
    let strip = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        v["model"] = serde_json::Value::Null;
        v
    };
    assert_eq!(strip(&inline), strip(&at));
    assert_eq!(strip(&at), strip(&plain));
    let v = strip(&inline);
    assert_eq!(v["totals"]["params"], 8 * 27 + 8 + 8 * 16 * 16 * 10 + 10);
    // --input-shape overrides the spec's input(...)
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "summary",
        text,
        "--input-shape",
        "1,8,8",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["layers"][3]["out_shape"], serde_json::json!([128]));
    // 1-D and 3-D networks
    let out = ok(&[
        "summary",
        "input(2,50) conv1d(4,k=5,s=2) tanh avgpool1d(2) flatten linear(3)",
    ]);
    assert!(out.contains("(4, 23)") && out.contains("(4, 11)"), "{out}");
    let out = ok(&[
        "summary",
        "conv3d(2,k=3,p=1) globalmaxpool flatten linear(4)",
        "--input-shape",
        "1,4,6,6",
    ]);
    assert!(
        out.contains("(2, 4, 6, 6)") && out.contains("3×3×3"),
        "{out}"
    );
}

#[test]
fn cli_bad_input() {
    // (arguments, what the one-line error must say)
    let cases: [(&[&str], &str); 12] = [
        (
            &["summary", "lenet6"],
            "model: unknown model 'lenet6'; use a preset (lenet5",
        ),
        (
            &["summary", "conv(6,k=5"],
            "model: layer 1 `conv(6,k=5` (column 1): missing `)`",
        ),
        (
            &["summary", "conv(6,k=5) pool9 flatten"],
            "unknown layer `pool9`",
        ),
        (
            &["summary", "conv(6,k=5) linear(3)"],
            "put `flatten` before it",
        ),
        (
            &["summary", "@/no/such/spec.txt"],
            "model: cannot read the spec file /no/such/spec.txt",
        ),
        (
            &["summary", "lenet5", "--input-shape", "1,0,28"],
            "input-shape: '1,0,28' is not a valid shape",
        ),
        (
            &["summary", "lenet5", "--input-shape", "a,b"],
            "input-shape: cannot read 'a,b'",
        ),
        (
            &["summary", "lenet5", "--input-shape", "1,2,3,4,5"],
            "give 1 to 4 positive sizes",
        ),
        (
            &["summary", "lenet5", "--input-shape", "1,99999999,2"],
            "input-shape: '1,99999999,2' is too large",
        ),
        (
            &["summary", "lenet5", "--input-shape", "1,8,8"],
            "layer 4 `conv(16,k=5)` does not fit its input (6, 4, 4)",
        ),
        (
            &["summary", "lenet5", "--batch-size", "0"],
            "batch-size: must be at least 1",
        ),
        (
            &[
                "summary",
                "conv(2,k=1,s=4000000000) conv(2,k=1,s=4000000000) conv(2,k=1,s=4000000000)",
            ],
            "overflows",
        ),
    ];
    for (args, needle) in cases {
        let err = usage_error(args);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let err = usage_error(&words("summary lenet5 --format xml"));
    assert!(
        err.contains("--format") && err.contains("table, markdown, json"),
        "{err}"
    );
}
