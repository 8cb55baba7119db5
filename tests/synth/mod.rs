//! Test helper: a tiny synthetic MNIST-format dataset written as IDX files (gzipped for the
//! training split, raw for the test split, so both paths are exercised).

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use stride::data::idx::encode;
use stride::rng::Rng;

/// `n` 28×28 images: class `c` has a bright 7×7 square at cell `c` of a 4×3 grid, plus noise.
pub fn images(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let (mut px, mut labels) = (Vec::with_capacity(n * 784), Vec::with_capacity(n));
    for i in 0..n {
        let c = (i * 7 + seed as usize) % 10;
        let (r0, c0) = ((c / 4) * 9 + 1, (c % 4) * 7);
        for y in 0..28 {
            for x in 0..28 {
                let inside = (r0..r0 + 7).contains(&y) && (c0..c0 + 7).contains(&x);
                let base = if inside { 180.0 } else { 0.0 };
                px.push((base + rng.range(0.0, 70.0)) as u8);
            }
        }
        labels.push(c as u8);
    }
    (px, labels)
}

/// Writes `train-*` (gzipped) and `t10k-*` (raw) IDX files into `dir`.
pub fn write_dataset(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let (px, lab) = images(n_train, 1);
    gz(
        &dir.join("train-images-idx3-ubyte.gz"),
        &encode(&[n_train, 28, 28], &px),
    );
    gz(
        &dir.join("train-labels-idx1-ubyte.gz"),
        &encode(&[n_train], &lab),
    );
    let (px, lab) = images(n_test, 2);
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        encode(&[n_test, 28, 28], &px),
    )
    .unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), encode(&[n_test], &lab)).unwrap();
}

pub fn gz(path: &Path, bytes: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap();
}
