//! A checker of self-contained HTML pages (`bnlab report`, experiment reports): one entry
//! point, [`check_self_contained`], which says why a page fails or returns what it holds
//! (its pictures, tables, preformatted blocks, headings, ids and text) for a test to check
//! against its own oracles.
//!
//! What a page must be:
//! - polyglot XHTML5, read by an XML parser (quick-xml): `<!DOCTYPE html>`, one `<html>` root
//!   in the XHTML namespace, every tag balanced, attributes quoted and not repeated, only XML's
//!   own entities (`&nbsp;` is HTML's alone), `<meta charset="utf-8" />`; void elements
//!   (`img`, `meta`, `br`, ...) self-closed and no other element self-closed (in HTML `<div/>`
//!   opens a div that never closes), rows inside `thead`/`tbody`/`tfoot`, no block inside a `p`
//!   (both would make the HTML parser's tree differ from the XML one);
//! - every `<img>` a `data:image/png;base64,` URI whose bytes decode as a non-empty PNG, with
//!   an `alt`, and `width`/`height` (when given) equal to the picture's;
//! - nothing outside itself: no `src`, `href`, `action`, `srcset`, `poster`, `data` (or any
//!   other URL attribute) but `data:` URIs and `#fragment` links whose target id exists; no
//!   `<script>`, `<link>`, `<iframe>`, `<object>`, `<embed>`, `<base>`, no `on*` handlers, no
//!   `<meta http-equiv>`; no `url(`, `@import` or `expression(` in a `<style>` or `style`.

use base64::Engine;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::BTreeSet;

/// What a page that passed holds.
#[derive(Debug, Default)]
pub struct Summary {
    /// Every `<img>`, in order.
    pub images: Vec<Image>,
    /// Every `<table>`, in order.
    pub tables: Vec<Table>,
    /// The text of every `<pre>`, entities decoded.
    pub pre: Vec<String>,
    /// The text of every `<h1>` to `<h6>`, in order.
    pub headings: Vec<String>,
    /// Every `id` in the page.
    pub ids: BTreeSet<String>,
    /// All the text inside `<body>`, entities decoded, in order (blocks run together: search it
    /// for a phrase, do not compare it whole).
    pub text: String,
}

/// One embedded picture.
#[derive(Debug)]
pub struct Image {
    pub alt: String,
    /// The text of the `<figcaption>` of the figure it is in, if any.
    pub caption: Option<String>,
    /// The decoded PNG's size in pixels.
    pub width: u32,
    pub height: u32,
}

/// One table: the header row's cells and each body row's cells, as text.
#[derive(Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Elements the HTML parser never lets hold content: written `<x ... />`, and only they.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];
/// Elements that run code or fetch something.
const FORBIDDEN: &[&str] = &[
    "script", "link", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form",
    "audio", "video", "source", "track", "portal", "noscript",
];
/// Attributes whose value is a URL (by local name, so `xlink:href` is `href`).
const URL_ATTRS: &[&str] = &[
    "src",
    "href",
    "action",
    "formaction",
    "srcset",
    "poster",
    "data",
    "background",
    "cite",
    "longdesc",
    "ping",
    "manifest",
    "codebase",
    "archive",
    "lowsrc",
    "dynsrc",
    "profile",
    "icon",
    "imagesrcset",
    "usemap",
];
/// Elements an HTML parser ends a `<p>` at, when they start inside one.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "dialog",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// Checks that `html` is a self-contained, well-formed page (see the module's docs); the error
/// says what is wrong and where (the byte offset of the parser).
pub fn check_self_contained(html: &str) -> Result<Summary, String> {
    let start = html.trim_start_matches('\u{feff}').trim_start();
    if !start.to_ascii_lowercase().starts_with("<!doctype html>") {
        return Err("the page does not start with <!DOCTYPE html>".into());
    }
    if let Some((at, c)) = html.char_indices().find(|&(_, c)| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}'
    }) {
        return Err(format!(
            "character {:?} at byte {at}, which XML 1.0 forbids",
            c
        ));
    }
    let mut state = State::default();
    let mut reader = Reader::from_str(html);
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML at byte {at}: {e}"))?;
        let step = match event {
            Event::Eof => break,
            Event::Start(e) => state.open(&e, false),
            Event::Empty(e) => state.open(&e, true).and_then(|_| state.close()),
            Event::End(e) => {
                let name = text_of(e.name().as_ref());
                match state.stack.last() {
                    Some(open) if *open == name => state.close(),
                    open => Err(format!("</{name}> closes <{open:?}>")),
                }
            }
            Event::Text(t) => state.text(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content().into_owned();
                let resolved = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => Ok(c.to_string()),
                        _ => Err(format!("bad character reference &{name};")),
                    }
                } else {
                    quick_xml::escape::resolve_predefined_entity(&name)
                        .map(str::to_string)
                        .ok_or_else(|| format!("&{name}; is not an XML entity"))
                };
                resolved.and_then(|text| {
                    if state.stack.last().is_some_and(|e| e == "style") {
                        Err("a reference in <style> reads differently as HTML".into())
                    } else {
                        state.text(&text)
                    }
                })
            }
            Event::DocType(d) => match d.xml10_content().trim().eq_ignore_ascii_case("html") {
                true => Ok(()),
                false => Err(format!("<!DOCTYPE {}> is not HTML5's", d.xml10_content())),
            },
            Event::Comment(_) => Ok(()),
            Event::CData(_) => Err("a CDATA section is a comment to HTML".into()),
            Event::Decl(_) | Event::PI(_) => Err("a processing instruction in the page".into()),
        };
        step.map_err(|e| format!("{e} (near byte {at})"))?;
    }
    state.finish()
}

