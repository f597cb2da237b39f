"""Sapient's published HRM checkpoints, keyed by the registered HRM model they load into.

Each repository holds one raw ``torch.save`` state dict named ``checkpoint`` in the
official format (and, as HRM's evaluate.py needs, its ``all_config.yaml``).
The HRM plugin passes these to ``register(name, config, pretrained=PRETRAINED.get(name, ()))``.
"""

from __future__ import annotations

from trmzoo.registry import PretrainedEntry

ARC_REFUSAL = (
    "this HRM ARC-2 checkpoint's puzzle table follows the HRM repository's own ARC builder, "
    "which trmzoo does not reproduce, so its ARC scores cannot be checked here"
)

PRETRAINED: dict[str, tuple[PretrainedEntry, ...]] = {
    "hrm_sudoku": (
        PretrainedEntry(
            name="sudoku_extreme", hub_repo="sapientinc/HRM-checkpoint-sudoku-extreme", file="checkpoint",
            config_file="all_config.yaml", format="official", task="sudoku", license="Apache-2.0",
            score="Sudoku-Extreme 55.0% (HRM paper)", score_source="HRM paper (arXiv 2506.21734)",
            aliases=("hrm-sudoku-27m",),
        ),
    ),
    "hrm_maze": (
        PretrainedEntry(
            name="maze_30x30_hard", hub_repo="sapientinc/HRM-checkpoint-maze-30x30-hard", file="checkpoint",
            config_file="all_config.yaml", format="official", task="maze", license="Apache-2.0",
            score="Maze-Hard 74.5% (HRM paper)", score_source="HRM paper (arXiv 2506.21734)",
            aliases=("hrm-maze-27m",),
        ),
    ),
    "hrm_arc": (
        PretrainedEntry(
            name="arc2", hub_repo="sapientinc/HRM-checkpoint-ARC-2", file="checkpoint",
            config_file="all_config.yaml", format="official", task="arc", license="Apache-2.0",
            score="ARC-AGI-2 5.0% (HRM paper)", score_source="HRM paper (arXiv 2506.21734)",
            eval_refusal=ARC_REFUSAL, aliases=("hrm-arc2-27m",),
        ),
    ),
}
