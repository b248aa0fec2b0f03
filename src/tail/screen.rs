//! The terminal: one screen drawn in place on the alternate screen (what was on the
//! terminal, and its scrollback, come back when `tail` ends), fitted to the terminal's size,
//! with a status line at the bottom.

use std::io::Write;

pub struct Screen;

impl Screen {
    /// Takes the terminal: the alternate screen, the cursor hidden. A panic gives it back
    /// first, so its message is seen.
    pub fn open() -> Screen {
        emit("\x1b[?1049h\x1b[?25l\x1b[2J");
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |panic| {
            emit(RESTORE);
            before(panic);
        }));
        Screen
    }

    /// Rows and columns (80 × 24 when the terminal does not say).
    pub fn size() -> (usize, usize) {
        match terminal_size::terminal_size() {
            Some((terminal_size::Width(cols), terminal_size::Height(rows))) if rows > 1 => {
                (usize::from(rows), usize::from(cols.max(10)))
            }
            _ => (24, 80),
        }
    }

    /// Draws `body` (at most the rows above the status line; wider lines cut with `…`;
    /// those marked in reverse video: what the last change touched) and `status` on the last
    /// row, on a terminal of `rows` and `cols` (`size`, read once for the whole frame).
    pub fn draw(&self, (rows, cols): (usize, usize), body: &[(&str, bool)], status: &str) {
        let mut frame = String::from("\x1b[H");
        for row in 0..rows - 1 {
            if let Some(&(text, highlight)) = body.get(row) {
                let text = fit(text, cols);
                match highlight {
                    true => frame.push_str(&format!("\x1b[7m{text}\x1b[0m")),
                    false => frame.push_str(&text),
                }
            }
            // Clear the rest of the row: what was drawn there before goes.
            frame.push_str("\x1b[K\r\n");
        }
        let status = fit(status, cols);
        frame.push_str(&format!("\x1b[7m{status:<cols$}\x1b[0m"));
        emit(&frame);
    }

    /// Gives the terminal back as it was.
    pub fn close(self) {
        emit(RESTORE);
    }
}

/// The cursor shown, the main screen back.
const RESTORE: &str = "\x1b[?25h\x1b[?1049l";

/// `text` in at most `cols` columns of the terminal (wide characters take two), cut with
/// `…`; control characters (a line break in an event's data, an escape sequence a stream
/// sends) are shown as spaces, never sent to the terminal.
pub fn fit(text: &str, cols: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut fitted = String::with_capacity(text.len().min(cols * 4));
    let mut width = 0;
    let total: usize = text.chars().map(|c| c.width().unwrap_or(1)).sum();
    let room = if total <= cols {
        cols
    } else {
        cols.saturating_sub(1)
    };
    for c in text.chars() {
        let (c, w) = match c.width() {
            Some(w) if !c.is_control() => (c, w),
            _ => (' ', 1),
        };
        if width + w > room {
            break;
        }
        width += w;
        fitted.push(c);
    }
    if total > cols {
        fitted.push('…');
    }
    fitted
}

fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed terminal ends the program quietly.
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn long_lines_are_cut_to_the_width() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abcd", 4), "abcd");
        assert_eq!(fit("ééééé", 3), "éé…");
        assert_eq!(fit("日本語", 4), "日…");
        assert_eq!(fit("a\nb\x1b]0;x\x07", 80), "a b ]0;x ");
    }
}
