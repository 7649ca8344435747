//! The board as HTML: per node, five figures with a sparkline of the last five minutes each, and the busiest rooms.
//!
//! Node ids and room slugs are escaped like any text (`html::escape_into`), although both are made of letters, digits
//! and dashes. The charts are inline SVG polylines scaled to each series' own maximum: they show the shape of the
//! last minutes, the number beside them says how much.

use std::fmt::Write;

use protocol::admin::{NodeStats, RoomCount, STATS_HISTORY};

use super::board::{Board, Series};
use crate::pages::room::html::escape_into;

/// The sparkline's drawing box; the CSS stretches it to the card's width.
const CHART_WIDTH: usize = STATS_HISTORY;
const CHART_HEIGHT: f64 = 32.0;

/// One figure of a node: its label, how to read it from a sample, and how to show it.
struct Figure {
    key: &'static str,
    label: &'static str,
    value: fn(&NodeStats) -> f64,
    unit: &'static str,
}

const FIGURES: [Figure; 5] = [
    Figure { key: "connections", label: "Connections", value: |s| s.connections as f64, unit: "" },
    Figure { key: "joins_per_s", label: "Joins/s", value: |s| s.joins_per_s, unit: "" },
    Figure { key: "messages_per_s", label: "Messages/s", value: |s| s.messages_per_s, unit: "" },
    Figure { key: "deliveries_per_s", label: "Deliveries/s", value: |s| s.deliveries_per_s, unit: "" },
    Figure { key: "commit_p99_ms", label: "p99 commit", value: |s| s.commit_p99_ms.unwrap_or(0.0), unit: " ms" },
];

/// The whole board; its note is shown instead when there is nothing to draw yet (connecting, refused).
pub fn board_html(board: &Board) -> String {
    let mut html = String::new();
    if board.nodes.is_empty() {
        html.push_str("<p class=\"dashboard-note\" role=\"status\">");
        escape_into(&mut html, board.note);
        html.push_str("</p>");
        return html;
    }
    for series in &board.nodes {
        node_html(&mut html, series);
    }
    html
}

fn node_html(html: &mut String, series: &Series) {
    let Some(newest) = series.newest() else { return };
    html.push_str("<article class=\"node-card\" data-node=\"");
    escape_into(html, &series.node);
    html.push_str("\"><h2>Node <code>");
    escape_into(html, &series.node);
    html.push_str("</code></h2><div class=\"figures\">");
    for figure in &FIGURES {
        let shown = match (figure.key, newest.commit_p99_ms) {
            ("commit_p99_ms", None) => "–".to_owned(),
            _ => format!("{}{}", number((figure.value)(newest)), figure.unit),
        };
        let _ = write!(
            html,
            "<div class=\"figure\" data-figure=\"{}\"><span class=\"figure-label\">{}</span>\
             <span class=\"figure-value\">{shown}</span>",
            figure.key, figure.label
        );
        let values: Vec<f64> = series.samples.iter().map(figure.value).collect();
        let _ = write!(
            html,
            "<svg class=\"spark\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" preserveAspectRatio=\"none\" \
             aria-hidden=\"true\"><polyline points=\"{}\"/></svg></div>",
            sparkline(&values)
        );
    }
    html.push_str("</div><div class=\"busiest\">");
    rooms_html(html, "Busiest rooms by members", "Members", &newest.rooms_by_members);
    rooms_html(html, "Busiest rooms by messages in the last minute", "Messages", &newest.rooms_by_messages);
    html.push_str("</div></article>");
}

fn rooms_html(html: &mut String, caption: &str, counted: &str, rooms: &[RoomCount]) {
    let _ = write!(html, "<table><caption>{caption}</caption><tr><th>Room</th><th>{counted}</th></tr>");
    if rooms.is_empty() {
        html.push_str("<tr><td colspan=\"2\">None right now</td></tr>");
    }
    for room in rooms {
        html.push_str("<tr><td><a href=\"/");
        escape_into(html, &room.room);
        html.push_str("\">");
        escape_into(html, &room.room);
        let _ = write!(html, "</a></td><td>{}</td></tr>", room.count);
    }
    html.push_str("</table>");
}

