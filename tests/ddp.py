"""Two real training processes for the DDP tests: ``accelerate.debug_launcher`` with spawn instead of fork.

``debug_launcher`` forks. Once the test process has run torch (any earlier test in the same pytest run), its
OpenMP thread pool does not survive a fork and the children hang forever in their first parallel op — seen
in CI, not when a DDP test runs alone. Spawned children start clean; the function and its arguments must be
picklable (module-level functions, tensors, configs). A free port per launch lets launches not collide.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.serving import free_port


def spawn_launcher(function: Callable[..., Any], args: tuple = (), num_processes: int = 2) -> None:
    """Run ``function(*args)`` in ``num_processes`` spawned CPU processes joined over gloo on loopback."""
    from accelerate.utils import PrepareForLaunch, patch_environment
    from torch.multiprocessing import start_processes

    # torch's file rendezvous deletes its file when done, so it lives in a folder of its own
    with tempfile.TemporaryDirectory() as folder, patch_environment(
        world_size=num_processes, master_addr="127.0.0.1", master_port=str(free_port()),
        accelerate_mixed_precision="no", accelerate_debug_rdv_file=str(Path(folder) / "rendezvous"),
        accelerate_use_cpu="yes", gloo_socket_ifname="lo", omp_num_threads="1",
    ):
        start_processes(PrepareForLaunch(function, debug=True), args=args, nprocs=num_processes, start_method="spawn")
