//! Step-by-step explanations.
