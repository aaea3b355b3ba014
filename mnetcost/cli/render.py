"""Formatting, the last pure step: a command builds plain data (a JSON-able object and one or
more :class:`View` tables), and this module turns them into text for ``--format``.

A view's rows hold the values themselves (exact integers, fractions as floats, booleans); each
:class:`Column` says how people read a value (``format``) and what a machine calls it
(``csv``). ``table`` draws rich tables, ``markdown`` GitHub tables (both through ``format``),
``csv`` one table of the exact values with units in the headers, ``json`` dumps the command's
documented object (integers stay integers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

FORMATS = ("table", "json", "csv", "markdown")


class Column(NamedTuple):
    key: str
    header: str
    numeric: bool = False
    wrap: bool = True  # numbers and names never wrap in the rich table
    group: str = ""  # neighbouring columns of one group stay together when a wide table is split
    format: Callable | None = None  # the value as people read it (table, markdown); None: the default
    csv: str | None = ""  # the CSV header ("" = the key; None = not in the CSV, a view for people only)
    show: bool = True  # False: a CSV column only (a figure the table shows inside another column)

    @property
    def csv_header(self) -> str:
        return self.csv or self.key


@dataclass
class View:
    """One table of output: columns, rows of dicts (the values; each column formats its own for
    people), a title and notes printed under it (table/markdown only), a totals row for people."""

    title: str
    columns: list[Column]
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    footer: dict | None = None  # a totals row, drawn under a rule (not in the CSV: its cells mean totals)

    def shown(self) -> "View":
        """The view as people see it: the columns with ``show``."""
        if all(c.show for c in self.columns):
            return self
        return View(self.title, [c for c in self.columns if c.show], self.rows, self.notes, self.footer)


def millions(value, digits: int = 2) -> str:
    """``value`` in millions with ``digits`` decimals, ``3.24M``: rounded exactly (half to even)
    from the integer, never through a float, so any size works; from 10^15 on (a billion
    millions) it reads ``1.101e+25``, visibly a count in scientific notation."""
    from decimal import ROUND_HALF_EVEN, Decimal, localcontext

    if isinstance(value, float):
        return f"{value / 1e6:.{digits}f}M"
    if abs(value) >= 10**15:
        return f"{Decimal(value):.3e}".replace("E", "e")
    with localcontext() as context:
        context.prec = len(str(abs(value))) + digits + 2
        scaled = (Decimal(value) / 10**6).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
    return f"{scaled:f}M"


def _cell(value, column: Column | None = None) -> str:
    """A value as people read it: the column's ``format`` (not given for a footer, whose cells are
    totals and labels), else integers digit-grouped, floats to 6 significant digits; nothing for
    None."""
    if value is None:
        return ""
    if column is not None and column.format is not None:
        return column.format(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_value(value) -> str:
    """A value as a machine reads it: integers exact and ungrouped, floats at full precision (the
    shortest text that reads back as the same float), ``true``/``false``, nothing for None or
    NaN."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if value != value else repr(value)
    return str(value)


def render_json(obj) -> str:
    import json

    return json.dumps(obj, indent=2, ensure_ascii=False)


def csv_table(views: list[View]) -> View:
    """The one table a CSV holds: the only view, or, for several, their rows in one table led by
    a ``table`` column (each view's title) over the union of their CSV columns."""
    if len(views) == 1:
        return views[0]
    columns = [Column("table", "table")]
    for view in views:
        for column in view.columns:
            if column.csv is not None and column.csv_header not in {c.csv_header for c in columns}:
                columns.append(column)
    rows = []
    for view in views:
        keys = {c.csv_header: c.key for c in view.columns if c.csv is not None}
        rows.extend({"table": view.title, **{header: row.get(key) for header, key in keys.items()}}
                    for row in view.rows)
    return View("", [Column(c.csv_header, c.csv_header) for c in columns], rows)


def record_view(record: dict) -> View:
    """One JSON object as a one-row table for machines: nested objects flattened into
    ``outer_inner`` columns, lists written as JSON text."""
    import json

    row: dict = {}

    def flatten(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                flatten(f"{prefix}_{key}" if prefix else str(key), item)
        else:
            row[prefix] = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, tuple)) else value

    flatten("", record)
    return View("", [Column(key, key) for key in row], [row])


