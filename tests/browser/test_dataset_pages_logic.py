"""The Datasets and Labelling pages' logic without a browser: the charts' defaults and scales, the preview's
masking marks, thumbnails, settings, keyboard shortcuts, the order items come in, and what an item shows."""

from __future__ import annotations

from panel_apps import annotate_views as label_views
from panel_apps import dataset_views as views
from panel_apps.language import use_language

REPORT = {"columns": [
    {"name": "id", "null_fraction": 0.0, "numeric": {"histogram": {"edges": [0, 1, 2], "counts": [1, 1]}}},
    {"name": "user_id", "null_fraction": 0.0, "numeric": {"histogram": {"edges": [0, 1], "counts": [2]}}},
    {"name": "score", "null_fraction": 0.003, "numeric": {"histogram": {"edges": [0, 1], "counts": [2]}}},
    {"name": "label_name", "null_fraction": 0.25}]}


def test_the_histogram_starts_on_the_first_numeric_column_that_is_not_an_id() -> None:
    assert views.histogram_default(REPORT) == "score"
    only_ids = {"columns": REPORT["columns"][:2]}
    assert views.histogram_default(only_ids) == "id"
    assert views.histogram_default({"columns": []}) is None
    assert [name for name in ("id", "ID", "user_id", "row_number", "idea", "width", "valid") if views.is_id_column(name)] \
        == ["id", "ID", "user_id", "row_number"]


def test_nulls_are_percentages_with_labels_on_a_fitted_axis() -> None:
    frame = views.null_percentages(REPORT)
    assert list(frame["percent"]) == [0.0, 0.0, 0.3, 25.0]
    assert [views.percent_label(p) for p in (0.0, 0.05, 0.3, 25.0)] == ["0%", "<0.1%", "0.3%", "25%"]
    chart = views.null_chart(REPORT)
    assert chart.opts.get().kwargs["ylim"] == (0, 25.0 * 1.3) and chart.opts.get().kwargs["invert_axes"]
    assert list(chart.get(1).data["text"]) == ["0%", "0%", "0.3%", "25%"]
    assert views.null_chart({"columns": []}) is None


def test_a_wide_table_draws_its_columns_with_the_most_missing_values_and_says_so() -> None:
    wide = {"columns": [{"name": f"p{i}", "null_fraction": 0.0} for i in range(66)]}
    assert views.null_columns(wide) == (None, "No missing values in any of the 66 columns.")
    wide["columns"][7]["null_fraction"], wide["columns"][40]["null_fraction"] = 0.01, 0.2
    drawn, note = views.null_columns(wide)
    assert [c["name"] for c in drawn["columns"]] == ["p40", "p7"]
    assert note == "The 2 columns with the most missing values; the other 64 have fewer or none."
    assert views.null_columns(REPORT) == (REPORT, "")  # a narrow table: every column


def test_notes_keep_underscores_and_are_escaped() -> None:
    _chart, note = views.chart_or_note(None, "balance-note", "set label_column <here>")
    assert "label_column &lt;here&gt;" in note and "id='balance-note'" in note


def test_the_preview_marks_masked_columns_for_the_viewer_and_names_them_for_a_maintainer() -> None:
    preview = {"columns": ["email", "note"], "rows": [["3f2a", "<b>hi</b>"]], "masked_columns": ["email"]}
    shown = views.preview_html(preview, {"email": "hash"})
    assert "class='masked'" in shown and "Masked for your role" in shown and "&lt;b&gt;hi" in shown
    unmasked = views.preview_html({**preview, "masked_columns": []}, {"email": "hash"})
    assert "class='masked'" not in unmasked and "email (hash)" in unmasked
    assert "no rows to preview" in views.preview_html(None, {})
    with use_language("zh_CN"):
        assert "按你的角色已脱敏" in views.preview_html(preview, {"email": "hash"})


def test_thumbnails_by_class() -> None:
    shown = views.thumbnails_html({"classes": [
        {"name": "cat", "files": 5, "unreadable": 1,
         "thumbnails": [{"path": "cat/1.png", "width": 10, "height": 8, "data_url": "data:image/png;base64,AA=="}]}],
        "more_classes": 2})
    assert "data-class='cat'" in shown and "5 files" in shown and "1 unreadable" in shown and "2 more classes" in shown
    assert "No images" in views.thumbnails_html({"classes": []})


def test_settings_keep_other_rules_and_drop_emptied_ones() -> None:
    current = {"min_rows": 10, "declared_schema": {"a": "int"}, "label_column": "y"}
    assert views.rules_with(current, {"min_rows": None, "label_column": "", "max_null_fraction": 0.1}) == {
        "declared_schema": {"a": "int"}, "max_null_fraction": 0.1}
    assert views.masks_from({"email": "hash", "note": "", "ssn": "redact"}) == {"email": "hash", "ssn": "redact"}
    assert "your role is viewer" in views.settings_note("viewer", False)
    with use_language("zh_CN"):
        assert "查看者" in views.settings_note("viewer", False) and "非成员" in views.settings_note(None, False)


def test_shortcuts_are_digits_and_unshared_first_letters() -> None:
    keys = label_views.shortcut_keys(["cat", "dog", "cow", "7up"])
    assert keys == {"1": "cat", "2": "dog", "3": "cow", "4": "7up", "d": "dog"}
    assert label_views.action_for("D", keys) == ("label", "dog")
    assert label_views.action_for(" ", keys) == ("skip", None)
    assert label_views.action_for("Backspace", keys) == label_views.action_for("ctrl+z", keys) == ("undo", None)
    assert label_views.action_for("x", keys) is None
    assert label_views.button_name("dog", keys) == "dog (2 / d)"
    assert label_views.new_keys(["1", " ", "d"], 1) == [" ", "d"] and label_views.new_keys(["1"], 1) == []


def test_items_come_unlabelled_first_then_skipped_ones() -> None:
    items = [{"item_id": i, "label": label} for i, label in enumerate([None, "a", None, None])]
    assert label_views.next_index(items, -1, set()) == 0
    assert label_views.next_index(items, 0, set()) == 2
    assert label_views.next_index(items, 0, {2}) == 3
    assert label_views.next_index(items, 3, {0, 2, 3}) == 0  # only skipped ones left: they come round again
    assert label_views.next_index([{"item_id": 1, "label": "a"}], 0, set()) is None


def test_an_item_shows_its_picture_or_its_fields_and_progress_counts() -> None:
    image = label_views.item_html({"item_id": 4, "key": "#2", "content": {"image": "data:image/png;base64,AA=="},
                                   "label": "cat"})
    assert "id='annotate-image'" in image and "Item #2" in image and "Your label: cat" in image
    row = label_views.item_html({"item_id": 5, "key": "r1", "content": {"text": "<i>ok</i>"}, "label": None})
    assert "&lt;i&gt;ok" in row and "annotate-current" not in row
    progress = label_views.progress_html([{"label": "a"}, {"label": None}, {"label": "b"}])
    assert "data-done='2' data-assigned='3'" in progress and "2 / 3 labelled" in progress
    with use_language("zh_CN"):
        assert "已标注 2 / 3" in label_views.progress_html([{"label": "a"}, {"label": None}, {"label": "b"}])


def test_reviewers_see_labelled_items_pending_first() -> None:
    frame = label_views.review_frame([
        {"id": 1, "annotator": "bob", "key": "a", "label": "x", "review": "accepted"},
        {"id": 2, "annotator": "bob", "key": "b", "label": "y", "review": "pending"},
        {"id": 3, "annotator": "bob", "key": "c", "label": None, "review": "pending"}])
    assert list(frame["assignment"]) == [2, 1]
