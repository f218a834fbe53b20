//! The study report: one self-contained HTML file — figures embedded as
//! inline SVG, no scripts, no external fetches — opening with what was run,
//! the run's warnings in a box, and the headline numbers, then one section
//! per stage, every figure with a one-sentence caption saying what to look
//! at.

/// One figure: its SVG text and what to look at.
pub struct Figure {
    pub svg: String,
    pub caption: String,
}

/// One stage of the study.
pub struct Section {
    /// Anchor id (letters, digits, `-`).
    pub id: String,
    pub title: String,
    /// A paragraph of plain text introducing the stage.
    pub intro: String,
    pub figures: Vec<Figure>,
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The SVG element of a figure file's text, without an XML declaration (so
/// it can sit inline in HTML).
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}\
h1{margin-bottom:0.2rem}.sub{color:#555;margin-top:0}table{border-collapse:collapse;margin:1rem 0}\
td,th{border:1px solid #ccc;padding:0.3rem 0.6rem;text-align:left}th{background:#f3f3f3}\
figure{margin:1.5rem 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{color:#444;font-size:0.95rem;margin-top:0.3rem}nav a{margin-right:1rem}\
.warnings{border:2px solid #c55a11;background:#fff3e6;padding:0.6rem 1rem;margin:1rem 0}\
.warnings h2{margin:0 0 0.3rem;font-size:1.1rem;color:#8a3b00}.warnings ul{margin:0;padding-left:1.2rem}";

/// The `warnings` list of a study's summary.json, as text.
pub fn summary_warnings(summary: &serde_json::Value) -> Vec<String> {
    summary["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_string))
        .collect()
}

/// The whole page: `title`, a subtitle line, the run's `warnings` (a box
/// above everything else, when there are any), the headline table
/// (`(what, value)` rows) and the sections.
pub fn page(
    title: &str,
    subtitle: &str,
    warnings: &[String],
    headline: &[(String, String)],
    sections: &[Section],
) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str(&format!(
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    ));
    h.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"sub\">{}</p>\n",
        escape(title),
        escape(subtitle)
    ));
    if !warnings.is_empty() {
        h.push_str(&format!(
            "<div class=\"warnings\" id=\"warnings\" role=\"alert\">\n<h2>{}</h2>\n<ul>\n",
            crate::text::count(warnings.len() as u64, "warning")
        ));
        for w in warnings {
            h.push_str(&format!("<li>{}</li>\n", escape(w)));
        }
        h.push_str("</ul>\n</div>\n");
    }
    h.push_str("<nav>");
    for s in sections {
        h.push_str(&format!("<a href=\"#{}\">{}</a>", escape(&s.id), escape(&s.title)));
    }
    h.push_str("</nav>\n<h2 id=\"headline\">Headline results</h2>\n<table>\n<tr><th>result</th><th>value</th></tr>\n");
    for (what, value) in headline {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            escape(what),
            escape(value)
        ));
    }
    h.push_str("</table>\n");
    for s in sections {
        h.push_str(&format!(
            "<section id=\"{}\">\n<h2>{}</h2>\n<p>{}</p>\n",
            escape(&s.id),
            escape(&s.title),
            escape(&s.intro)
        ));
        for f in &s.figures {
            h.push_str(&format!(
                "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
                inline_svg(&f.svg),
                escape(&f.caption)
            ));
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_embeds_every_figure_with_its_caption_and_escapes_text() {
        let fig = |c: &str| Figure {
            svg: "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>".into(),
            caption: c.into(),
        };
        let sections = vec![
            Section {
                id: "solve".into(),
                title: "Exact optimum".into(),
                intro: "g < 1 & more".into(),
                figures: vec![fig("look at the peaks"), fig("second")],
            },
            Section {
                id: "infer".into(),
                title: "Inference".into(),
                intro: String::new(),
                figures: vec![fig("third")],
            },
        ];
        let html = page(
            "toy8 <study>",
            "ran it",
            &[],
            &[("g*".into(), "0.575".into())],
            &sections,
        );
        assert!(!html.contains("class=\"warnings\""), "no box without warnings");
        assert_eq!(html.matches("<svg").count(), 3);
        assert_eq!(html.matches("<figcaption>").count(), 3);
        assert!(!html.contains("<?xml"), "declarations stripped for inline SVG");
        assert!(html.contains("toy8 &lt;study&gt;") && html.contains("g &lt; 1 &amp; more"));
        assert!(html.contains("id=\"solve\"") && html.contains("href=\"#infer\""));
        assert!(!html.contains("<script") && !html.contains("src=\"http"));
    }
}
