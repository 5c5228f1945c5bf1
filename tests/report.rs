//! `bnlab report` and the page builder behind it (`bnlab::html_page`).
//!
//! Oracles: an XML parser and the rules of a self-contained page (`common::html_check`, whose
//! own rejections are tested here first); the run's own files read independently: the
//! parameter count summed from `last.safetensors`'s tensor sizes, each epoch of history.json,
//! the pictures decoded from the folder's PNGs, the folder's listing and sizes; for bad input,
//! one line on stderr that names the folder or file, and nothing written.

mod common;
use bnlab::html_page::Page;
use common::bnlab_cli::*;
use common::html_check::{check_self_contained, Summary};
use common::run_files::{param_count, with_commas};
use common::{assert_ok, entries, stdout, write_three_class_table};
use std::path::Path;

/// A PNG of `w` x `h` pixels, encoded here.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 40) as u8, 90])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

#[track_caller]
fn checked(html: &str) -> Summary {
    check_self_contained(html).unwrap_or_else(|e| panic!("not a self-contained page: {e}"))
}

fn report(args: &[&str], cwd: &Path) -> std::process::Output {
    let mut v = strings(&["report"]);
    v.extend(strings(args));
    run(&v, cwd)
}

fn table<'a>(page: &'a Summary, first_header: &str) -> &'a common::html_check::Table {
    page.tables
        .iter()
        .find(|t| t.headers.first().map(String::as_str) == Some(first_header))
        .unwrap_or_else(|| panic!("no table headed {first_header:?}: {:?}", page.tables))
}

#[track_caller]
fn assert_total_params(page: &Summary, weights: &Path) {
    let want = format!("Total params: {}", with_commas(param_count(weights)));
    assert!(
        page.pre.iter().any(|p| p.contains(&want)),
        "no {want:?} in the page's summary: {:?}",
        page.pre
    );
}

// ---------------------------------------------------------------------------------------------
// the checker itself: it must refuse what a self-contained page cannot hold

fn page(head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head>\
         <meta charset=\"utf-8\" /><title>t</title>{head}</head><body>{body}</body></html>\n"
    )
}

