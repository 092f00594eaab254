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


# ---------------------------------------------------------------- several targets, constructed artifacts


def write_artifacts(root: Path) -> dict:
    """Four probe images, one layer of three neurons, and descriptions by two methods of two
    checkpoints ("early", this site's target, and "late"), whose top concepts differ: the
    keyword arguments of build_site for the early checkpoint, with the late one's tables."""
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(4):
        path = root / "images" / f"im{i}.png"
        Image.new("RGB", (12, 8), (60 * i, 20, 200 - 40 * i)).save(path)
        rows.append(dict(image_id=f"im{i}", path=str(path), label="", label_name="", width=12, height=8))
    io.save_manifest(root / "manifest.parquet", pd.DataFrame(rows))
    rng = np.random.default_rng(0)
    io.save_activations(root / "acts.npz", rng.normal(size=(4, 3)), [r["image_id"] for r in rows])
    words = ["dog", "cat", "car", "tree", "sky"]
    tables = {}
    for ckpt, shift in (("early", 0), ("late", 2)):
        for method, offset in (("m1", 0), ("m2", 1)):
            table = io.description_table(
                (neuron, rank, cid, words[cid], 1.0 - 0.1 * rank, rank == 0, False)
                for neuron in range(3) for rank in range(3)
                for cid in [(neuron + rank + shift + offset) % len(words)])
            path = root / f"{ckpt}-{method}.parquet"
            io.save_descriptions(path, table)
            tables[(ckpt, method)] = path
    site = dict(manifest=str(root / "manifest.parquet"), layers=["l1"], final_layer="l1",
                views=[dict(view="center", boxes=None, activations={"l1": str(root / "acts.npz")})],
                methods=[dict(name=m, family="www", view="center") for m in ("m1", "m2")],
                concept_sets=["words"],
                descriptions=[dict(layer="l1", method=m, concepts="words", path=str(tables[("early", m)]))
                              for m in ("m1", "m2")],
                options=browser.SiteOptions(n_images=2))
    late = [dict(target="late", layer="l1", method=m, concepts="words", path=str(tables[("late", m)]))
            for m in ("m1", "m2")]
    return dict(site=site, late=late, tables=tables)


def layer_data(index: Path, layer: str) -> dict:
    """The data script of a layer's page, as the JSON it registers."""
    import json

    text = (index.parent / browser.data_file(layer)).read_text()
    return json.loads(text.splitlines()[1].split("] = ", 1)[1].rstrip(";"))


def test_target_switcher_links_each_index_relative_to_the_site():
    indexes = {"a": "results/browser/index.html", "b": "results/browser/targets/b/index.html",
               "c": "results/browser/targets/c/index.html"}
    assert browser.target_switcher(indexes, "a") == [
        dict(label="a", href="index.html", current=True),
        dict(label="b", href="targets/b/index.html", current=False),
        dict(label="c", href="targets/c/index.html", current=False)]
    assert [t["href"] for t in browser.target_switcher(indexes, "b")] == [
        "../../index.html", "index.html", "../c/index.html"]
    assert browser.target_site_file("b", "index.html") == "targets/b/index.html"
    with pytest.raises(ValueError):
        browser.target_switcher(indexes, "d")


def test_site_with_a_switcher_links_the_other_targets_from_every_page(tmp_path: Path):
    made = write_artifacts(tmp_path)
    switcher = browser.target_switcher({"early": tmp_path / "site" / "index.html",
                                        "late": tmp_path / "site" / "targets" / "late" / "index.html"},
                                       "early")
    index = browser.build_site(tmp_path / "site" / "index.html", **made["site"], switcher=switcher)
    for page in (index, index.parent / browser.layer_file("l1")):
        html = page.read_text()
        assert '<a href="targets/late/index.html" class="" data-target="late">late</a>' in html
        assert '<a href="index.html" class="current" data-target="early">early</a>' in html
    plain = browser.build_site(tmp_path / "plain" / "index.html", **made["site"])
    for name in (browser.INDEX, browser.layer_file("l1")):
        assert 'class="targets"' not in (plain.parent / name).read_text()
        assert "checkpoints.js" not in (plain.parent / name).read_text()
    assert not (plain.parent / browser.static_file(browser.CHECKPOINT_SCRIPT)).exists()
    # the switcher changes the pages only: the same data and thumbnails
    assert layer_data(plain, "l1") == layer_data(index, "l1")


def test_checkpoint_neurons_show_the_other_checkpoints_top_concepts(tmp_path: Path):
    made = write_artifacts(tmp_path)
    index = browser.build_site(tmp_path / "site" / "index.html", **made["site"], checkpoints=made["late"])
    data = layer_data(index, "l1")
    for neuron in data["neurons"]:
        cell = neuron["cs"]["words"]
        expected = {}
        for method in ("m1", "m2"):
            late = pd.read_parquet(made["tables"][("late", method)])
            expected[method] = late[(late["neuron"] == neuron["id"]) & (late["rank"] == 0)]["concept"].item()
        assert cell["ckpt"] == {"late": expected}
        # this checkpoint's own top concept stays first in its column, and differs here
        assert [rows[0][0] for rows in cell["c"]] != list(expected.values())
    assert (index.parent / browser.static_file(browser.CHECKPOINT_SCRIPT)).is_file()
    assert '<script src="static/checkpoints.js"></script>' in (index.parent / browser.layer_file("l1")).read_text()
    files = browser.site_files(["l1"], convis=False, checkpoints=True)
    assert all((index.parent / name).is_file() for name in files)


def test_checkpoint_rows_are_drawn_beside_each_neuron_panel(tmp_path: Path):
    """checkpoints.js draws, under every panel browser.js shows, a row per other checkpoint."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/setup_system.sh")
    sync_api = pytest.importorskip("playwright.sync_api")
    made = write_artifacts(tmp_path)
    index = browser.build_site(tmp_path / "site" / "index.html", **made["site"], checkpoints=made["late"])
    late = pd.read_parquet(made["tables"][("late", "m2")])
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = chromium.new_page()
            errors = []
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto((index.parent / browser.layer_file("l1")).as_uri())
            tab.wait_for_selector(".neuron .checkpoints")
            assert tab.locator(".neuron .checkpoints").count() == 3
            for neuron in range(3):
                cell = tab.locator(f'#neuron-{neuron} tr[data-checkpoint="late"] td[data-method="m2"]')
                assert cell.inner_text() == late[(late["neuron"] == neuron) & (late["rank"] == 0)]["concept"].item()
            tab.fill("#search", "no concept reads like this")
            tab.fill("#search", "")
            assert tab.locator(".neuron .checkpoints").count() == 3  # drawn again after a redraw
            assert errors == []
        finally:
            chromium.close()


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
