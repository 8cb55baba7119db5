//! `stride serve` in a real browser: Debian's headless Chromium opens shared links cold
//! (`--dump-dom` after the page's scripts ran) and, through chromedriver's WebDriver endpoint,
//! takes clicks and arrow keys. The numbers in the page are checked against the library.
//! Skipped, with a note, when `chromium` or `chromedriver` is not installed (CI installs them:
//! `apt-get install -y chromium chromium-driver`).

mod serve_common;
mod synth;

use serde_json::{json, Value};
use serve_common::{avg_pool_example, grid_texts, http, texts, Server};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stride::geometry::{PaddingMode, PaddingSpec};
use stride::ops::conv::{conv, ConvAlgo, ConvParams};
use stride::Tensor;

const A: &str = "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]";
const B: &str = "[[4,3,3],[5,5,5],[2,4,3]]";
const FLAGS: [&str; 8] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
];

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when the browser is there; otherwise prints why the test is skipped.
fn browser() -> bool {
    if have("chromium") && have("chromedriver") {
        return true;
    }
    eprintln!(
        "note: skipping the browser test: chromium and chromedriver are not installed \
         (apt-get install -y chromium chromium-driver)"
    );
    false
}

/// The page's DOM after its scripts ran, for a link opened cold.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=10000", "--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn homework_link_opened_cold_shows_output_and_input_gradient() {
    if !browser() {
        return;
    }
    let s = Server::start(&[]);
    // the fragment as a teacher would paste it, raw brackets, and fully URL-encoded
    let raw = s.url(&format!(
        "/#op=conv&input={A}&kernel={B}&stride=1&padding=0&grad-output=ones"
    ));
    let encoded = s.url(&format!(
        "/#op=conv&input={}&kernel={}",
        A.replace('[', "%5B")
            .replace(']', "%5D")
            .replace(',', "%2C"),
        B.replace('[', "%5B")
            .replace(']', "%5D")
            .replace(',', "%2C")
    ));
    for url in [raw, encoded] {
        let dom = dump_dom(&url);
        assert_eq!(
            grid_texts(&dom, "output"),
            ["109", "92", "72", "108", "85", "74", "110", "74", "79"],
            "{url}"
        );
        let gx = grid_texts(&dom, "grad_input");
        assert_eq!(gx.len(), 25);
        assert_eq!(gx[12], "34");
        assert_eq!(grid_texts(&dom, "grad_bias"), ["9"]);
        // the first output cell's products and sum, as text
        assert!(dom.contains("4·4 + 5·3 + 2·3 + 3·5 + 3·5 + 2·5 + 4·2 + 3·4 + 4·3 = 109"));
    }
}

#[test]
fn strided_padded_dilated_link_matches_the_library() {
    if !browser() {
        return;
    }
    let s = Server::start(&[]);
    let x: Vec<f32> = (1..=36).map(|v| v as f32).collect();
    let rows: Vec<String> = x
        .chunks(6)
        .map(|r| format!("[{}]", texts(r).join(",")))
        .collect();
    let input = format!("[{}]", rows.join(","));
    let dom = dump_dom(&s.url(&format!(
        "/#op=conv&input={input}&kernel=[[1,0,2],[0,-1,0],[3,0,1]]&stride=2&padding=2&dilation=2"
    )));
    let xt = Tensor::new(vec![1, 1, 6, 6], x).unwrap();
    let w = Tensor::new(vec![1, 1, 3, 3], vec![1., 0., 2., 0., -1., 0., 3., 0., 1.]).unwrap();
    let p = ConvParams {
        stride: vec![2],
        padding: PaddingSpec::Explicit(vec![(2, 2)]),
        dilation: vec![2],
        groups: 1,
        padding_mode: PaddingMode::Zeros,
        flip: false,
    };
    let y = conv(&xt, &w, None, &p, ConvAlgo::Direct).unwrap();
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    assert_eq!(grid_texts(&dom, "output"), texts(y.data()));
    // the padded input shown: 6 + 2 + 2 = 10 on a side
    assert_eq!(grid_texts(&dom, "padded").len(), 100);
}

#[test]
fn pooling_forward_and_backward_and_a_transposed_convolution() {
    if !browser() {
        return;
    }
    let s = Server::start(&[]);
    let dom = dump_dom(&s.url(
        "/#op=pool&kind=avg&input=[[1,2,3,4],[5,6,7,8],[9,10,11,12]]&kernel=2&stride=1&grad-output=[[1,2,3],[4,5,6]]",
    ));
    let (out_texts, gx_texts) = avg_pool_example();
    assert_eq!(grid_texts(&dom, "output"), out_texts);
    assert_eq!(grid_texts(&dom, "grad_input"), gx_texts);
    let dom =
        dump_dom(&s.url("/#op=conv-transpose&input=[[1,2],[3,4]]&kernel=[[1,1],[1,1]]&stride=2"));
    assert_eq!(
        grid_texts(&dom, "output"),
        ["1", "1", "2", "2", "1", "1", "2", "2", "3", "3", "4", "4", "3", "3", "4", "4"]
    );
}

