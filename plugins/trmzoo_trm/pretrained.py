"""Published TRM weights, keyed by the registered model they load into.

None of these were released by the TRM authors: the ARC entries are ARC Prize's
verification re-trainings with the official code; the Sudoku and Maze entries are
community uploads in the official checkpoint format. Community file names and
licenses could not be checked offline, so their files are glob patterns resolved
against the repository's file list at load time.
"""

from __future__ import annotations

from trmzoo.registry import PretrainedEntry

ARC_PRIZE = "arcprize/trm_arc_prize_verification"
UNVERIFIED = "see model card (unverified offline)"
ARC_BUILD = (
    "ARC-AGI-{v} build of the official TRM recipe: subsets {subsets}, test set {test}, "
    "1000 augmentations per puzzle, seed 42 (official data/arc{short}concept-aug-1000)"
)

PRETRAINED: dict[str, tuple[PretrainedEntry, ...]] = {
    "trm_arc_att": (
        PretrainedEntry(
            name="arc1_step518071", hub_repo=ARC_PRIZE, file="arc_v1_public/step_518071",
            config_file="arc_v1_public/all_config.yaml", format="official", task="arc",
            expected={"H_cycles": 3, "L_cycles": 4}, license="MIT",
            score="ARC-AGI-1 40% (semi-private, pass@2)", score_source="ARC Prize verification model card",
            data_build=ARC_BUILD.format(v=1, subsets="training evaluation concept", test="evaluation", short="1"),
            notes="1.8 GB, almost all of it the per-puzzle embedding table (about 876k puzzle ids).",
            aliases=("trm-arc-7m",),
        ),
        PretrainedEntry(
            name="arc2_step723914", hub_repo=ARC_PRIZE, file="arc_v2_public/step_723914",
            config_file="arc_v2_public/all_config.yaml", format="official", task="arc",
            expected={"H_cycles": 3, "L_cycles": 4}, license="MIT",
            score="ARC-AGI-2 6.2% (semi-private, pass@2)", score_source="ARC Prize verification model card",
            data_build=ARC_BUILD.format(v=2, subsets="training2 evaluation2 concept", test="evaluation2", short="2"),
            notes="2.5 GB. The official repository's issue 26 reports that an earlier step (651522) "
                  "scores better than this final one.",
            aliases=("trm-arc2-7m",),
        ),
    ),
    "trm_sudoku_mlp": (
        PretrainedEntry(
            name="sudoku_extreme_sanjin2024", hub_repo="Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-mlp",
            file="*step_*", config_file="*all_config.yaml", format="official", task="sudoku",
            expected={"H_cycles": 3, "L_cycles": 6}, license=UNVERIFIED, score_source="community upload",
            notes="Community checkpoint (step_16275 per its listing); no score checked.",
            aliases=("trm-sudoku-mlp-5m",),
        ),
    ),
    "trm_sudoku_att": (
        PretrainedEntry(
            name="sudoku_extreme_sanjin2024", hub_repo="Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-att",
            file="*step_*", config_file="*all_config.yaml", format="official", task="sudoku",
            expected={"H_cycles": 3, "L_cycles": 6}, license=UNVERIFIED, score_source="community upload",
            notes="Community checkpoint; no score checked.",
            aliases=("trm-sudoku-att-7m",),
        ),
    ),
    "trm_maze_att": (
        PretrainedEntry(
            name="maze_hard_sanjin2024", hub_repo="Sanjin2024/TinyRecursiveModel-Maze-Hard",
            file="*step_*", config_file="*all_config.yaml", format="official", task="maze",
            expected={"H_cycles": 3, "L_cycles": 4}, license=UNVERIFIED,
            score="Maze-Hard 78.7% (reported by the uploader)", score_source="community upload",
            notes="Community checkpoint (step_9765 per its listing), trained on 8xH200 in 2 h.",
            aliases=("trm-maze-7m",),
        ),
    ),
}
