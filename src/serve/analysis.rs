//! The receptive-field API: a layer stack in the spec language (as `stride summary` takes it)
//! summarised by the library, plus, for each layer and axis, the input pixels that each output
//! position sees, so the page lights them up without computing anything.

use super::fields::{ApiError, Fields};
use serde_json::{json, Value};
use stride::analysis::receptive::input_span;
use stride::analysis::summary::summarize;
use stride::geometry::parse_per_axis;
use stride::nn::models;

pub const RF_FIELDS: [&str; 2] = ["model", "input-shape"];

/// Largest input size per spatial axis the page accepts (the spans list grows with it).
pub const MAX_RF_AXIS: usize = 1024;

/// `POST /api/rf`: `{"model": "conv(6,k=5,p=2) sigmoid avgpool(2) conv(16,k=5)", "input-shape": "1,28,28"}`.
pub fn rf(body: Value) -> Result<Value, ApiError> {
    let f = Fields::new(body, &RF_FIELDS)?;
    let model = f.need("model", "conv(8,k=3) maxpool(2) conv(8,k=3) or lenet5")?;
    if model.starts_with('@') || model.contains('/') || std::path::Path::new(model).exists() {
        return Err(ApiError::bad(
            "model",
            "model: give a preset or an inline spec; the page does not read files",
        ));
    }
    let (mut spec, name, _) = models::resolve(model)?;
    if let Some(s) = f.get("input-shape") {
        let shape = parse_per_axis("input-shape", s)?;
        if shape.len() < 2 || shape.iter().skip(1).any(|&d| d > MAX_RF_AXIS) {
            return Err(ApiError::bad(
                "input-shape",
                format!("input-shape: give C,H,W (or C,L) with at most {MAX_RF_AXIS} per spatial axis, e.g. 1,28,28"),
            ));
        }
        spec.input = shape;
    }
    let summary = summarize(&spec, &name, 1)?;
    let spatial: Vec<usize> = spec.input[1..].to_vec();
    // per layer, per axis, per output position: [first, last] input pixel seen (clipped)
    let spans: Vec<Value> = summary
        .layers
        .iter()
        .map(|row| match (&row.receptive_field, row.out_shape.len()) {
            (Some(rf), n) if n == spatial.len() + 1 => Value::Array(
                rf.iter()
                    .zip(&row.out_shape[1..])
                    .zip(&spatial)
                    .map(|((r, &out), &input)| {
                        json!((0..out)
                            .map(|o| input_span(r, o, input))
                            .collect::<Vec<_>>())
                    })
                    .collect(),
            ),
            _ => Value::Null,
        })
        .collect();
    Ok(json!({"op": "rf", "summary": summary, "spans": spans}))
}
