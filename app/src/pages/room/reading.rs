//! How the message list reads: day separators, messages grouped under one name, avatars, and bodies split into
//! text, links and mentions. Pure functions of the lines, the clock and my name (unit-tested natively); the views in
//! `messages` render what they return.

use super::{
    html::escape_into,
    state::{Delivery, Line},
};
use crate::browser::{local_offset_minutes, long_date};

/// Consecutive messages by the same person closer together than this share one name and time.
pub const GROUP_WITHIN_MS: i64 = 5 * 60_000;
const DAY_MS: i64 = 86_400_000;

/// One message of the list, with what comes before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: Line,
    /// "Today", "Yesterday" or a date, before the first message of a day.
    pub day: Option<String>,
    /// "Some messages were skipped" goes before this message.
    pub gap: bool,
    /// The message joins the group of the one above (no name, avatar or time of its own).
    pub continued: bool,
}

impl Row {
    /// The row's key for the keyed list: it changes whenever the row would render differently.
    pub fn key(&self) -> String {
        let delivery = match self.line.delivery {
            Delivery::Stored => 's',
            Delivery::Pending => 'p',
            Delivery::Failed(_) => 'f',
        };
        let day = self.day.as_deref().unwrap_or_default();
        format!("{}:{delivery}:{}:{}:{day}", self.line.key, self.gap, self.continued)
    }
}

/// The day number (days since the epoch) of `timestamp` in the reader's time zone, or UTC when `local` is not set
/// yet (the server renders in UTC, and the hydrated page starts from the same rows).
pub fn day_of(timestamp: i64, local: bool) -> i64 {
    let offset = if local { local_offset_minutes(timestamp).unwrap_or(0) } else { 0 };
    (timestamp + offset * 60_000).div_euclid(DAY_MS)
}

/// "Today", "Yesterday", or the date in the reader's locale (an ISO date off the browser).
pub fn day_label(day: i64, today: i64, timestamp: i64, local: bool) -> String {
    match today - day {
        // At or after today (a server clock slightly ahead of the browser's just after midnight) is today.
        ..=0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        _ if local => long_date(timestamp).unwrap_or_else(|| iso_date(day)),
        _ => iso_date(day),
    }
}

