//! An experiment's page: one self-contained HTML page (see [`crate::html_page`]) with
//! the protocol, the table, the figures, what they say against the sources, and the networks.

use super::outcome::Outcome;
use crate::html_page::Page;
use crate::Result;

/// The HTML page of `o`, with its figures' PNG bytes (in `o.figures`' order, with captions).
pub fn page(o: &Outcome, pngs: &[(&str, Vec<u8>)]) -> Result<Page> {
    let mut page = Page::new(&o.title);
    page.subtitle(&format!(
        "bnlab experiment {} · {:.1} seconds · bnlab {}",
        o.name,
        o.seconds,
        env!("CARGO_PKG_VERSION")
    ));
    page.section("Protocol");
    for p in &o.protocol {
        page.paragraph(p);
    }
    page.section("Results");
    let headers: Vec<&str> = o.table.headers.iter().map(String::as_str).collect();
    page.table(&headers, &o.table.rows);
    page.section("Figures");
    for (caption, png) in pngs {
        page.image(caption, caption, png)?;
    }
    page.section("What it shows");
    for f in &o.findings {
        page.paragraph(f);
    }
    if !o.models.is_empty() {
        page.section("Networks");
        for (name, text) in &o.models {
            page.heading(3, name);
            page.preformatted(text);
        }
    }
    page.section("Files");
    page.paragraph(
        "results.json holds every number above; the figures are beside this page as PNG files.",
    );
    Ok(page)
}
