//! The Model view's API: the run folders on offer (`--run DIR`, else the folders under
//! `./runs` that hold a checkpoint), and for one run its training history, each conv layer's
//! kernels, and for a test image (by index in the Fashion-MNIST test set, or an uploaded PNG)
//! every layer's output and the class probabilities. The checkpoint, the layers and the softmax
//! are the library's; only folders listed by `/api/runs` are ever read.

use super::fields::ApiError;
use super::json::tensor;
use super::{rejected, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stride::checkpoint;
use stride::data::{image, Dataset, Split, CLASSES};
use stride::explain::fmt_num;
use stride::ops::loss::softmax_rows;
use stride::Tensor;

/// The run folders on offer.
fn run_dirs(state: &AppState) -> Vec<PathBuf> {
    if !state.runs.is_empty() {
        return state.runs.clone();
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir("runs")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(checkpoint::FILE).is_file())
        .collect();
    v.sort();
    v
}

/// `GET /api/runs`: `{"runs": ["runs/lenet5-…", …]}`.
pub async fn runs(State(state): State<Arc<AppState>>) -> Json<Value> {
    let list: Vec<String> = run_dirs(&state)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    Json(json!({ "runs": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModelRequest {
    run: String,
    /// Index into the Fashion-MNIST test set.
    image: Option<usize>,
    /// An uploaded PNG's bytes.
    png: Option<Vec<u8>>,
}

/// `POST /api/model`.
pub async fn model(
    State(state): State<Arc<AppState>>,
    body: Result<Json<ModelRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(rejected)?;
    let dirs = run_dirs(&state);
    let Some(dir) = dirs
        .iter()
        .find(|d| d.display().to_string() == req.run)
        .cloned()
    else {
        return Err(ApiError::bad(
            "run",
            format!("run: '{}' is not one of the run folders offered; start stride serve with --run DIR", req.run),
        ));
    };
    let data = state.data.clone();
    tokio::task::spawn_blocking(move || describe(&dir, &data, req))
        .await
        .map_err(|e| ApiError::bad("run", format!("run: failed: {e}")))?
        .map(Json)
}

fn describe(dir: &Path, data: &Path, req: ModelRequest) -> Result<Value, ApiError> {
    let mut loaded = checkpoint::load(dir)?;
    let kernels: Vec<Value> = loaded
        .model
        .net
        .named_params()
        .iter()
        .filter(|(name, p)| name.ends_with("weight") && p.value.rank() >= 3)
        .map(|(name, p)| json!({"name": name, "tensor": tensor(&p.value)}))
        .collect();
    let history = serde_json::to_value(&loaded.meta.history).unwrap_or(Value::Null);
    let input = loaded.model.spec.input.clone();
    let (x, label, note) = match (&req.png, req.image) {
        (Some(bytes), _) => (Some(png_image(bytes, &input)?), None, None),
        (None, i) => match Dataset::load(data, Split::Test, CLASSES.len()) {
            Ok(d) => {
                let i = i.unwrap_or(0);
                if i >= d.labels.len() {
                    return Err(ApiError::bad(
                        "image",
                        format!(
                            "image: {i} is past the test set's {} images; give 0 to {}",
                            d.labels.len(),
                            d.labels.len() - 1
                        ),
                    ));
                }
                (Some(d.image(i)), Some(d.labels[i] as usize), None)
            }
            Err(e) => (
                None,
                None,
                Some(format!("no test image: {e}; upload a PNG instead")),
            ),
        },
    };
    let mut out = json!({
        "op": "model",
        "run": dir.display().to_string(),
        "spec": loaded.meta.spec,
        "history": history,
        "kernels": kernels,
        "classes": CLASSES,
        "note": note,
    });
    if let Some(x) = x {
        out["image"] = tensor(&x);
        out["label"] = json!(label.map(|l| CLASSES.get(l).copied().unwrap_or("?")));
        // every layer's output, one layer at a time through the library's layers
        let mut h = x.unsqueeze0();
        let mut layers = vec![];
        for (i, layer) in loaded.model.net.layers.iter_mut().enumerate() {
            h = layer.forward(h, false)?;
            let spec = loaded
                .model
                .spec
                .layers
                .get(i)
                .map(|l| l.to_string())
                .unwrap_or_default();
            let shown = h.clone().reshape(&h.shape()[1..])?;
            layers.push(json!({"layer": spec, "output": tensor(&shown)}));
        }
        let classes = h.numel();
        let mut p = vec![0.0; classes];
        softmax_rows(h.data(), classes, &mut p);
        let probs: Vec<Value> = p
            .iter()
            .enumerate()
            .map(|(c, &v)| json!({"class": CLASSES.get(c).copied().unwrap_or("?"), "p": v, "text": fmt_num(v)}))
            .collect();
        out["layers"] = json!(layers);
        out["probabilities"] = json!(probs);
    }
    Ok(out)
}

/// Decodes an uploaded PNG through the library's image loader (which reads a file).
fn png_image(bytes: &[u8], input: &[usize]) -> Result<Tensor, ApiError> {
    let [1, h, w] = input[..] else {
        return Err(ApiError::bad(
            "png",
            "png: this model does not take one grayscale image",
        ));
    };
    let path = std::env::temp_dir().join(format!(
        "stride-serve-{}-{:x}.png",
        std::process::id(),
        bytes.len() ^ (bytes.iter().map(|&b| b as usize).sum::<usize>() << 8)
    ));
    std::fs::write(&path, bytes)
        .map_err(|e| ApiError::bad("png", format!("png: cannot stage the upload: {e}")))?;
    let r = image::load(&path, h, w);
    let _ = std::fs::remove_file(&path);
    Ok(r?.0)
}
