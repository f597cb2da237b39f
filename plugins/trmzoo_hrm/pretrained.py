"""Published HRM checkpoints, keyed by the registered HRM model they load into.

Sapient's repositories hold one raw ``torch.save`` state dict named ``checkpoint`` in the official
format and its ``all_config.yaml``; they set no license on the Hub (the HRM code is Apache-2.0), so
loading them warns. ThomasHeim's reproductions hold run folders of ``step_N`` files.
The HRM plugin passes these to ``register(name, config, pretrained=PRETRAINED.get(name, ()))``.
"""

from __future__ import annotations

from trmzoo.registry import LICENSE_NOT_STATED, PretrainedEntry
from trmzoo_trm.pretrained import MAZE_BUILD, SUDOKU_BUILD, SUDOKU_PROTOCOL

HRM = {"H_cycles": 2, "L_cycles": 2, "H_layers": 4, "L_layers": 4}
SAPIENT_NOTES = "The Hub repository sets no license (the HRM code is Apache-2.0); no EMA (HRM has none)."
HRM_PAPER = "HRM paper, arXiv 2506.21734"
HEIM = "ThomasHeim/HRM-Reproduction-Checkpoints"
HEIM_NOTES = ("The readme gives folders and step ranges, not file names: the entry loads the highest step_N of "
              "the folder and the all_config.yaml beside it (HRM's own naming). 1x GH200.")
ARC_REFUSAL = (
    "this HRM ARC-2 checkpoint's puzzle table has 1,045,829 rows, but the HRM repository's current ARC builder "
    "makes 1,921,253 (HRM issues 2 and 90), so its table cannot be rebuilt, by trmzoo or by HRM's own code"
)

PRETRAINED: dict[str, tuple[PretrainedEntry, ...]] = {
    "hrm_sudoku": (
        PretrainedEntry(
            name="sudoku_extreme", hub_repo="sapientinc/HRM-checkpoint-sudoku-extreme", file="checkpoint",
            config_file="all_config.yaml", format="official", task="sudoku", expected=HRM, license=LICENSE_NOT_STATED,
            size="109.1 MB", score="Sudoku-Extreme 55.0%", score_source=HRM_PAPER,
            protocol=f"{SUDOKU_PROTOCOL}, 16 supervision steps; measured by a third party: 54.9% at 16 steps on a "
                     "20k-puzzle subsample, 59.9% at 64",
            data_build=SUDOKU_BUILD, aliases=("hrm-sudoku-27m",),
            notes=f"{SAPIENT_NOTES} 27,276,802 values in the state dict; trained 40,000 epochs, batch 768.",
        ),
        PretrainedEntry(
            name="sudoku_extreme_heim_original", hub_repo=HEIM, file="sudoku-extreme/original-hrm/step_*",
            config_file="sudoku-extreme/original-hrm/*all_config.yaml", format="official", task="sudoku",
            expected=HRM, license="apache-2.0", score="Sudoku-Extreme 53%", score_source=f"{HEIM} readme",
            protocol=f"{SUDOKU_PROTOCOL}, one checkpoint",
            data_build=SUDOKU_BUILD,
            notes=f"Run 'liberal-bee', 20 checkpoints, steps 2604 to 52080. {HEIM_NOTES}",
        ),
        PretrainedEntry(
            name="sudoku_extreme_heim_augmented", hub_repo=HEIM, file="sudoku-extreme/augmented-hrm/step_*",
            config_file="sudoku-extreme/augmented-hrm/*all_config.yaml", format="official", task="sudoku",
            expected=HRM, license="apache-2.0", score="Sudoku-Extreme 54.2%", score_source=f"{HEIM} readme",
            protocol=f"{SUDOKU_PROTOCOL}, one checkpoint; 90.5% with 10 checkpoints x 9 permutations (the ensemble "
                     "recipe of arXiv 2601.10679, not in trmzoo; the HRM paper's figure is 96.9%)",
            data_build=SUDOKU_BUILD,
            notes=f"Run 'hopeful-quetzal', 40 checkpoints, steps 1302 to 52080, trained on "
                  f"sudoku-extreme-1k-aug-1000-hint (a variant with hints; not a trmzoo build). {HEIM_NOTES}",
        ),
    ),
    "hrm_maze": (
        PretrainedEntry(
            name="maze_30x30_hard", hub_repo="sapientinc/HRM-checkpoint-maze-30x30-hard", file="checkpoint",
            config_file="all_config.yaml", format="official", task="maze", expected=HRM, license=LICENSE_NOT_STATED,
            score="Maze-Hard 74.5%", score_source=HRM_PAPER,
            protocol="Maze-Hard test set (1,000 mazes), exact path accuracy, 16 supervision steps",
            data_build=MAZE_BUILD, aliases=("hrm-maze-27m",),
            notes=f"{SAPIENT_NOTES} all_config.yaml is expected beside the checkpoint, as HRM's evaluate.py needs "
                  "it; size not read.",
        ),
    ),
    "hrm_arc": (
        PretrainedEntry(
            name="arc2", hub_repo="sapientinc/HRM-checkpoint-ARC-2", file="checkpoint", config_file="all_config.yaml",
            format="official", task="arc", expected=HRM, license=LICENSE_NOT_STATED, size="about 2.2 GB",
            score="ARC-AGI-2 5.0%", score_source=HRM_PAPER,
            protocol="ARC-AGI-2 public evaluation set, pass@2; ARC Prize verified HRM at 2% ARC-AGI-2 (32% "
                     "ARC-AGI-1) on the semi-private sets",
            eval_refusal=ARC_REFUSAL, aliases=("hrm-arc2-27m",),
            notes=f"{SAPIENT_NOTES} puzzle_emb.weights is [1,045,829, 512] fp32.",
        ),
    ),
}
