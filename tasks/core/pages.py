"""What the reports and Prefect artifacts are made of: self-contained HTML pages, tables, inline
PNGs and the way numbers are written. Pure: strings in, strings out."""

import base64
import html
import io

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; font-weight: 600; } img { max-width: 100%; border: 1px solid #eee; }
section { margin-bottom: 2.5em; } .none { color: #666; font-style: italic; }
"""


def html_page(title: str, body: str) -> str:
    """One self-contained HTML page (no external files: figures are embedded)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>
{body}
</body></html>
"""


def html_table(rows: list[dict], numeric: tuple[str, ...] = ()) -> str:
    """A table with one column per key of the first row; ``numeric`` columns right-aligned."""
    if not rows:
        return "<p class='none'>(none)</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='number'>{html.escape(str(row[c]))}</td>" if c in numeric
            else f"<td>{html.escape(str(row[c]))}</td>" for c in columns
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_table(rows: list[dict], numeric: tuple[str, ...] = ()) -> str:
    if not rows:
        return "(none)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(str(c) for c in columns) + " |",
             "| " + " | ".join("---:" if c in numeric else "---" for c in columns) + " |"]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


# Every figure of every report and artifact: one resolution, cropped to what is drawn.
FIGURE_DPI = 80


def figure_png(figure) -> bytes:
    """A matplotlib figure as PNG bytes (then closed): the same bytes for the same figure, run
    after run (no timestamp or software version in the file)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def png_data_uri(png: bytes, max_width: int | None = None) -> str:
    """A ``data:`` URI of a PNG, scaled down to ``max_width`` pixels when wider (for artifacts,
    where a figure is a thumbnail and the database holds every copy)."""
    if max_width is not None:
        from PIL import Image

        with Image.open(io.BytesIO(png)) as image:
            if image.width > max_width:
                height = round(image.height * max_width / image.width)
                buffer = io.BytesIO()
                image.convert("RGB").resize((max_width, height), Image.LANCZOS).save(buffer, "PNG", optimize=True)
                png = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode()


def html_figure(title: str, png: bytes, caption: str = "") -> str:
    text = f"<p>{html.escape(caption)}</p>" if caption else ""
    return f"<figure><h3>{html.escape(title)}</h3>{text}<img alt='{html.escape(title)}' src='{png_data_uri(png)}'></figure>"


def markdown_figure(title: str, png: bytes, max_width: int = 480) -> str:
    return f"![{title}]({png_data_uri(png, max_width)})\n"


def p_value_text(p: float | None) -> str:
    """A p-value as a person reads it: '< 1e-16' below double precision's resolution near 1, not 0."""
    if p is None:
        return "-"
    if p < 1e-16:
        return "< 1e-16"
    return f"{p:.3g}"


def class_label(label: int, name: str) -> str:
    """'7' for a digit class, '9 Ankle boot' for a named one (never '0 0')."""
    return name if name == str(label) else f"{label} {name}"


def names_text(names) -> str:
    """A list of class names in a line: all of them, or the first and the last when they are long."""
    names = list(names)
    shown = ", ".join(names)
    return shown if len(shown) <= 60 or len(names) < 3 else f"{names[0]}, ..., {names[-1]}"
