"""The neuron browser: agreement measures on known answers, and the site the tiny workflow
builds, opened in headless Chromium (Debian's chromium through Playwright)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import Workflow, layer_path_name
from neuron_concepts import browser, io

CHROMIUM = "/usr/bin/chromium"


# ---------------------------------------------------------------- library, known answers


def test_exact_agreement_is_the_share_naming_the_most_common_top_concept():
    tops = np.array([[4, 4, 4], [1, 2, 3], [7, 9, 7]])
    np.testing.assert_allclose(browser.exact_agreement(tops), [1.0, 1 / 3, 2 / 3])
    pair = browser.pairwise_agreement(tops)
    np.testing.assert_allclose(pair, [[1, 1 / 3, 2 / 3], [1 / 3, 1, 1 / 3], [2 / 3, 1 / 3, 1]])


def test_semantic_agreement_is_the_mean_pairwise_cosine_of_the_top_concepts():
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # concept rows; not normalised
    tops = np.array([[0, 0, 1], [0, 2, 2]])
    # neuron 0: cos(0,0)=1, cos(0,1)=0, cos(0,1)=0 -> 1/3; neuron 1: 0.7071 twice and 1 -> mean
    expected = [1 / 3, (2 * np.sqrt(0.5) + 1) / 3]
    np.testing.assert_allclose(browser.semantic_agreement(tops, emb), expected, rtol=1e-6)
    assert np.isnan(browser.semantic_agreement(np.array([[0]]), emb)).all()


def test_neuron_concepts_keep_every_selected_then_the_best_others():
    table = pd.DataFrame({"neuron": [0] * 7 + [1] * 2, "rank": [*range(7), 0, 1],
                          "concept": list("abcdefg") + ["x", "y"],
                          "score": np.linspace(1, 0, 9), "selected": [True] * 6 + [False] + [False, False]})
    shown = browser.neuron_concepts(table, n_shown=2)
    assert [row[0] for row in shown[0]] == list("abcdef")  # six selected, beyond n_shown
    assert [(row[0], row[2]) for row in shown[1]] == [("x", False), ("y", False)]
    assert browser.jaccard(["a", "b"], ["b", "c"]) == pytest.approx(1 / 3)


def test_heat_overlay_colours_the_peak_red_and_zero_blue():
    image = Image.new("RGB", (4, 2), (0, 0, 0))
    heat = np.array([[0.0, 1.0]])
    out = np.asarray(browser.heat_overlay(image, heat, alpha=1.0))
    assert out.shape == (2, 4, 3)
    # jet colours: the peak dark red (0.5, 0, 0), zero dark blue (0, 0, 0.5)
    np.testing.assert_allclose(out[0, -1], [127, 0, 0], atol=2)
    np.testing.assert_allclose(out[0, 0], [0, 0, 127], atol=2)


# ---------------------------------------------------------------- the workflow's browser


def site(flow: Workflow) -> Path:
    return flow.path("results/browser")


def layer_artifacts(flow: Workflow, layer: str, concepts: str) -> tuple[np.ndarray, pd.DataFrame]:
    """The layer's activations (center view) and WWW descriptions, read with the package's io."""
    from neuron_concepts import names

    config = flow.config
    target = f"{config['target']['name']}-random"
    www = config["methods"]["www"]
    method = names.www_method_name("center", "cos", n_images=www["n_images"], alpha=www["alpha"])
    name = layer_path_name(layer)
    acts = io.load_activations(flow.path(f"results/activations/demo/{target}/center/{name}.npz"))
    table = io.load_descriptions(flow.path(f"results/descriptions/demo/{target}/{name}/{method}/{concepts}.parquet"))
    return acts.values, table.assign(method=method)


@pytest.fixture(scope="module")
def page(finished_workflow: Workflow):
    """A headless Chromium page; console errors and page errors are collected in ``page.errors``."""
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: run scripts/setup_system.sh"
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = chromium.new_page()
        tab.errors = []
        tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: tab.errors.append(str(e)))
        yield tab
        chromium.close()


def open_layer(page, flow: Workflow, layer: str) -> None:
    page.goto((site(flow) / f"layer-{layer_path_name(layer)}.html").as_uri())
    page.select_option("#page-size", "0")  # all neurons on one page
    page.wait_for_selector(".neuron")


@pytest.mark.workflow
def test_default_run_builds_the_browser_in_two_jobs(workflow: Workflow):
    """The default target plans one browser and one screenshot job; `snakemake browser` only the site."""
    jobs = workflow.planned_jobs()
    assert jobs["browser"] == 1 and jobs["browser_screenshot"] == 1
    only = workflow.planned_jobs("browser")
    assert only["browser"] == 1 and "browser_screenshot" not in only and "provenance" not in only


@pytest.mark.workflow
def test_thumbnails_are_written_once_per_image_and_view(finished_workflow: Workflow):
    """thumbs/center holds exactly the images on top of some neuron of some layer, once each."""
    config = finished_workflow.config
    rows = set()
    for layer in config["target"]["layers"]:
        values, _ = layer_artifacts(finished_workflow, layer, "words")
        rows |= set(np.argsort(-values, axis=0, kind="stable")[:config["methods"]["www"]["n_images"]].ravel().tolist())
    thumbs = sorted(site(finished_workflow).glob(f"thumbs/center/*.{browser.THUMB_EXT}"))
    assert sorted(int(p.stem) for p in thumbs) == sorted(rows)
    with Image.open(thumbs[0]) as thumb:
        assert max(thumb.size) <= 128 and thumb.format in ("WEBP", "JPEG")


@pytest.mark.workflow
def test_layer_page_lists_every_neuron_with_its_images_and_concepts(finished_workflow: Workflow, page):
    config = finished_workflow.config
    n_images = config["methods"]["www"]["n_images"]
    for layer in config["target"]["layers"]:
        values, table = layer_artifacts(finished_workflow, layer, "imagenet")
        open_layer(page, finished_workflow, layer)
        assert page.locator(".neuron").count() == values.shape[1]
        assert page.inner_text("#count").startswith(f"{values.shape[1]} of {values.shape[1]} neurons")
        for neuron in (0, values.shape[1] - 1):
            panel = page.locator(f"#neuron-{neuron}")
            images = panel.locator('.view-row[data-view="center"] img')
            assert images.count() == n_images
            top = np.argsort(-values[:, neuron], kind="stable")[:n_images]
            assert [images.nth(i).get_attribute("src") for i in range(n_images)] == [
                f"thumbs/center/{row}.{browser.THUMB_EXT}" for row in top]
            shown = panel.locator(f'td[data-method="{table["method"].iloc[0]}"] .concept.selected .text')
            chosen = table[(table["neuron"] == neuron) & table["selected"]].sort_values("rank")
            assert shown.all_inner_texts() == chosen["concept"].astype(str).tolist()
        sources = set(page.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))"))
        assert all((site(finished_workflow) / src).is_file() for src in sources)
    assert page.errors == []


@pytest.mark.workflow
def test_search_box_keeps_the_neurons_whose_concepts_match(finished_workflow: Workflow, page):
    values, table = layer_artifacts(finished_workflow, "layer4", "words")
    query = str(table[(table["neuron"] == 0) & (table["rank"] == 0)]["concept"].iloc[0])
    shown = table[table["selected"] | (table["rank"] < browser.N_SHOWN)]
    expected = sorted(set(shown[shown["concept"].str.lower().str.contains(query.lower(), regex=False)]["neuron"]))
    open_layer(page, finished_workflow, "layer4")
    page.select_option("#concept-set", "words")
    page.fill("#search", query)
    listed = [int(n) for n in page.locator(".neuron").evaluate_all("els => els.map(e => e.dataset.neuron)")]
    assert listed == expected and 0 in listed
    page.fill("#search", "no concept reads like this")
    assert page.locator(".neuron").count() == 0
    assert page.inner_text("#count").startswith(f"0 of {values.shape[1]}")
    assert page.errors == []


@pytest.mark.workflow
def test_index_and_screenshot(finished_workflow: Workflow, page):
    """The index links every layer page and charts the agreement; the demo's screenshot is a PNG."""
    page.goto((site(finished_workflow) / "index.html").as_uri())
    links = page.locator("ul.layers a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert links == [f"layer-{layer_path_name(layer)}.html" for layer in finished_workflow.config["target"]["layers"]]
    assert page.locator("svg.chart rect").count() >= 1
    with Image.open(finished_workflow.path("results/figures/browser_panel.png")) as shot:
        assert shot.format == "PNG" and shot.size[0] > 300 and shot.size[1] > 100
    assert page.errors == []


@pytest.mark.workflow
def test_building_the_browser_imports_no_torch(finished_workflow: Workflow, tmp_path: Path):
    """The browser job runs no model: build_site works with torch absent from sys.modules."""
    flow = finished_workflow
    values, table = layer_artifacts(flow, "fc", "words")
    method = table["method"].iloc[0]
    target = f"{flow.config['target']['name']}-random"
    code = f"""
import sys
from neuron_concepts import browser
browser.build_site({str(tmp_path / 'site' / 'index.html')!r},
    manifest='results/probe/demo/manifest.parquet', layers=['fc'], final_layer='fc',
    views=[dict(view='center', boxes=None,
                activations={{'fc': 'results/activations/demo/{target}/center/fc.npz'}})],
    methods=[dict(name={method!r}, family='www', view='center')], concept_sets=['words'],
    descriptions=[dict(layer='fc', method={method!r}, concepts='words',
                       path='results/descriptions/demo/{target}/fc/{method}/words.parquet')],
    options=browser.SiteOptions(n_images=2))
heavy = sorted(m for m in ('torch', 'torchvision', 'open_clip', 'matplotlib') if m in sys.modules)
assert not heavy, heavy
"""
    subprocess.run([sys.executable, "-c", code], cwd=flow.root, check=True)
    data = (tmp_path / "site" / "data" / "fc.js").read_text()
    assert f'"id":{values.shape[1] - 1},' in data


@pytest.mark.workflow
def test_thumbnails_written_by_several_threads_are_the_files_of_one(finished_workflow: Workflow,
                                                                   tmp_path: Path):
    """The browser job's threads write the thumbnails in parallel: the same files, byte for byte."""
    import os

    from neuron_concepts import browser

    flow = finished_workflow
    _, table = layer_artifacts(flow, "fc", "words")
    method = table["method"].iloc[0]
    target = f"{flow.config['target']['name']}-random"
    sites = {}
    cwd = os.getcwd()
    os.chdir(flow.root)
    try:
        for threads in (1, 4):
            index = tmp_path / f"site{threads}" / "index.html"
            browser.build_site(
                index, manifest="results/probe/demo/manifest.parquet", layers=["fc"],
                final_layer="fc", views=[dict(view="center", boxes=None, activations={
                    "fc": f"results/activations/demo/{target}/center/fc.npz"})],
                methods=[dict(name=method, family="www", view="center")], concept_sets=["words"],
                descriptions=[dict(layer="fc", method=method, concepts="words",
                                   path=f"results/descriptions/demo/{target}/fc/{method}/words.parquet")],
                options=browser.SiteOptions(n_images=3), threads=threads)
            thumbs = index.parent / "thumbs"
            sites[threads] = {p.relative_to(thumbs).as_posix(): p.read_bytes()
                              for p in sorted(thumbs.rglob("*")) if p.is_file()}
    finally:
        os.chdir(cwd)
    assert len(sites[1]) >= 3 and sites[1] == sites[4]
