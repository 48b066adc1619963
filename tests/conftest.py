"""Registers the virtual GPU of ``tools/vgpu.py`` (used by ``test_device.py``) before any test
runs: torch's autograd engine sizes its per-device queues at the first backward pass of the
process, so a device registered after it cannot run backward."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
import vgpu  # noqa: E402, F401

# Not a module of doctests: with docs/conftest.py beside it, --doctest-modules would import this
# file a second time under the same name.
collect_ignore = ["conftest.py"]
