"""Whether a candidate model may replace the current one: a paired comparison on the same photos.

Both are scored on the same photos: the out-of-fold predictions of cross-validation runs on the same folds (each
photo scored by the fold model that did not train on it), or a model scored on a run's photos, and on a frozen
held-out folder neither trained on. For each photo only the pairs where one is right and the other wrong tell them
apart: McNemar's exact test on those discordant pairs says whether the difference is more than chance, and a
paired bootstrap over photos gives a 95 % confidence interval of the accuracy difference.

The decision is non-inferiority: "promote" only when, on every comparison, the interval's lower end is at least
−margin (default one point of accuracy), i.e. the data show the candidate is not worse by more than the margin.
When they cannot tell (too few photos, too many that only the baseline gets right) the current model is kept.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .crossvalidation import read_crossval_run
from .data import Sample
from .errors import ConfigError

ALPHA = 0.05
MARGIN = 0.01  # the accuracy a candidate may lose and still be "not worse"
RESAMPLES = 2000
REPORT_JSON, REPORT_MD = "promotion.json", "promotion.md"
# The options that make two cross-validation runs hold out the same photos in the same folds.
SAME_FOLDS = ("task", "data", "folds", "seeds", "n_images", "labels")

Outcomes = dict[str, tuple[str, dict[str, float]]]  # photo key → (true label, probabilities)


# ---------------------------------------------------------------- outcomes per photo

def read_run(folder: str | os.PathLike) -> tuple[dict, Outcomes, dict[tuple[str, str], str]]:
    """A `phonegrade crossval` run: its summary, each photo's label and out-of-fold probabilities (the mean over
    seeds), and its fold assignment ((seed, photo) → fold)."""
    try:
        summary, rows = read_crossval_run(Path(folder))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    labels = summary["labels"]
    per_photo: dict[str, list[list[float]]] = defaultdict(list)
    truth, folds = {}, {}
    for row in rows:
        per_photo[row["image"]].append([float(row[f"p_{label}"]) for label in labels])
        truth[row["image"]] = row["label"]
        folds[(row["seed"], row["image"])] = row["fold"]
    outcomes = {key: (truth[key], dict(zip(labels, np.mean(p, axis=0).tolist(), strict=True)))
                for key, p in per_photo.items()}
    return summary, outcomes, folds


def check_same_folds(candidate: str, candidate_run: tuple, baseline: str, baseline_run: tuple) -> None:
    """Raise unless two crossval runs (`read_run`) hold out the same photos in the same folds."""
    (first, _, first_folds), (second, _, second_folds) = candidate_run, baseline_run
    for key in SAME_FOLDS:
        if first.get(key) != second.get(key):
            raise ConfigError(f"{candidate} and {baseline} differ in {key} ({first.get(key)!r} vs "
                              f"{second.get(key)!r}): compare runs on the same data, --folds and --seeds")
    if first_folds != second_folds:
        raise ConfigError(f"{candidate} and {baseline} hold out different photos in their folds")


def score_model(classifier, samples: list[Sample], labels: list[str]) -> Outcomes:
    """A model's probabilities for labelled photos (keyed as crossval keys them)."""
    if list(classifier.labels) != list(labels):
        raise ConfigError(f"the model's labels {list(classifier.labels)} are not the photos' {list(labels)}")
    probabilities = classifier.predict_proba([s.load() for s in samples]).tolist()
    return {s.key: (labels[s.label], dict(zip(labels, p, strict=True)))
            for s, p in zip(samples, probabilities, strict=True)}