#[test]
fn the_checker_refuses_what_a_self_contained_page_cannot_hold() {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(png(3, 2));
    let good = page(
        "<style>p { color: red; }</style>",
        &format!(
            "<p id=\"a\"><a href=\"#a\">x &amp; y</a></p>\
             <figure><img src=\"data:image/png;base64,{data}\" alt=\"p\" width=\"3\" height=\"2\" />\
             <figcaption>cap</figcaption></figure>\
             <table><thead><tr><th>h</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>"
        ),
    );
    let ok = checked(&good);
    assert_eq!(ok.images.len(), 1);
    assert_eq!((ok.images[0].width, ok.images[0].height), (3, 2));
    assert_eq!(ok.images[0].caption.as_deref(), Some("cap"));
    assert_eq!(ok.tables[0].headers, ["h"]);
    assert_eq!(ok.tables[0].rows, [["1"]]);
    assert!(ok.text.contains("x & y"), "{}", ok.text);

    let img = |attrs: &str| format!("<img {attrs} />");
    let bad: Vec<(&str, String)> = vec![
        ("no doctype", good.replacen("<!DOCTYPE html>", "", 1)),
        ("unclosed", page("", "<p>x")),
        ("crossed", page("", "<div><p>x</div></p>")),
        ("unquoted", page("", "<p class=x>x</p>")),
        ("repeated attribute", page("", "<p class=\"a\" class=\"b\">x</p>")),
        ("HTML entity", page("", "<p>&nbsp;</p>")),
        ("a control character", page("", "<p>\u{7}</p>")),
        ("self-closed div", page("", "<div />")),
        ("unclosed img", page("", &format!("<p><img src=\"data:image/png;base64,{data}\" alt=\"p\"></p>"))),
        ("tr outside tbody", page("", "<table><tr><td>1</td></tr></table>")),
        ("div in p", page("", "<p><div>x</div></p>")),
        ("http img", page("", &img("src=\"https://example.org/a.png\" alt=\"a\""))),
        ("relative img", page("", &img("src=\"a.png\" alt=\"a\""))),
        ("not a png", page("", &img("src=\"data:image/png;base64,AAAA\" alt=\"a\""))),
        ("a jpeg uri", page("", &img(&format!("src=\"data:image/jpeg;base64,{data}\" alt=\"a\"")))),
        ("no alt", page("", &img(&format!("src=\"data:image/png;base64,{data}\"")))),
        ("wrong width", page("", &img(&format!("src=\"data:image/png;base64,{data}\" alt=\"a\" width=\"4\"")))),
        ("dangling fragment", page("", "<p><a href=\"#nowhere\">x</a></p>")),
        ("external link", page("", "<p><a href=\"http://example.org/\">x</a></p>")),
        ("relative link", page("", "<p><a href=\"history.csv\">x</a></p>")),
        ("duplicate id", page("", "<p id=\"a\">x</p><p id=\"a\">y</p>")),
        ("script", page("<script>1</script>", "")),
        ("link", page("<link rel=\"stylesheet\" href=\"#a\" />", "<p id=\"a\">x</p>")),
        ("iframe", page("", "<iframe src=\"data:text/html,x\"></iframe>")),
        ("form", page("", "<form action=\"#a\"><p id=\"a\">x</p></form>")),
        ("refresh", page("<meta http-equiv=\"refresh\" content=\"0\" />", "")),
        ("css url", page("<style>body { background: url(x.png) }</style>", "")),
        ("css import", page("<style>@import \"x.css\";</style>", "")),
        ("style attribute url", page("", "<p style=\"background:URL(x)\">x</p>")),
        ("event handler", page("", "<p onclick=\"go()\">x</p>")),
        ("xlink", page("", "<svg xmlns:xlink=\"http://www.w3.org/1999/xlink\"><use xlink:href=\"s.svg#a\"></use></svg>")),
        ("no charset", good.replace("<meta charset=\"utf-8\" />", "")),
        ("no namespace", good.replace(" xmlns=\"http://www.w3.org/1999/xhtml\"", "")),
    ];
    for (what, html) in bad {
        assert!(
            check_self_contained(&html).is_err(),
            "the checker took a page with {what}:\n{html}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// the page builder

#[test]
fn a_page_of_every_kind_of_block_is_self_contained_and_escaped() {
    let title = "<script>alert('x')</script> & \"co\"";
    let mut p = Page::new(title);
    p.note("made <by> a test");
    p.section("Numbers & words")
        .heading(3, "a <b> heading")
        .paragraph("1 < 2 && 3 > 2")
        .table(
            &["name", "value"],
            &[
                vec!["<td>".to_string(), "1,234".to_string()],
                vec!["short row".to_string()],
            ],
        )
        .definition_list(&[("key <k>", "value 'v'")]);
    p.section("Text")
        .preformatted("</pre><script>x</script>\n  kept   spacing\n");
    p.section("Pictures")
        .image("a <small> picture", "caption & more", &png(5, 4))
        .unwrap();
    let err = p.image("bad", "bad", b"GIF89a").map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("PNG"), "{err}");
    let html = p.render();
    let page = checked(&html);
    // the title's script is text, shown as written
    assert_eq!(page.headings[0], title);
    assert!(page.headings.contains(&"a <b> heading".to_string()));
    assert!(page.text.contains("1 < 2 && 3 > 2"), "{}", page.text);
    assert_eq!(page.tables[0].headers, ["name", "value"]);
    assert_eq!(
        page.tables[0].rows,
        [vec!["<td>", "1,234"], vec!["short row", ""]]
    );
    assert_eq!(page.pre, ["</pre><script>x</script>\n  kept   spacing"]);
    assert_eq!(page.images.len(), 1, "the refused picture left nothing");
    assert_eq!((page.images[0].width, page.images[0].height), (5, 4));
    assert_eq!(page.images[0].alt, "a <small> picture");
    assert_eq!(page.images[0].caption.as_deref(), Some("caption & more"));
    // the table of contents links each section by an id the page has
    assert!(page.headings.contains(&"Numbers & words".to_string()));
    assert_eq!(page.ids.len(), 3, "{:?}", page.ids);
    // written whole, nothing left beside it
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.html");
    p.write(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), html);
    assert_eq!(entries(dir.path()), ["page.html"]);
}

// ---------------------------------------------------------------------------------------------
// bnlab report

#[test]
fn a_run_report_holds_the_run_its_model_history_plots_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let run_dir = dir.path().join("run");
    let train = train_args(&run_dir, 3, &["--data-dir", path_str(&data)]);
    assert_ok(&run(&train, dir.path()));
    // another plot, as a run trained with --stats has; it sorts before history.png by name,
    // but history.png comes first
    std::fs::write(run_dir.join("activations.png"), png(7, 5)).unwrap();

    let o = report(&[path_str(&run_dir)], dir.path());
    assert_ok(&o);
    let written = run_dir.join("report.html");
    assert_eq!(stdout(&o), format!("Wrote {}\n", written.display()));
    assert!(o.stderr.is_empty(), "{}", common::stderr(&o));
    let page = checked(&std::fs::read_to_string(&written).unwrap());

    // every PNG of the folder, decoded as the folder has it
    let history_png = image::open(run_dir.join("history.png")).unwrap();
    let pictures: Vec<(Option<&str>, u32, u32)> = page
        .images
        .iter()
        .map(|i| (i.caption.as_deref(), i.width, i.height))
        .collect();
    assert_eq!(
        pictures,
        [
            (
                Some("history.png"),
                history_png.width(),
                history_png.height()
            ),
            (Some("activations.png"), 7, 5)
        ]
    );

    // the model's torchinfo table counts the parameters the weights hold
    assert_total_params(&page, &run_dir.join("last.safetensors"));

    // one row per epoch of history.json, with its numbers
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("history.json")).unwrap())
            .unwrap();
    let epochs = history["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    let rows = &table(&page, "epoch").rows;
    assert_eq!(rows.len(), epochs.len());
    for (row, e) in rows.iter().zip(epochs) {
        assert_eq!(row[0], e["epoch"].to_string());
        let keys = [
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "seconds",
        ];
        for (cell, key) in row[1..].iter().zip(keys) {
            let shown: f64 = cell.parse().unwrap_or_else(|_| panic!("{key}: {cell}"));
            let want = e[key].as_f64().unwrap();
            let tolerance = if key == "seconds" {
                0.005
            } else {
                5e-6 * want.abs().max(1.0)
            };
            assert!(
                (shown - want).abs() <= tolerance,
                "{key}: shown {shown}, history {want}"
            );
        }
    }

    // the folder's files and sizes, the report aside
    let listed: Vec<(String, u64)> = table(&page, "file")
        .rows
        .iter()
        .map(|r| (r[0].clone(), r[1].replace(',', "").parse().unwrap()))
        .collect();
    let on_disk: Vec<(String, u64)> = entries(&run_dir)
        .into_iter()
        .filter(|n| n != "report.html")
        .map(|n| {
            let size = std::fs::metadata(run_dir.join(&n)).unwrap().len();
            (n, size)
        })
        .collect();
    assert_eq!(listed, on_disk);
    assert!(listed.iter().any(|(n, _)| n == "last.safetensors"));

    // again: the report is replaced (and still not listed); --out writes elsewhere
    assert_ok(&report(&[path_str(&run_dir)], dir.path()));
    let again = checked(&std::fs::read_to_string(&written).unwrap());
    assert_eq!(table(&again, "file").rows.len(), on_disk.len());
    let elsewhere = dir.path().join("elsewhere.html");
    let o = report(
        &[path_str(&run_dir), "--out", path_str(&elsewhere)],
        dir.path(),
    );
    assert_ok(&o);
    assert_eq!(stdout(&o), format!("Wrote {}\n", elsewhere.display()));
    checked(&std::fs::read_to_string(&elsewhere).unwrap());
    // no temporary file left behind
    assert!(entries(&run_dir).iter().all(|n| !n.starts_with('.')));
}

