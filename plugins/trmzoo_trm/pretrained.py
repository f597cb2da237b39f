"""Published TRM weights, keyed by the registered model they load into.

None of these were released by the TRM authors (they released none). The facts come from the
repositories' cards and files as stored copies of them show (docs/pretrained.md lists each with
its source); nothing here was downloaded to check it, so an entry whose file is not where it says
fails with the repository's file list. Where a card leaves something open, the entry says so in
``notes`` instead of guessing: which of two files is which run, a file name the pages do not give
(then a ``step_*`` pattern picks the highest step), a license the pages do not show.
"""

from __future__ import annotations

from trmzoo.registry import LICENSE_NOT_CHECKED, PretrainedEntry

ARC_PRIZE = "arcprize/trm_arc_prize_verification"
ARC_PRIZE_REVISION = "55ced5dd59de74c52f53d47aa2898232b5a15b7a"  # the snapshot public setup scripts pin
SANJIN = "Sanjin2024, also published as gaoxin492"
BIGR = "andrw3000/bigr-checkpoints"
ARC_BUILD = (
    "ARC-AGI-{v} build of the official TRM recipe (official data/arc{v}concept-aug-1000): trmzoo data build arc "
    "--source DIR --subsets {subsets} --test-set-name {test} --num-aug 1000 --seed 42 --out DIR"
)
ARC1_BUILD = ARC_BUILD.format(v=1, subsets="training evaluation concept", test="evaluation")
ARC2_BUILD = ARC_BUILD.format(v=2, subsets="training2 evaluation2 concept", test="evaluation2")
SUDOKU_BUILD = ("Sudoku-Extreme from the Hub, its whole test split (422,786 puzzles): trmzoo data build sudoku "
                "--source hub --subsample-size 1000 --num-aug 1000 --out DIR")
MAZE_BUILD = "Maze-Hard from the Hub, its 1,000 test mazes: trmzoo data build maze --out DIR"
SUDOKU_PROTOCOL = "Sudoku-Extreme test split, exact puzzle accuracy"
OFFICIAL_EVAL = "the official evaluation (every supervision step, 16)"

ATTENTION = {"H_cycles": 3, "L_cycles": 4, "L_layers": 2, "pos_encodings": "rope"}
MLP_SUDOKU = {"H_cycles": 3, "L_cycles": 6, "L_layers": 2, "mlp_t": True}
ATT_SUDOKU = {"H_cycles": 3, "L_cycles": 6, "L_layers": 2, "pos_encodings": "rope"}
NANO_SUDOKU = {"H_cycles": 3, "L_cycles": 6, "num_layers": 2, "use_mlp_t": True}
NANO_MAZE = {"H_cycles": 3, "L_cycles": 4, "num_layers": 2, "use_mlp_t": False}


def official_recipe(*, H_cycles: int, L_cycles: int) -> dict:
    """The ``arch`` section of the official TRM attention recipe (ARC and Maze), for repositories that
    publish their settings on the card instead of an all_config.yaml."""
    return {"name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1",
            "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
            "halt_exploration_prob": 0.1, "halt_max_steps": 16, "H_cycles": H_cycles, "L_cycles": L_cycles,
            "H_layers": 0, "L_layers": 2, "hidden_size": 512, "num_heads": 8, "expansion": 4,
            "puzzle_emb_ndim": 512, "puzzle_emb_len": 16, "pos_encodings": "rope", "forward_dtype": "bfloat16",
            "mlp_t": False, "no_ACT_continue": True}


