"""Widgets and the debugger in a real browser: JupyterLab + "HopX Remote Python" in headless
Chromium (the JupyterLab harness of test_jupyterlab.py).

A slider moved with the keyboard is read back by the next cell; a ``tqdm.notebook`` bar
reaches 100%; reloading the page restores the widgets from the sandbox (comm_info and
``jupyter.widget.control``); a breakpoint stops a cell and Continue resumes it.
Screenshots go to ``tests/browser/artifacts/`` (``widgets*.png``).
"""

from __future__ import annotations

import pytest

from . import test_jupyterlab
from .test_jupyterlab import (
    ARTIFACTS,
    KERNEL_DISPLAY,
    KERNEL_TIMEOUT,
    STEP_TIMEOUT,
    _new_notebook,
    _run_in_cell,
)

# the JupyterLab fixture, shared (an assignment, so a test's ``lab`` parameter shadows no import)
lab = test_jupyterlab.lab

pytest.importorskip("ipywidgets")


def _wait_idle(page, expect) -> None:
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator(".jp-Toolbar-kernelName")).to_contain_text(KERNEL_DISPLAY)
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=KERNEL_TIMEOUT * 1000
    )


@pytest.mark.timeout(600)
def test_widgets_in_jupyterlab(lab, notebook_page):
    from playwright.sync_api import expect

    _new_notebook(lab)
    expect.set_options(timeout=STEP_TIMEOUT)
    with notebook_page("widgets-failure.png", console=True) as page:
        _wait_idle(page, expect)

        # 1. a slider, moved with the keyboard, read back by the next cell
        cell = _run_in_cell(page, 0, "import ipywidgets as w; s = w.IntSlider(value=5, max=10); s")
        handle = cell.locator(".widget-slider .noUi-handle")
        expect(handle).to_be_visible()
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        expect(cell.locator(".widget-readout")).to_have_text("7")
        cell = _run_in_cell(page, 1, "print('value', s.value)")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("value 7")

        # 2. a tqdm.notebook bar reaches 100%
        cell = _run_in_cell(page, 2, "from tqdm.notebook import tqdm; _ = list(tqdm(range(40), desc='work'))")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("100%")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("40/40")
        page.screenshot(path=str(ARTIFACTS / "widgets.png"), full_page=True)

        # 3. reload: the widgets come back from the sandbox
        page.keyboard.press("Escape")  # command mode, so the shortcut reaches the notebook
        page.keyboard.press("Control+s")
        # saved: the tab loses its dirty mark (the mark is on the tab, not in the panel)
        expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
        page.reload(wait_until="domcontentloaded")
        _wait_idle(page, expect)
        first = page.locator(".jp-Notebook .jp-Cell").nth(0)
        expect(first.locator(".widget-slider .widget-readout")).to_have_text("7")
        expect(page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-OutputArea")).to_contain_text("100%")
        page.screenshot(path=str(ARTIFACTS / "widgets-reloaded.png"), full_page=True)


@pytest.mark.timeout(600)
def test_a_breakpoint_stops_a_cell_and_continue_resumes_it(lab, notebook_page):
    from playwright.sync_api import expect

    _new_notebook(lab)
    expect.set_options(timeout=STEP_TIMEOUT)
    with notebook_page("debugger-failure.png") as page:
        _wait_idle(page, expect)
        # the sandbox loads Jedi when idle: let it, before debugpy traces everything
        cell = _run_in_cell(page, 0, "import os; x = 1")
        expect(cell.locator(".jp-InputPrompt")).to_have_text("[1]:")
        bug = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-DebuggerBugButton")
        expect(bug).to_be_enabled()  # kernel_info offered the debugger
        bug.click()
        expect(bug).to_have_attribute("aria-pressed", "true")
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        editor = cell.locator(".cm-content")
        editor.click()
        page.keyboard.type("a = 40")
        page.keyboard.press("Enter")
        page.keyboard.type("b = a + 2")
        page.keyboard.press("Enter")
        page.keyboard.type("print('after', b)")
        gutter = cell.locator("div.cm-breakpoint-gutter .cm-gutterElement")
        gutter.nth(2).click()  # line 2 (the first element is the gutter's spacer)
        expect(cell.locator('span.cm-breakpoint-gutter[aria-label="Breakpoint"]')).to_have_count(1)
        page.keyboard.press("Shift+Enter")
        # stopped: the line is highlighted and the call stack shows a frame
        expect(cell.locator(".jp-DebuggerEditor-highlight")).to_have_count(1)
        expect(page.locator(".jp-DebuggerCallstackFrame").first).to_be_visible()
        expect(cell.locator(".jp-OutputArea")).not_to_contain_text("after")
        page.screenshot(path=str(ARTIFACTS / "debugger-stopped.png"), full_page=True)
        page.locator(
            '.jp-DebuggerCallstack-header button[title^="Continue"], jp-button[title^="Continue"]'
        ).first.click()
        expect(cell.locator(".jp-OutputArea")).to_contain_text("after 42")
        page.screenshot(path=str(ARTIFACTS / "debugger-continued.png"), full_page=True)