#[derive(Default)]
struct State {
    /// The names of the open elements, outermost first.
    stack: Vec<String>,
    roots: usize,
    meta_charset: bool,
    title: String,
    /// `#fragment` targets linked to.
    links: Vec<String>,
    /// Text of the `<pre>`, `<h*>`, table cell, figure caption being read.
    capture: Option<String>,
    in_figure: Option<usize>,
    out: Summary,
}

impl State {
    fn open(&mut self, e: &BytesStart, empty: bool) -> Result<(), String> {
        let name = text_of(e.name().as_ref());
        let void = VOID.contains(&name.as_str());
        if empty != void {
            return Err(match void {
                true => format!("<{name}> must be written <{name} ... />"),
                false => format!("<{name} /> opens an element that HTML never closes"),
            });
        }
        if FORBIDDEN.contains(&name.as_str()) {
            return Err(format!("<{name}> runs code or fetches something"));
        }
        if self.stack.is_empty() {
            self.roots += 1;
            if name != "html" || self.roots > 1 {
                return Err(format!("<{name}> outside the one <html> root"));
            }
        }
        if self.stack.iter().any(|p| p == "p") && BLOCKS.contains(&name.as_str()) {
            return Err(format!("<{name}> inside a <p> (HTML closes the p first)"));
        }
        let parent = self.stack.last().cloned();
        let parent = parent.as_deref();
        if name == "tr" && !matches!(parent, Some("thead" | "tbody" | "tfoot")) {
            return Err("<tr> outside thead, tbody or tfoot".into());
        }
        let attrs = self.attributes(&name, e)?;
        let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match name.as_str() {
            "html" if attr("xmlns") != Some("http://www.w3.org/1999/xhtml") => {
                return Err("<html> without xmlns=\"http://www.w3.org/1999/xhtml\"".into())
            }
            "meta" if attr("http-equiv").is_some() => {
                return Err("<meta http-equiv> can reload or redirect the page".into())
            }
            "meta" if attr("charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8")) => {
                self.meta_charset = true
            }
            "img" => self.image(attr("src"), attr("alt"), attr("width"), attr("height"))?,
            "table" => self.out.tables.push(Table::default()),
            "tr" => {
                if let (Some(t), Some("tbody" | "tfoot")) = (self.out.tables.last_mut(), parent) {
                    t.rows.push(Vec::new());
                }
            }
            "figure" => self.in_figure = Some(self.out.images.len()),
            "pre" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" | "td" | "figcaption"
            | "title" => self.capture = Some(String::new()),
            _ => {}
        }
        self.stack.push(name);
        Ok(())
    }

    /// The attributes' names and values (references decoded), after the checks that concern
    /// them one by one.
    fn attributes(
        &mut self,
        element: &str,
        e: &BytesStart,
    ) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for a in e.attributes().with_checks(true) {
            let a = a.map_err(|err| format!("<{element}>: bad attribute: {err}"))?;
            let key = text_of(a.key.as_ref());
            let local = text_of(a.key.local_name().as_ref()).to_ascii_lowercase();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| format!("<{element} {key}>: {err}"))?
                .into_owned();
            if local.starts_with("on") {
                return Err(format!("<{element} {key}>: an event handler (JavaScript)"));
            }
            if local == "style" {
                check_css(&value).map_err(|err| format!("<{element} style>: {err}"))?;
            }
            if URL_ATTRS.contains(&local.as_str()) {
                if let Some(target) = value.strip_prefix('#') {
                    self.links.push(target.to_string());
                } else if !value.trim_start().to_ascii_lowercase().starts_with("data:") {
                    return Err(format!(
                        "<{element} {key}=\"{value}\">: refers outside the page"
                    ));
                }
            }
            if local == "id" && !self.out.ids.insert(value.clone()) {
                return Err(format!("id \"{value}\" is used twice"));
            }
            out.push((key, value));
        }
        Ok(out)
    }

    fn image(
        &mut self,
        src: Option<&str>,
        alt: Option<&str>,
        width: Option<&str>,
        height: Option<&str>,
    ) -> Result<(), String> {
        const PREFIX: &str = "data:image/png;base64,";
        let src = src.ok_or("<img> without src")?;
        let alt = alt.ok_or("<img> without alt")?;
        let data = src
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("<img alt=\"{alt}\">: src is not a {PREFIX} URI"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("<img alt=\"{alt}\">: bad base64 ({e})"))?;
        let picture = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .map_err(|e| format!("<img alt=\"{alt}\">: not a PNG ({e})"))?;
        let (w, h) = (picture.width(), picture.height());
        if w == 0 || h == 0 {
            return Err(format!("<img alt=\"{alt}\">: an empty picture"));
        }
        for (attr, value, real) in [("width", width, w), ("height", height, h)] {
            if value.is_some_and(|v| v.parse() != Ok(real)) {
                return Err(format!(
                    "<img alt=\"{alt}\" {attr}=\"{}\">: the PNG's {attr} is {real}",
                    value.unwrap_or_default()
                ));
            }
        }
        self.out.images.push(Image {
            alt: alt.to_string(),
            caption: None,
            width: w,
            height: h,
        });
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), String> {
        match self.stack.last().map(String::as_str) {
            None if text.trim().is_empty() => return Ok(()),
            None => return Err(format!("text outside <html>: {:?}", text.trim())),
            Some("style") => check_css(text).map_err(|e| format!("<style>: {e}"))?,
            _ => {}
        }
        if let Some(c) = &mut self.capture {
            c.push_str(text);
        }
        if self.stack.iter().any(|e| e == "body") {
            self.out.text.push_str(text);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        let name = self.stack.pop().ok_or("a closing tag with nothing open")?;
        let captured = || self.capture.clone().unwrap_or_default().trim().to_string();
        match name.as_str() {
            "pre" => self.out.pre.push(self.capture.clone().unwrap_or_default()),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => self.out.headings.push(captured()),
            "title" => self.title = captured(),
            "th" | "td" => {
                let cell = captured();
                let in_head = self.stack.iter().any(|e| e == "thead");
                if let Some(t) = self.out.tables.last_mut() {
                    match (in_head, t.rows.last_mut()) {
                        (true, _) => t.headers.push(cell),
                        (false, Some(row)) => row.push(cell),
                        (false, None) => return Err("a cell outside a row".into()),
                    }
                }
            }
            "figcaption" => {
                let caption = captured();
                if let Some(first) = self.in_figure {
                    for image in &mut self.out.images[first..] {
                        image.caption = Some(caption.clone());
                    }
                }
            }
            "figure" => self.in_figure = None,
            _ => {}
        }
        if matches!(
            name.as_str(),
            "pre" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" | "td" | "figcaption" | "title"
        ) {
            self.capture = None;
        }
        // blocks are separated in the text, so that phrases of two cells do not run together
        self.out.text.push(' ');
        Ok(())
    }

    fn finish(self) -> Result<Summary, String> {
        if let Some(open) = self.stack.last() {
            return Err(format!("<{open}> is never closed"));
        }
        if self.roots != 1 {
            return Err("no <html> root".into());
        }
        if !self.meta_charset {
            return Err("no <meta charset=\"utf-8\" />".into());
        }
        if self.title.is_empty() {
            return Err("no <title>, or an empty one".into());
        }
        for target in &self.links {
            if !self.out.ids.contains(target) {
                return Err(format!(
                    "a link to #{target}, which no element has as its id"
                ));
            }
        }
        Ok(self.out)
    }
}

/// A style sheet (or `style` attribute) that fetches nothing.
fn check_css(css: &str) -> Result<(), String> {
    let lower = css.to_ascii_lowercase();
    for bad in ["url(", "@import", "expression(", "image-set(", "src("] {
        if lower.contains(bad) {
            return Err(format!(
                "holds {bad}, which can fetch from outside the page"
            ));
        }
    }
    Ok(())
}

/// A name as quick-xml gives it (`QName`, `LocalName`), owned.
fn text_of(name: &str) -> String {
    name.to_string()
}
