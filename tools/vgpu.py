"""A virtual GPU for CPU-only torch: CUDA's placement and generator rules, checked without a GPU.

Importing this module registers a device type ``vgpu`` (torch's PrivateUse1 slot, renamed, with a
Python device guard). A tensor on ``vgpu:0`` keeps its data in a CPU tensor; inside
``with VirtualGPU() as vg:`` every operator runs on that data while the rules torch applies to
CUDA tensors are checked:

* the tensor arguments of an operator are on one device, except 0-d CPU tensors;
* advanced-indexing indices are on the CPU or on the indexed tensor's device;
* a random operator's ``generator`` is on the operator's device type;
* ``.numpy()`` (so ``np.asarray``) of a device tensor fails.

Inside the block ``torch.Generator(device)`` makes a generator whose ``.device`` is ``device``
(its numbers come from the CPU), and ``torch.tensor``/``torch.as_tensor`` accept
``device="vgpu"``. A broken rule is a *violation*: counted with the line of ``gallery/`` or
``src/dlref/`` that did it, or raised at once with ``VirtualGPU(strict=True)`` (tests).

It also counts what makes a CUDA host wait for the device (a *host sync*: ``.item()``,
``bool()``, ``float()``, formatting or printing a tensor, ``.tolist()``, ``.cpu()``, ``nonzero``,
boolean-mask indexing, ``equal``) and host-to-device copies, with the line that did each.

It says nothing about CUDA numerics (other kernels, atomics), timing, memory, NCCL or cuDNN.
Adapted from the shared example in ``tools/vgpu`` of the study material.
"""

from __future__ import annotations

import collections
import pathlib
import sys

import torch
import torch.utils.backend_registration as backend_registration
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

backend_registration._setup_privateuseone_for_python_backend("vgpu")
# torch.autocast asks the backend's module which dtypes it can autocast to; the autocast keys of
# a Python backend fall through, so ops under autocast run uncast here (placement is still checked).
torch.vgpu.get_amp_supported_dtype = lambda: [torch.float16, torch.bfloat16]
_AUTOCAST = torch.library.Library("_", "IMPL")
_AUTOCAST.fallback(torch.library.fallthrough_kernel, dispatch_key="AutocastPrivateUse1")
VDEV = torch.device("vgpu", 0)
ROOT = pathlib.Path(__file__).resolve().parent.parent
SITES = (str(ROOT / "gallery"), str(ROOT / "src" / "dlref"), str(ROOT / "tools" / "device_"))

_RealGenerator = torch.Generator
_real_tensor, _real_as_tensor = torch.tensor, torch.as_tensor

SYNC_OPS = {"nonzero", "masked_select", "equal", "unique", "_unique", "_unique2"}
SYNC_OPS |= {"unique_consecutive"}
NOT_CHECKED = {  # copies between devices are what .to() is for
    "_to_copy",
    "copy_",
    "copy",
    "_copy_from",
    "_copy_from_and_resize",
    "_local_scalar_dense",
    "detach",
    "alias",
    "lift_fresh",
    "lift_fresh_copy",
    "set_",
    "_has_compatible_shallow_copy_type",
}
INDEX_OPS = {"index", "index_put_", "index_put", "_index_put_impl_"}
ITEM = ".item()/bool()/float()/format of a device tensor"


def site() -> str:
    """The innermost line of the gallery, of dlref or of the sweep that is running."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(SITES):
            return f"{pathlib.Path(filename).relative_to(ROOT)}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


class _GeneratorMeta(type(_RealGenerator)):
    def __instancecheck__(cls, obj: object) -> bool:  # isinstance(g, torch.Generator) holds on
        return isinstance(obj, _RealGenerator)


class VGenerator(_RealGenerator, metaclass=_GeneratorMeta):
    """``torch.Generator(device)``: CPU random numbers, ``.device`` the device asked for."""

    def __new__(cls, device: torch.device | str = "cpu") -> VGenerator:
        generator = super().__new__(cls, "cpu")
        generator._virtual_device = torch.device(device)
        return generator

    @property
    def device(self) -> torch.device:
        return self._virtual_device


class V(torch.Tensor):
    """A tensor on ``vgpu:0`` whose data ``elem`` is a CPU tensor."""

    __torch_function__ = torch._C._disabled_torch_function_impl

    @staticmethod
    def __new__(cls, elem: torch.Tensor) -> V:
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls,
            elem.size(),
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=VDEV,
            requires_grad=False,
        )
        wrapper.elem = elem
        return wrapper

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return VirtualGPU.current.handle(func, args, kwargs or {})

    def __repr__(self, *, tensor_contents=None) -> str:  # printing copies to the host
        VirtualGPU.current.sync("print of a device tensor")
        return f"{self.elem!r}"[:-1] + f", device='{VDEV}')"

    def __format__(self, spec: str) -> str:  # torch: a 0-d tensor formats its .item()
        if self.dim() == 0:
            VirtualGPU.current.sync(ITEM)
            return self.elem.item().__format__(spec)
        return object.__format__(self, spec)

    def tolist(self) -> list:  # a copy to the host, which waits for the device
        VirtualGPU.current.sync(".tolist() of a device tensor")
        return self.elem.tolist()

    def numpy(self, *, force: bool = False):
        VirtualGPU.current.violation(
            "numpy(): can't convert vgpu:0 device type tensor to numpy. "
            "Use Tensor.cpu() to copy the tensor to host memory first.",
            TypeError,
        )
        return self.elem.numpy()


def _device(t: torch.Tensor) -> str:
    return "vgpu" if isinstance(t, V) else t.device.type


def _tensor(data, *args, device=None, **kwargs):
    if device is not None and torch.device(device).type == "vgpu":
        return _real_tensor(data, *args, **kwargs).to(device)
    return _real_tensor(data, *args, device=device, **kwargs)


def _as_tensor(data, *args, device=None, **kwargs):
    if device is not None and torch.device(device).type == "vgpu":
        return _real_as_tensor(data, *args, **kwargs).to(device)
    return _real_as_tensor(data, *args, device=device, **kwargs)


class _GeneratorRule(TorchFunctionMode):
    """A random operator's generator on its device type (generator is keyword-only in torch)."""

    def __init__(self, owner: VirtualGPU) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        generator = kwargs.get("generator")
        if generator is not None:
            if kwargs.get("device") is not None:
                target = torch.device(kwargs["device"]).type
            else:
                flat, _ = tree_flatten(args)
                target = "vgpu" if any(isinstance(t, V) for t in flat) else "cpu"
            if generator.device.type != target:
                name = getattr(func, "__name__", str(func))
                self.owner.violation(
                    f"{name}: Expected a '{target}' device type for generator but found "
                    f"'{generator.device.type}'"
                )
        return func(*args, **kwargs)


