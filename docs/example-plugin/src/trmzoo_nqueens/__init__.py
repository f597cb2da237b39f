"""trmzoo-nqueens: N-Queens completion puzzles and a 1-D convolution backbone, as a trmzoo plugin.

trmzoo imports this module through the ``trmzoo`` entry point named ``nqueens`` and
calls the hooks below; the recipes in ``recipes/`` next to this file become named
recipes (``trmzoo train nqueens_conv_tiny``).
"""

from trmzoo import hookimpl

from trmzoo_nqueens.conv import ConvConfig, build
from trmzoo_nqueens.task import NQueensTask

TRMZOO_PLUGIN_API = 1  # the plugin API this package is written for; trmzoo skips it if that changes


@hookimpl
def register_backbones(register):
    register("conv1d", ConvConfig, build)


@hookimpl
def register_tasks(register):
    register("nqueens", NQueensTask)