/// `YYYY-MM-DD` of a day number (the proleptic Gregorian calendar, as `Date` uses).
pub fn iso_date(day: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The list's rows: a day separator whenever the day changes, gap markers, and messages grouped by author.
pub fn rows(lines: &[Line], gaps: &[u64], now: i64, local: bool) -> Vec<Row> {
    let today = day_of(now, local);
    let mut rows: Vec<Row> = Vec::with_capacity(lines.len());
    let mut previous: Option<(&Line, i64)> = None;
    for line in lines {
        let day = day_of(line.timestamp, local);
        let new_day = previous.is_none_or(|(_, previous_day)| previous_day != day);
        let gap = line.id.is_some_and(|id| gaps.contains(&id));
        let continued = !new_day
            && !gap
            && previous.is_some_and(|(above, _)| {
                above.user == line.user && (line.timestamp - above.timestamp).abs() < GROUP_WITHIN_MS
            });
        let day_label = new_day.then(|| day_label(day, today, line.timestamp, local));
        rows.push(Row { line: line.clone(), day: day_label, gap, continued });
        previous = Some((line, day));
    }
    rows
}

/// A body as HTML: every character of the text escaped, `http(s)` links as `<a>` opening in a new tab with no
/// referrer and no opener, and mentions as `<span class="mention">` (`mention me` when it names `me`). Nothing else
/// becomes markup. (One string for the body's `innerHTML` instead of a view per piece: the WASM pays per view shape.)
pub fn body_html(body: &str, me: &str) -> String {
    pieces_html(&pieces(body, me))
}

/// [`body_html`] of a body already split by [`pieces`].
pub fn pieces_html(pieces: &[Piece<'_>]) -> String {
    let mut html = String::new();
    for &piece in pieces {
        match piece {
            Piece::Text(text) => escape_into(&mut html, text),
            Piece::Link(link) => {
                html.push_str("<a href=\"");
                escape_into(&mut html, link);
                html.push_str("\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">");
                escape_into(&mut html, link);
                html.push_str("</a>");
            }
            Piece::Mention { text, me } => {
                html.push_str(if me { "<span class=\"mention me\">" } else { "<span class=\"mention\">" });
                escape_into(&mut html, text);
                html.push_str("</span>");
            }
        }
    }
    html
}

/// A piece of a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Plain text.
    Text(&'a str),
    /// An `http(s)` address, made clickable.
    Link(&'a str),
    /// `@name`; `me` when it names the reader.
    Mention { text: &'a str, me: bool },
}

/// Letters and digits of any script, and `-_.'`. Decided without Unicode tables (they would add kilobytes to the
/// WASM): any character outside ASCII counts as a letter unless it is a space or general punctuation.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '-' | '_' | '.' | '\'')
        || (!c.is_ascii() && !c.is_whitespace() && !matches!(c, '\u{2000}'..='\u{206f}' | '\u{3000}'..='\u{303f}'))
}

/// Where a link starting at `rest` ends: at whitespace or a character URLs never carry unencoded, without trailing punctuation that usually closes the sentence
/// (and without a closing bracket the link did not open).
fn link_len(rest: &str) -> usize {
    let end = rest.find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"')).unwrap_or(rest.len());
    let link = &rest[..end];
    // One pass for the bracket counts, then trimmed from the end keeping them current: linear in the link's length
    // (a body of thousands of `)` must not cost quadratic time on every page render).
    let count = |c: char| link.bytes().filter(|&b| b == c as u8).count();
    let (open_paren, mut close_paren) = (count('('), count(')'));
    let (open_bracket, mut close_bracket) = (count('['), count(']'));
    let mut len = link.len();
    while let Some(&last) = link.as_bytes()[..len].last() {
        match last {
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' => {}
            b')' if close_paren > open_paren => close_paren -= 1,
            b']' if close_bracket > open_bracket => close_bracket -= 1,
            _ => break,
        }
        len -= 1;
    }
    len
}

/// The length of a mention at `rest` (which starts with `@`), or 0 when it is not one, and whether it names me. My
/// own name may contain spaces, so it is matched whole first (ignoring ASCII case); any other mention is `@` and a
/// run of name characters (without a trailing `.` or `'`, which end sentences and possessives).
fn mention_len(rest: &str, me: &str) -> (usize, bool) {
    let after = &rest[1..];
    let continues_name = |c: char| is_name_char(c) && c != '.' && c != '\'';
    let mine = !me.is_empty()
        && after.get(..me.len()).is_some_and(|start| start.eq_ignore_ascii_case(me))
        && !after[me.len()..].starts_with(continues_name);
    if mine {
        return (1 + me.len(), true);
    }
    let name = after.find(|c: char| !is_name_char(c)).unwrap_or(after.len());
    let name = after[..name].trim_end_matches(['.', '\'']).len();
    if name == 0 { (0, false) } else { (1 + name, false) }
}

/// Splits a body into text, links and mentions. Only `http://` and `https://` become links; nothing else is markup.
pub fn pieces<'a>(body: &'a str, me: &str) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    let mut text_from = 0;
    let mut at = 0;
    while at < body.len() {
        let rest = &body[at..];
        let boundary = body[..at].chars().next_back().is_none_or(|c| !is_name_char(c));
        let found = if boundary && (rest.starts_with("https://") || rest.starts_with("http://")) {
            let len = link_len(rest);
            let scheme = if rest.starts_with("https://") { 8 } else { 7 };
            (len > scheme).then(|| (len, Piece::Link(&rest[..len])))
        } else if boundary && rest.starts_with('@') {
            let (len, me) = mention_len(rest, me);
            (len > 0).then(|| (len, Piece::Mention { text: &rest[..len], me }))
        } else {
            None
        };
        match found {
            Some((len, piece)) => {
                if text_from < at {
                    pieces.push(Piece::Text(&body[text_from..at]));
                }
                pieces.push(piece);
                at += len;
                text_from = at;
            }
            None => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if text_from < body.len() {
        pieces.push(Piece::Text(&body[text_from..]));
    }
    pieces
}

/// Whether `body` mentions `me`.
pub fn mentions(body: &str, me: &str) -> bool {
    mentions_me(&pieces(body, me))
}

/// Whether a body split by [`pieces`] mentions the reader.
pub fn mentions_me(pieces: &[Piece<'_>]) -> bool {
    pieces.iter().any(|p| matches!(p, Piece::Mention { me: true, .. }))
}

/// Up to two initials for an avatar: the first letters of the first two words, else the first two letters
/// (uppercased in ASCII only: the Unicode case tables would cost the WASM more than a lowercase "é" costs the reader).
pub fn initials(name: &str) -> String {
    let mut words =
        name.split(|c: char| c.is_whitespace() || c == '-' || c == '_' || c == '.').filter(|w| !w.is_empty());
    let first = words.next().unwrap_or(name);
    let picked: String = match words.next() {
        Some(second) => first.chars().take(1).chain(second.chars().take(1)).collect(),
        None => first.chars().take(2).collect(),
    };
    picked.to_ascii_uppercase()
}

/// Avatar colours in the stylesheet (`.hue-0` … `.hue-11`).
pub const AVATAR_HUES: u32 = 12;

/// A stable colour class for a name: the same on every page and for every reader (FNV-1a of the name).
pub fn avatar_hue(name: &str) -> String {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    format!("avatar hue-{}", hash % AVATAR_HUES)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(id: u64, user: &str, timestamp: i64) -> Line {
        Line {
            key: format!("m{id}"),
            id: Some(id),
            client_id: None,
            user: user.into(),
            body: "hi".into(),
            timestamp,
            delivery: Delivery::Stored,
        }
    }

    const NOON: i64 = 1_764_504_000_000; // 2025-11-30 12:00 UTC

    fn shape(rows: &[Row]) -> Vec<String> {
        let mut shape = Vec::new();
        for row in rows {
            shape.extend(row.day.as_ref().map(|label| format!("[{label}]")));
            shape.extend(row.gap.then(|| format!("gap{}", row.line.id.unwrap())));
            shape.push(format!("{}{}", if row.continued { "+" } else { "" }, row.line.id.unwrap()));
        }
        shape
    }

    #[test]
    fn messages_group_by_author_within_minutes_and_days_get_separators() {
        let lines = [
            line(1, "ada", NOON - 2 * DAY_MS),
            line(2, "ada", NOON - DAY_MS),
            line(3, "ada", NOON - DAY_MS + 60_000),
            line(4, "bob", NOON - DAY_MS + 120_000),
            line(5, "bob", NOON),
            line(6, "bob", NOON + 60_000),
            line(7, "bob", NOON + 60_000 + GROUP_WITHIN_MS),
        ];
        let rows = rows(&lines, &[], NOON + 3_600_000, false);
        assert_eq!(shape(&rows), ["[2025-11-28]", "1", "[Yesterday]", "2", "+3", "4", "[Today]", "5", "+6", "7"]);
    }

    #[test]
    fn a_gap_breaks_a_group() {
        let lines = [line(1, "ada", NOON), line(5, "ada", NOON + 1000)];
        assert_eq!(shape(&rows(&lines, &[5], NOON, false)), ["[Today]", "1", "gap5", "5"]);
    }

    #[test]
    fn keys_change_when_a_row_would_render_differently() {
        let row = Row { line: line(1, "ada", NOON), day: None, gap: false, continued: false };
        let keys = [
            row.key(),
            Row { continued: true, ..row.clone() }.key(),
            Row { gap: true, ..row.clone() }.key(),
            Row { day: Some("Today".into()), ..row.clone() }.key(),
            Row { day: Some("Yesterday".into()), ..row.clone() }.key(),
            Row { line: Line { delivery: Delivery::Pending, ..row.line.clone() }, ..row.clone() }.key(),
        ];
        for (i, a) in keys.iter().enumerate() {
            assert!(keys[i + 1..].iter().all(|b| a != b), "{keys:?}");
        }
    }

    #[test]
    fn bodies_become_html_with_only_links_and_mentions_as_markup() {
        assert_eq!(
            body_html("<img src=x onerror=alert(1)> & \"q\" 'a'", "me"),
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#39;a&#39;"
        );
        assert_eq!(
            body_html("go https://x.org/?a=1&b='2' @me @you", "me"),
            "go <a href=\"https://x.org/?a=1&amp;b=&#39;2\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">\
             https://x.org/?a=1&amp;b=&#39;2</a>&#39; <span class=\"mention me\">@me</span> \
             <span class=\"mention\">@you</span>"
        );
        assert_eq!(body_html("javascript:alert(1)", "me"), "javascript:alert(1)");
    }

    #[test]
    fn iso_dates_follow_the_calendar() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(NOON.div_euclid(DAY_MS)), "2025-11-30");
        assert_eq!(iso_date(11_016), "2000-02-29");
        assert_eq!(iso_date(-1), "1969-12-31");
    }

    #[test]
    fn links_are_http_only_and_leave_sentence_punctuation_out() {
        assert_eq!(
            pieces("see https://example.com/a?b=1. then", "me"),
            [Piece::Text("see "), Piece::Link("https://example.com/a?b=1"), Piece::Text(". then")]
        );
        assert_eq!(
            pieces("(http://x.org/wiki/A_(b)) ok", "me"),
            [Piece::Text("("), Piece::Link("http://x.org/wiki/A_(b)"), Piece::Text(") ok")]
        );
        assert_eq!(
            pieces("javascript:alert(1) ftp://x https://", "me"),
            [Piece::Text("javascript:alert(1) ftp://x https://")]
        );
        assert_eq!(pieces("nothttps://x.org", "me"), [Piece::Text("nothttps://x.org")]);
        assert_eq!(pieces("https://x.org/a)).", "me"), [Piece::Link("https://x.org/a"), Piece::Text(")).")]);
        assert_eq!(
            pieces("[https://x.org/[b]]", "me"),
            [Piece::Text("["), Piece::Link("https://x.org/[b]"), Piece::Text("]")]
        );
        // Thousands of closing brackets take linear time, not quadratic.
        let flood = format!("https://a{}", ")".repeat(100_000));
        assert_eq!(pieces(&flood, "me")[0], Piece::Link("https://a"));
        assert_eq!(
            pieces("<b>https://a.b</b>", "me"),
            [Piece::Text("<b>"), Piece::Link("https://a.b"), Piece::Text("</b>")]
        );
    }

    #[test]
    fn mentions_name_people_and_find_me_even_with_spaces_in_my_name() {
        assert_eq!(
            pieces("hi @bob, and @Mary Ann!", "mary ann"),
            [
                Piece::Text("hi "),
                Piece::Mention { text: "@bob", me: false },
                Piece::Text(", and "),
                Piece::Mention { text: "@Mary Ann", me: true },
                Piece::Text("!"),
            ]
        );
        assert!(mentions("ping @ADA.", "ada"));
        assert!(!mentions("ping @adam", "ada"));
        assert!(!mentions("mail ada@example.com", "ada"));
        assert_eq!(pieces("@ alone", "x"), [Piece::Text("@ alone")]);
    }

    #[test]
    fn avatars_have_initials_and_a_stable_colour() {
        assert_eq!(initials("ada lovelace"), "AL");
        assert_eq!(initials("panther-silk"), "PS");
        assert_eq!(initials("bob"), "BO");
        assert_eq!(initials("émile zola"), "éZ");
        assert_eq!(avatar_hue("ada"), avatar_hue("ada"));
        assert!(avatar_hue("ada").starts_with("avatar hue-"));
    }
}
