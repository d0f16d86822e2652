"""Issue 24, item 1: random opcode streams over the allow-listed globals never crash the
restricted unpickler, never run code and never allocate past its budget.

The loader runs in one long-lived child process (a crash there must not take pytest down)
under an address-space limit; the child answers one line per pickle. Examples are derived
deterministically (derandomize) so CI sees the same streams every run.
"""
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_WORKER = r"""
import io, struct, sys, resource
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
import torch  # before the limit bites: the trusted loader builds tensors
from d2m_bench.io.safe_pickle import Unpickler, TorchUnpickler, budget_for
from d2m_bench.training.checkpoint import _stub
out = sys.stdout
while True:
    head = sys.stdin.buffer.read(4)
    if len(head) < 4:
        break
    data = sys.stdin.buffer.read(struct.unpack("<I", head)[0])
    answers = []
    for make in (lambda f: Unpickler(f, budget=budget_for(len(data))),
                 lambda f: TorchUnpickler(f, budget=budget_for(len(data)), stub=_stub)):
        try:
            make(io.BytesIO(data)).load()
            answers.append("ok")
        except MemoryError:
            answers.append("MEMORY")
        except RecursionError:
            answers.append("refused:RecursionError")
        except Exception as exc:
            answers.append("refused:" + type(exc).__name__)
    out.write(" ".join(answers) + "\n")
    out.flush()
"""


class _Worker:
    def __init__(self):
        self.proc = None

    def ask(self, data: bytes) -> str:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.proc.stdin.write(struct.pack("<I", len(data)) + data)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().decode()
        if not line:
            rc = self.proc.wait()
            self.proc = None
            return f"DIED rc={rc}"
        return line.strip()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = _Worker()
    yield w
    w.close()


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _global(module, name) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


_GLOBALS = [("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"),
            ("numpy.dtypes", "Float64DType"), ("numpy.dtypes", "VoidDType"), ("builtins", "bytearray"),
            ("builtins", "set"), ("builtins", "complex"), ("builtins", "slice"), ("_codecs", "encode"),
            ("collections", "OrderedDict"), ("copyreg", "_reconstructor"), ("builtins", "object"),
            ("builtins", "dict"), ("builtins", "list"), ("torch", "Size"), ("torch", "FloatStorage"),
            ("torch", "Tensor"), ("torch.storage", "UntypedStorage"), ("torch._utils", "_rebuild_tensor_v2"),
            ("torch._utils", "_rebuild_parameter"), ("torch._tensor", "_rebuild_from_type_v2"),
            ("torch.nn.parameter", "Parameter"), ("torch._utils", "_rebuild_qtensor"),
            ("os", "system"), ("builtins", "eval"), ("builtins", "getattr")]

_ATOMS = st.one_of(
    st.sampled_from(_GLOBALS).map(lambda g: _global(*g)),
    st.sampled_from(["V8", "O8", "i8", "f4", "?", "S3", "U2", "M8[s]", "<", "|", "a", "b", "latin1", "utf-8",
                     "touch /tmp/d2m-fuzz-ran"]).map(_s),
    st.integers(-2**31, 2**31 - 1).map(lambda i: b"J" + struct.pack("<i", i)),
    st.sampled_from([0, 1, 3, 8, 63, 2**33, 2**40]).map(lambda i: b"\x8a\x08" + struct.pack("<q", i)),
    st.binary(max_size=24).map(lambda b: b"C" + bytes([len(b)]) + b),
    st.integers(0, 6).map(lambda i: b"q" + bytes([i])),   # BINPUT
    st.integers(0, 6).map(lambda i: b"h" + bytes([i])),   # BINGET
    st.sampled_from([b"(", b")", b"t", b"\x85", b"\x86", b"\x87", b"}", b"]", b"N", b"\x88", b"\x89",
                     b"R", b"b", b"\x81", b"\x92", b"s", b"u", b"a", b"e", b"0", b"\x8f", b"\x90", b"\x91",
                     b"\x94", b"l", b"d", b"o", b"2", b"1"]),
)

