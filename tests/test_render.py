"""The progress a human sees: a rich bar on a terminal, plain lines elsewhere, nothing with --json."""

import pytest

from barapi.cli.render import ProgressPrinter
from barapi.run.records import Progress


def progress(iteration: int, phase: str = "training") -> Progress:
    return Progress(phase=phase, iteration=iteration, iterations=10, loss=1.25, train_accuracy=0.4, test_accuracy=None,
                    queries_paid=1200 * iteration, queries_cached=30, cost_usd=0.0015 * iteration, elapsed_s=1.0)


def test_the_live_bar_shows_iteration_loss_accuracy_queries_dollars_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    printer = ProgressPrinter(quiet=False, live=True)
    for i in (1, 2, 3):
        printer(progress(i))
    printer.finish()
    err = capsys.readouterr().err
    for fragment in ("training", "3/10", "loss 1.250", "acc 40.0%", "q 3,600+30", "$0.0045", "ETA"):
        assert fragment in err, err


def test_plain_lines_off_a_terminal_and_silence_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    plain = ProgressPrinter(quiet=False, live=False)
    plain(progress(1))
    plain(progress(10))
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("iter 10/10  loss 1.250") and "ETA" in lines[-1]
    quiet = ProgressPrinter(quiet=True, live=True)
    quiet(progress(1))
    quiet.finish()
    assert capsys.readouterr() == ("", "")
