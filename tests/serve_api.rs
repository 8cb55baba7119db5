//! `stride serve`'s JSON API without a browser: the server started on port 0, requests sent
//! over a plain TCP socket, answers checked against the library's own results.

mod common;
mod serve_common;
mod synth;

use common::words;

use serde_json::json;
use serve_common::{api, avg_pool_example, http, Server};

const A: &str = "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]";
const B: &str = "[[4,3,3],[5,5,5],[2,4,3]]";

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn homework_convolution_and_its_gradients() {
    let s = Server::start(&[]);
    let (status, j) = api(s.port, "/api/conv", &json!({"input": A, "kernel": B}));
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        strs(&j["tensors"]["output"]["text"]),
        ["109", "92", "72", "108", "85", "74", "110", "74", "79"]
    );
    // the first cell's window: the top-left 3×3 block times the kernel
    assert_eq!(
        j["cells"][0]["sum"],
        "4·4 + 5·3 + 2·3 + 3·5 + 3·5 + 2·5 + 4·2 + 3·4 + 4·3 = 109"
    );
    // the worked solution's step for cell 0 follows the output size and the operands
    let step = j["first_cell_step"].as_u64().unwrap() as usize;
    let heading = j["explain"]["direct"]["steps"][step]["heading"]
        .as_str()
        .unwrap();
    assert!(heading.starts_with("Output cell"), "{heading}");
    // all-ones output gradient by default: the centre of dL/dX is the kernel's sum, 34
    assert_eq!(j["tensors"]["grad_input"]["text"][12], "34");
    assert_eq!(j["grad_input"][12]["a"].as_array().unwrap().len(), 9);
    assert_eq!(j["tensors"]["grad_bias"]["text"][0], "9");
    // a constant gradient given as a number, and the im2col view's column matrix
    let (_, j2) = api(
        s.port,
        "/api/conv",
        &json!({"input": A, "kernel": B, "grad-output": "2"}),
    );
    assert_eq!(j2["tensors"]["grad_input"]["text"][12], "68");
    let im2col = &j["explain"]["im2col"]["steps"];
    assert!(im2col
        .as_array()
        .unwrap()
        .iter()
        .any(|st| st["tensors"][0]["name"] == "columns"));
}

#[test]
fn bad_input_gets_the_cli_message_and_a_4xx() {
    let s = Server::start(&[]);
    let (status, j) = api(
        s.port,
        "/api/conv",
        &json!({"input": "[[1,2],[3", "kernel": B}),
    );
    assert_eq!(status, 400);
    assert_eq!(j["error"]["field"], "input");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("input: ") && msg.contains("missing ']'"),
        "{msg}"
    );
    // a kernel larger than the input names the kernel and the fix
    let (status, j) = api(
        s.port,
        "/api/conv",
        &json!({"input": "[[1,2],[3,4]]", "kernel": B}),
    );
    assert_eq!(status, 400, "{j}");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("padding"),
        "{j}"
    );
    // a misspelt flag, a file path, a bad padding
    let (status, j) = api(
        s.port,
        "/api/conv",
        &json!({"input": A, "kernel": B, "pading": "1"}),
    );
    assert_eq!(
        (status, j["error"]["field"].as_str()),
        (400, Some("pading"))
    );
    let (status, j) = api(
        s.port,
        "/api/conv",
        &json!({"input": "/etc/passwd", "kernel": B}),
    );
    assert_eq!((status, j["error"]["field"].as_str()), (400, Some("input")));
    let (status, j) = api(
        s.port,
        "/api/conv",
        &json!({"input": A, "kernel": B, "padding": "sideways"}),
    );
    assert_eq!(
        (status, j["error"]["field"].as_str()),
        (400, Some("padding")),
        "{j}"
    );
    // not JSON at all
    let (status, text) = http(s.port, "POST", "/api/conv", Some("input=[[1]]"));
    assert!((400..500).contains(&status), "{status} {text}");
    assert!(text.contains("JSON object"), "{text}");
}

