//! A small builder of self-contained HTML pages: one file that a browser shows the same
//! anywhere, offline, and that refers to nothing outside itself.
//!
//! The page is polyglot XHTML5: `<!DOCTYPE html>`, every element closed, void elements written
//! `<img ... />`, all text and attribute values escaped, so it parses as XML as well as HTML
//! (tests check it with an XML parser). The style is inline, there is no JavaScript, and
//! pictures are embedded as `data:image/png;base64,...` URIs after being decoded once to check
//! that they are PNGs. The only links are the table of contents' `#anchor`s to the page's
//! own sections.
//!
//! ```
//! use bnlab::html_page::Page;
//! let mut page = Page::new("A <run>");
//! page.section("Results")
//!     .paragraph("Accuracy after 3 epochs:")
//!     .table(&["epoch", "accuracy"], &[vec!["3".into(), "0.98".into()]]);
//! let html = page.render();
//! assert!(html.contains("<title>A &lt;run&gt;</title>"));
//! ```

use crate::{Error, Result};
use base64::Engine;
use std::fmt::Write;
use std::path::Path;

/// The page's style sheet. It holds no `<`, `&` or `>` (in HTML a `<style>` is raw text, in XML
/// it is parsed), and no `url(`: nothing is fetched.
const STYLE: &str = include_str!("style.css");

/// One HTML page under construction: a title, then blocks appended in order. Methods return
/// `&mut Page` so that calls chain; [`Page::render`] gives the finished text.
#[derive(Clone, Debug)]
pub struct Page {
    title: String,
    /// The sections' ids and titles, in order, for the table of contents.
    toc: Vec<(String, String)>,
    /// The rendered blocks (inside `<main>`).
    body: String,
    /// Whether a `<section>` is open in `body` (closed by the next section or the end).
    in_section: bool,
    /// Small text under the title (what the page is made from, when).
    subtitle: Option<String>,
}

impl Page {
    /// An empty page; `title` is both the window's title and the page's `<h1>`.
    pub fn new(title: &str) -> Page {
        Page {
            title: title.to_string(),
            toc: Vec::new(),
            body: String::new(),
            in_section: false,
            subtitle: None,
        }
    }

    /// Small grey text under the title, above the table of contents: where the page comes
    /// from, when it was made. A second call replaces the first.
    pub fn subtitle(&mut self, text: &str) -> &mut Page {
        self.subtitle = Some(text.to_string());
        self
    }

    /// Starts a new section (closing the one before): an `<h2>` with an id, listed in the
    /// table of contents that the page shows when it has two sections or more.
    pub fn section(&mut self, title: &str) -> &mut Page {
        self.close_section();
        let id = self.unique_id(title);
        let _ = writeln!(
            self.body,
            "<section id=\"{}\">\n<h2>{}</h2>",
            escape(&id),
            escape(title)
        );
        self.toc.push((id, title.to_string()));
        self.in_section = true;
        self
    }

    /// A heading of `level` 1 to 6 (clamped; the title is the page's only `<h1>`, so use 2 or
    /// more); not listed in the table of contents.
    pub fn heading(&mut self, level: u8, text: &str) -> &mut Page {
        let level = level.clamp(1, 6);
        let _ = writeln!(self.body, "<h{level}>{}</h{level}>", escape(text));
        self
    }

    /// A paragraph of text.
    pub fn paragraph(&mut self, text: &str) -> &mut Page {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
        self
    }

    /// A paragraph of small grey text: provenance, caveats, what is missing.
    pub fn note(&mut self, text: &str) -> &mut Page {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", escape(text));
        self
    }

    /// Text shown as it is, in a monospace font (a summary table, a configuration); a line
    /// wider than the page scrolls inside its box instead of widening the page.
    pub fn preformatted(&mut self, text: &str) -> &mut Page {
        let _ = writeln!(self.body, "<pre>{}</pre>", escape(text.trim_end()));
        self
    }