#[test]
fn bad_input_shows_the_cli_message_next_to_its_field() {
    if !browser() {
        return;
    }
    let s = Server::start(&[]);
    let dom = dump_dom(&s.url(&format!("/#op=conv&input=[[1,2],[3&kernel={B}")));
    let at = dom
        .find("data-for=\"input\"")
        .expect("an error spot for input");
    let spot = &dom[at..at + dom[at..].find("</span>").unwrap()];
    assert!(spot.contains("input: malformed literal"), "{spot}");
    assert!(!dom.contains("id=\"grid-output\""));
}

// ---- WebDriver: clicks and keys --------------------------------------------------------------

struct Driver {
    child: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push("--window-size=1280,1000".into());
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}});
        let mut d = Driver {
            child,
            port,
            session: String::new(),
            _profile: profile,
        };
        let v = d.call("POST", "/session", Some(caps));
        d.session = v["sessionId"].as_str().expect("a session").to_string();
        d
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(self.port, method, path, body.as_deref());
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "{method} {path}: {text}");
        v["value"].clone()
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    fn wait_for(&self, script: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.js(script);
            if !v.is_null() && v != json!(false) && v != json!("") {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "timed out: {script}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn click(&self, css: &str) {
        let e = self.call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = e
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_string();
        self.call(
            "POST",
            &self.s(&format!("/element/{id}/click")),
            Some(json!({})),
        );
    }

    fn keys(&self, keys: &[&str]) {
        let mut acts = vec![];
        for k in keys {
            acts.push(json!({"type": "keyDown", "value": k}));
            acts.push(json!({"type": "keyUp", "value": k}));
        }
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": acts}]});
        self.call("POST", &self.s("/actions"), Some(body));
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(self.port, "DELETE", &self.s(""), None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn arrow_keys_step_through_cells_and_clicks_trace_gradients() {
    if !browser() {
        return;
    }
    let s = Server::start(&[]);
    let d = Driver::start();
    d.goto(&s.url(&format!("/#op=conv&input={A}&kernel={B}")));
    d.wait_for("return document.body.dataset.state === 'done'");
    let current = "return document.querySelector('#grid-output td.cur').textContent";
    assert_eq!(d.js(current), "109");
    // right, right, down: from cell (1,1) to (2,3) = 74
    const RIGHT: &str = "\u{E014}";
    const DOWN: &str = "\u{E015}";
    d.keys(&[RIGHT, RIGHT, DOWN]);
    assert_eq!(d.js(current), "74");
    assert_eq!(
        d.js("return document.querySelector('#cell-info').textContent"),
        "output cell 6 of 9"
    );
    // the window of cell (2,3): rows 2-4, columns 3-5 of the input, 9 cells lit
    assert_eq!(
        d.js("return document.querySelectorAll('#grid-padded td.win').length"),
        9
    );
    assert!(d
        .js("return document.querySelector('#cell-sum').textContent")
        .as_str()
        .unwrap()
        .ends_with("= 74"));
    // clicking the centre of dL/dX lights the 9 kernel taps and shows their sum, 34
    d.click("#grid-grad_input td[data-i='12']");
    let sum = d.wait_for("return document.querySelector('#grad-sum').textContent");
    assert!(sum.as_str().unwrap().ends_with("= 34"), "{sum}");
    assert_eq!(
        d.js("return document.querySelectorAll('#grid-kernel td.src').length"),
        9
    );
    // and as a full convolution: a 3×3 window over the 7×7 padded dL/dY, all 9 flipped taps
    assert_eq!(
        d.js("return document.querySelectorAll('#grid-spread td').length"),
        49
    );
    assert_eq!(
        d.js("return [...document.querySelectorAll('#grid-spread td.win')].map(t => t.dataset.i).join(',')"),
        "16,17,18,23,24,25,30,31,32"
    );
    assert_eq!(
        d.js("return document.querySelectorAll('#grid-flipped td.tap').length"),
        9
    );
    // editing a field and pressing Compute puts the state in the address and recomputes
    d.js("document.querySelector('#f-stride').value = '2'");
    d.click("#compute");
    d.wait_for("return location.hash.includes('stride=2') && document.body.dataset.state === 'done' && document.querySelectorAll('#grid-output td').length === 4");
    assert_eq!(
        d.js("return [...document.querySelectorAll('#grid-output td')].map(t => t.textContent).join(' ')"),
        "109 72 110 79"
    );
}

#[test]
fn model_view_draws_a_trained_run_with_probabilities_as_text() {
    if !browser() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 40, 20);
    let run = dir.path().join("run");
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(["train", "conv(4,k=5,s=3) relu flatten linear(10)"])
        .args(["--data", &s(&data), "--epochs", "1", "--batch-size", "20"])
        .args(["--threads", "1", "--out", &s(&run)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let srv = Server::start(&["--run", &s(&run), "--data", &s(&data)]);
    let dom = dump_dom(&srv.url("/#op=model&image=2"));
    let probs = &dom[dom.find("id=\"probs\"").expect("a probability table")..];
    let probs = &probs[..probs.find("</table>").unwrap()];
    assert_eq!(probs.matches("<tr>").count(), 10, "{probs}");
    assert!(probs.contains("Ankle boot"), "{probs}");
    assert!(dom.contains("id=\"history\""));
    assert_eq!(
        dom.matches("<canvas").count(),
        1 + 4 + 1 + 4 + 4,
        "curves, kernels, image, maps"
    );
}
