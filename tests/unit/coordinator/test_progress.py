"""The epoch's progress: a tqdm bar on a terminal or in a notebook, log lines
elsewhere."""

from __future__ import annotations

import io
import logging

import pytest
from tqdm import tqdm
from tqdm.notebook import tqdm as notebook_tqdm

from splitrec.coordinator import progress as progress_module
from splitrec.coordinator.progress import EpochProgress, bar_class, in_notebook

LOGGER = "splitrec.coordinator.progress"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "in_notebook", lambda: False)


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "in_notebook", lambda: True)


def test_a_plain_interpreter_is_not_a_notebook():
    assert in_notebook() is False


@pytest.mark.usefixtures("no_notebook")
def test_a_terminal_gets_a_bar_with_steps_rate_and_loss(caplog):
    screen = _Terminal()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        progress = EpochProgress(0, 5, 10, stream=screen)
        progress.update(5, 640, 0.6931)
        progress.finish()
    text = screen.getvalue()
    assert text.startswith("\repoch 1/5:")
    assert "5/10" in text and "samples/s, loss 0.6931" in text
    assert text.endswith("\n")
    assert caplog.records == []


@pytest.mark.usefixtures("no_notebook")
def test_the_bar_names_each_tasks_loss_and_shows_nan_as_a_dash():
    screen = _Terminal()
    progress = EpochProgress(1, 2, 8, stream=screen)
    progress.update(8, 1024, float("nan"), {"like": 0.7, "love": float("nan")})
    progress.finish()
    assert "8/8" in screen.getvalue()
    assert "loss - like 0.7000 love -" in screen.getvalue()


@pytest.mark.usefixtures("no_notebook")
def test_finishing_draws_the_last_state_once():
    screen = _Terminal()
    progress = EpochProgress(0, 1, 10, stream=screen)
    for step in range(1, 11):
        progress.update(step, step * 64, 0.5)
    progress.finish()
    drawn = screen.getvalue()
    progress.finish()
    progress.update(10, 640, 0.4)
    assert screen.getvalue() == drawn
    assert drawn.count("\n") == 1
    assert drawn.rsplit("\r", 1)[-1].startswith("epoch 1/1: 100%")


@pytest.mark.usefixtures("no_notebook")
def test_a_stream_that_is_no_terminal_gets_log_lines_only(caplog):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        progress = EpochProgress(1, 5, 10, stream=stream)
        progress.update(4, 512, 1.2, {"like": 0.7, "love": float("nan")})
        progress.update(10, 1280, float("nan"))
        progress.finish()
    assert stream.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("epoch 2/5: 4/10 steps, ")
    assert lines[0].endswith(" samples/s, loss 1.2000 like 0.7000 love -")
    assert lines[1].startswith("epoch 2/5: 10/10 steps, ")
    assert lines[1].endswith("loss -")


@pytest.mark.usefixtures("notebook")
def test_a_notebook_gets_the_widget_bar(capsys):
    # Outside a kernel the widget prints its text form to stdout (captured).
    progress = EpochProgress(0, 3, 10, stream=io.StringIO())
    assert isinstance(progress._bar, notebook_tqdm)
    progress.update(5, 640, 0.6931)
    progress.finish()
    assert progress._bar.n == 5


@pytest.mark.usefixtures("notebook")
def test_a_notebook_without_widgets_gets_the_text_bar(monkeypatch):
    monkeypatch.setattr(progress_module, "_has_widgets", lambda: False)
    stream = io.StringIO()
    assert bar_class(stream) is tqdm
    progress = EpochProgress(0, 3, 10, stream=stream)
    progress.update(5, 640, 0.6931)
    progress.finish()
    assert "5/10" in stream.getvalue() and "loss 0.6931" in stream.getvalue()


@pytest.mark.usefixtures("no_notebook")
def test_outside_a_notebook_the_stream_decides():
    assert bar_class(_Terminal()) is tqdm
    assert bar_class(io.StringIO()) is None
