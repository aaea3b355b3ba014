"""Formatting, the last pure step: a command builds plain data (a JSON-able object and one or
more :class:`View` tables), and this module turns them into text for ``--format``.

``table`` draws rich tables, ``markdown`` GitHub tables, ``csv`` one CSV block per view, ``json``
dumps the command's documented object (integers stay integers).
"""
from __future__ import annotations

from dataclasses import dataclass, field

FORMATS = ("table", "json", "csv", "markdown")


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    numeric: bool = False
    wrap: bool = True  # numbers and names never wrap in the rich table


@dataclass
class View:
    """One table of output: columns, rows of dicts (values already as display strings or
    numbers), a title and notes printed under it (table/markdown only)."""

    title: str
    columns: list[Column]
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    footer: dict | None = None  # a totals row, drawn under a rule


def millions(value: int, digits: int = 2) -> str:
    return f"{value / 1e6:.{digits}f}M"


def _cell(value, human: bool = True) -> str:
    """Integers are digit-grouped for people (table, markdown) and plain in CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}" if human else str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_json(obj) -> str:
    import json

    return json.dumps(obj, indent=2, ensure_ascii=False)


def render_csv(views: list[View]) -> str:
    import csv
    import io

    out = io.StringIO()
    for number, view in enumerate(views):
        if number:
            out.write("\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in view.columns])
        rows = view.rows + ([view.footer] if view.footer else [])
        for row in rows:
            writer.writerow([_cell(row.get(c.key), human=False) for c in view.columns])
    return out.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(views: list[View]) -> str:
    parts = []
    for view in views:
        lines = [f"### {view.title}", ""] if view.title else []
        lines.append("| " + " | ".join(_md_escape(c.header) for c in view.columns) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in view.columns) + "|")
        rows = view.rows + ([view.footer] if view.footer else [])
        for row in rows:
            lines.append("| " + " | ".join(_md_escape(_cell(row.get(c.key))) for c in view.columns) + " |")
        if view.notes:
            lines.append("")
            lines.extend(view.notes)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def print_rich(views: list[View], console=None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for view in views:
        table = Table(title=view.title, box=box.SIMPLE_HEAVY, show_footer=False, title_justify="left")
        for column in view.columns:
            table.add_column(column.header, justify="right" if column.numeric else "left",
                             no_wrap=column.numeric or not column.wrap, overflow="fold")
        for row in view.rows:
            table.add_row(*(_cell(row.get(c.key)) for c in view.columns))
        if view.footer:
            table.add_section()
            table.add_row(*(_cell(view.footer.get(c.key)) for c in view.columns), style="bold")
        console.print(table)
        for note in view.notes:
            console.print(note, markup=False, highlight=False)


def render_plain(views: list[View]) -> str:
    """The ``table`` format without a terminal: the same columns, aligned, never wrapped, no
    escape codes — what a pipe, a file or a script wants (and it starts without importing rich's
    console, about 60 ms on the reference machine)."""
    parts = []
    for view in views:
        rows = [[_cell(row.get(c.key)) for c in view.columns] for row in view.rows]
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


def emit(fmt: str, obj, views: list[View]) -> None:
    """Write a command's result to stdout in ``fmt``; ``table`` is drawn by rich on a terminal."""
    import sys

    import click

    if fmt == "json":
        click.echo(render_json(obj))
    elif fmt == "csv":
        click.echo(render_csv(views), nl=False)
    elif fmt == "markdown":
        click.echo(render_markdown(views), nl=False)
    elif sys.stdout.isatty():
        print_rich(views)
    else:
        click.echo(render_plain(views), nl=False)
