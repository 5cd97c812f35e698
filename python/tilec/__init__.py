"""tilec — a small ctypes binding over tilec's public C API (include/tilec/tilec.h).

For convenience and for benchmarks against torch: get a tuned kernel for a problem and launch
it on a stream with DLPack-compatible tensors (torch, cupy, jax ...), objects with
``__cuda_array_interface__``, or raw device pointers (:class:`Tensor`).

    import tilec, torch
    ctx = tilec.Context()                       # device 0, default database, read-write
    k = ctx.kernel("matmul", shape={"M": 4096, "N": 4096, "K": 4096}, dtype="bf16")
    a, b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16), ...
    k(a, b, c, stream=torch.cuda.current_stream().cuda_stream)

The library is found through $TILEC_LIBRARY (a path), else the loader's search for
libtilec.so.0. Errors raise :class:`TilecError` with the status name and tilec's message.
Ownership: a Context or Kernel frees its handle on close() or garbage collection; a kernel keeps
its context alive (the C library counts references).
"""

import ctypes
import ctypes.util
import os

__all__ = ["Context", "Kernel", "Tensor", "TilecError", "version", "library"]

_TENSOR, _PTR, _SCALAR = 0, 1, 2
_MAX_RANK = 4
_KDL_CUDA, _KDL_CUDA_MANAGED, _KDL_CPU = 2, 13, 1

CONTEXT_READONLY, CONTEXT_NO_DB, CONTEXT_ADOPT, CONTEXT_NO_GPU = 1, 2, 4, 8


class _ContextOpts(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("device", ctypes.c_int), ("flags", ctypes.c_uint),
                ("cu_context", ctypes.c_void_p), ("cu_stream", ctypes.c_void_p),
                ("db_path", ctypes.c_char_p), ("cache_capacity", ctypes.c_int),
                ("tune", ctypes.c_int), ("arch", ctypes.c_char_p),
                ("tune_budget", ctypes.c_int), ("nearest", ctypes.c_double)]


class _ContextInfo(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("device", ctypes.c_char_p), ("arch", ctypes.c_char_p),
                ("toolchain", ctypes.c_char_p), ("db_path", ctypes.c_char_p),
                ("readonly", ctypes.c_int), ("cache_size", ctypes.c_int),
                ("cache_capacity", ctypes.c_int), ("hits", ctypes.c_uint64),
                ("misses", ctypes.c_uint64), ("compiles", ctypes.c_uint64),
                ("db_loads", ctypes.c_uint64), ("evictions", ctypes.c_uint64),
                ("pending", ctypes.c_int)]


class _Request(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("kernel", ctypes.c_char_p),
                ("source", ctypes.c_char_p), ("ir", ctypes.c_void_p), ("shape", ctypes.c_char_p),
                ("dtype", ctypes.c_char_p), ("config", ctypes.c_char_p), ("flags", ctypes.c_uint)]


KERNEL_ALIGNED = 1  # TILEC_KERNEL_ALIGNED
KERNEL_NOWAIT = 2  # TILEC_KERNEL_NOWAIT
_BUSY = 12  # TILEC_ERR_BUSY


class _KernelInfo(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("name", ctypes.c_char_p), ("config", ctypes.c_char_p),
                ("bucket", ctypes.c_char_p), ("entry", ctypes.c_char_p), ("origin", ctypes.c_int),
                ("nargs", ctypes.c_int), ("threads", ctypes.c_int), ("smem_bytes", ctypes.c_int),
                ("load_ms", ctypes.c_double), ("flags", ctypes.c_uint)]


class _Arg(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("ptr", ctypes.c_uint64), ("rank", ctypes.c_int),
                ("shape", ctypes.c_int64 * _MAX_RANK), ("stride", ctypes.c_int64 * _MAX_RANK),
                ("is_float", ctypes.c_int), ("i", ctypes.c_int64), ("f", ctypes.c_double)]


# DLPack (dlpack.h v0.8 and v1.x)
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32),
                ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p),
                ("flags", ctypes.c_uint64), ("dl_tensor", _DLTensor)]


