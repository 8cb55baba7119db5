//! `stride features` and the pictures behind it: a tiny model trained on synthetic data, its
//! pictures written, decoded and checked (sizes from the layout, nearest-neighbour squares,
//! colours of the map's ends), earlier pictures never overwritten, and the training chart.

mod common;
mod synth;

use common::{ok, usage_error};
use std::path::Path;
use stride::viz::colormap::ColorMap;
use stride::viz::grid::{Cell, Grid, Row};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Decodes a PNG: (width, height, RGB bytes).
fn decode(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    (info.width as usize, info.height as usize, buf)
}

#[test]
fn grid_upscales_nearest_neighbour_with_the_colour_map() {
    // one 2×3 cell with values 0..5 drawn at 30 px: scale 10, each value a 10×10 square
    let grid = Grid {
        title: "t".into(),
        rows: vec![Row {
            label: String::new(),
            cells: vec![Cell {
                label: "c".into(),
                h: 2,
                w: 3,
                values: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            }],
        }],
        map: ColorMap::Viridis,
        cell_px: 30,
    };
    let lay = grid.layout();
    assert_eq!(lay.scale, 10);
    let (w, h, px) = decode(&grid.render().unwrap());
    assert_eq!((w, h), (lay.width, lay.height));
    let at = |x: usize, y: usize| &px[(y * w + x) * 3..][..3];
    let (x0, y0) = grid.cell_origin(0, 0);
    for (v, (cx, cy)) in [(0usize, (0, 0)), (2, (2, 0)), (5, (2, 1))] {
        let want = ColorMap::Viridis.color(v as f32, (0.0, 5.0));
        for (dx, dy) in [(0, 0), (9, 9), (5, 3)] {
            assert_eq!(at(x0 + cx * 10 + dx, y0 + cy * 10 + dy), want, "value {v}");
        }
    }
    // the last square ends exactly at its edge (the gap after it is background)
    assert_ne!(
        at(x0 + 30, y0 + 15),
        ColorMap::Viridis.color(5.0, (0.0, 5.0))
    );
}

#[test]
fn features_writes_labelled_pictures_and_keeps_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 40, 20);
    let run = dir.path().join("run");
    ok(&[
        "train",
        "conv(3,k=5,p=2) relu maxpool(2) conv(4,k=3) relu flatten linear(10)",
        "--data",
        &s(&data),
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--out",
        &s(&run),
        "--threads",
        "1",
    ]);
    let out_dir = dir.path().join("pics");
    let out = ok(&[
        "features",
        &s(&run),
        "--image",
        "0,3",
        "--data",
        &s(&data),
        "--out",
        &s(&out_dir),
    ]);
    // input, layer 1 maps + kernels, layer 3 (pool) maps, layer 4 maps + kernels
    let files = [
        "00-input.png",
        "01-layer1-features.png",
        "02-layer1-kernels.png",
        "03-layer3-features.png",
        "04-layer4-features.png",
        "05-layer4-kernels.png",
    ];
    for f in files {
        let bytes = std::fs::read(out_dir.join(f)).unwrap_or_else(|_| panic!("{f} missing: {out}"));
        let (w, h, _) = decode(&bytes);
        assert!(out.contains(&format!("{f} ({w}×{h})")), "{f}: {out}");
    }
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), files.len());
    // two images side by side: the first layer's maps are two rows of 28×28 maps at scale 3
    let (_, h1, _) = decode(&std::fs::read(out_dir.join(files[1])).unwrap());
    assert!(h1 > 2 * 28 * 3, "{h1}");
    // a second run into the same folder is refused, the pictures untouched
    let before = std::fs::read(out_dir.join(files[0])).unwrap();
    let e = usage_error(&[
        "features",
        &s(&run),
        "--data",
        &s(&data),
        "--out",
        &s(&out_dir),
    ]);
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(std::fs::read(out_dir.join(files[0])).unwrap(), before);
    // bad layer numbers and images name the fix
    let e = usage_error(&[
        "features",
        &s(&run),
        "--data",
        &s(&data),
        "--layers",
        "9",
        "--out",
        &s(&dir.path().join("x")),
    ]);
    assert!(e.contains("layers 1 to 7"), "{e}");
    let e = usage_error(&[
        "features",
        &s(&run),
        "--data",
        &s(&data),
        "--image",
        "99",
        "--out",
        &s(&dir.path().join("y")),
    ]);
    assert!(e.contains("past the test set"), "{e}");
    // an image file instead of a test image: a 14×14 RGB PNG, converted and resized
    let png_path = dir.path().join("item.png");
    {
        let f = std::fs::File::create(&png_path).unwrap();
        let mut enc = png::Encoder::new(f, 14, 14);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let px: Vec<u8> = (0..14 * 14 * 3).map(|i| ((i * 7) % 256) as u8).collect();
        enc.write_header().unwrap().write_image_data(&px).unwrap();
    }
    let one = dir.path().join("one");
    let out = ok(&[
        "features",
        &s(&run),
        "--input",
        &s(&png_path),
        "--layers",
        "1",
        "--out",
        &s(&one),
    ]);
    assert!(
        out.contains("00-input.png") && out.contains("01-layer1-features.png"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&one).unwrap().count(), 3, "{out}");
    // the training chart is a plotters-drawn PNG of the documented size
    let (w, h, px) = decode(&std::fs::read(run.join("chart.png")).unwrap());
    assert_eq!((w as u32, h as u32), stride::viz::chart::SIZE);
    // anti-aliased text and lines: grey levels between black and white occur
    let greys = px
        .chunks(3)
        .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 40 && p[0] < 200)
        .count();
    assert!(greys > 100, "{greys}");
}
