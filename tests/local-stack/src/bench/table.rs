//! The one table `make bench` prints: every measurement a row, its figures
//! in the columns that apply to it, notes and targets below it.

use std::fmt::Write as _;
use std::time::Duration;

/// Columns of the table, in order.
pub const COLUMNS: [&str; 11] = [
    "part",
    "case",
    "calls",
    "writes",
    "points",
    "time",
    "floor",
    "× floor",
    "THROTTLED",
    "peak memory",
    "note",
];

/// One measurement; a column left empty does not apply to it.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub part: String,
    pub case: String,
    pub calls: String,
    pub writes: String,
    pub points: String,
    pub time: String,
    pub floor: String,
    pub ratio: String,
    pub throttled: String,
    pub memory: String,
    pub note: String,
}

impl Row {
    pub fn new(part: impl Into<String>, case: impl Into<String>) -> Self {
        Self {
            part: part.into(),
            case: case.into(),
            ..Self::default()
        }
    }

    fn cells(&self) -> [&str; 11] {
        [
            &self.part,
            &self.case,
            &self.calls,
            &self.writes,
            &self.points,
            &self.time,
            &self.floor,
            &self.ratio,
            &self.throttled,
            &self.memory,
            &self.note,
        ]
    }
}

/// A target of issue 6, judged on the figures of this run.
#[derive(Debug, Clone)]
pub struct Target {
    pub statement: String,
    /// `None`: not measured in this run.
    pub held: Option<bool>,
    pub figure: String,
}

#[derive(Debug, Default)]
pub struct Table {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    pub targets: Vec<Target>,
}

impl Table {
    /// Adds a row and shows it at once on stderr, so a long run shows its
    /// progress; the whole table is printed at the end.
    pub fn add(&mut self, row: Row) {
        let figures: Vec<String> = COLUMNS[2..]
            .iter()
            .zip(&row.cells()[2..])
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        eprintln!("  · {} / {}: {}", row.part, row.case, figures.join(", "));
        self.rows.push(row);
    }

    /// As [`Table::add`], at a place among the rows already there.
    pub fn insert(&mut self, index: usize, row: Row) {
        self.add(row);
        if let Some(row) = self.rows.pop() {
            self.rows.insert(index.min(self.rows.len()), row);
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn target(&mut self, statement: impl Into<String>, held: Option<bool>, figure: String) {
        self.targets.push(Target {
            statement: statement.into(),
            held,
            figure,
        });
    }

    /// The table as aligned text, for the terminal.
    pub fn text(&self) -> String {
        let mut widths: Vec<usize> = COLUMNS.iter().map(|c| c.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row.cells()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        // The note is last and left as long as it is.
        widths[10] = 0;
        let line = |cells: [&str; 11]| {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = w.saturating_sub(cell.chars().count());
                let numeric = (2..10).contains(&i);
                if numeric {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad));
                }
                out.push_str("  ");
            }
            out.trim_end().to_owned()
        };
        let mut out = String::new();
        let _ = writeln!(out, "{}", line(COLUMNS));
        let total: usize = widths.iter().sum::<usize>() + 2 * 10 + 4;
        let _ = writeln!(out, "{}", "─".repeat(total.min(200)));
        let mut part = "";
        for row in &self.rows {
            if !part.is_empty() && row.part != part {
                let _ = writeln!(out);
            }
            part = &row.part;
            let _ = writeln!(out, "{}", line(row.cells()));
        }
        out.push_str(&self.targets_text(false));
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNotes");
            for (i, note) in self.notes.iter().enumerate() {
                let _ = writeln!(out, "  {}. {note}", i + 1);
            }
        }
        out
    }

    fn targets_text(&self, markdown: bool) -> String {
        let mut out = String::new();
        if self.targets.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "\n{}",
            if markdown { "**Targets**\n" } else { "Targets" }
        );
        for t in &self.targets {
            let verdict = match t.held {
                Some(true) => "held",
                Some(false) => "NOT HELD",
                None => "not measured",
            };
            if markdown {
                let _ = writeln!(out, "- **{verdict}**: {}. {}", t.statement, t.figure);
            } else {
                let _ = writeln!(out, "  [{verdict:>12}] {}: {}", t.statement, t.figure);
            }
        }
        out
    }

    /// The table as Markdown, for `docs/performance.md`.
    pub fn markdown(&self) -> String {
        let escape = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", COLUMNS.join(" | "));
        let align: Vec<&str> = (0..COLUMNS.len())
            .map(|i| if (2..10).contains(&i) { "---:" } else { "---" })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in &self.rows {
            let cells: Vec<String> = row.cells().iter().map(|c| escape(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push_str(&self.targets_text(true));
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n**Notes**\n");
            for (i, note) in self.notes.iter().enumerate() {
                let _ = writeln!(out, "{}. {note}", i + 1);
            }
        }
        out
    }
}

/// `1,234,567`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Points, rounded to whole points.
pub fn points(p: f64) -> String {
    int(p.round().max(0.0) as u64)
}

/// A duration with the unit that reads best: µs, ms, s or min.
pub fn time(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s == 0.0 {
        "0 s".to_owned()
    } else if s < 0.001 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 600.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

pub fn mb(bytes_or_mb: f64) -> String {
    format!("{bytes_or_mb:.1} MB")
}
