"""Model cards: a pure renderer from what the caller already holds to the README.md the Hub shows.

It reads nothing from disk and builds no model: the caller passes the weight folder's
config (as written to config.json) and the parameter counts of the model it holds.
The front matter is huggingface_hub's ``ModelCardData``, so the Hub indexes the
library, license, tags, datasets, base model and, from the last evaluation, the
model-index that shows the score on the model's page.
"""

from __future__ import annotations

from typing import Any, Mapping

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CARD_FILE = "README.md"
HUB_PREFIX = "hf-hub:"

TRM_CITATION = """@article{jolicoeur2025trm,
  title   = {Less is More: Recursive Reasoning with Tiny Networks},
  author  = {Jolicoeur-Martineau, Alexia},
  journal = {arXiv preprint arXiv:2510.04871},
  year    = {2025}
}"""

TASK_DATASETS = {"sudoku": ["sapientinc/sudoku-extreme"], "maze": ["sapientinc/maze-30x30-hard-1k"]}
"""Hub datasets of the tasks' published benchmarks, for the card's ``datasets`` field."""
PIPELINE_TAG = "other"  # the Hub has no pipeline for puzzle solving
SCORES = ("accuracy", "pass@")
"""Metrics the model-index reports: the scores (not counts or step means)."""


def eval_results(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[EvalResult]:
    """The Hub's model-index entries for a run's last evaluation (``eval/`` keys): each score on the test
    split of the task's dataset, with the data build's fingerprint as its revision."""
    task_name = _task_name(config) or "unknown"
    dataset = _benchmark(config) or task_name
    build = (config.get("data") or {}).get("build_fingerprint")
    results = []
    for key, value in metrics.items():
        name = key.removeprefix("eval/")
        if key.startswith("eval/") and isinstance(value, (int, float)) and any(s in name for s in SCORES):
            results.append(EvalResult(
                task_type="other", task_name=f"{task_name} solving", dataset_type=dataset,
                dataset_name=f"{dataset} test split", dataset_split="test", dataset_revision=build,
                metric_type=name, metric_name=name, metric_value=float(value)))
    return results


def card_data(config: Mapping[str, Any], *, license: str | None = None, repo_id: str | None = None,
              metrics: Mapping[str, Any] | None = None, fields: Mapping[str, Any] | None = None) -> ModelCardData:
    """The YAML front matter: library, ``pipeline_tag``, license (an SPDX id, or ``other`` for free text),
    tags (tiny-recursive-model, the task), datasets, ``base_model`` (the repository converted or fine-tuned
    weights come from), and a model-index of the run's last evaluation (``metrics``), plus any other
    ``ModelCardData`` ``fields``, which win."""
    license = license or config.get("license") or "mit"
    task_name = _task_name(config)
    architecture = config.get("architecture") or "custom"
    tags = ["trmzoo", "tiny-recursive-model", "recursive-reasoning"] + [t for t in (task_name, architecture) if t]
    spdx = "other" if " " in license else license.lower()  # free text ("not stated") is not an identifier
    source = (config.get("source") or {}).get("repo")
    results = eval_results(config, metrics or {})
    extra: dict[str, Any] = {"pipeline_tag": PIPELINE_TAG, "base_model": source if source != repo_id else None}
    if results:
        extra.update(eval_results=results, model_name=(repo_id or architecture).split("/")[-1])
    benchmark = _benchmark(config)
    return ModelCardData(library_name="trmzoo", license=spdx, tags=tags, datasets=[benchmark] if benchmark else None,
                         **{**extra, **dict(fields or {})})


def render_card(config: Mapping[str, Any], *, network_params: int, table_params: int, repo_id: str | None = None,
                location: str | None = None, recipe: str | None = None, metrics: Mapping[str, Any] | None = None,
                license: str | None = None, card_fields: Mapping[str, Any] | None = None) -> str:
    """A README model card: YAML front matter the Hub indexes, then the facts.

    ``config`` is the weight folder's config.json as a dict; ``network_params`` and
    ``table_params`` count the learned network and the puzzle table. ``repo_id`` (or, for
    a local folder, ``location``) goes into the usage example; ``recipe`` (YAML text) and
    ``metrics`` (a run's last ``eval/`` record) are shown when given. ``license`` defaults
    to the one recorded in ``config``, else MIT (trmzoo's own). ``card_fields`` go to the front
    matter (see :func:`card_data`).
    """
    license = license or config.get("license") or "mit"
    task_name = _task_name(config)
    architecture = config.get("architecture") or "custom"
    data = config.get("data") or {}
    target = f"{HUB_PREFIX}{repo_id}" if repo_id else (location or "path/to/folder")
    body = [
        f"# {repo_id or architecture}", "",
        f"A tiny recursive reasoning model (`{architecture}`{f', task `{task_name}`' if task_name else ''}) "
        "in the trmzoo weight format (config.json, model.safetensors, puzzle_emb.safetensors).", "",
        "## Usage", "", "```python", "import trmzoo", "", f'model = trmzoo.load("{target}")', "```", "",
    ]
    if metrics:
        step = f" (step {metrics['step']})" if "step" in metrics else ""
        body += ["## Metrics", "", f"Last evaluation{step}:", "", "| metric | value |", "|---|---|"]
        body += [f"| {k.removeprefix('eval/')} | {v} |" for k, v in metrics.items() if k.startswith("eval/")]
        body.append("")
    if recipe:
        body += ["## Training recipe", "", "```yaml", recipe.rstrip(), "```", ""]
    body += ["## Data", "", f"- task: `{task_name or 'unknown'}`"]
    for key in ("build_fingerprint", "embedding_fingerprint"):
        if data.get(key):
            body.append(f"- {key.replace('_', ' ')}: `{data[key]}`")
    if table_params:
        body.append("- the puzzle embedding table only fits the data build with this embedding fingerprint")
    body += ["", "## Parameters", "",
             f"- network (learned parameters): {network_params:,}", f"- puzzle embedding table: {table_params:,}",
             f"- total: {network_params + table_params:,}", "",
             "## License", "", f"{license}", "",
             "## Citation", "", "```bibtex", TRM_CITATION, "```", ""]
    front = card_data(config, license=license, repo_id=repo_id, metrics=metrics, fields=card_fields).to_yaml()
    card = ModelCard(f"---\n{front}\n---\n\n" + "\n".join(body))
    return str(card)


def _benchmark(config: Mapping[str, Any]) -> str | None:
    """The Hub dataset the model was trained and scored on: its task's published benchmark (or the
    ``hub_repo`` its task names), never for data the task generated."""
    task = config.get("task") or {}
    if not isinstance(task, Mapping) or task.get("source") == "generate":
        return None
    return task.get("hub_repo") or (TASK_DATASETS.get(task.get("name", "")) or [None])[0]


def _task_name(config: Mapping[str, Any]) -> str:
    task = config.get("task") or {}
    return task.get("name", "") if isinstance(task, Mapping) else str(task)
