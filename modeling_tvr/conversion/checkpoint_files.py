"""Reading the authors' checkpoint files without running code stored in them.

The files a DRL user has: OpenAI's `ViT-B-32.pt` / `ViT-B-16.pt` (TorchScript archives of a traced model, fp16), the
DRL / CLIP4Clip `pytorch_model.bin.N` (a `torch.save`d state dict), or either re-saved as a plain state dict.

Pickle can run arbitrary code, so:
- plain `torch.save` files are read with `torch.load(..., weights_only=True)`, which only rebuilds tensors and
  containers;
- TorchScript archives are NOT passed to `torch.jit.load`: it compiles the archive's code and runs its
  `__setstate__` methods. Their weights are read here instead: `data.pkl` goes through an unpickler that knows only
  tensors, storages and plain containers (any other global is refused), every scripted module becomes an inert
  record of its attributes, and the `__parameters__` / `__buffers__` lists of the archive's code files (read as text,
  never executed) tell which tensor attributes are weights;
- `trust_pickle=True` is the explicit opt-in to `torch.jit.load` / `torch.load(weights_only=False)`, for files
  from a trusted source that need more.
"""

import os
import pickle
import re
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

# Legacy storage classes named by pickles (`torch.FloatStorage`, ...) and the dtype of their elements.
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

_RESAVE_HINT = (
    "Re-save the weights as a plain state dict where you trust the file (`torch.save(model.state_dict(), path)` or "
    "safetensors' `save_file`), or pass trust_pickle=True (`--trust_pickle`) if the file comes from a source you "
    "trust: full unpickling can run arbitrary code."
)


class CheckpointLoadError(ValueError):
    """The file is not a checkpoint this module can read (missing, empty, not a state dict, malformed archive)."""


class UnsafeCheckpointError(CheckpointLoadError):
    """Reading the file would need full unpickling (a pickled class or function other than tensors)."""


# ---------------------------------------------------------------------------------------------- TorchScript archives
class _ScriptObject:
    """An inert stand-in for an object of the archive (a scripted module): it only records its attributes."""

    qualified_name = ""

    def __setstate__(self, state) -> None:
        self.state = state


class _StorageType:
    """The element type a persistent storage id names (`torch.FloatStorage` -> float32)."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _identity(value, *_):
    return value


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript `data.pkl`: tensors, storages, plain containers and inert module records only."""

    _TORCHSCRIPT_HELPERS = ("build_intlist", "build_tensorlist", "build_doublelist", "build_boollist")

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive = archive
        self.prefix = prefix
        self.storages: dict[str, torch.Tensor] = {}
        self.record_classes: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self.record_classes:
                self.record_classes[qualified] = type(name, (_ScriptObject,), {"qualified_name": qualified})
            return self.record_classes[qualified]
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and (name in self._TORCHSCRIPT_HELPERS or name == "restore_type_tag"):
            return _identity
        raise UnsafeCheckpointError(
            f"the archive's data.pkl references `{module}.{name}`, which is not a tensor or plain container; "
            f"refusing to import it. {_RESAVE_HINT}"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointLoadError(f"unexpected persistent id {pid!r} in the archive's data.pkl")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise CheckpointLoadError(f"malformed storage reference {pid!r} in the archive's data.pkl")
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
            itemsize = torch.empty((), dtype=storage_type.dtype).element_size()
            if len(raw) != numel * itemsize:
                raise CheckpointLoadError(
                    f"storage {key}: {len(raw)} bytes for {numel} elements of {storage_type.dtype}"
                )
            dtype = storage_type.dtype
            self.storages[key] = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]

    def _rebuild_tensor(self, storage, offset, size, stride, *_unused) -> torch.Tensor:
        if not any(storage is flat for flat in self.storages.values()):
            raise CheckpointLoadError("a tensor in the archive's data.pkl does not point to one of its storages")
        # as_strided checks the view against the storage's bounds.
        return storage.as_strided(tuple(size), tuple(stride), int(offset))


