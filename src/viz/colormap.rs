//! Colour maps: a value range mapped to colours, with the range kept for the legend.
//! `Viridis` (perceptually uniform, dark → bright) for activations, `Diverging` (blue, white,
//! red, symmetric around 0) for kernels whose sign matters, `Gray` for input images.

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Which colours a range maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMap {
    /// Matplotlib's viridis: low = dark purple, high = yellow.
    Viridis,
    /// Blue (negative) – white (0) – red (positive); the range is made symmetric around 0.
    Diverging,
    /// Black (low) to white (high).
    Gray,
}

/// Viridis at 9 evenly spaced stops (matplotlib's table), interpolated linearly between them.
const VIRIDIS: [Rgb; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

const BLUE: Rgb = [33, 102, 172];
const RED: Rgb = [178, 24, 43];
const WHITE: Rgb = [247, 247, 247];

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [0, 1, 2].map(|i| (a[i] as f32 + (b[i] as f32 - a[i] as f32) * t).round() as u8)
}

impl ColorMap {
    /// The colour of `t` in `[0, 1]` (clamped; NaN is drawn as the low end).
    pub fn at(self, t: f32) -> Rgb {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        match self {
            ColorMap::Gray => {
                let g = (t * 255.0).round() as u8;
                [g, g, g]
            }
            ColorMap::Viridis => {
                let x = t * (VIRIDIS.len() - 1) as f32;
                let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
                mix(VIRIDIS[i], VIRIDIS[i + 1], x - i as f32)
            }
            ColorMap::Diverging => {
                if t < 0.5 {
                    mix(BLUE, WHITE, t * 2.0)
                } else {
                    mix(WHITE, RED, (t - 0.5) * 2.0)
                }
            }
        }
    }

    /// The range a legend shows for values spanning `[lo, hi]`: symmetric around 0 for the
    /// diverging map (so white is 0), widened when all values are equal (so the map is defined).
    pub fn range(self, lo: f32, hi: f32) -> (f32, f32) {
        let (lo, hi) = match self {
            ColorMap::Diverging => {
                let m = lo.abs().max(hi.abs());
                (-m, m)
            }
            _ => (lo, hi),
        };
        if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        }
    }

    /// The colour of value `v` within `range` (from [`ColorMap::range`]).
    pub fn color(self, v: f32, range: (f32, f32)) -> Rgb {
        self.at((v - range.0) / (range.1 - range.0))
    }
}

/// The smallest and largest finite value of `values` (`(0, 0)` when there is none).
pub fn finite_range<'a>(values: impl IntoIterator<Item = &'a f32>) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo > hi {
        (0.0, 0.0)
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middle() {
        assert_eq!(ColorMap::Viridis.at(0.0), VIRIDIS[0]);
        assert_eq!(ColorMap::Viridis.at(1.0), VIRIDIS[8]);
        assert_eq!(ColorMap::Gray.at(0.5), [128, 128, 128]);
        let r = ColorMap::Diverging.range(-1.0, 3.0);
        assert_eq!(r, (-3.0, 3.0));
        assert_eq!(ColorMap::Diverging.color(0.0, r), WHITE);
        assert_eq!(ColorMap::Gray.range(2.0, 2.0), (1.5, 2.5));
        assert_eq!(finite_range(&[1.0, f32::NAN, -2.0]), (-2.0, 1.0));
    }
}
