//! The figure's look: the vendored font, the palette, and text and line sizes that stay
//! legible where the figure is shown.
//!
//! Text uses the vendored DejaVu Sans (`assets/fonts/`), so no system font or fontconfig is
//! needed. Sizes are given for a figure shown at its own width up to [`SHOWN_WIDTH`] pixels
//! (the content width of bnlab's HTML pages and about GitHub's README column); a wider figure
//! is shown shrunk to that width, so its text and lines are drawn larger in proportion and read
//! the same after shrinking.

use plotters::style::{FontStyle, RGBColor};
use std::sync::OnceLock;

/// DejaVu Sans 2.37; its license is `assets/fonts/LICENSE-DejaVu`.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The width, in CSS pixels, that a page gives a figure: `html_page`'s 1000-pixel column less
/// its padding.
pub const SHOWN_WIDTH: u32 = 936;

/// One colour per series (Tableau 10), reused in order when there are more.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the vendored font for the family "sans-serif", once per process.
pub(crate) fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the bundled font DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
}

/// Every size a panel is drawn with, in the PNG's pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// How much larger than on a figure shown at its own width (at least 1).
    pub scale: f64,
}

impl Sizes {
    /// The sizes for a figure `width` pixels wide.
    pub fn for_width(width: u32) -> Sizes {
        Sizes {
            scale: (width as f64 / SHOWN_WIDTH as f64).max(1.0),
        }
    }

    /// `px` pixels as seen on the page.
    pub fn px(&self, px: f64) -> i32 {
        (px * self.scale).round() as i32
    }

    /// The panel's title.
    pub fn title(&self) -> f64 {
        19.0 * self.scale
    }
    /// Tick labels and the legend's text.
    pub fn label(&self) -> f64 {
        14.0 * self.scale
    }
    /// The axes' names.
    pub fn axis(&self) -> f64 {
        15.0 * self.scale
    }
    /// A series' line width.
    pub fn stroke(&self) -> u32 {
        self.px(2.0).max(2) as u32
    }
    /// A marker's radius.
    pub fn marker(&self) -> i32 {
        self.px(3.5).max(3)
    }
}
