//! Shared by the `stride serve` tests: start the binary on port 0 (reading the real port from
//! its `serving on http://127.0.0.1:N/` line), a tiny HTTP/1.1 client on std's `TcpStream`
//! (enough for the API and for chromedriver's WebDriver endpoint), and reading a grid's numbers
//! out of a page's DOM.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `stride serve`, stopped when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stride"))
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stride serve");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("serving on http://127.0.0.1:")
            .and_then(|r| r.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Server { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (`Connection: close`); returns the status and the body.
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // read the head, then exactly Content-Length bytes (a peer may keep the connection open)
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let mut raw = Vec::new();
    match length {
        Some(n) => {
            raw.resize(n, 0);
            r.read_exact(&mut raw).unwrap();
        }
        None => {
            let _ = r.read_to_end(&mut raw);
        }
    }
    let rest = String::from_utf8_lossy(&raw).to_string();
    let body = if lower.contains("transfer-encoding: chunked") {
        dechunk(&rest)
    } else {
        rest
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// POSTs a JSON value to the API and parses the answer.
pub fn api(port: u16, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (status, text) = http(port, "POST", path, Some(&body.to_string()));
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v)
}

/// The texts of the `<td>`s of the grid `id="grid-NAME"` in a DOM dump, in flat order.
pub fn grid_texts(dom: &str, name: &str) -> Vec<String> {
    let start = dom
        .find(&format!("id=\"grid-{name}\""))
        .unwrap_or_else(|| panic!("no grid {name} in the page"));
    let end = dom[start..].find("</div>").map_or(dom.len(), |e| start + e);
    let mut out = vec![];
    let mut rest = &dom[start..end];
    while let Some(i) = rest.find("<td") {
        let after = &rest[i..];
        let open = after.find('>').unwrap() + 1;
        let close = after.find("</td>").unwrap();
        out.push(after[open..close].to_string());
        rest = &after[close..];
    }
    out
}

/// Numbers formatted as the page (and the CLI) writes them.
pub fn texts(v: &[f32]) -> Vec<String> {
    v.iter().map(|&x| stride::explain::fmt_num(x)).collect()
}

/// The library's answer to the pooling example both page tests use: average pooling, kernel 2,
/// stride 1, of the 3×4 input 1..=12 with output gradient [[1,2,3],[4,5,6]]: the output's and
/// the input gradient's texts as the page shows them.
pub fn avg_pool_example() -> (Vec<String>, Vec<String>) {
    use stride::ops::pool::{pool_backward, pool_forward, PoolKind, PoolParams};
    use stride::Tensor;
    let xt = Tensor::new(vec![1, 1, 3, 4], (1..=12).map(|v| v as f32).collect()).unwrap();
    let mut p = PoolParams::new(PoolKind::Avg, &[2]);
    p.stride = vec![1];
    let out = pool_forward(&xt, &p).unwrap();
    let gy = Tensor::new(vec![1, 1, 2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let gx = pool_backward(&xt, &out, &gy, &p).unwrap();
    (texts(out.y.data()), texts(gx.data()))
}