/// Three significant figures at most, without trailing zeros: `241`, `16.5`, `0.25`, `3.26` (figures are never
/// negative), so a busy node's deliveries/s does not read as `240.95`. Integer formatting only: `{:.2}` would bring the
/// core library's float formatting into the WASM every page shares, about 3 KB.
fn number(value: f64) -> String {
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let scale = 10_i64.pow(decimals);
    let scaled = (value * scale as f64).round() as i64;
    let (whole, mut fraction) = (scaled / scale, scaled % scale);
    let mut width = decimals as usize;
    while width > 0 && fraction % 10 == 0 {
        fraction /= 10;
        width -= 1;
    }
    match width {
        0 => format!("{whole}"),
        width => format!("{whole}.{fraction:0width$}"),
    }
}

/// The polyline of `values` (oldest first) in the chart box: right-aligned, one unit per sample, so the newest
/// sample is always at the right edge and five minutes fill the width; scaled to the largest value (a flat zero
/// line at the bottom when all are zero).
pub fn sparkline(values: &[f64]) -> String {
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let start = CHART_WIDTH.saturating_sub(values.len());
    let mut points = String::new();
    for (index, value) in values.iter().rev().take(CHART_WIDTH).rev().enumerate() {
        let height = if max > 0.0 { value / max * (CHART_HEIGHT - 2.0) } else { 0.0 };
        // Whole units: the box is 32 high, and integers keep float formatting out of the WASM.
        let y = (CHART_HEIGHT - 1.0 - height).round() as i64;
        let _ = write!(points, "{}{},{y}", if index == 0 { "" } else { " " }, start + index);
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_ends_at_the_right_edge_scaled_to_its_maximum() {
        assert_eq!(sparkline(&[0.0, 5.0, 10.0]), "297,31 298,16 299,1");
        assert_eq!(sparkline(&[0.0, 0.0]), "298,31 299,31", "all zero: a flat line at the bottom");
        assert_eq!(sparkline(&[]), "");
        let long: Vec<f64> = (0..400).map(f64::from).collect();
        assert!(sparkline(&long).starts_with("0,"), "only the newest five minutes are drawn");
    }

    #[test]
    fn numbers_have_at_most_three_significant_figures() {
        assert_eq!(
            (number(12.0), number(0.5), number(3.256), number(0.0), number(0.05)),
            ("12".into(), "0.5".into(), "3.26".into(), "0".into(), "0.05".into())
        );
        assert_eq!(
            (number(240.95), number(16.54), number(10.0), number(99.96)),
            ("241".into(), "16.5".into(), "10".into(), "100".into())
        );
    }

    #[test]
    fn the_board_shows_each_figure_and_the_rooms_escaped() {
        let sample = NodeStats {
            node: "n1".into(),
            connections: 7,
            messages_per_s: 2.5,
            commit_p99_ms: None,
            rooms_by_members: vec![RoomCount { room: "<lobby>".into(), count: 3 }],
            ..NodeStats::default()
        };
        let board =
            Board { nodes: vec![Series { node: "n1".into(), samples: vec![sample], heard: 0.0 }], note: "unused" };
        let html = board_html(&board);
        let connections = "data-figure=\"connections\"><span class=\"figure-label\">Connections</span>\
                           <span class=\"figure-value\">7</span>";
        assert!(html.contains(connections), "{html}");
        assert!(html.contains("<span class=\"figure-value\">2.5</span>"));
        assert!(html.contains("<span class=\"figure-value\">–</span>"), "no commits: a dash, not 0 ms");
        assert!(html.contains("<a href=\"/&lt;lobby&gt;\">&lt;lobby&gt;</a></td><td>3</td>"));
        assert!(html.contains("None right now"), "no busy rooms by messages");
        assert_eq!(
            board_html(&Board { nodes: Vec::new(), note: "Connecting…" }),
            "<p class=\"dashboard-note\" role=\"status\">Connecting…</p>"
        );
    }
}