def render_csv(views: list[View]) -> str:
    """One CSV table (:func:`csv_table`) of exact values (:func:`csv_value`), headed by each
    column's ``csv`` name; the footer (a totals row for people) is left out."""
    import csv
    import io

    view = csv_table(views)
    columns = [c for c in view.columns if c.csv is not None]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.csv_header for c in columns])
    for row in view.rows:
        writer.writerow([csv_value(row.get(c.key)) for c in columns])
    return out.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(views: list[View]) -> str:
    parts = []
    for view in (v.shown() for v in views):
        lines = [f"### {view.title}", ""] if view.title else []
        lines.append("| " + " | ".join(_md_escape(c.header) for c in view.columns) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in view.columns) + "|")
        for row in view.rows:
            lines.append("| " + " | ".join(_md_escape(_cell(row.get(c.key), c)) for c in view.columns) + " |")
        if view.footer:
            lines.append("| " + " | ".join(_md_escape(_cell(view.footer.get(c.key))) for c in view.columns) + " |")
        if view.notes:
            lines.append("")
            lines.extend(view.notes)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --- fitting a table into a terminal: a number is never cut --------------------------------
# Numbers (and non-wrapping names) keep their full width; text columns wrap at spaces, never inside
# a word; when even that does not fit, each row is stacked as "header  value" lines.
EDGE, GAP = 1, 3  # rich's SIMPLE_HEAVY table, no edge: 1 padding at each side, 3 cells between columns


def _cells(view: View) -> list[list[str]]:
    footer = [view.footer] if view.footer else []
    return [[_cell(row.get(c.key), c) for row in view.rows] + [_cell(row.get(c.key)) for row in footer]
            for c in view.columns]


def column_limits(view: View, measure=len) -> list[tuple[int, int]]:
    """Per column (narrowest, widest) width in terminal cells. A numeric or no-wrap column is at
    least as wide as its widest value (its header may wrap at spaces); a text column at least as
    wide as its longest word."""
    limits = []
    for column, cells in zip(view.columns, _cells(view)):
        header_words = column.header.split() or [""]
        widest = max([measure(column.header)] + [measure(text) for text in cells])
        if column.numeric or not column.wrap:
            narrowest = max([measure(w) for w in header_words] + [measure(text) for text in cells])
        else:
            narrowest = max(measure(w) for text in [column.header, *cells] for w in (text.split() or [""]))
        limits.append((narrowest, widest))
    return limits


def fit_columns(view: View, width: int, measure=len) -> list[int] | None:
    """Column widths that fit ``width`` terminal cells with no number or word cut, or None when
    none do (then :func:`render_stacked`). Starts from every column's natural width and narrows
    the widest wrappable column, one cell at a time, down to its longest word."""
    limits = column_limits(view, measure)
    overhead = 2 * EDGE + GAP * (len(limits) - 1)  # = 3n - 1 for n columns
    widths = [widest for _, widest in limits]
    if sum(n for n, _ in limits) + overhead > width:
        return None
    excess = sum(widths) + overhead - width
    while excess > 0:
        slack = [(w, i) for i, (w, (narrowest, _)) in enumerate(zip(widths, limits)) if w > narrowest]
        _, i = max(slack)
        widths[i] -= 1
        excess -= 1
    return widths


def _sub_view(view: View, indices: list[int], title: str, last: bool) -> View:
    return View(title=title, columns=[view.columns[i] for i in indices], rows=view.rows,
                notes=view.notes if last else [], footer=view.footer)