def _archive_prefix(archive: zipfile.ZipFile) -> str:
    names = archive.namelist()
    if not names:
        raise CheckpointLoadError("empty zip archive")
    return names[0].split("/", 1)[0]


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """True for a zip archive written by `torch.jit.save` (it holds `constants.pkl` and a `code/` folder)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        prefix = _archive_prefix(archive)
        names = set(archive.namelist())
    return f"{prefix}/constants.pkl" in names or any(name.startswith(f"{prefix}/code/") for name in names)


_CLASS_LINE = re.compile(r"^class (\w+)\(")
_STATE_LINE = re.compile(r"^\s+__(parameters|buffers)__ = \[(.*)\]")


def _declared_state_names(archive: zipfile.ZipFile, prefix: str) -> dict[str, set[str]]:
    """Parameter and buffer names of every scripted class, parsed from the archive's code files as text."""
    declared: dict[str, set[str]] = {}
    code_root = f"{prefix}/code/"
    for name in archive.namelist():
        if not (name.startswith(code_root) and name.endswith(".py")):
            continue
        module = name[len(code_root) : -len(".py")].replace("/", ".")
        current = None
        for line in archive.read(name).decode("utf-8", errors="replace").splitlines():
            if match := _CLASS_LINE.match(line):
                current = declared.setdefault(f"{module}.{match.group(1)}", set())
            elif current is not None and (match := _STATE_LINE.match(line)):
                current.update(re.findall(r'"([^"]*)"', match.group(2)))
    return declared