PRETRAINED: dict[str, tuple[PretrainedEntry, ...]] = {
    "trm_arc_att": (
        PretrainedEntry(
            name="arc1_step518071", hub_repo=ARC_PRIZE, revision=ARC_PRIZE_REVISION, file="arc_v1_public/step_518071",
            config_file="arc_v1_public/all_config.yaml", format="official", task="arc", expected=ATTENTION,
            license="mit", size="1,822,205,258 B", score="ARC-AGI-1 40%", score_source="ARC Prize verification model card",
            protocol="ARC-AGI-1 semi-private set, pass@2, $1.76/task (ARC Prize); on the public evaluation set "
                     "40.00% with 1000-augmentation voting, 29.25% with one augmentation (Roye-Azar et al., "
                     "arXiv 2512.11847)",
            data_build=ARC1_BUILD, aliases=("trm-arc-7m",),
            notes="EMA weights (the official ARC recipe, ema=True), keys prefixed _orig_mod.model.; almost all of "
                  "the file is the puzzle table (about 876k rows). File sha256 "
                  "53689643ad1606d7c22c758f8af0a71b3b66275dea074f214d2f1048d9a01fb0.",
        ),
        PretrainedEntry(
            name="arc2_step723914", hub_repo=ARC_PRIZE, revision=ARC_PRIZE_REVISION, file="arc_v2_public/step_723914",
            config_file="arc_v2_public/all_config.yaml", format="official", task="arc", expected=ATTENTION,
            license="mit", size="2,467,988,810 B", score="ARC-AGI-2 6.2%", score_source="ARC Prize verification model card",
            protocol="ARC-AGI-2 semi-private set, pass@2, $2.10/task (ARC Prize); third parties report about 2% "
                     "public (official repository issue 26) and 4.6% pass@2 (InfiLoop README, its own protocol)",
            data_build=ARC2_BUILD, aliases=("trm-arc2-7m",),
            notes="The official repository's issue 26 reports that an earlier step (651522) scores better than "
                  "this final one. File sha256 8d7036b97e7ea38c7dd29d01216bfcfc4e212af3024d5233fe40dd3059e8f4a9.",
        ),
        PretrainedEntry(
            name="arc1_alphaxiv_step259320", hub_repo="alphaXiv/trm-model-arc-agi-1",
            file="step_259320_arc_ag1_attn_type_h3l4", settings=official_recipe(H_cycles=3, L_cycles=4),
            format="official", task="arc", expected=ATTENTION, license="mit", size="1,822,205,258 B",
            score="ARC-AGI-1 43.00% ± 0.16", score_source="alphaXiv REPORT.md, github.com/alphaXiv/TinyRecursiveModels",
            protocol="ARC-AGI-1 public evaluation set, pass@2, mean ± std over runs",
            data_build=ARC1_BUILD,
            notes="Unclear from the card: the repository holds two files of this size, and REPORT.md reports an "
                  "H3/L4 run (43.00%) and an H3/L6 run (52.75% ± 3.09) without saying which file is which. This "
                  "file's name says attention, H3/L4, so the entry takes H3/L4 and that row's score; the other "
                  "file (name not in trmzoo's sources) is not registered. The repository holds no all_config.yaml "
                  "in trmzoo's sources: the settings are the official ARC recipe with H3/L4. Same table size as "
                  "ARC Prize's, so most likely the same data build (not checked).",
        ),
        PretrainedEntry(
            name="arc2_trelis", hub_repo="Trelis/TRM-ARC-AGI-II", file="step_*",
            settings=official_recipe(H_cycles=3, L_cycles=4), format="official", task="arc", expected=ATTENTION,
            license="apache-2.0", size="2,467,988,810 B per step file", score="ARC-AGI-2 about 10.5%",
            score_source="Trelis model card ('Final score ~10.5%')",
            protocol="ARC-AGI-2 public evaluation set, pass@2 (the card's final score); the paper reports 6.67% "
                     "semi-private after in-competition fine-tuning",
            data_build=ARC2_BUILD,
            notes="Ten step_N checkpoints, each with a submission.json; their step numbers are not in trmzoo's "
                  "sources, so the entry loads the highest step_N of the repository's file list. The card gives "
                  "the config (arc2concept-aug-1000, H3/L4, EMA; 4xH200, about 48 h); the settings are the official "
                  "ARC recipe with those values.",
        ),
    ),
    "trm_sudoku_mlp": (
        PretrainedEntry(
            name="sudoku_extreme_sanjin2024", hub_repo="Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-mlp",
            revision="256f32fcbe7123e8bf8c449410773a5ad311dbc5", file="step_16275", config_file="all_config.yaml",
            format="official", task="sudoku", expected=MLP_SUDOKU, license="apache-2.0",
            score="Sudoku-Extreme 84.80%", score_source=f"uploader's model card ({SANJIN})",
            protocol=f"{SUDOKU_PROTOCOL}, {OFFICIAL_EVAL} (the card says 'Test Accuracy'); 8xH200, global batch "
                     "4608, 40 min",
            data_build=SUDOKU_BUILD, aliases=("trm-sudoku-mlp-5m",),
            notes="EMA weights, keys prefixed _orig_mod.model.; the revision is the one a downstream project pins "
                  "(file sha256 20e9dc7ebf83b9b41a8b3f58f5fd94ee3a7eb0b0d245bdeeb14e2f1488d1daaf). Size not read "
                  "(an alphaXiv TRM-MLP state dict of the same shape is 20.1 MB).",
        ),
        PretrainedEntry(
            name="sudoku_extreme_gar", hub_repo="MaximeILL/GAR_ckpts", file="TRM-MLP-Sudoku-Extreme.pt",
            config_file="TRM-MLP-Sudoku-Extreme.yaml", format="official", task="sudoku", expected=MLP_SUDOKU,
            license=LICENSE_NOT_CHECKED, score="Sudoku-Extreme 86.50%", score_source="MaximeILL/GAR_ckpts model card",
            protocol=f"{SUDOKU_PROTOCOL} on the full split (85.90% on the paper's 1,000-puzzle subset)",
            data_build=SUDOKU_BUILD,
            notes="TRM-MLP 5.03M, step 65,100 (the last of ten, 50,000 epochs), EMA weights, keys prefixed "
                  "_orig_mod.; trained with AdamW instead of AdamATan2. The .yaml beside it is the run's "
                  "all_config.yaml. The repository also holds TRM-Att-PPBench.pt (PPBench, not a trmzoo task). "
                  "Its license is not in trmzoo's sources.",
        ),
        PretrainedEntry(
            name="sudoku_extreme_cgar", hub_repo="Kaleemullah/trm-cgar-sudoku", file="pytorch_model.bin",
            config_file="config.yaml", format="cgar", task="sudoku", expected={"H_cycles": 3, "L_cycles": 6},
            license=LICENSE_NOT_CHECKED, size="20.1 MB", score="Sudoku-Extreme 86.02%",
            score_source="model card; CGAR, arXiv 2511.08653",
            protocol=f"{SUDOKU_PROTOCOL} (the card's figure); measured by a third party: 86.1% at 16 supervision "
                     "steps, 91.7% at 64",
            data_build=SUDOKU_BUILD,
            notes="TRM-MLP trained with CGAR's depth curriculum ((2,1) to (6,3)) and decaying supervision weights; "
                  "inference uses the full H3/L6. The CGAR code is MIT; the Hub repository's license is not in "
                  "trmzoo's sources. The pytorch_model.bin layout (an official state dict) is assumed from the "
                  "code it forks: not read offline.",
        ),
        PretrainedEntry(
            name="sudoku_extreme_bigr", hub_repo=BIGR, file="sudoku_extreme/checkpoints/last.ckpt",
            format="nano-trm-sudoku", task="sudoku", expected=NANO_SUDOKU, license="cc-by-4.0", size="74 MB",
            score="Sudoku-Extreme 85.9%", score_source="BIGR paper, arXiv 2605.25230",
            protocol=f"{SUDOKU_PROTOCOL} of the plain model (the paper's backbone row); BIGR's sequential Monte "
                     "Carlo inference, which trmzoo does not implement, reaches 98.0% with the same weights",
            data_build=SUDOKU_BUILD,
            notes="A PyTorch Lightning checkpoint of nano-trm's TRMModule, converted with its EMA weights. "
                  "nano-trm's Sudoku model has no puzzle table (no prefix) and a 12-token vocabulary, mapped to "
                  "the official 11 (the layout is read from nano-trm's source, not from the file). The folder also "
                  "holds 20 epoch_*.ckpt.",
        ),
    ),
    "trm_sudoku_att": (
        PretrainedEntry(
            name="sudoku_extreme_sanjin2024", hub_repo="Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-att",
            file="step_21700", config_file="all_config.yaml", format="official", task="sudoku", expected=ATT_SUDOKU,
            license="apache-2.0", score="Sudoku-Extreme 77.70%", score_source=f"uploader's model card ({SANJIN})",
            protocol=f"{SUDOKU_PROTOCOL}, {OFFICIAL_EVAL}; the uploader's GitHub README says 77.71 (77.73 in one "
                     "revision)",
            data_build=SUDOKU_BUILD, aliases=("trm-sudoku-att-7m",),
            notes="EMA weights, keys prefixed _orig_mod.model.; size not read.",
        ),
    ),
    "trm_maze_att": (
        PretrainedEntry(
            name="maze_hard_sanjin2024", hub_repo="Sanjin2024/TinyRecursiveModel-Maze-Hard", file="step_9765",
            config_file="all_config.yaml", format="official", task="maze", expected=ATTENTION, license="apache-2.0",
            score="Maze-Hard 78.70%", score_source=f"uploader's model card ({SANJIN})",
            protocol="Maze-Hard test set (1,000 mazes), exact path accuracy, "
                     f"{OFFICIAL_EVAL}; 8xH200, global batch 4608, 2 h",
            data_build=MAZE_BUILD, aliases=("trm-maze-7m",),
            notes="EMA weights, keys prefixed _orig_mod.model.; size not read.",
        ),
        PretrainedEntry(
            name="maze_hard_alphaxiv", hub_repo="alphaXiv/trm-model-maze", file="maze_hard_step_32550",
            settings=official_recipe(H_cycles=3, L_cycles=4), format="official", task="maze", expected=ATTENTION,
            license=LICENSE_NOT_CHECKED, score="Maze-Hard 83.67% ± 2.28",
            score_source="alphaXiv REPORT.md, github.com/alphaXiv/TinyRecursiveModels",
            protocol="Maze-Hard test set (1,000 mazes), exact path accuracy, mean ± std over runs",
            data_build=MAZE_BUILD,
            notes="The best official-format Maze checkpoint in trmzoo's sources. The repository holds no "
                  "all_config.yaml there: the settings are the official Maze recipe (H3/L4, attention). License "
                  "and size not in trmzoo's sources (the ARC sibling is MIT).",
        ),
        PretrainedEntry(
            name="maze_hard_bigr", hub_repo=BIGR, file="maze_hard/checkpoints/last.ckpt", format="nano-trm",
            task="maze", expected=NANO_MAZE, license="cc-by-4.0", size="104 MB", score_source="BIGR paper, arXiv 2605.25230",
            data_build=MAZE_BUILD,
            notes="A PyTorch Lightning checkpoint of nano-trm's TRMModule (attention, 1-D RoPE), converted with its "
                  "EMA weights. No plain-model score for it in trmzoo's sources; BIGR's diagnostics flag its Q-head "
                  "guide as misaligned on Maze-Hard.",
        ),
    ),
}
