"""What the benchmarks that evaluate a trained model share: its arguments, its loading, the machine's facts."""

from __future__ import annotations

import argparse
import os
import platform

import torch

import trmzoo
from trmzoo.factory import task_of


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run folder, weight folder or pretrained name (trmzoo.load)")
    parser.add_argument("--data", required=True, help="dataset folder with the test split")
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")


def load_model(args: argparse.Namespace):
    """Set the threads, then load the model and its task; returns (model, task, load average before)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    model = trmzoo.load(args.model).to(args.device)
    return model, task_of(model), load_start


def machine_facts(args: argparse.Namespace, load_start: tuple[float, float, float]) -> dict:
    """What a figure needs beside it to be read: device, threads, versions and the load before and after."""
    return {"device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "load_average_start": list(load_start),
            "load_average_end": list(os.getloadavg())}
