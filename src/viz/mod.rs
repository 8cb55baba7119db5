//! Pictures as data: feature-map and kernel grids ([`grid`], [`features`]) and the training
//! chart ([`chart`]), drawn with `plotters` on an RGB buffer and returned as PNG bytes. The
//! library never writes files; the CLI writes the bytes (and a web page could serve them).
//!
//! Text is anti-aliased DejaVu Sans (Bitstream Vera licence, `assets/fonts/`), embedded in
//! the binary so no system fonts are needed.

pub mod chart;
pub mod colormap;
pub mod features;
pub mod grid;

use crate::error::{Error, Result};
use std::sync::Once;

/// The font family every picture uses (registered once, from the embedded TTF).
pub const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font with plotters (idempotent; call before drawing text).
pub fn register_font() {
    REGISTER.call_once(|| {
        // the embedded file is a valid TTF (a test checks that pictures contain text)
        let _ =
            plotters::style::register_font(FONT, plotters::style::FontStyle::Normal, FONT_BYTES);
    });
}

/// A drawing error from plotters, as a stride error.
/// A runtime failure, not the user's input (exit code 1).
pub(crate) fn draw_err(e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: "picture".into(),
        source: std::io::Error::other(format!("cannot draw the picture: {e}")),
    }
}

/// Encodes an RGB8 buffer (`w·h·3` bytes, row-major) as PNG bytes.
pub fn encode_png(w: usize, h: usize, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| draw_err(format!("PNG encoding failed ({e})"));
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(rgb).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}
