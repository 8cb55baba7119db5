//! Datasets: [`idx`] reads MNIST-format files; [`Dataset`] holds images and labels of one split
//! (Fashion-MNIST by default, from the Debian package `dataset-fashion-mnist`) and assembles
//! shuffled mini-batches with pixels scaled to `[0, 1]` (d2l's `ToTensor`).

pub mod idx;
pub mod image;

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

/// Where `apt-get install dataset-fashion-mnist` puts the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The ten Fashion-MNIST classes, by label.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Training or test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Images `(n, h, w)` as bytes and their labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

/// Finds `{prefix}-{kind}-idx{d}-ubyte[.gz]` (or the `.idx` spelling) in `dir`.
fn find(dir: &Path, prefix: &str, kind: &str, d: usize) -> Result<PathBuf> {
    let stems = [
        format!("{prefix}-{kind}-idx{d}-ubyte"),
        format!("{prefix}-{kind}.idx{d}-ubyte"),
    ];
    for stem in &stems {
        for ext in ["", ".gz"] {
            let p = dir.join(format!("{stem}{ext}"));
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::arg(
        "data",
        format!(
            "{} has no {stem}[.gz]; install Fashion-MNIST with `apt-get install dataset-fashion-mnist` \
             (files go to {DEFAULT_DIR}) or pass --data DIR with the four MNIST-format IDX files",
            dir.display(),
            stem = stems[0]
        ),
    ))
}

impl Dataset {
    /// Loads one split from an MNIST-format folder, checking that images and labels agree and
    /// that labels are below `classes`.
    pub fn load(dir: &Path, split: Split, classes: usize) -> Result<Self> {
        let img_path = find(dir, split.prefix(), "images", 3)?;
        let lab_path = find(dir, split.prefix(), "labels", 1)?;
        let img = idx::read(&img_path)?;
        let lab = idx::read(&lab_path)?;
        let bad = |p: &Path, msg: String| Error::BadFile {
            path: p.to_path_buf(),
            msg,
        };
        if img.dims.len() != 3 {
            return Err(bad(
                &img_path,
                format!(
                    "holds a {}-axis array; images must be (n, rows, cols)",
                    img.dims.len()
                ),
            ));
        }
        if lab.dims.len() != 1 {
            return Err(bad(
                &lab_path,
                format!("holds a {}-axis array; labels must be (n)", lab.dims.len()),
            ));
        }
        if img.dims[0] != lab.dims[0] {
            return Err(bad(
                &lab_path,
                format!(
                    "has {} labels but {} has {} images",
                    lab.dims[0],
                    img_path.display(),
                    img.dims[0]
                ),
            ));
        }
        if let Some(i) = lab.data.iter().position(|&l| l as usize >= classes) {
            return Err(bad(
                &lab_path,
                format!(
                    "label {} at position {i} is out of range 0..{classes}",
                    lab.data[i]
                ),
            ));
        }
        Ok(Dataset {
            n: img.dims[0],
            h: img.dims[1],
            w: img.dims[2],
            images: img.data,
            labels: lab.data,
        })
    }

    /// Keeps only the first `n` examples.
    pub fn truncate(&mut self, n: usize) {
        if n < self.n {
            self.n = n;
            self.images.truncate(n * self.h * self.w);
            self.labels.truncate(n);
        }
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }

    /// Image `i` as a `(1, h, w)` tensor scaled to `[0, 1]`.
    pub fn image(&self, i: usize) -> Tensor {
        let px = &self.images[i * self.pixels()..][..self.pixels()];
        Tensor::new(
            vec![1, self.h, self.w],
            px.iter().map(|&p| p as f32 / 255.0).collect(),
        )
        .expect("sizes agree")
    }

    /// The batch of examples `idx` as `(B, 1, h, w)` in `[0, 1]` and their labels.
    pub fn batch(&self, idx: &[usize]) -> (Tensor, Vec<usize>) {
        let px = self.pixels();
        let mut x = Vec::with_capacity(idx.len() * px);
        for &i in idx {
            x.extend(
                self.images[i * px..][..px]
                    .iter()
                    .map(|&p| p as f32 / 255.0),
            );
        }
        let y = idx.iter().map(|&i| self.labels[i] as usize).collect();
        let x = Tensor::new(vec![idx.len(), 1, self.h, self.w], x).expect("sizes agree");
        (x, y)
    }
}

/// The order in which an epoch visits the examples: a seeded shuffle, a function of `(seed,
/// epoch)` only, so a resumed run visits the same batches as an uninterrupted one.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed ^ (epoch as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    rng.shuffle(&mut order);
    order
}
