import io

from PIL import Image

from mnist_pipeline.tasks.core.pages import class_label, html_table, markdown_table, p_value_text, png_data_uri


def test_p_values_read_as_people_read_them():
    assert p_value_text(0.0) == "< 1e-16" and p_value_text(1e-300) == "< 1e-16"
    assert p_value_text(0.0412) == "0.0412" and p_value_text(1.0) == "1" and p_value_text(None) == "-"
    assert p_value_text(3.2e-9) == "3.2e-09"


def test_class_labels_never_repeat_a_digit():
    assert class_label(3, "3") == "3" and class_label(9, "Ankle boot") == "9 Ankle boot"


def test_tables_escape_their_cells():
    rows = [{"name": "a|b", "n": 3}, {"name": "<c>", "n": 4}]
    assert "a\\|b" in markdown_table(rows, numeric=("n",)) and "| ---: |" in markdown_table(rows, numeric=("n",))
    assert "&lt;c&gt;" in html_table(rows) and "<td class='number'>4</td>" in html_table(rows, numeric=("n",))
    assert markdown_table([]) == "(none)\n"


def test_inline_pngs_are_scaled_down_for_artifacts():
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 600), "white").save(buffer, "PNG")
    uri = png_data_uri(buffer.getvalue(), max_width=300)
    import base64

    small = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert uri.startswith("data:image/png;base64,") and small.size == (300, 150)
    assert png_data_uri(buffer.getvalue()) == "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