#[test]
fn reports_of_a_table_run_and_a_model_file_run_rebuild_the_models_they_trained() {
    let dir = tempfile::tempdir().unwrap();
    // a table: the preset sized to 3 features and 3 classes
    let csv = dir.path().join("t.csv");
    write_three_class_table(&csv, 60);
    let table_run = dir.path().join("table-run");
    let mut args = train_args(
        &table_run,
        2,
        &["--dataset", "csv", "--train-csv", path_str(&csv)],
    );
    args.extend(strings(&["--target", "cls"]));
    assert_ok(&run(&args, dir.path()));
    assert_ok(&report(&[path_str(&table_run)], dir.path()));
    let page = checked(&std::fs::read_to_string(table_run.join("report.html")).unwrap());
    assert_total_params(&page, &table_run.join("last.safetensors"));
    assert!(
        page.text.contains(path_str(&csv)),
        "the table's file is named"
    );

    // a model file: its text is shown, and its model summarised
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/models/bn-dropout.txt");
    let data = dir.path().join("data");
    tiny_mnist(&data);
    let file_run = dir.path().join("file-run");
    let args = train_args(
        &file_run,
        1,
        &["--data-dir", path_str(&data), "--model", path_str(&model)],
    );
    assert_ok(&run(&args, dir.path()));
    assert_ok(&report(&[path_str(&file_run)], dir.path()));
    let page = checked(&std::fs::read_to_string(file_run.join("report.html")).unwrap());
    assert_total_params(&page, &file_run.join("last.safetensors"));
    let text = std::fs::read_to_string(&model).unwrap();
    assert!(
        page.pre.iter().any(|p| p.trim_end() == text.trim_end()),
        "the model file's text is in the page"
    );
}