def paired_correct(candidate: Outcomes, baseline: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """Whether each scored the photos both scored right (its top probability is the true label), in one order."""
    keys = sorted(candidate.keys() & baseline.keys())
    if not keys:
        raise ConfigError("the candidate and the baseline were scored on no photo in common")

    def right(outcomes: Outcomes) -> np.ndarray:
        return np.array([max(p, key=p.get) == label for label, p in (outcomes[k] for k in keys)])

    return right(candidate), right(baseline)


# ---------------------------------------------------------------- statistics

def _binomial_tail(k: int, n: int) -> float:
    """P(X ≥ k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n if n else 1.0


def mcnemar_exact(candidate_only: int, baseline_only: int) -> dict[str, float]:
    """McNemar's exact test on the discordant pairs (photos only the candidate, or only the baseline, got right):
    under "equally good" each is a fair coin flip. p_worse: the chance of the baseline winning this many or more
    if they were equal; p_better the same for the candidate; p_two_sided both ways."""
    n = candidate_only + baseline_only
    p_worse, p_better = _binomial_tail(baseline_only, n), _binomial_tail(candidate_only, n)
    return {"p_worse": round(p_worse, 6), "p_better": round(p_better, 6),
            "p_two_sided": round(min(1.0, 2 * min(p_worse, p_better)), 6)}


def paired_bootstrap_interval(candidate: np.ndarray, baseline: np.ndarray, resamples: int = RESAMPLES,
                              level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the accuracy difference (candidate − baseline), resampling photos with both
    outcomes kept together."""
    rng = np.random.default_rng(seed)
    difference = candidate.astype(float) - baseline.astype(float)
    means = difference[rng.integers(0, len(difference), size=(resamples, len(difference)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return round(float(low), 4), round(float(high), 4)


def compare(candidate: np.ndarray, baseline: np.ndarray, alpha: float = ALPHA, resamples: int = RESAMPLES,
            seed: int = 0, margin: float = MARGIN) -> dict:
    """Accuracies, their difference with a bootstrap interval, the discordant pairs and McNemar's test, and a
    verdict: "not worse" when the interval's lower end is at least −margin (non-inferiority), else "worse" when
    McNemar's one-sided p is below alpha, else "cannot tell"; `better` says whether p_better is below alpha."""
    candidate_only, baseline_only = int(np.sum(candidate & ~baseline)), int(np.sum(~candidate & baseline))
    test = mcnemar_exact(candidate_only, baseline_only)
    interval = paired_bootstrap_interval(candidate, baseline, resamples, seed=seed)
    verdict = ("not worse" if interval[0] >= -margin else "worse" if test["p_worse"] < alpha else "cannot tell")
    return {"photos": len(candidate), "candidate_accuracy": round(float(candidate.mean()), 4),
            "baseline_accuracy": round(float(baseline.mean()), 4),
            "difference": round(float(candidate.mean() - baseline.mean()), 4), "interval_95": list(interval),
            "candidate_only_right": candidate_only, "baseline_only_right": baseline_only, **test,
            "margin": margin, "verdict": verdict, "better": test["p_better"] < alpha}


def decide(comparisons: dict[str, dict]) -> tuple[str, str]:
    """("promote", why) when the candidate is not worse (by more than the margin) on every comparison, else
    ("keep", why): worse, or not shown to be not worse."""
    margin = next(iter(comparisons.values()))["margin"]
    doubtful = [name for name, c in comparisons.items() if c["verdict"] != "not worse"]
    if doubtful:
        worse = [name for name in doubtful if comparisons[name]["verdict"] == "worse"]
        return "keep", ((f"the candidate is worse on {' and '.join(worse)} (McNemar); " if worse else "")
                        + f"the data do not show it is within {margin:.3g} accuracy of the baseline on "
                        + " and ".join(doubtful) + " (lower end of the 95 % interval below "
                        + f"{-margin:+.3g})")
    better = [name for name, c in comparisons.items() if c["better"]]
    reason = f"the candidate is not worse by more than {margin:.3g} accuracy on any comparison"
    return "promote", reason + (f", and better beyond the noise on {' and '.join(better)}" if better else "")


# ---------------------------------------------------------------- the report

def promotion_report(candidate: str, baseline: str, comparisons: dict[str, dict], alpha: float = ALPHA) -> dict:
    decision, reason = decide(comparisons)
    return {"decision": decision, "reason": reason, "candidate": candidate, "baseline": baseline, "alpha": alpha,
            "margin": next(iter(comparisons.values()))["margin"], "comparisons": comparisons,
            "time": datetime.now(UTC).isoformat(timespec="seconds")}


def format_report(report: dict) -> str:
    """The report as Markdown: the decision, then one table row per comparison."""
    lines = [f"# Promotion: {report['decision']}", "",
             f"Candidate `{report['candidate']}` against baseline `{report['baseline']}`: **{report['decision']}** "
             f"({report['reason']}).", "",
             "| compared on | photos | seeds | candidate | baseline | difference (95% CI) | only candidate right | "
             "only baseline right | McNemar p (worse / better) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in report["comparisons"].items():
        low, high = c["interval_95"]
        lines.append(f"| {name} | {c['photos']} | {c.get('seeds', '—')} | {c['candidate_accuracy']:.3f} | "
                     f"{c['baseline_accuracy']:.3f} | {c['difference']:+.3f} ({low:+.3f} to {high:+.3f}) | "
                     f"{c['candidate_only_right']} | {c['baseline_only_right']} | {c['p_worse']:.3g} / "
                     f"{c['p_better']:.3g} | {c['verdict']} |")
    lines += ["", f"Decision rule (non-inferiority): promote only when, on every comparison, the lower end of the "
                  f"paired 95 % bootstrap interval of the accuracy difference is at least −{report['margin']:.3g}; "
                  f"otherwise keep the baseline. Cross-validation outcomes are each photo's out-of-fold "
                  f"probabilities averaged over the runs' seeds."]
    return "\n".join(lines) + "\n"


def write_report(folder: str | os.PathLike, report: dict) -> None:
    folder = Path(folder)
    (folder / REPORT_JSON).write_text(json.dumps(report, indent=1) + "\n")
    (folder / REPORT_MD).write_text(format_report(report))
