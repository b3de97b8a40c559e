"""Model and dataset cards: Jinja templates of hub_cards/ (installed as package data) filled with huggingface_hub's
card machinery, YAML metadata included."""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path

from .config import ModelConfig
from .hub import CARD_NAME
from .labels import SCRATCH_LABELS, SIDE_LABELS
from .models.prior import describe_phone_classes


def render_card(template_name: str, card_data, **values) -> str:
    """Fill a Jinja template of hub_cards/ (installed as package data) with huggingface_hub's card machinery
    (YAML header included)."""
    from huggingface_hub import ModelCard

    template = (files("phonegrade.hub_cards") / template_name).read_text(encoding="utf-8")
    return str(ModelCard.from_template(card_data, template_str=template, **values))


LICENSE_NAME = "LICENSE"  # a model folder's terms of use, linked from its card's metadata
NO_DATA_TERMS = ("not recorded: whoever trained this model did not give the terms of its training photos "
                 "(`phonegrade train --data-terms`). Check them before you share or use the model")


def weights_terms(config: ModelConfig) -> str:
    """The terms of the weights a model started from, in words."""
    source = config.training.get("weights_source")
    if config.training.get("init_from"):
        return f"fine-tuned from the phonegrade model `{config.training['init_from']}`: its terms apply too"
    if not source:
        return "none: trained from randomly initialised weights"
    if "Apache-2.0" in source:
        return f"{source}; Apache License 2.0"
    return f"{source}; see its publisher's terms (ImageNet-trained weights may carry ImageNet's terms of use)"


def model_terms(config: ModelConfig) -> str:
    """The LICENSE file of a model folder: what the model is bound by, its starting weights' and its training
    data's terms."""
    return (f"Terms of use of this phonegrade {config.task} model\n\n"
            "A trained model is bound by the terms of what it was made from.\n\n"
            f"Starting weights: {weights_terms(config)}.\n\n"
            f"Training data: {config.data.get('terms') or NO_DATA_TERMS}.\n\n"
            "phonegrade, the software that trained it, is released under the Apache License 2.0; that licence "
            "covers the software, not this model.\n")


def write_model_card(folder: str | os.PathLike, config: ModelConfig, metrics: dict,
                     base_model: str | None = None, promotion: dict | None = None) -> Path:
    """README.md of a model folder: what it grades, what it was trained on and how, what it measured, and (given
    a `promotion` report) how it compared with the model it replaces."""
    from huggingface_hub import EvalResult, ModelCardData

    task_name = {"side": "phone side (front / back / none)", "scratch": "screen scratch grade"}[config.task]
    # Dataset fields name a Hub dataset only when the data was one (it then has a revision); local data is named
    # by its folder's name, never its path.
    dataset = config.data.get("name") or "custom"
    hub_dataset = dataset if config.data.get("revision") else None
    split_result = EvalResult(task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
                              dataset_split=config.data.get("split") or "validation",
                              dataset_revision=config.data.get("revision"), metric_type="accuracy",
                              metric_value=round(metrics["accuracy"], 4))
    eval_results = [split_result]
    if config.crossval:  # the recipe's cross-validated accuracy first: a final model's own split is a sanity check
        cv = config.crossval
        eval_results.insert(0, EvalResult(
            task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
            dataset_split=f"{cv['folds']}-fold cross-validation", dataset_revision=config.data.get("revision"),
            metric_type="accuracy", metric_name="accuracy (mean over folds)",
            metric_value=cv["accuracy"]["mean"]))
    if config.crossval_grouped:  # photos of sources the recipe never saw: what users meet first
        grouped = config.crossval_grouped
        eval_results.insert(0, EvalResult(
            task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
            dataset_split=f"leave-one-{grouped['group_by']}-out", dataset_revision=config.data.get("revision"),
            metric_type="accuracy", metric_name=f"accuracy (pooled, each photo's {grouped['group_by']} unseen)",
            metric_value=grouped["pooled"]["accuracy"]))
    card_data = ModelCardData(
        library_name="phonegrade",
        # Weights and training photos carry terms of their own (academic, attribution, development-only, ...):
        # spelled out in the folder's LICENSE file, not one SPDX id.
        license="other",
        license_name="phonegrade-model-terms",
        license_link=LICENSE_NAME,
        tags=["image-classification", "phonegrade", config.task, config.arch],
        pipeline_tag="image-classification",
        datasets=[hub_dataset] if hub_dataset else None,
        eval_results=eval_results,
        model_name=f"phonegrade-{config.task}-{config.arch}",
        base_model=base_model,
    )
    text = render_card("model_card.md", card_data, config=config.to_dict(), metrics=metrics, task_name=task_name,
                       promotion=promotion, weights_terms=weights_terms(config),
                       phone_classes=describe_phone_classes(config.phone_classes or ()),
                       data_terms=config.data.get("terms") or NO_DATA_TERMS)
    (Path(folder) / LICENSE_NAME).write_text(model_terms(config), encoding="utf-8")
    path = Path(folder) / CARD_NAME
    path.write_text(text, encoding="utf-8")
    return path


def add_promotion_to_card(folder: str | os.PathLike, promotion: dict) -> Path:
    """Write a model folder's card again, with a promotion report (`phonegrade.promotion`) in it."""
    from huggingface_hub import ModelCard

    folder = Path(folder)
    config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()), str(folder))
    metrics = json.loads((folder / "metrics.json").read_text())
    card = folder / CARD_NAME
    base_model = ModelCard.load(card).data.base_model if card.is_file() else None
    return write_model_card(folder, config, metrics, base_model=base_model, promotion=promotion)


def write_dataset_card(root: Path, fields: tuple[str, ...], licence: str, repo_id: str | None = None,
                       counts: dict | None = None, configs: list[dict] | None = None) -> Path:
    """README.md of a corrections folder or dataset repo: what a record holds (`fields`), the licence contributed
    photos come under, the counts per task and label (`corrections.summarize`) and the `datasets` configs."""
    from huggingface_hub import DatasetCardData

    card_data = DatasetCardData(license="cc-by-4.0", task_categories=["image-classification"],
                                tags=["phonegrade", "corrections", "human-feedback"],
                                pretty_name="phonegrade corrections", **({"configs": configs} if configs else {}))
    text = render_card("dataset_card.md", card_data, repo_id=repo_id, counts=counts or {},
                       side_labels=SIDE_LABELS, scratch_labels=SCRATCH_LABELS, fields=fields, licence=licence)
    path = root / "README.md"
    partial = path.with_name(".README.md.tmp")  # replaced in one step: a full disk never leaves a cut card
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path
