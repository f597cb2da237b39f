"""trmzoo against the official TRM code: the same weights, the same batch, one process, interleaved rounds.

For each paper configuration (Sudoku MLP, Sudoku attention, Maze attention, ARC attention;
widths, depths and recursions of the paper) it builds trmzoo's model, exports its weights
in the official layout (``trmzoo.convert.to_official``) and loads them into the official
model classes of a checkout of SamsungSAILMontreal/TinyRecursiveModels. Then, per dtype
(fp32, bf16) and mode (eager, ``torch.compile``):

1. checks, eager and before anything is compiled, that one evaluation step agrees (logits,
   q_halt and both states after the first step: fp32 within atol = rtol = 1e-4, bf16 within
   2e-2 of the logits' scale or within the official bf16 step's own distance from the official
   fp32 step, whichever is larger, or else trmzoo's bf16 step no farther from the fp32 step than the
   official bf16 step, within 25%, as a root mean square over all elements: the fp32 check says they
   compute the same function, this one that trmzoo's bf16 computes it as accurately; on a CPU it also
   reports the largest difference of trmzoo's bf16 step under ``trmzoo.use_fused_ops(False)``, which
   is 0 when the two run the same ops); in compiled cases it also records how far the states after
   one compiled step of each side lie from the other's and from its own eager step's
   (Inductor keeps fused element-wise intermediates in fp32, so compiled bf16 rounds
   differently on both sides);
2. times, in interleaved rounds after a warm-up (the order of the two sides alternates):
   * ``train``: one training step as each code base runs it: one supervision step forward,
     stablemax loss, backward, optimizer step and the sparse puzzle-embedding step;
   * ``eval``: the 16-step evaluation rollout on one batch (official: ``ACTLossHead``
     under ``torch.inference_mode`` until every sample halted, as ``pretrain.evaluate``;
     trmzoo: ``model.rollout``, as ``trmzoo.evaluate``); ``--eval-steps N`` times only its
     first N supervision steps on both sides (every step costs the same), so that the whole
     table fits the time a CPU has.

The official trainer's AdamATan2 comes from the ``adam_atan2`` package, which needs CUDA.
This script never imports ``pretrain.py``: where that package imports and the device is a
GPU it is used on both sides, otherwise ``torch.optim.AdamW`` (same lr, betas and weight
decay) replaces it on both sides; the output names the optimizer. Nothing is changed in
trmzoo or the official code. ``torch.compile`` is applied as each code base does it: the
official ``pretrain.py`` compiles the whole ``ACTLossHead`` and evaluates with it; trmzoo's
``train.compile`` compiles the whole supervision step (``model.compile()``; the loss stays eager)
and ``trmzoo eval --compile`` compiles it for fixed weights
(``model.compile_for_inference()``), which the compiled evaluation here uses.

The ratio is official seconds / trmzoo seconds (above 1: trmzoo is faster), for the best
and the median round. The load average (/proc/loadavg) is recorded before and after each
case. Each side's rate in every case is also given as a fraction of the peak matrix-multiply
rate of its dtype, measured in the same process before and after the cases (FLOPs of the model's
matrix products and attention counted as in ``benchmarks/throughput.py``, the same for both sides):
a side at 70% of the peak can be at most 1/0.7 = 1.43x faster, whatever is changed.

    git clone https://github.com/SamsungSAILMontreal/TinyRecursiveModels official
    pip install einops                     # the official model files import it
    python benchmarks/vs_official.py --official official --batch-scale 0.0104 --threads 1

``--batch-scale`` multiplies the paper's per-GPU batch (Sudoku 768, Maze and ARC 192 =
768 over 4 GPUs); 0.0104 gives 8 and 2 on a CPU. Writes everything to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import trmzoo
import trmzoo.core.layers as layers
from trmzoo.convert import to_official
from trmzoo.core.supervision import supervision_loss
from trmzoo.train.optim import SparseSignSGD

sys.path.insert(0, str(Path(__file__).parent))
from throughput import peak_matmul, random_batch, step_flops, synchronize  # noqa: E402

CONFIGS = {  # name -> (trmzoo model, paper per-GPU batch)
    "sudoku_mlp": ("trm_sudoku_mlp", 768),
    "sudoku_att": ("trm_sudoku_att", 768),
    "maze_att": ("trm_maze_att", 192),
    "arc_att": ("trm_arc_att", 192),
}
PUZZLE_IDS = {"arc_att": 1000}  # ARC has one id per augmented puzzle; a small table of them is enough here
LR, BETAS, WEIGHT_DECAY = 1e-4, (0.9, 0.95), 0.1
FP32_TOL = 1e-4
BF16_SCALE_TOL = 2e-2
BF16_ACCURACY_FACTOR = 1.25


def load_official(path: Path):
    """The official model-class loader and losses module of the checkout at ``path``."""
    if not (path / "models" / "recursive_reasoning" / "trm.py").is_file():
        raise SystemExit(f"--official {path}: not a checkout of TinyRecursiveModels (no models/recursive_reasoning/trm.py)")
    sys.path.insert(0, str(path.resolve()))
    try:
        functions = importlib.import_module("utils.functions")
        losses = importlib.import_module("models.losses")
        sparse = importlib.import_module("models.sparse_embedding")
    except ModuleNotFoundError as exc:
        raise SystemExit(f"the official model files need {exc.name!r}: pip install {exc.name}") from None
    return functions.load_model_class, losses, sparse


def make_optimizer(params, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    if device.type == "cuda":
        try:
            from adam_atan2 import AdamATan2

            return AdamATan2(params, lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY), "adam_atan2.AdamATan2 (both sides)"
        except ImportError:
            pass
    return (torch.optim.AdamW(params, lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY),
            "torch.optim.AdamW on both sides (replaces the official adam_atan2.AdamATan2, a CUDA-only package)")


class Sides:
    """One configuration in one dtype and mode: both models, their optimizers, carries and step functions."""

    def __init__(self, name: str, dtype: str, batch_size: int, device: torch.device, official, *,
                 eval_steps: int | None = None) -> None:
        load_model_class, losses, sparse = official
        model_name, _ = CONFIGS[name]
        torch.manual_seed(0)
        self.ours = trmzoo.create_model(model_name, forward_dtype=dtype, num_puzzle_identifiers=PUZZLE_IDS.get(name))
        self.ours.to(device)
        with torch.no_grad():  # the official code starts the table at zero; random rows exercise it
            self.ours.puzzle_emb.weight.normal_()
        state, arch = to_official(self.ours, prefix="")
        cfg = self.ours.config
        settings = {k: v for k, v in arch.items() if k not in ("name", "loss")}
        self.theirs = load_model_class(arch["name"])({
            **settings, "vocab_size": cfg.vocab_size, "seq_len": cfg.seq_len,
            "num_puzzle_identifiers": cfg.num_puzzle_identifiers, "batch_size": batch_size,
        }).to(device)
        self.theirs.load_state_dict({k: v.to(device) for k, v in state.items()})
        self.head = losses.ACTLossHead(self.theirs, loss_type="stablemax_cross_entropy")
        self.batch = random_batch(self.ours, batch_size, device)
        self.batch_size = batch_size

        self.our_optim, self.optimizer_name = make_optimizer(list(self.ours.parameters()), device)
        self.our_sparse = SparseSignSGD(self.ours.puzzle_emb, lr=LR, weight_decay=WEIGHT_DECAY)
        self.their_optim, _ = make_optimizer(list(self.theirs.parameters()), device)
        self.their_sparse = sparse.CastedSparseEmbeddingSignSGD_Distributed(
            self.theirs.puzzle_emb.buffers(), world_size=1, lr=LR, weight_decay=WEIGHT_DECAY)
        self.device = device
        self.eval_steps = eval_steps  # None: the whole rollout (the halting limit, 16 in the paper)
        self.our_carry = self.ours.initial_carry(self.batch)
        self.their_carry = self.their_initial_carry()
        self.compiled = False

    def their_initial_carry(self):
        with self.device:  # the official carry is made on the default device (pretrain.py sets it)
            return self.theirs.initial_carry(self.batch)

    def compile(self) -> None:
        """``torch.compile`` as each code base applies it (compilation itself happens at the first calls).

        Dynamo's caches are emptied first: they are kept per code object, so the models of earlier cases
        (other instances, other dtypes) would use up its recompile limit (8) and later cases would
        silently run eager. A training run compiles one model, as each case does here."""
        torch._dynamo.reset()
        self.head = torch.compile(self.head)  # as the official pretrain.py
        self.ours.compile()  # as trmzoo's train.compile: the whole supervision step
        self.compiled = True

    # -- the agreement check ------------------------------------------------------------------
    def one_step(self, states_only: bool = False) -> tuple[dict, dict]:
        """One evaluation step of each side from its initial carry: (trmzoo's, the official) outputs.

        ``states_only``: only the two states, with the official call of the timed evaluation loop
        (``return_keys=[]``), so a compiled head does not compile a second graph for this check."""
        self.ours.eval()
        self.head.eval()
        keys = [] if states_only else ["logits", "q_halt_logits"]
        with torch.inference_mode():
            carry, _, _, outputs, _ = self.head(carry=self.their_initial_carry(), batch=self.batch, return_keys=keys)
        with torch.no_grad():
            _, out = self.ours.step(self.ours.initial_carry(self.batch), self.batch)
        ours = {"y (z_H)": out.y, "z (z_L)": out.z}
        theirs = {"y (z_H)": carry.inner_carry.z_H, "z (z_L)": carry.inner_carry.z_L}
        if not states_only:
            ours.update(logits=out.logits, q_halt=out.q_halt)
            theirs.update(logits=outputs["logits"], q_halt=outputs["q_halt_logits"])
        return {k: v.float().clone() for k, v in ours.items()}, {k: v.float().clone() for k, v in theirs.items()}

    def agreement(self, ours: dict, theirs: dict, fp32: tuple[dict, dict] | None = None) -> dict:
        """The largest differences between the two sides' outputs of one step, and whether they agree.

        bf16: within 2e-2 of the scale, or within the official bf16 step's own distance from the official
        fp32 step (``fp32``: both sides' fp32 outputs from the same weights). Through a step's 21 network
        calls bf16 rounding differences grow: the order of a product's sums alone (one CPU thread or two)
        moved trmzoo's own Sudoku MLP logits by 26% of their scale at batch 1. Two bf16 implementations of one
        function agree when they differ by no more than bf16 moves either from fp32. Where trmzoo rounds
        differently (its gating inside oneDNN's products, without gradient on a CPU), the two bf16 steps can
        lie farther apart than that while each is as close to fp32: then trmzoo's distance from its fp32
        step may be at most 1.25x the official one's, as a root mean square over all elements (the largest
        single difference of a step this chaotic moves by tens of per cent between seeds)."""
        report, ok = {}, True
        scale = theirs["logits"].abs().max().item()
        for key in ours:
            a, b = ours[key], theirs[key]
            diff = (a - b).abs().max().item()
            if self.ours.dtype == torch.float32:
                good = bool(torch.allclose(a, b, atol=FP32_TOL, rtol=FP32_TOL))
            else:
                allowed = BF16_SCALE_TOL * max(scale, b.abs().max().item())
                good = diff <= allowed
                if fp32 is not None:
                    report[f"{key}: trmzoo bf16 vs fp32"] = (a - fp32[0][key]).abs().max().item()
                    report[f"{key}: official bf16 vs fp32"] = official_error = (b - fp32[1][key]).abs().max().item()
                    report[f"{key}: trmzoo bf16 vs fp32, rms"] = ours_rms = rms(a - fp32[0][key])
                    report[f"{key}: official bf16 vs fp32, rms"] = official_rms = rms(b - fp32[1][key])
                    good = diff <= max(allowed, official_error) or ours_rms <= BF16_ACCURACY_FACTOR * official_rms
            report[key] = diff
            ok &= good
        report["logits_scale"] = scale
        report["agree"] = ok
        return report

    def compiled_drift(self, eager: tuple[dict, dict]) -> dict:
        """After ``compile``: one compiled step of each side against the other and against its own eager step.

        Inductor fuses the element-wise work and keeps its intermediates in fp32, so a compiled bf16 step
        rounds differently from the eager one on both sides; through the 21 network calls of a step the
        differences grow. The agreement of the two code bases is the eager check; this records how far
        compilation moves each side's states (y = z_H, z = z_L) and the two compiled sides apart.
        """
        ours, theirs = self.one_step(states_only=True)

        def largest(x, y):
            return {k: (x[k] - y[k]).abs().max().item() for k in x}
        return {"between": largest(ours, theirs), "trmzoo_vs_eager": largest(ours, eager[0]),
                "official_vs_eager": largest(theirs, eager[1])}

    # -- the timed steps ----------------------------------------------------------------------
    def phase_functions(self, phase: str) -> dict:
        """The two sides' step functions of one phase (``train`` or ``eval``), the official first.

        Compiled, trmzoo evaluates as ``trmzoo eval --compile`` does, for fixed weights
        (``compile_for_inference``), and trains as ``train.compile`` does (``compile()``); the official
        code has one compiled head for both."""
        if phase == "train":
            if self.compiled:
                self.ours.compile()
            return {"official": self.their_train, "trmzoo": self.our_train}
        if self.compiled:
            self.ours.compile_for_inference()
        return {"official": self.their_eval, "trmzoo": self.our_eval}

    def our_train(self) -> None:
        self.ours.train()
        carry, out = self.ours.step(self.our_carry, self.batch)
        loss, _ = supervision_loss(out, carry.data["labels"], self.ours.halting)
        (loss / self.batch_size).backward()
        self.our_optim.step()
        self.our_optim.zero_grad(set_to_none=True)
        self.our_sparse.step()
        self.our_carry = carry

    def their_train(self) -> None:  # pretrain.train_batch without the distributed and logging parts
        self.head.train()
        self.their_carry, loss, _, _, _ = self.head(carry=self.their_carry, batch=self.batch, return_keys=[])
        (loss / self.batch_size).backward()
        for optim in (self.their_sparse, self.their_optim):
            optim.step()
            optim.zero_grad()

    def our_eval(self) -> None:
        self.ours.eval()
        self.ours.rollout(self.batch, steps=self.eval_steps)

    def their_eval(self) -> None:  # pretrain.evaluate's loop for one batch
        self.head.eval()
        with torch.inference_mode():
            carry = self.their_initial_carry()
            for _ in range(self.eval_steps or self.ours.halting.max_steps):
                carry, _, _, _, all_finish = self.head(carry=carry, batch=self.batch, return_keys=[])
                if all_finish:
                    break


def interleaved(fns: dict, rounds: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {side: [] for side in fns}
    sides = list(fns)
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            synchronize(device)
            start = time.perf_counter()
            fns[side]()
            synchronize(device)
            times[side].append(time.perf_counter() - start)
    return times


def rms(t: torch.Tensor) -> float:
    return t.double().pow(2).mean().sqrt().item()


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]] if Path("/proc/loadavg").exists() \
        else list(os.getloadavg())


def summary(times: dict[str, list[float]]) -> dict:
    theirs, ours = times["official"], times["trmzoo"]
    return {
        "official_s": theirs, "trmzoo_s": ours,
        "ratio_best": min(theirs) / min(ours),
        "ratio_median": statistics.median(theirs) / statistics.median(ours),
    }


def write(args, record: dict) -> None:
    Path(args.out).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **record}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path, help="a checkout of SamsungSAILMontreal/TinyRecursiveModels")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--phases", nargs="+", default=["train", "eval"], choices=["train", "eval"])
    parser.add_argument("--batch-scale", type=float, default=1.0,
                        help="multiply the paper's per-GPU batch (768 Sudoku, 192 Maze/ARC); e.g. 0.0104 on a CPU")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side and phase")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per side and phase (compilation happens here)")
    parser.add_argument("--eval-steps", type=int,
                        help="time only the first N supervision steps of the evaluation rollout on both sides "
                             "(default: all 16; a shorter rollout makes the full table fit a CPU's time)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    parser.add_argument("--peak-sizes", nargs="+", type=int, default=[2048, 3072])
    parser.add_argument("--out", default="vs_official.json")
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 on both sides
    official = load_official(args.official)
    load_start = loadavg()
    print(f"load average at start: {load_start}", flush=True)
    peaks = {dtype: [peak_matmul(getattr(torch, dtype), device, args.peak_sizes, 3)] for dtype in args.dtypes}
    results, optimizer_name = [], None
    # Every configuration eager first, then compiled (compilation is the slow part); the JSON is rewritten
    # after each case, so a run stopped by a time limit keeps the cases it finished.
    for mode, name, dtype in [(m, n, d) for m in args.modes for n in args.configs for d in args.dtypes]:
        batch_size = max(1, round(CONFIGS[name][1] * args.batch_scale))
        case = {"config": name, "dtype": dtype, "mode": mode, "batch": batch_size, "load_before": loadavg()}
        started = time.perf_counter()
        sides = Sides(name, dtype, batch_size, device, official, eval_steps=args.eval_steps)
        optimizer_name = sides.optimizer_name
        eager = sides.one_step()
        # Checked eager, before compiling: the two compute the same function (bf16 beside both sides' fp32 step).
        fp32 = None if dtype == "float32" else Sides(name, "float32", batch_size, device, official).one_step()
        case["agreement"] = sides.agreement(*eager, fp32=fp32)
        if dtype != "float32" and device.type == "cpu" and layers.ONEDNN_BF16:  # the same function, bit for bit
            trmzoo.use_fused_ops(False)
            plain = sides.one_step()
            trmzoo.use_fused_ops(True)
            case["agreement"]["without the fusion, largest difference"] = max(
                (plain[0][k] - plain[1][k]).abs().max().item() for k in plain[0])
        if mode == "compile":
            sides.compile()
            case["compiled"] = sides.compiled_drift(eager)
        flops = step_flops(sides.ours, batch_size)
        for phase in args.phases:
            case[phase] = summary(interleaved(sides.phase_functions(phase), args.rounds, args.warmup, device))
            steps = 1 if phase == "train" else (args.eval_steps or sides.ours.halting.max_steps)
            case[phase]["steps"] = steps
            case[phase]["flops"] = flops[phase if phase == "train" else "eval"] * steps
        case["load_after"] = loadavg()
        case["wall_s"] = time.perf_counter() - started
        results.append(case)
        phases = ", ".join(
            f"{p} {case[p]['ratio_best']:.2f}x best / {case[p]['ratio_median']:.2f}x median "
            f"({statistics.median(case[p]['official_s']):.2f} s vs {statistics.median(case[p]['trmzoo_s']):.2f} s)"
            for p in args.phases)
        agree = "agree" if case["agreement"]["agree"] else "DISAGREE"
        drift = (f"; compiled: y max diff {case['compiled']['between']['y (z_H)']:.2e} between the sides, "
                 f"{case['compiled']['trmzoo_vs_eager']['y (z_H)']:.2e} trmzoo and "
                 f"{case['compiled']['official_vs_eager']['y (z_H)']:.2e} official from their eager step"
                 if "compiled" in case else "")
        rounding = (f"; bf16 vs fp32: trmzoo {case['agreement']['logits: trmzoo bf16 vs fp32']:.2e}, official "
                    f"{case['agreement']['logits: official bf16 vs fp32']:.2e}, rms trmzoo "
                    f"{case['agreement']['logits: trmzoo bf16 vs fp32, rms']:.2e}, official "
                    f"{case['agreement']['logits: official bf16 vs fp32, rms']:.2e}" if dtype != "float32" else "")
        plain = case["agreement"].get("without the fusion, largest difference")
        rounding += f"; without the oneDNN fusion max diff {plain:.2e}" if plain is not None else ""
        print(f"{name} {dtype} {mode} batch {batch_size}: {phases}; one eval step (eager): {agree} "
              f"(logits max diff {case['agreement']['logits']:.2e}{rounding}){drift}; load {case['load_before']} -> "
              f"{case['load_after']}", flush=True)
        del sides
        write(args, {"optimizer": optimizer_name, "peak_flops": peaks, "results": results, "complete": False})
    for dtype in args.dtypes:
        peaks[dtype].append(peak_matmul(getattr(torch, dtype), device, args.peak_sizes, 3))
    for case in results:
        for phase in args.phases:
            for side in ("official", "trmzoo"):
                best = min(case[phase][f"{side}_s"])
                case[phase][f"{side}_fraction_of_peak"] = case[phase]["flops"] / best / max(peaks[case["dtype"]])
    load_end = loadavg()

    print(f"\nevaluation rollout: {args.eval_steps or 'all'} supervision steps per timed call")
    print(f"optimizer: {optimizer_name}; ratio = official s / trmzoo s (above 1: trmzoo faster)")
    print(f"load average: start {load_start}, end {load_end}; threads {torch.get_num_threads()}; torch {torch.__version__}")
    header = "| config | dtype | mode | batch |" + "".join(f" {p} best | {p} median |" for p in args.phases)
    lines = [header, "|" + "---|" * (4 + 2 * len(args.phases))]
    for c in results:
        cells = "".join(f" {c[p]['ratio_best']:.2f}x | {c[p]['ratio_median']:.2f}x |" for p in args.phases)
        lines.append(f"| {c['config']} | {c['dtype']} | {c['mode']} | {c['batch']} |{cells}")
    print("\n".join(lines))
    print("\npeak matrix-multiply rate (best of square products, before and after): "
          + ", ".join(f"{d} {max(v) / 1e9:.0f} GFLOP/s" for d, v in peaks.items()))
    print("| config | dtype | mode |" + "".join(f" {p} official | {p} trmzoo |" for p in args.phases)
          + "  (best round, % of the peak)")
    for c in results:
        print(f"| {c['config']} | {c['dtype']} | {c['mode']} |" + "".join(
            f" {100 * c[p]['official_fraction_of_peak']:.0f}% | {100 * c[p]['trmzoo_fraction_of_peak']:.0f}% |"
            for p in args.phases))
    machine = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "load_average_start": load_start, "load_average_end": load_end,
    }
    write(args, {"machine": machine, "optimizer": optimizer_name, "peak_flops": peaks, "results": results,
                 "table": "\n".join(lines), "complete": True})
    print(f"\nwrote {args.out}")
    if not all(c["agreement"]["agree"] for c in results):
        raise SystemExit("one evaluation step disagrees between the two code bases (see above)")


if __name__ == "__main__":
    main()