/// A history.json as `bnlab train` writes it, with no epoch, for `model`.
fn bare_history(model: &str) -> String {
    serde_json::json!({
        "epochs": [], "best_epoch": null, "stopped_early": false, "elapsed_seconds": 0.0,
        "config": { "model": model, "options": { "dataset": "mnist", "epochs": 2 } }
    })
    .to_string()
}

#[test]
fn a_run_whose_model_cannot_be_rebuilt_still_gets_a_page_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::write(run_dir.join("history.json"), bare_history("resnet")).unwrap();
    let o = report(&[path_str(&run_dir)], dir.path());
    assert_ok(&o);
    let page = checked(&std::fs::read_to_string(run_dir.join("report.html")).unwrap());
    assert!(page.pre.is_empty(), "no summary table: {:?}", page.pre);
    assert!(
        page.text.contains("resnet"),
        "the page says why: {}",
        page.text
    );
    assert!(page.images.is_empty());
}

#[test]
fn bad_run_folders_are_one_line_naming_the_file_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fails = |args: &[&str], names: &[&str]| {
        let o = report(args, d);
        assert_clean_error(&o, names);
        assert!(o.stdout.is_empty(), "{}", stdout(&o));
    };
    // a folder that does not exist: named, and not created
    let missing = d.join("missing");
    fails(&[path_str(&missing)], &[path_str(&missing)]);
    assert!(!missing.exists());
    // a file, not a folder
    let file = d.join("file");
    std::fs::write(&file, "x").unwrap();
    fails(&[path_str(&file)], &[path_str(&file)]);
    // a folder without history.json
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(&[path_str(&empty)], &[path_str(&empty), "history.json"]);
    assert!(entries(&empty).is_empty());
    // a history.json that is not one: cut, another shape, not text
    let bad = d.join("bad");
    std::fs::create_dir(&bad).unwrap();
    let history = bad.join("history.json");
    for content in [&b"{\"epochs\": ["[..], b"{}", b"[1, 2]", b"\xff\xfe\x00"] {
        std::fs::write(&history, content).unwrap();
        fails(&[path_str(&bad)], &[path_str(&history)]);
        assert_eq!(entries(&bad), ["history.json"]);
    }
    // a PNG that does not decode, beside a good history
    let png_run = d.join("png-run");
    std::fs::create_dir(&png_run).unwrap();
    std::fs::write(png_run.join("history.json"), bare_history("bn")).unwrap();
    let broken = png_run.join("stats.png");
    std::fs::write(&broken, &png(4, 4)[..40]).unwrap();
    fails(&[path_str(&png_run)], &[path_str(&broken)]);
    assert_eq!(entries(&png_run), ["history.json", "stats.png"]);
    // --out in a folder that does not exist, or naming a folder
    std::fs::write(&broken, png(4, 4)).unwrap();
    let nowhere = d.join("nowhere").join("r.html");
    fails(
        &[path_str(&png_run), "--out", path_str(&nowhere)],
        &["--out", path_str(&nowhere)],
    );
    assert!(!d.join("nowhere").exists());
    fails(
        &[path_str(&png_run), "--out", path_str(&empty)],
        &["--out", path_str(&empty)],
    );
    assert!(entries(&empty).is_empty());
    assert_eq!(entries(&png_run), ["history.json", "stats.png"]);
}

