//! Reports: self-contained HTML pages about runs and experiments.

pub mod html;
