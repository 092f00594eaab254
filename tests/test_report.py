"""`snakemake --report`: one self-contained HTML file with every table and figure, captioned."""

from __future__ import annotations

import base64
import json
import re

import pytest

from conftest import Workflow

pytestmark = pytest.mark.workflow


def report_results(html: str) -> dict[str, dict]:
    """The report's results (path -> name, caption, data_uri ...), from its embedded JSON."""
    found = re.search(r"var results = (\{.*?\});\n", html, re.S)
    assert found, "no results in the report"
    return json.loads(found.group(1))


def embedded_bytes(data_uri: str) -> bytes:
    return base64.b64decode(data_uri.split(";base64,", 1)[1])


@pytest.fixture(scope="module")
def report_html(finished_workflow: Workflow, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of the finished tiny workflow, written outside its results folder."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    finished_workflow.snakemake("--report", str(path))
    return path.read_text()


def test_report_embeds_every_table_and_figure_byte_for_byte(finished_workflow: Workflow,
                                                            report_html: str) -> None:
    """Each results/tables/*.csv and results/figures/**.png is in the report, as made."""
    results_dir = finished_workflow.path("results")
    expected = {p.relative_to(finished_workflow.root).as_posix()
                for pattern in ("tables/*.csv", "figures/**/*.png")
                for p in results_dir.glob(pattern)}
    assert "results/tables/concept_discovery.csv" in expected
    results = report_results(report_html)
    assert set(results) == expected
    for path, entry in results.items():
        assert embedded_bytes(entry["data_uri"]) == finished_workflow.path(path).read_bytes()


def test_every_result_has_a_caption_naming_its_parameters(finished_workflow: Workflow,
                                                          report_html: str) -> None:
    """Captions are rendered (no template left) and the table's names the model and layer."""
    results = report_results(report_html)
    for path, entry in results.items():
        caption = re.sub(r"<[^>]+>", "", entry["caption"])
        assert len(caption.split()) >= 10, f"{path}: caption {caption!r}"
        assert "{{" not in caption and "}}" not in caption
    table = re.sub(r"<[^>]+>", "", results["results/tables/concept_discovery.csv"]["caption"])
    target = finished_workflow.config["target"]
    assert f"layer {target['final_layer']} of {target['name']}" in " ".join(table.split())


def test_report_is_self_contained(report_html: str) -> None:
    """No script, stylesheet or image is loaded from elsewhere: the file works offline."""
    assert not re.search(r"<(script|img)\b[^>]*\bsrc=\"https?:", report_html)
    assert not re.search(r"<link\b[^>]*\bhref=\"https?:", report_html)
    assert "neuron-concepts explains the neurons" in report_html  # report/workflow.rst