#[test]
fn oversized_requests_and_computations_are_refused() {
    let s = Server::start(&[]);
    let big = format!("[{}]", vec!["1"; 40_000].join(","));
    let (status, j) = api(s.port, "/api/conv", &json!({"input": big, "kernel": "[1]"}));
    assert_eq!(status, 413, "{j}");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("65536"),
        "{j}"
    );
    // small request, too much to trace step by step (the CLI's --explain limit)
    let row = format!("[{}]", vec!["1"; 60].join(","));
    let x = format!("[{}]", vec![row.as_str(); 60].join(","));
    let (status, j) = api(
        s.port,
        "/api/conv",
        &json!({"input": x, "kernel": "[[1,1,1],[1,1,1],[1,1,1]]"}),
    );
    assert_eq!(status, 422, "{j}");
    assert!(
        j["error"]["message"].as_str().unwrap().contains("limit"),
        "{j}"
    );
    // a tiny input padded far beyond any exercise, a huge adaptive output
    let (status, j) = api(
        s.port,
        "/api/conv",
        &json!({"input": "[[1]]", "kernel": "[[1]]", "padding": "30000", "stride": "30000"}),
    );
    assert_eq!(
        (status, j["error"]["field"].as_str()),
        (422, Some("padding")),
        "{j}"
    );
    let (status, j) = api(
        s.port,
        "/api/pool",
        &json!({"kind": "adaptive-avg", "input": "[[1]]", "output-size": "10000"}),
    );
    assert_eq!(status, 422, "{j}");
    // more values than the page takes per tensor
    let row = format!("[{}]", vec!["1"; 70].join(","));
    let x = format!("[{}]", vec![row.as_str(); 70].join(","));
    let (status, j) = api(s.port, "/api/conv", &json!({"input": x, "kernel": "[[1]]"}));
    assert_eq!(
        (status, j["error"]["field"].as_str()),
        (400, Some("input")),
        "{j}"
    );
}

#[test]
fn pooling_forward_backward_and_transposed_convolution() {
    let s = Server::start(&[]);
    let x = "[[1,2,3,4],[5,6,7,8],[9,10,11,12]]";
    let (status, j) = api(
        s.port,
        "/api/pool",
        &json!({"kind": "avg", "input": x, "kernel": "2", "stride": "1", "grad-output": "[[1,2,3],[4,5,6]]"}),
    );
    assert_eq!(status, 200, "{j}");
    let (out_texts, gx_texts) = avg_pool_example();
    assert_eq!(strs(&j["tensors"]["output"]["text"]), out_texts);
    assert_eq!(strs(&j["tensors"]["grad_input"]["text"]), gx_texts);
    // avg: each output's gradient goes to its 4 window cells with weight 1/4
    assert_eq!(j["cells"][0]["window"], json!([0, 1, 4, 5]));
    assert_eq!(j["cells"][0]["routes"][0], json!([0, "0.25"]));
    let (status, j) = api(
        s.port,
        "/api/conv-transpose",
        &json!({"input": "[[1,2],[3,4]]", "kernel": "[[1,1],[1,1]]", "stride": "2"}),
    );
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        strs(&j["tensors"]["output"]["text"]),
        ["1", "1", "2", "2", "1", "1", "2", "2", "3", "3", "4", "4", "3", "3", "4", "4"]
    );
    // input value 4 (index 3) scatters into the bottom-right 2×2 block
    assert_eq!(j["inputs"][3]["a"], json!([10, 11, 14, 15]));
    let (status, j) = api(s.port, "/api/pool", &json!({"kind": "largest", "input": x}));
    assert_eq!(
        (status, j["error"]["field"].as_str()),
        (400, Some("kind")),
        "{j}"
    );
}