class VirtualGPU(TorchDispatchMode):
    """``with VirtualGPU() as vg:`` runs the block with the rules above; see the counters."""

    current: VirtualGPU

    def __init__(self, strict: bool = False) -> None:
        super().__init__()
        self.strict = strict
        self.violations: collections.Counter = collections.Counter()
        self.syncs: collections.Counter = collections.Counter()
        self.h2d: collections.Counter = collections.Counter()
        self.ops = 0
        self._generators = _GeneratorRule(self)

    def __enter__(self) -> VirtualGPU:
        self._previous = VirtualGPU.current
        VirtualGPU.current = self
        torch.Generator = VGenerator
        torch.tensor, torch.as_tensor = _tensor, _as_tensor
        self._generators.__enter__()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self._generators.__exit__(*exc)
        torch.Generator = _RealGenerator
        torch.tensor, torch.as_tensor = _real_tensor, _real_as_tensor
        VirtualGPU.current = self._previous

    def violation(self, message: str, error: type[Exception] = RuntimeError) -> None:
        if self.strict:
            raise error(message)
        self.violations[(site(), message)] += 1

    def sync(self, what: str) -> None:
        self.syncs[(site(), what)] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.handle(func, args, kwargs or {})

    def handle(self, func, args, kwargs):
        self.ops += 1
        name = func.overloadpacket.__name__
        flat, _ = tree_flatten((args, kwargs))
        tensors = [t for t in flat if isinstance(t, torch.Tensor)]
        device_kwarg = kwargs.get("device")
        if device_kwarg is not None:
            target = torch.device(device_kwarg).type
        elif name == "index":
            target = _device(args[0])
        else:
            target = "vgpu" if any(isinstance(t, V) for t in tensors) else "cpu"
        self.check(name, args, tensors, target)
        unwrap = lambda x: x.elem if isinstance(x, V) else x  # noqa: E731
        cpu_args, cpu_kwargs = tree_map(unwrap, args), tree_map(unwrap, kwargs)
        if device_kwarg is not None and target == "vgpu":
            cpu_kwargs["device"] = torch.device("cpu")
        out = func(*cpu_args, **cpu_kwargs)
        if target != "vgpu":
            return out
        same = {id(t.elem): t for t in tensors if isinstance(t, V)}  # in-place ops return self

        def wrap(x):
            if isinstance(x, torch.Tensor) and not isinstance(x, V):
                wrapper = same.get(id(x))
                return V(x) if wrapper is None else wrapper
            return x

        return tree_map(wrap, out)

    def check(self, name: str, args: tuple, tensors: list, target: str) -> None:
        if name == "_local_scalar_dense" and _device(args[0]) == "vgpu":
            self.sync(ITEM)
        elif name == "_to_copy":
            source = _device(args[0])
            if source == "vgpu" and target == "cpu":
                self.sync("device-to-host copy (.cpu(), .to('cpu'))")
            elif source == "cpu" and target == "vgpu":
                self.h2d[site()] += 1
        elif name in SYNC_OPS and target == "vgpu":
            self.sync(name)
        if name in NOT_CHECKED:
            return
        if name in INDEX_OPS:
            self.check_index(name, args)
            return
        devices = {_device(t) for t in tensors if not (_device(t) == "cpu" and t.dim() == 0)}
        if name.startswith("_foreach_"):
            devices = {_device(t) for t in tensors if not (_device(t) == "cpu" and t.numel() == 1)}
        if len(devices) > 1:
            self.violation(
                f"{name}: Expected all tensors to be on the same device, but found at least two "
                f"devices, {sorted(devices)}"
            )

    def check_index(self, name: str, args: tuple) -> None:
        indexed = _device(args[0])
        for index in args[1]:
            if index is None:
                continue
            if _device(index) not in ("cpu", indexed):
                self.violation(
                    f"{name}: indices should be either on cpu or on the same device as the "
                    f"indexed tensor ({indexed})"
                )
            if indexed == "vgpu" and index.dtype in (torch.bool, torch.uint8):
                self.sync("boolean-mask indexing (nonzero)")
        values = args[2] if name != "index" and len(args) > 2 else None
        if isinstance(values, torch.Tensor) and _device(values) != indexed:
            if not (_device(values) == "cpu" and values.dim() == 0):
                self.violation(f"{name}: values on {_device(values)}, tensor on {indexed}")


VirtualGPU.current = VirtualGPU()  # counts what happens to a vgpu tensor outside any block
