//! Pure tensor operations, forward next to backward, a slow reference beside every fast path.

pub mod conv;
pub mod gemm;
pub mod pool;