#[test]
fn receptive_field_spans_and_the_page_assets() {
    let s = Server::start(&[]);
    let (status, j) = api(
        s.port,
        "/api/rf",
        &json!({"model": "conv(8,k=3) conv(8,k=3) conv(8,k=3)", "input-shape": "1,9,9"}),
    );
    assert_eq!(status, 200, "{j}");
    let layers = j["summary"]["layers"].as_array().unwrap();
    assert_eq!(layers[2]["receptive_field"][0]["size"], 7);
    // layer 3's output cell 1 (0-based) sees input pixels 1..=7 on each axis
    assert_eq!(j["spans"][2][0][1], json!([1, 7]));
    let (status, page) = http(s.port, "GET", "/", None);
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/app.js\">"), "{page}");
    let (status, js) = http(s.port, "GET", "/app.js", None);
    assert_eq!(status, 200);
    assert!(js.contains("/api/conv"));
    let (status, _) = http(s.port, "GET", "/nope", None);
    assert_eq!(status, 404);
    let (status, j) = api(s.port, "/api/model", &json!({"run": "/etc"}));
    assert_eq!(
        (status, j["error"]["field"].as_str()),
        (400, Some("run")),
        "{j}"
    );
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    // at once after the address is printed (the handler is already in place), after a
    // request, and on SIGTERM
    for (signal, request) in [
        (libc::SIGINT, false),
        (libc::SIGINT, true),
        (libc::SIGTERM, true),
    ] {
        let mut s = Server::start(&[]);
        if request {
            assert_eq!(http(s.port, "GET", "/", None).0, 200);
        }
        // SAFETY: sending a signal to the child we started
        unsafe {
            libc::kill(s.child.id() as i32, signal);
        }
        let status = s.child.wait().unwrap();
        assert!(status.success(), "signal {signal}: {status:?}");
        let mut rest = String::new();
        std::io::Read::read_to_string(s.child.stdout.as_mut().unwrap(), &mut rest).unwrap();
        assert!(rest.contains("stopped"), "{rest:?}");
    }
}

#[test]
fn model_view_of_a_trained_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 40, 20);
    let run = dir.path().join("run");
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stride"))
        .args([
            "train",
            "conv(4,k=5,s=3) relu flatten linear(10)",
            "--data",
            &s(&data),
        ])
        .args(words("--epochs 2 --batch-size 20 --threads 1 --out"))
        .arg(s(&run))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let srv = Server::start(&["--run", &s(&run), "--data", &s(&data)]);
    let (status, j) = http(srv.port, "GET", "/api/runs", None);
    assert_eq!(status, 200);
    assert!(j.contains(&s(&run).replace('\\', "\\\\")), "{j}");
    let (status, j) = api(srv.port, "/api/model", &json!({"run": s(&run), "image": 3}));
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["history"].as_array().unwrap().len(), 2);
    assert_eq!(j["kernels"][0]["tensor"]["shape"], json!([4, 1, 5, 5]));
    // conv → relu → flatten → linear: four layer outputs, the conv's as (4, 8, 8) maps
    assert_eq!(j["layers"].as_array().unwrap().len(), 4);
    assert_eq!(j["layers"][0]["output"]["shape"], json!([4, 8, 8]));
    let p: f64 = j["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["p"].as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4, "{p}");
    // past the test set, and a run folder that was not offered
    let (status, j) = api(
        srv.port,
        "/api/model",
        &json!({"run": s(&run), "image": 20}),
    );
    assert_eq!(
        (status, j["error"]["field"].as_str()),
        (400, Some("image")),
        "{j}"
    );
    // an uploaded PNG (8-bit grayscale, 28×28)
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 28, 28);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let px: Vec<u8> = (0..28 * 28).map(|i| (i % 251) as u8).collect();
        enc.write_header().unwrap().write_image_data(&px).unwrap();
    }
    let (status, j) = api(
        srv.port,
        "/api/model",
        &json!({"run": s(&run), "png": png_bytes}),
    );
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["probabilities"].as_array().unwrap().len(), 10);
}
