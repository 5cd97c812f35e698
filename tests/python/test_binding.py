"""tests/python/test_binding.py LIBTILEC FAKECUDA — the ctypes binding (python/tilec) over the
fake driver: version, errors as TilecError with the status, a kernel from a dict shape, its
info, launches with raw device pointers and with DLPack tensors (numpy's, on the CPU: refused
unless allow_host, which the fake's host-memory device allows), and argument errors."""
import ctypes
import time
import os
import sys

lib, fake = sys.argv[1], sys.argv[2]
os.environ["TILEC_LIBRARY"] = lib
os.environ["TILEC_LIBCUDA"] = fake
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import tilec  # noqa: E402

failed = 0


def check(cond, what):
    global failed
    if not cond:
        failed += 1
        print("FAILED:", what)


def raises(status, fn, needle=""):
    try:
        fn()
    except tilec.TilecError as e:
        check(e.status == status and needle in str(e), f"{status} {needle!r}: got {e}")
        return
    check(False, f"expected TilecError {status}")


# The binding's structs are the library's: what the library's *_init writes as the size (into a
# buffer larger than any of them) is the ctypes struct's size. A smaller ctypes struct would let
# the library write past it.
for init, struct in (("tilec_context_opts_init", tilec._ContextOpts),
                     ("tilec_kernel_request_init", tilec._Request)):
    buf = (ctypes.c_size_t * 64)()
    fn = getattr(tilec.library(), init)
    fn.restype, fn.argtypes = None, [ctypes.c_void_p]
    fn(ctypes.byref(buf))
    check(buf[0] == ctypes.sizeof(struct), f"{init}: size {buf[0]} != {ctypes.sizeof(struct)}")

check(tilec.version() == "0.1.0", "version")
raises("arg", lambda: tilec.Context(no_gpu=True, no_db=True), "arch")
ctx = tilec.Context(no_db=True)
info = ctx.info
check(info["device"].startswith("Fake GPU|sm_90"), info)
raises("not_found", lambda: ctx.kernel("matmool", shape="M=8"), "matmool")
raises("shape", lambda: ctx.kernel("matmul", shape={"M": 64, "N": 64, "K": 64},
                                   config="BM=100"), "BM")
k = ctx.kernel("matmul", shape={"M": 64, "N": 64, "K": 64},
               config={"BM": 32, "BN": 32, "BK": 32, "WARPS": 4, "STAGES": 2, "GROUP_M": 1})
ki = k.info
check(ki["origin"] == "explicit" and ki["nargs"] == 3 and ki["threads"] == 128, ki)
check(k.value("BM") == 32, "value")
raises("not_found", lambda: k.value("NOPE"))

live = ctypes.CDLL(fake).fakecuda_live
live.restype, live.argtypes = ctypes.c_long, [ctypes.c_char_p]
n0 = live(b"launches")
t = [tilec.Tensor(0x1000 * (i + 1), (64, 64)) for i in range(3)]
check(k.grid(*t) == (4, 1, 1), k.grid(*t))
k(*t)
check(live(b"launches") == n0 + 1, "a launch reached the driver")
raises("shape", lambda: k(t[0], t[1]), "takes 3 launch arguments")
raises("shape", lambda: k(t[0], t[1], tilec.Tensor(0x3000, (64, 65))), "tensor 'C'")
ka = ctx.kernel("matmul", shape={"M": 64, "N": 64, "K": 64}, aligned=True,
                config={"BM": 32, "BN": 32, "BK": 32, "WARPS": 4, "STAGES": 2, "GROUP_M": 1})
check(ka.info["aligned"] and not ki["aligned"], "aligned variant")
ka(*t)
raises("arg", lambda: ka(t[0], tilec.Tensor(0x2008, (64, 64)), t[2]), "tensor 'B' breaks")
check(live(b"launches") == n0 + 2, "the misaligned launch never reached the driver")
cfg2 = {"BM": 64, "BN": 32, "BK": 32, "WARPS": 4, "STAGES": 2, "GROUP_M": 1}
ks = ctx.kernels([dict(name="matmul", shape="M=64,N=64,K=64", config=cfg2),
                  dict(name="matmul", shape="M=64,N=64,K=64", config=cfg2, aligned=True)],
                 threads=2)
check(len(ks) == 2 and not ks[0].info["aligned"] and ks[1].info["aligned"], "kernels()")
# nowait: None while the background compile runs, then the kernel (same as a blocking get's)
cfg3 = {"BM": 32, "BN": 64, "BK": 32, "WARPS": 2, "STAGES": 2, "GROUP_M": 1}
check(ctx.kernel("matmul", shape="M=64,N=64,K=64", config=cfg3, nowait=True) is None, "nowait miss")
check(ctx.info["pending"] == 1, ctx.info)
kn, t0 = None, time.time()
while kn is None and time.time() - t0 < 120:
    kn = ctx.kernel("matmul", shape="M=64,N=64,K=64", config=cfg3, nowait=True)
    time.sleep(0.005)
check(kn is not None and "BN=64" in kn.info["config"], "nowait kernel")
kn(*t)
raises("not_found", lambda: ctx.kernels([dict(name="matmul", shape="M=64,N=64,K=64"),
                                         dict(name="matmool", shape="M=8")]), "request 1: ")
try:
    k(t[0], t[1], "C")
    check(False, "a string argument")
except TypeError as e:
    check("cannot pass str" in str(e), e)

try:
    import numpy as np
except ImportError:
    np = None
if np is not None:
    a = np.zeros((64, 64), dtype=np.float32)
    b = np.zeros((64, 64), dtype=np.float32)
    c = np.zeros((64, 128), dtype=np.float32)[:, :64]  # strided view: row stride 128
    try:
        k(a, b, c)
        check(False, "CPU DLPack tensor accepted")
    except TypeError as e:
        check("not on a CUDA device" in str(e), e)
    k(a, b, c, allow_host=True)
    check(live(b"launches") == n0 + 4, "DLPack launch")
    ptr, shape, strides, _ = tilec._from_dlpack(c, allow_host=True)
    check(ptr == c.ctypes.data and shape == (64, 64) and strides in (None, (128, 1)),
          (ptr, shape, strides))
k.release()
ctx.close()
print("python binding:", "FAILED" if failed else "ok")
sys.exit(1 if failed else 0)