# Fragments of real attacks, so that the search starts close to them.
_DTYPE_STATE = st.sampled_from([
    b"(J\x03\x00\x00\x00X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffJ\x00\x00\x00\x00t",
    b"(J\x03\x00\x00\x00X\x01\x00\x00\x00|N(X\x01\x00\x00\x00at}X\x01\x00\x00\x00ah\x00J\x00\x00\x00\x00\x86s"
    b"J\x08\x00\x00\x00J\x01\x00\x00\x00J?\x00\x00\x00t",
])


# Well-formed programs: every node leaves exactly one value on the stack, so the search spends
# its time on what the values are (calls, states, shared memo entries), not on stack errors.
_LEAF = st.one_of(
    st.sampled_from(_GLOBALS).map(lambda g: _global(*g)),
    st.sampled_from(["V8", "O8", "i8", "f8", "b1", "?", "S3", "<", "|", "a", "latin1"]).map(_s),
    st.sampled_from([-1, 0, 1, 3, 8, 16, 63, 2**33]).map(lambda i: b"\x8a\x08" + struct.pack("<q", i)),
    st.binary(max_size=16).map(lambda b: b"C" + bytes([len(b)]) + b),
    st.sampled_from([b"N", b"\x88", b"\x89", b"}", b"]", b")"]),
    st.integers(0, 4).map(lambda i: b"h" + bytes([i])),  # a memo entry, maybe not there yet
    _DTYPE_STATE,
)


def _node(children):
    many = st.lists(children, max_size=5)
    return st.one_of(
        many.map(lambda xs: b"(" + b"".join(xs) + b"t"),                                  # tuple
        st.tuples(children, many).map(lambda t: t[0] + b"(" + b"".join(t[1]) + b"tR"),     # call
        st.tuples(children, children).map(lambda t: t[0] + t[1] + b"b"),                  # BUILD
        st.tuples(children, many).map(lambda t: t[0] + b"(" + b"".join(t[1]) + b"t\x81"),  # NEWOBJ
        st.tuples(children, children, children).map(lambda t: t[0] + t[1] + t[2] + b"s"),  # SETITEM
        st.tuples(children, many).map(lambda t: t[0] + b"(" + b"".join(t[1]) + b"e"),      # APPENDS
        st.tuples(children, st.integers(0, 4)).map(lambda t: t[0] + b"q" + bytes([t[1]])),  # BINPUT
    )


_PROGRAM = st.recursive(_LEAF, _node, max_leaves=24)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_PROGRAM)
def test_well_formed_programs_never_crash_run_code_or_exhaust_memory(worker, program):
    data = b"\x80\x02" + program + b"."
    answer = worker.ask(data)
    assert not answer.startswith("DIED"), f"the unpickler crashed ({answer}) on {data!r}"
    assert "MEMORY" not in answer, f"a pickle of {len(data)} bytes exhausted memory: {data!r}"
    assert all(a == "ok" or a.startswith("refused:") for a in answer.split()), answer
    assert not os.path.exists("/tmp/d2m-fuzz-ran")


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(_ATOMS, _DTYPE_STATE), min_size=1, max_size=40))
def test_random_opcode_streams_never_crash_run_code_or_exhaust_memory(worker, parts):
    data = b"\x80\x02" + b"".join(parts) + b"."
    answer = worker.ask(data)
    assert not answer.startswith("DIED"), f"the unpickler crashed ({answer}) on {data!r}"
    assert "MEMORY" not in answer, f"a pickle of {len(data)} bytes exhausted memory: {data!r}"
    assert all(a == "ok" or a.startswith("refused:") for a in answer.split()), answer
    assert not os.path.exists("/tmp/d2m-fuzz-ran")


def test_the_worker_sees_the_known_attacks(worker):
    """The harness itself can fail: the dtype swap crashes a plain pickle.loads child."""
    from d2m_bench_tests.helpers import bytearray_bomb_pickle, dtype_swap_pickle, run_python

    assert worker.ask(dtype_swap_pickle()) == "refused:Refused refused:Refused"
    assert worker.ask(bytearray_bomb_pickle()) == "refused:Refused refused:Refused"
    crashed = run_python("import pickle, sys; print(pickle.loads(bytes.fromhex(sys.argv[1])))",
                         dtype_swap_pickle().hex())
    assert crashed.returncode < 0