def _collect_state(record, declared: dict[str, set[str]], prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = getattr(record, "state", None)
    if not isinstance(state, dict):
        return  # a class with a custom __getstate__ holds no module weights we could name
    # A class missing from the code files (unexpected) keeps all its tensors: the unused-key check then names them.
    names = declared.get(record.qualified_name)
    for attribute, value in state.items():
        if isinstance(value, torch.Tensor) and (names is None or attribute in names):
            out[prefix + attribute] = value
        elif isinstance(value, _ScriptObject):
            _collect_state(value, declared, f"{prefix}{attribute}.", out)


def read_torchscript_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    The parameters and buffers of a TorchScript archive, keyed like `torch.jit.load(path).state_dict()`, read without
    compiling or running anything from the archive (see the module docstring). Raises `UnsafeCheckpointError` when
    `data.pkl` names anything but tensors and plain containers.
    """
    with zipfile.ZipFile(path) as archive:
        prefix = _archive_prefix(archive)
        names = set(archive.namelist())
        if f"{prefix}/data.pkl" not in names:
            raise CheckpointLoadError(f"{path}: TorchScript archive without data.pkl")
        if f"{prefix}/byteorder" in names and archive.read(f"{prefix}/byteorder").strip() != sys.byteorder.encode():
            raise CheckpointLoadError(f"{path}: the archive's byte order differs from this machine's")
        declared = _declared_state_names(archive, prefix)
        with archive.open(f"{prefix}/data.pkl") as handle:
            try:
                root = _WeightsUnpickler(handle, archive, prefix).load()
            except UnsafeCheckpointError as error:
                raise UnsafeCheckpointError(f"{path}: {error}") from None
            except (pickle.UnpicklingError, EOFError, KeyError, TypeError, RuntimeError) as error:
                raise CheckpointLoadError(f"{path}: malformed TorchScript archive ({error})") from error
    if not isinstance(root, _ScriptObject):
        raise CheckpointLoadError(f"{path}: the archive's data.pkl does not hold a scripted module")
    state: dict[str, torch.Tensor] = {}
    _collect_state(root, declared, "", state)
    return state


# ---------------------------------------------------------------------------------------------- any checkpoint file
def _as_state_dict(loaded, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, torch.nn.Module):
        loaded = loaded.state_dict()
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # {"state_dict": ..., "epoch": ...} training checkpoints
    if not isinstance(loaded, dict):
        raise CheckpointLoadError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    not_tensors = sorted(str(key) for key, value in loaded.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise CheckpointLoadError(f"{path}: not a state dict, these entries are not tensors: {not_tensors[:10]}")
    return dict(loaded)


#: Default limit on the tensor bytes a checkpoint may declare (ViT-L/14 in fp32 is 1.7 GB).
DEFAULT_MAX_CHECKPOINT_BYTES = 16 * 1024**3
# Zip entries of `torch.save` and TorchScript archives are stored, not compressed: a member inflating to many times
# the whole file's size is a zip bomb, not a checkpoint.
_MAX_INFLATION = 4


def check_archive_size(path: Path, max_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES) -> None:
    """Refuse a zip-format checkpoint whose members would inflate beyond `max_bytes`, or far beyond the file's own
    size, before anything is decompressed or allocated."""
    if not zipfile.is_zipfile(path):
        return
    file_size = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        declared = sum(member.file_size for member in archive.infolist())
    if declared > max_bytes:
        raise CheckpointLoadError(
            f"{path}: its members hold {declared / 1e9:.1f} GB, above the limit of {max_bytes / 1e9:.1f} GB; pass a "
            "higher max_bytes if this really is a checkpoint that large"
        )
    if declared > _MAX_INFLATION * file_size + 1024**2:
        raise CheckpointLoadError(
            f"{path}: a {file_size / 1e6:.1f} MB file whose members inflate to {declared / 1e9:.2f} GB: checkpoints "
            "store their tensors uncompressed, so this is not one (a zip bomb?)"
        )


def check_tensors_are_dense(state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse tensors that view their storage more than once (stride 0, overlapping strides): a weight never does,
    and copying one (`contiguous`, `float`, saving) would allocate its full apparent size."""
    for name, tensor in state.items():
        if tensor.numel() * tensor.element_size() > tensor.untyped_storage().nbytes():
            raise CheckpointLoadError(
                f"{path}: tensor {name!r} of shape {tuple(tensor.shape)} views a storage of "
                f"{tensor.untyped_storage().nbytes()} bytes repeatedly (stride {tuple(tensor.stride())}); a checkpoint "
                "holds each weight's values once. Re-save it with `tensor.contiguous()` if it is genuine."
            )


def load_official_state_dict(
    path: str | os.PathLike, trust_pickle: bool = False, max_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES
) -> dict[str, torch.Tensor]:
    """
    The tensors of an OpenAI CLIP or DRL checkpoint file: a TorchScript archive, a `torch.save`d state dict (plain or
    zip format, optionally under a `state_dict` key) or a `.safetensors` file. Nothing in the file is executed unless
    `trust_pickle` (see the module docstring), and a zip archive declaring more than `max_bytes` (or inflating far
    beyond its own size) is refused before anything is read from it.

    Raises:
        CheckpointLoadError: missing or unreadable file, content that is not a state dict, or resource bombs.
        UnsafeCheckpointError: the file needs full unpickling and `trust_pickle` is False.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointLoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointLoadError(f"{path}: empty file")
    check_archive_size(path, max_bytes)
    state = _load_state(path, trust_pickle)
    check_tensors_are_dense(state, path)
    return state


def _load_state(path: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    if is_torchscript_archive(path):
        if trust_pickle:
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        return read_torchscript_state_dict(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" not in str(error):
            raise CheckpointLoadError(f"{path}: not a PyTorch checkpoint ({error})") from error
        unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        what = f" (it pickles `{unsupported.group(1)}`)" if unsupported else ""
        raise UnsafeCheckpointError(
            f"{path}: refusing to unpickle{what}: only tensors and plain containers are read by default. {_RESAVE_HINT}"
        ) from error
    except Exception as error:  # torch.load fails on foreign files in many ways (KeyError on text, EOFError, ...)
        raise CheckpointLoadError(f"{path}: not a PyTorch checkpoint ({type(error).__name__}: {error})") from error
    return _as_state_dict(loaded, path)


__all__ = [
    "DEFAULT_MAX_CHECKPOINT_BYTES",
    "CheckpointLoadError",
    "UnsafeCheckpointError",
    "is_torchscript_archive",
    "load_official_state_dict",
    "read_torchscript_state_dict",
]
