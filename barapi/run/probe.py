"""A probe: before a run's money is spent, a few of its candidate programs answered on the training
images (at most PROBE_QUERIES, no test image), and what those answers add to the user's images
alone, judged on folds their choice never saw (barapi.method.gain). The candidates are the run's
own first ones — the same programs, so the same bytes — so a run that follows finds their answers
in the cache and pays nothing twice. The probe is a run on the store (named ``<run>-probe``):
listed, priced, on the ledger like any other."""

from __future__ import annotations

from barapi.classifier import Classifier
from barapi.config import MethodConfig, RunConfig
from barapi.data import Split
from barapi.run.planning import estimate_run, free_baseline
from barapi.run.records import ProbeResult
from barapi.run.stages import PortfolioStage
from barapi.run.trainer import Trainer
from barapi.store import Store

PROBE_QUERIES = 1_000  # training images answered, at most (the start's are the label mapping's, paid once)
PROBE_STATUS = "probed"


def probing(config: RunConfig, n_train: int) -> RunConfig:
    """The probe of ``config``: its first candidates, as many as PROBE_QUERIES pay for (2 at
    least, never more than the run has), as many views of them as the run serves, no step."""
    candidates = max(2, min(config.method.candidates, PROBE_QUERIES // n_train))
    method = MethodConfig.model_validate(config.method.model_dump() | {
        "candidates": candidates, "views": min(config.method.views, candidates), "iterations": 0, "mapping": "linear",
        "labels_per_class": None})
    return config.model_copy(update={"name": f"{config.name}-probe", "method": method})


class ProbeSession(Trainer):
    """A run whose ending is never paid: it measures on the training images only."""

    def reserve_for_ending(self) -> int:
        return 0


def probe(config: RunConfig, classifier: Classifier, store: Store, split: Split) -> ProbeResult:
    """Pay for the probe's candidates (or read them: a probe run again pays nothing), then judge them."""
    session = ProbeSession(probing(config, len(split.y_train)), classifier, store, split=split)
    stage = next(stage for stage in session.stages if isinstance(stage, PortfolioStage))
    try:
        stage.search(session, session.restore() or session.start())
    except BaseException:
        session.let_go()
        raise
    session.mark(PROBE_STATUS)
    paid, spent = store.spent(session.config.name)
    full_run = estimate_run(config, classifier, store, split)
    gain = stage.gain.as_json() if stage.gain is not None else None
    return ProbeResult(
        run=session.config.name, adds=None if gain is None else gain["beyond_noise"], free_baseline=free_baseline(split, config.method.free_views, gain), api_gain=gain,
        candidates=stage.paid, queries_paid=paid, queries_cached=session.engine.queries_cached, cost_usd=round(spent, 6),
        full_run={"queries": full_run.total, "cost_usd": round(full_run.cost_usd, 6), "usd_per_1k_predictions": round(full_run.usd_per_1k_predictions, 6)},
    )