def fit_panels(view: View, width: int, measure=len) -> list[tuple[View, list[int]]] | None:
    """The view as one or more tables that fit ``width``: whole when it fits (text columns
    wrapped if need be), else split into panels of columns, each repeating the first (key)
    column and keeping a group's columns together; None when even the key and one group are
    too wide (then :func:`render_stacked`)."""
    whole = fit_columns(view, width, measure)
    if whole is not None:
        return [(view, whole)]
    units: list[list[int]] = []
    for index in range(1, len(view.columns)):
        group = view.columns[index].group
        if units and group and view.columns[units[-1][-1]].group == group:
            units[-1].append(index)
        else:
            units.append([index])

    def fits(indices):
        return fit_columns(_sub_view(view, indices, "", False), width, measure) is not None

    if not fits([0]):  # not even the key column alone (a one-column view wider than the terminal)
        return None
    panels, current = [], [0]
    for unit in units:
        if fits(current + unit):
            current += unit
        elif current == [0]:
            return None
        else:
            panels.append(current)
            current = [0] + unit
            if not fits(current):
                return None
    panels.append(current)
    result = []
    for number, indices in enumerate(panels):
        title = view.title if number == 0 else (
            f"{view.title} (continued, {number + 1} of {len(panels)})" if view.title else "")
        part = _sub_view(view, indices, title, number == len(panels) - 1)
        widths = fit_columns(part, width, measure)
        if widths is None:  # the key column alone is too wide (a one-column view): stack instead
            return None
        result.append((part, widths))
    return result


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` cells, broken at spaces; a single word longer than the line is
    folded onto the next lines whole (it continues, nothing is dropped)."""
    import textwrap

    return textwrap.wrap(text, max(width, 1), break_long_words=True, break_on_hyphens=False) or [""]


def render_stacked(view: View, width: int) -> str:
    """A table too wide for ``width``: one block per row, each cell on its own line after its
    header (``  Params      3,239,114``); a value too long for the line goes under its header."""
    headers = [c.header for c in view.columns]
    label = min(max(len(h) for h in headers), max(width // 3, 8))
    columns = _cells(view)
    count = len(view.rows) + (1 if view.footer else 0)
    lines = _wrap(view.title, width) + [""] if view.title else []
    lines.extend(_wrap(f"(too narrow for the table at {width} columns: one block per row; widen the "
                       "terminal for the table)", width))
    for number in range(count):
        lines.append("  " + "─" * max(min(width - 2, 40), 1))
        for header, cells in zip(headers, columns):
            value = cells[number]
            if not value:
                continue
            if len(header) <= label and 2 + label + 2 + len(value) <= width:
                lines.append(f"  {header.ljust(label)}  {value}")
            else:
                lines.extend("  " + part for part in _wrap(header, width - 2))
                lines.extend("      " + part for part in _wrap(value, width - 6))
    if view.notes:
        lines.append("")
        for note in view.notes:
            lines.extend(_wrap(note, width))
    return "\n".join(lines) + "\n"


def print_rich(views: list[View], console=None) -> None:
    """Draw on a terminal: a rich table whose column widths :func:`fit_columns` chose, or the
    stacked form when the terminal is too narrow for any table that keeps numbers whole."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    for whole in (v.shown() for v in views):
        panels = fit_panels(whole, console.width, cell_len)
        if panels is None:
            console.print(Text(render_stacked(whole, console.width).rstrip("\n")), soft_wrap=True)
            continue
        for view, widths in panels:
            _print_table(console, view, widths)


def _print_table(console, view: View, widths: list[int]) -> None:
    """One rich table at exactly ``widths`` (they fit the console, so rich never crops a cell);
    cells are Text, never markup (a spec path with brackets prints as it is)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(view.title) if view.title else None, box=box.SIMPLE_HEAVY, show_footer=False,
                  title_justify="left", show_edge=False)
    for column, width in zip(view.columns, widths):
        table.add_column(Text(column.header), justify="right" if column.numeric else "left", width=width,
                         no_wrap=False, overflow="fold")
    for row in view.rows:
        table.add_row(*(Text(_cell(row.get(c.key), c)) for c in view.columns))
    if view.footer:
        table.add_section()
        table.add_row(*(Text(_cell(view.footer.get(c.key))) for c in view.columns), style="bold")
    console.print(table)
    for note in view.notes:
        console.print(note, markup=False, highlight=False)


def render_plain(views: list[View]) -> str:
    """The ``table`` format without a terminal: the same columns, aligned, never wrapped, no
    escape codes — what a pipe, a file or a script wants (and it starts without importing rich's
    console, about 60 ms on the reference machine)."""
    parts = []
    for view in (v.shown() for v in views):
        rows = [[_cell(row.get(c.key), c) for c in view.columns] for row in view.rows]
        footer = [_cell(view.footer.get(c.key)) for c in view.columns] if view.footer else None
        headers = [c.header for c in view.columns]
        widths = [max(len(text) for text in column) for column in zip(headers, *rows, *([footer] if footer else []))]

        def line(cells):
            padded = [text.rjust(w) if c.numeric else text.ljust(w) for text, w, c in zip(cells, widths, view.columns)]
            return ("  " + "   ".join(padded)).rstrip()

        rule = "  " + "━" * (sum(widths) + 3 * (len(widths) - 1))
        lines = ([view.title, ""] if view.title else []) + [line(headers), rule] + [line(r) for r in rows]
        if footer:
            lines += [rule.replace("━", "─"), line(footer)]
        lines += [""] + view.notes if view.notes else []
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def emit(fmt: str, obj, views: list[View], csv_view: View | None = None) -> None:
    """Write a command's result to stdout in ``fmt``; ``table`` is drawn by rich on a terminal.
    ``csv_view``: the one table the CSV holds when it is not simply ``views`` (see
    :func:`csv_table`)."""
    import sys

    import click

    if fmt == "json":
        click.echo(render_json(obj))
    elif fmt == "csv":
        click.echo(render_csv([csv_view] if csv_view is not None else views), nl=False)
    elif fmt == "markdown":
        click.echo(render_markdown(views), nl=False)
    elif sys.stdout.isatty():
        print_rich(views)
    else:
        click.echo(render_plain(views), nl=False)
