//! Plain-text tables: columns padded to their widest cell, two spaces apart, no trailing spaces.

/// The header and rows as lines, each ending in `\n`.
///
/// ```text
/// NUMBER        STATUS
/// +14155550101  protected
/// ```
pub(crate) fn render<Row: AsRef<[String]>>(header: &[&str], rows: &[Row]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned();
        text.push('\n');
        text
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.as_ref().iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_on_the_widest_cell_without_trailing_spaces() {
        let text = super::render(
            &["A", "BB"],
            &[["long".to_owned(), "x".into()], ["s".into(), String::new()]],
        );
        assert_eq!(text, "A     BB\nlong  x\ns\n");
    }
}