    /// A table with a header row. A column whose cells are all numbers (or empty, or `-`) is
    /// right-aligned, header included; a row shorter than the header is padded with empty
    /// cells. A wide table scrolls inside its box.
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) -> &mut Page {
        let columns = rows.iter().map(Vec::len).fold(headers.len(), usize::max);
        let numeric: Vec<bool> = (0..columns)
            .map(|c| {
                let cells = || rows.iter().filter_map(|r| r.get(c));
                cells().any(|s| is_number(s)) && cells().all(|s| is_number(s) || is_blank(s))
            })
            .collect();
        let class = |c: usize| if numeric[c] { " class=\"num\"" } else { "" };
        let mut t = String::from("<div class=\"scroll\">\n<table>\n<thead>\n<tr>");
        for c in 0..columns {
            let head = headers.get(c).copied().unwrap_or("");
            let _ = write!(t, "<th{}>{}</th>", class(c), escape(head));
        }
        t.push_str("</tr>\n</thead>\n<tbody>\n");
        for row in rows {
            t.push_str("<tr>");
            for c in 0..columns {
                let cell = row.get(c).map(String::as_str).unwrap_or("");
                let _ = write!(t, "<td{}>{}</td>", class(c), escape(cell));
            }
            t.push_str("</tr>\n");
        }
        t.push_str("</tbody>\n</table>\n</div>\n");
        self.body.push_str(&t);
        self
    }

    /// The `<dt>`/`<dd>` pairs of an open `<dl>`, then its end.
    fn terms_and_close<K: AsRef<str>, V: AsRef<str>>(&mut self, items: &[(K, V)]) -> &mut Page {
        for (k, v) in items {
            let _ = writeln!(
                self.body,
                "<dt>{}</dt><dd>{}</dd>",
                escape(k.as_ref()),
                escape(v.as_ref())
            );
        }
        self.body.push_str("</dl>\n");
        self
    }

    /// Terms and their descriptions (`<dl>`), shown as two aligned columns.
    pub fn definition_list<K: AsRef<str>, V: AsRef<str>>(&mut self, items: &[(K, V)]) -> &mut Page {
        self.body.push_str("<dl>\n");
        self.terms_and_close(items)
    }

    /// Many short terms and values (options, settings) as a grid of `pairs` term-value pairs
    /// per row, read across (`pairs` is clamped to 1..=4); one pair per row on a narrow
    /// screen.
    pub fn definition_grid<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        items: &[(K, V)],
        pairs: usize,
    ) -> &mut Page {
        let pairs = pairs.clamp(1, 4);
        let _ = writeln!(self.body, "<dl class=\"grid\" style=\"--pairs: {pairs}\">");
        self.terms_and_close(items)
    }

    /// A PNG picture embedded in the page (a `data:` URI), in a figure with `caption` under it;
    /// `alt` describes it for readers that cannot see it. The bytes are decoded first: anything
    /// that is not a whole PNG is an error (and the page is left unchanged).
    pub fn image(&mut self, alt: &str, caption: &str, png: &[u8]) -> Result<&mut Page> {
        let picture = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .map_err(|e| Error::Invalid(format!("not a PNG image ({e})")))?;
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        let _ = writeln!(
            self.body,
            "<figure>\n<img src=\"data:image/png;base64,{data}\" alt=\"{}\" width=\"{}\" height=\"{}\" />\n<figcaption>{}</figcaption>\n</figure>",
            escape(alt),
            picture.width(),
            picture.height(),
            escape(caption)
        );
        Ok(self)
    }

    /// The whole page as text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + STYLE.len() + 1024);
        out.push_str("<!DOCTYPE html>\n");
        out.push_str("<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\" xml:lang=\"en\">\n");
        out.push_str("<head>\n<meta charset=\"utf-8\" />\n");
        out.push_str(
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n",
        );
        let _ = writeln!(
            out,
            "<meta name=\"generator\" content=\"bnlab {}\" />",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(out, "<title>{}</title>", escape(&self.title));
        let _ = writeln!(out, "<style>\n{STYLE}</style>\n</head>\n<body>");
        let _ = writeln!(out, "<header>\n<h1>{}</h1>", escape(&self.title));
        if let Some(sub) = &self.subtitle {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(sub));
        }
        out.push_str("</header>\n");
        if self.toc.len() >= 2 {
            out.push_str("<nav class=\"toc\">\n<p>Contents</p>\n<ol>\n");
            for (id, title) in &self.toc {
                let _ = writeln!(
                    out,
                    "<li><a href=\"#{}\">{}</a></li>",
                    escape(id),
                    escape(title)
                );
            }
            out.push_str("</ol>\n</nav>\n");
        }
        out.push_str("<main>\n");
        out.push_str(&self.body);
        if self.in_section {
            out.push_str("</section>\n");
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }

    /// Writes [`Page::render`] to `path` atomically: a reader sees the earlier file or the
    /// whole new one, never half of it.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, self.render().as_bytes())
    }

    fn close_section(&mut self) {
        if self.in_section {
            self.body.push_str("</section>\n");
            self.in_section = false;
        }
    }

    /// An id made of `title`'s letters and digits (`the-run`), with `-2`, `-3`, ... when
    /// another section has it already.
    fn unique_id(&self, title: &str) -> String {
        let mut slug = String::new();
        for ch in title.chars().flat_map(char::to_lowercase) {
            if ch.is_ascii_alphanumeric() {
                slug.push(ch);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let slug = match slug.trim_end_matches('-') {
            "" => "section".to_string(),
            s => s.to_string(),
        };
        let taken = |id: &str| self.toc.iter().any(|(t, _)| t == id);
        let mut id = slug.clone();
        let mut n = 2;
        while taken(&id) {
            id = format!("{slug}-{n}");
            n += 1;
        }
        id
    }
}

/// `text` made safe as HTML and XML text or attribute value: `& < > " '` become references,
/// line breaks become `\n`, and the characters XML 1.0 forbids (controls other than tab and
/// newline, U+FFFE, U+FFFF) become U+FFFD, the replacement character.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(ch),
            // a CRLF or lone CR (a file written on Windows) is one line break, as HTML reads it
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A number as people write them in a table: `1,234`, `-0.5`, `1e-3`, `97.8%`.
fn is_number(cell: &str) -> bool {
    let t = cell.trim();
    let t = t.strip_suffix('%').unwrap_or(t).replace(',', "");
    !t.is_empty() && t.parse::<f64>().is_ok_and(f64::is_finite)
}

/// A cell that says nothing: empty or a dash.
fn is_blank(cell: &str) -> bool {
    matches!(cell.trim(), "" | "-" | "\u{2014}" | "\u{2013}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        // controls XML cannot hold become the replacement character; tab and newline stay
        assert_eq!(escape("a\u{0}b\u{1b}c\td\ne"), "a\u{fffd}b\u{fffd}c\td\ne");
        assert_eq!(escape("a\r\nb\rc"), "a\nb\nc");
    }

    #[test]
    fn a_script_in_the_title_comes_out_escaped() {
        let html = Page::new("<script>alert(1)</script>").render();
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
        assert!(html.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
    }

    #[test]
    fn the_style_cannot_end_its_element_or_fetch_anything() {
        for bad in ["<", ">", "&", "url(", "@import", "http"] {
            assert!(!STYLE.contains(bad), "the style holds {bad:?}");
        }
    }

    #[test]
    fn sections_get_unique_ids_and_a_table_of_contents() {
        let mut page = Page::new("t");
        page.section("The run").section("The run").section("!!");
        let html = page.render();
        for id in ["the-run", "the-run-2", "section"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{html}");
            assert!(html.contains(&format!("<a href=\"#{id}\">")), "{html}");
        }
        assert_eq!(html.matches("<section").count(), 3);
        assert_eq!(html.matches("</section>").count(), 3);
        // one section: no table of contents
        let mut one = Page::new("t");
        one.section("Only");
        assert!(!one.render().contains("<nav"));
    }

    #[test]
    fn numeric_columns_are_right_aligned() {
        let mut page = Page::new("t");
        let rows = vec![
            vec!["a".to_string(), "1,234".to_string(), "x".to_string()],
            vec!["b".to_string(), "-".to_string(), "2".to_string()],
        ];
        page.table(&["name", "count", "mixed"], &rows);
        let html = page.render();
        assert!(html.contains("<th>name</th><th class=\"num\">count</th><th>mixed</th>"));
        assert!(html.contains("<td class=\"num\">1,234</td>"));
        assert!(html.contains("<td class=\"num\">-</td>"));
    }

    #[test]
    fn an_image_that_is_not_a_png_is_refused_and_changes_nothing() {
        let mut page = Page::new("t");
        let before = page.render();
        let err = page.image("alt", "caption", b"not a png").unwrap_err();
        assert!(err.to_string().contains("not a PNG"), "{err}");
        assert_eq!(page.render(), before);
    }
}
