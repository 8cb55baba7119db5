//! Library results as JSON for the page: tensors (shape, values and the values as text, written
//! the way the CLI writes them), worked explanations (steps of text and tensors) and traced
//! entries (which flat indices were multiplied, and the products as text). Only rendering here.

use serde_json::{json, Value};
use stride::explain::trace::Entry;
use stride::explain::{fmt_num, fmt_products, Explanation};
use stride::Tensor;

/// `{"shape": [..], "data": [..], "text": [..]}`; `text` is what the page shows (selectable,
/// searchable), `data` what it may use to shade cells. Non-finite values become `null` in data.
pub fn tensor(t: &Tensor) -> Value {
    let data: Vec<Value> = t
        .data()
        .iter()
        .map(|&v| if v.is_finite() { json!(v) } else { Value::Null })
        .collect();
    let text: Vec<String> = t.data().iter().map(|&v| fmt_num(v)).collect();
    json!({"shape": t.shape(), "data": data, "text": text})
}

/// A worked explanation: `{"title", "steps": [{"heading", "lines", "tensors", "after"}]}`.
pub fn explanation(ex: &Explanation) -> Value {
    let steps: Vec<Value> = ex
        .steps
        .iter()
        .map(|s| {
            let tensors: Vec<Value> = s
                .tensors
                .iter()
                .map(|t| json!({"name": t.name, "tensor": tensor(&t.tensor), "spatial": t.spatial}))
                .collect();
            json!({"heading": s.heading, "lines": s.lines, "tensors": tensors, "after": s.after})
        })
        .collect();
    json!({"title": ex.title, "steps": steps})
}

/// Traced entries: `{"at", "a": [flat indices], "b": [flat indices], "products": ["4·4", …],
/// "sum": "4·4 + … = 109", "value"}`.
pub fn entries(list: &[Entry]) -> Value {
    Value::Array(list.iter().map(entry).collect())
}

fn entry(e: &Entry) -> Value {
    let pairs: Vec<(f32, f32)> = e.terms.iter().map(|t| (t.a, t.b)).collect();
    let mut sum = if pairs.is_empty() {
        "nothing reaches it".to_string()
    } else {
        fmt_products(&pairs)
    };
    if let Some(b) = e.bias {
        sum += &format!(" + bias {}", fmt_num(b));
    }
    sum += &format!(" = {}", fmt_num(e.value));
    json!({
        "at": e.at,
        "a": e.terms.iter().map(|t| t.a_at).collect::<Vec<_>>(),
        "b": e.terms.iter().map(|t| t.b_at).collect::<Vec<_>>(),
        "products": e.terms.iter().map(|t| fmt_products(&[(t.a, t.b)])).collect::<Vec<_>>(),
        "sum": sum,
        "value": fmt_num(e.value),
    })
}