_STATUS = ["ok", "arg", "not_found", "shape", "no_driver", "no_device", "no_toolchain",
           "compile", "launch", "cuda", "db", "readonly", "busy", "oom", "internal"]
_ORIGIN = ["db", "db_compiled", "heuristic", "explicit", "tuned", "nearest"]


class TilecError(RuntimeError):
    """A failed tilec call: .status is the status name ("shape", "not_found", ...)."""

    def __init__(self, status, message):
        self.status = _STATUS[status] if 0 <= status < len(_STATUS) else "unknown"
        self.code = status
        super().__init__(f"{self.status}: {message}")


_lib = None


def library():
    """The loaded libtilec (ctypes.CDLL), loaded on first use."""
    global _lib
    if _lib is not None:
        return _lib
    path = os.environ.get("TILEC_LIBRARY") or ctypes.util.find_library("tilec") or "libtilec.so.0"
    lib = ctypes.CDLL(path)
    P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sig = {
        "tilec_version": (S, []),
        "tilec_status_name": (S, [I]),
        "tilec_errmsg": (S, [P]),
        "tilec_context_opts_init": (None, [P]),
        "tilec_context_create": (I, [P, ctypes.POINTER(P)]),
        "tilec_context_destroy": (None, [P]),
        "tilec_context_info_get": (I, [P, P]),
        "tilec_context_set_cache_capacity": (I, [P, I]),
        "tilec_kernel_get": (I, [P, P, ctypes.POINTER(P)]),
        "tilec_kernel_get_many": (I, [P, ctypes.POINTER(P), I, ctypes.POINTER(P), I,
                                      ctypes.POINTER(I)]),
        "tilec_kernel_release": (None, [P]),
        "tilec_kernel_info_get": (I, [P, P]),
        "tilec_kernel_value": (I, [P, S, ctypes.POINTER(ctypes.c_int64)]),
        "tilec_kernel_grid": (I, [P, P, I, ctypes.POINTER(ctypes.c_uint32 * 3)]),
        "tilec_launch": (I, [P, P, P, I, P]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    _lib = lib
    return lib


def version():
    return library().tilec_version().decode()


def _check(status):
    if status:
        raise TilecError(status, library().tilec_errmsg(None).decode(errors="replace"))


def _text(v):
    return v.encode() if isinstance(v, str) else v


class Tensor:
    """A raw device tensor: address, shape, strides in elements (None: contiguous)."""

    def __init__(self, ptr, shape, strides=None):
        self.ptr, self.shape = int(ptr), tuple(int(s) for s in shape)
        self.strides = None if strides is None else tuple(int(s) for s in strides)


def _capsule_tensor(capsule):
    """The DLTensor of a DLPack capsule (legacy "dltensor" or versioned)."""
    api = ctypes.pythonapi
    api.PyCapsule_IsValid.restype, api.PyCapsule_IsValid.argtypes = ctypes.c_int, [ctypes.py_object, ctypes.c_char_p]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    if api.PyCapsule_IsValid(capsule, b"dltensor_versioned"):
        p = api.PyCapsule_GetPointer(capsule, b"dltensor_versioned")
        return ctypes.cast(p, ctypes.POINTER(_DLManagedTensorVersioned)).contents.dl_tensor
    if api.PyCapsule_IsValid(capsule, b"dltensor"):
        p = api.PyCapsule_GetPointer(capsule, b"dltensor")
        return ctypes.cast(p, ctypes.POINTER(_DLTensor)).contents  # DLTensor comes first
    raise TypeError("not a DLPack capsule (or one already consumed)")


def _from_dlpack(x, allow_host=False):
    """(address, shape, strides, keep-alive) of a DLPack-compatible tensor on a CUDA device."""
    capsule = x.__dlpack__()
    t = _capsule_tensor(capsule)
    dev = t.device.device_type
    if dev not in (_KDL_CUDA, _KDL_CUDA_MANAGED) and not (allow_host and dev == _KDL_CPU):
        raise TypeError(f"tensor is not on a CUDA device (DLPack device type {dev})")
    shape = tuple(t.shape[i] for i in range(t.ndim))
    strides = tuple(t.strides[i] for i in range(t.ndim)) if t.strides else None
    return (t.data or 0) + t.byte_offset, shape, strides, capsule


def _arg(x, allow_host, keep):
    a = _Arg()
    if isinstance(x, bool) or isinstance(x, int):
        a.kind, a.i = _SCALAR, int(x)
        return a
    if isinstance(x, float):
        a.kind, a.is_float, a.f = _SCALAR, 1, x
        return a
    if isinstance(x, Tensor):
        ptr, shape, strides = x.ptr, x.shape, x.strides
    elif hasattr(x, "__dlpack__"):
        ptr, shape, strides, capsule = _from_dlpack(x, allow_host)
        keep.append(capsule)
    elif hasattr(x, "__cuda_array_interface__"):
        cai = x.__cuda_array_interface__
        ptr, shape = cai["data"][0], cai["shape"]
        item = int(cai["typestr"][2:])
        strides = None if cai.get("strides") is None else tuple(s // item for s in cai["strides"])
    else:
        raise TypeError(f"cannot pass {type(x).__name__} to a kernel: use a DLPack tensor, an "
                        "object with __cuda_array_interface__, tilec.Tensor, int or float")
    if len(shape) == 0:  # a pointer argument (index arrays of layouts) given as a 0-d view
        a.kind, a.ptr = _PTR, ptr
        return a
    if len(shape) > _MAX_RANK:
        raise TypeError(f"rank {len(shape)} is above {_MAX_RANK}")
    a.kind, a.ptr, a.rank = _TENSOR, ptr, len(shape)
    for i, s in enumerate(shape):
        a.shape[i] = s
        a.stride[i] = strides[i] if strides else 0
    return a


class Kernel:
    """A loaded kernel. Call it with its launch arguments (const parameters left out)."""

    def __init__(self, ctx, handle):
        self._ctx, self._h = ctx, handle

    def __del__(self):
        self.release()

    def release(self):
        if getattr(self, "_h", None):
            library().tilec_kernel_release(self._h)
            self._h = None

    @property
    def info(self):
        i = _KernelInfo(size=ctypes.sizeof(_KernelInfo))
        _check(library().tilec_kernel_info_get(self._h, ctypes.byref(i)))
        return {"name": i.name.decode(), "config": i.config.decode(), "bucket": i.bucket.decode(),
                "entry": i.entry.decode(), "origin": _ORIGIN[i.origin] if i.origin < len(_ORIGIN) else str(i.origin), "nargs": i.nargs,
                "threads": i.threads, "smem_bytes": i.smem_bytes, "load_ms": i.load_ms,
                "aligned": bool(i.flags & KERNEL_ALIGNED)}

    def value(self, name):
        v = ctypes.c_int64()
        _check(library().tilec_kernel_value(self._h, _text(name), ctypes.byref(v)))
        return v.value

    def _args(self, args, allow_host, keep):
        arr = (_Arg * max(len(args), 1))(*[_arg(a, allow_host, keep) for a in args])
        return arr

    def grid(self, *args, allow_host=False):
        keep = []
        arr = self._args(args, allow_host, keep)
        g = (ctypes.c_uint32 * 3)()
        _check(library().tilec_kernel_grid(self._h, arr, len(args), ctypes.byref(g)))
        return tuple(g)

    def __call__(self, *args, stream=None, allow_host=False):
        """Launches on stream (a CUstream as int; None: the context's stream). allow_host lets
        CPU DLPack tensors through (the fake driver's memory is host memory; tests only)."""
        keep = []
        arr = self._args(args, allow_host, keep)
        _check(library().tilec_launch(self._ctx._h, self._h, arr, len(args), stream))


class Context:
    """A tilec context on a device (or adopting the current CUDA context with adopt=True)."""

    def __init__(self, device=0, db=None, readonly=False, no_db=False, adopt=False, stream=None,
                 cache_capacity=0, arch=None, no_gpu=False, nearest=0.0):
        lib = library()
        o = _ContextOpts()
        lib.tilec_context_opts_init(ctypes.byref(o))
        o.device = device
        o.flags = ((CONTEXT_READONLY if readonly else 0) | (CONTEXT_NO_DB if no_db else 0) |
                   (CONTEXT_ADOPT if adopt else 0) | (CONTEXT_NO_GPU if no_gpu else 0))
        o.cu_stream = stream
        self._db = _text(db)
        self._arch = _text(arch)
        o.db_path = self._db
        o.arch = self._arch
        if cache_capacity:
            o.cache_capacity = cache_capacity
        o.nearest = nearest
        h = ctypes.c_void_p()
        _check(lib.tilec_context_create(ctypes.byref(o), ctypes.byref(h)))
        self._h = h

    def __del__(self):
        self.close()

    def close(self):
        if getattr(self, "_h", None):
            library().tilec_context_destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def info(self):
        i = _ContextInfo(size=ctypes.sizeof(_ContextInfo))
        _check(library().tilec_context_info_get(self._h, ctypes.byref(i)))
        return {f: (getattr(i, f).decode() if isinstance(getattr(i, f), bytes) else getattr(i, f))
                for f, _ in _ContextInfo._fields_ if f != "size"}

    def set_cache_capacity(self, n):
        _check(library().tilec_context_set_cache_capacity(self._h, n))

    @staticmethod
    def _request(name=None, shape=None, dtype=None, config=None, source=None, aligned=False,
                 nowait=False):
        if isinstance(shape, dict):
            shape = ",".join(f"{k}={v}" for k, v in shape.items())
        if isinstance(config, dict):
            config = ",".join(f"{k}={v}" for k, v in config.items())
        return _Request(size=ctypes.sizeof(_Request), kernel=_text(name), source=_text(source),
                        shape=_text(shape), dtype=_text(dtype), config=_text(config),
                        flags=(KERNEL_ALIGNED if aligned else 0) | (KERNEL_NOWAIT if nowait else 0))

    def kernel(self, name=None, shape=None, dtype=None, config=None, source=None, aligned=False,
               nowait=False):
        """The kernel for a problem: shape as "M=..,N=.." or a dict; config pins tunables;
        aligned=True gets the aligned variant (TILEC_KERNEL_ALIGNED: every launch must pass
        16-byte aligned tensors with 16-byte multiple strides and last extent); nowait=True
        returns None at once on a miss and gets the kernel in the background
        (TILEC_KERNEL_NOWAIT: ask again later)."""
        r = self._request(name, shape, dtype, config, source, aligned, nowait)
        h = ctypes.c_void_p()
        status = library().tilec_kernel_get(self._h, ctypes.byref(r), ctypes.byref(h))
        if nowait and status == _BUSY:
            return None
        _check(status)
        return Kernel(self, h)

    def kernels(self, requests, threads=0):
        """Many kernels at once (tilec_kernel_get_many): requests is a list of dicts of kernel()'s
        arguments; the misses compile in parallel on `threads` threads (0: one per CPU). Raises
        TilecError for the first failing request (its message starts "request i: ")."""
        reqs = [self._request(**q) for q in requests]
        n = len(reqs)
        ptrs = (ctypes.c_void_p * max(n, 1))(*[ctypes.addressof(r) for r in reqs])
        out = (ctypes.c_void_p * max(n, 1))()
        failed = ctypes.c_int(-1)
        status = library().tilec_kernel_get_many(self._h, ptrs, n, out, threads,
                                                 ctypes.byref(failed))
        kernels = [Kernel(self, ctypes.c_void_p(out[i])) if out[i] else None for i in range(n)]
        if status:
            msg = library().tilec_errmsg(None).decode(errors="replace")
            for k in kernels:  # the others were returned: release them
                if k is not None:
                    k.release()
            raise TilecError(status, msg)
        return kernels