#[test]
fn report_out_replaces_an_existing_file_only_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run_dir = d.join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::write(run_dir.join("history.json"), bare_history("bn")).unwrap();
    // the file a user named may be anything: trained weights here
    let weights = run_dir.join("last.safetensors");
    std::fs::write(&weights, b"weights").unwrap();
    let o = report(&[path_str(&run_dir), "--out", path_str(&weights)], d);
    assert_clean_error(&o, &["--out", path_str(&weights), "--overwrite"]);
    assert_eq!(std::fs::read(&weights).unwrap(), b"weights");
    // a dangling link is a name that exists too
    #[cfg(unix)]
    {
        let link = d.join("link.html");
        std::os::unix::fs::symlink(d.join("nowhere"), &link).unwrap();
        let o = report(&[path_str(&run_dir), "--out", path_str(&link)], d);
        assert_clean_error(&o, &["--out", path_str(&link)]);
        assert!(!d.join("nowhere").exists());
    }
    // --overwrite replaces it with the page
    let o = report(
        &[
            path_str(&run_dir),
            "--out",
            path_str(&weights),
            "--overwrite",
        ],
        d,
    );
    assert_ok(&o);
    checked(&std::fs::read_to_string(&weights).unwrap());
}

#[cfg(unix)]
#[test]
fn pngs_that_are_links_or_too_large_are_left_out_with_a_note_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run_dir = d.join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::write(run_dir.join("history.json"), bare_history("bn")).unwrap();
    std::fs::write(run_dir.join("own.png"), png(3, 2)).unwrap();
    // a good PNG elsewhere on the disk, linked into the folder
    let secret = d.join("secret.png");
    std::fs::write(&secret, png(9, 9)).unwrap();
    std::os::unix::fs::symlink(&secret, run_dir.join("linked.png")).unwrap();
    // a file past the limit: sparse, so the test itself writes nothing large; a PNG signature
    // so that only its size can keep it out
    let big = run_dir.join("big.png");
    let f = std::fs::File::create(&big).unwrap();
    use std::io::Write;
    (&f).write_all(b"\x89PNG\r\n\x1a\n").unwrap();
    f.set_len((32 << 20) + 1).unwrap();
    drop(f);

    let o = report(&[path_str(&run_dir)], d);
    assert_ok(&o);
    let page = checked(&std::fs::read_to_string(run_dir.join("report.html")).unwrap());
    let captions: Vec<Option<&str>> = page.images.iter().map(|i| i.caption.as_deref()).collect();
    assert_eq!(captions, [Some("own.png")], "only the folder's own PNG");
    let err = common::stderr(&o);
    for name in ["linked.png", "big.png"] {
        assert!(
            err.lines()
                .any(|l| l.contains(name) && l.contains("left out")),
            "stderr names {name}: {err}"
        );
        assert!(
            page.text.contains(&format!("{name} is left out")),
            "the page says {name} is left out: {}",
            page.text
        );
    }
    assert!(!page.text.contains("secret"), "{}", page.text);

    // a file named .png without PNG's signature: named, nothing written
    for name in ["report.html", "big.png", "linked.png"] {
        std::fs::remove_file(run_dir.join(name)).unwrap();
    }
    std::fs::write(run_dir.join("fake.png"), b"<html>not a picture</html>").unwrap();
    let o = report(&[path_str(&run_dir)], d);
    assert_clean_error(&o, &[path_str(&run_dir.join("fake.png")), "PNG"]);
    assert!(!run_dir.join("report.html").exists());
}
