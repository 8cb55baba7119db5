//! Request parsing for the JSON API: a request body is one flat JSON object whose keys are the
//! CLI's flag names and whose values use the CLI's value syntax (`{"input": "[[1,2],[3,4]]",
//! "kernel": "[[1,0],[0,1]]", "stride": "1", "padding": "same"}`), exactly as in the page's URL
//! fragment. Values become library types through the library's own parsers, so a bad value
//! gets the CLI's one-line message; [`ApiError`] carries it with the field it concerns.
//!
//! Limits (documented in the README): a request body of at most [`MAX_BODY`] bytes, at most
//! [`MAX_VALUES`] numbers per tensor; how much is traced step by step is limited by the library
//! (`explain::MAX_TERMS` multiply-adds, as `--explain`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use stride::geometry::parse_per_axis;
use stride::io::literal;
use stride::{Error, Tensor};

/// Largest request body accepted (bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Most numbers accepted in one tensor literal.
pub const MAX_VALUES: usize = 4096;

/// A refused request: HTTP status, the field at fault (empty if none) and the one-line message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn bad(field: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let field = match &e {
            Error::InvalidArgument { arg, .. } => arg.clone(),
            Error::TooLarge { what, .. } => what.clone(),
            _ => String::new(),
        };
        let status = match &e {
            Error::TooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            e if e.is_usage() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // the page's kernel field is the CLI's --weight (its alias --kernel)
        let field = if field == "weight" {
            "kernel".into()
        } else {
            field
        };
        ApiError {
            status,
            field,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"field": self.field, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// The fields of one request, checked against the keys the operation takes.
pub struct Fields(BTreeMap<String, String>);

impl Fields {
    /// Reads a JSON object of strings (numbers and booleans are taken as their text), refusing
    /// any key not in `known` (a misspelt flag would otherwise be silently ignored).
    pub fn new(body: Value, known: &[&str]) -> Result<Self, ApiError> {
        let Value::Object(map) = body else {
            return Err(ApiError::bad(
                "",
                "the request body must be a JSON object of flag names and values",
            ));
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            if !known.contains(&k.as_str()) {
                return Err(ApiError::bad(
                    &k,
                    format!(
                        "unknown field '{k}'; this operation takes {}",
                        known.join(", ")
                    ),
                ));
            }
            let s = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(ApiError::bad(&k, format!("{k}: give a string value"))),
            };
            out.insert(k, s);
        }
        Ok(Fields(out))
    }

    /// The value of `key`, if given and not blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// The value of `key` or `default`.
    pub fn or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// A required value.
    pub fn need(&self, key: &str, example: &str) -> Result<&str, ApiError> {
        self.get(key).ok_or_else(|| {
            ApiError::bad(
                key,
                format!("{key}: is required; give a value such as {example}"),
            )
        })
    }

    /// A switch: absent, `false` or `0` is off; present with no value, `true` or `1` is on.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.0.get(key).map(|s| s.trim()) {
            None | Some("false" | "0") => Ok(false),
            Some("" | "true" | "1") => Ok(true),
            Some(v) => Err(ApiError::bad(
                key,
                format!("{key}: '{v}' is not a switch value; use true or false"),
            )),
        }
    }

    /// A whole number (`groups`, `k`, ...).
    pub fn count(&self, key: &str) -> Result<Option<usize>, ApiError> {
        self.get(key)
            .map(|s| {
                s.trim().parse().map_err(|_| {
                    ApiError::bad(
                        key,
                        format!("{key}: '{s}' is not a whole number; give one such as 1 or 2"),
                    )
                })
            })
            .transpose()
    }

    /// A per-axis list (`2` or `2,1`), if given.
    pub fn list(&self, key: &str) -> Result<Option<Vec<usize>>, ApiError> {
        Ok(self.get(key).map(|s| parse_per_axis(key, s)).transpose()?)
    }

    /// A tensor given as an inline literal, shaped as the CLI shapes literals: a 1-D or 2-D
    /// literal is one single-channel signal / image (`[[..]]` → `(1, 1, H, W)`), a scalar `(1)`.
    /// Files are never read: the page works on numbers typed or pasted into it.
    pub fn tensor(&self, key: &str) -> Result<Option<Tensor>, ApiError> {
        let Some(t) = self.literal(key)? else {
            return Ok(None);
        };
        Ok(Some(match t.rank() {
            0 => t.reshape(&[1])?,
            1 | 2 => t.unsqueeze0().unsqueeze0(),
            _ => t,
        }))
    }

    /// A literal as written (no axes added): for a bias vector.
    pub fn literal(&self, key: &str) -> Result<Option<Tensor>, ApiError> {
        let Some(s) = self.get(key) else {
            return Ok(None);
        };
        let t = s.trim_start();
        if !(t.starts_with('[') || t.parse::<f64>().is_ok()) {
            return Err(ApiError::bad(
                key,
                format!("{key}: give an inline literal such as [[1,2],[3,4]]; the page does not read files"),
            ));
        }
        let t = literal::parse(key, s)?;
        if t.numel() > MAX_VALUES {
            return Err(ApiError::bad(
                key,
                format!(
                    "{key}: {} values is more than the page's limit of {MAX_VALUES}; use a smaller tensor (or the CLI)",
                    t.numel()
                ),
            ));
        }
        Ok(Some(t))
    }

    /// The output gradient for an output of shape `out`: `ones` (the default) or a number for a
    /// constant gradient, or a literal with the output's number of values (it takes the
    /// output's shape, as the CLI's `--grad-output`).
    pub fn grad_output(&self, out: &[usize]) -> Result<Tensor, ApiError> {
        let key = "grad-output";
        let s = self.or(key, "ones");
        if let Some(t) = stride::io::literal::constant(s, out) {
            return Ok(t);
        }
        let t = self.literal(key)?.expect("given");
        let n: usize = out.iter().product();
        if t.numel() == n {
            return Ok(t.reshape(out)?);
        }
        Err(ApiError::bad(
            key,
            format!(
                "{key}: has {} values but the output has shape {:?} ({n} values); give one gradient per output value, or ones",
                t.numel(),
                out
            ),
        ))
    }
}
