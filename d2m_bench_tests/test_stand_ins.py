"""The import-time stand-ins for packages a backend library imports but d2m-bench never calls:
they import in every form libraries use, refuse loudly when used, never replace an installed
package, carry the real objects given to them, and leave nothing behind."""
import sys

import pytest

from d2m_bench.embedders.stand_ins import stand_ins

ABSENT = "d2m_bench_absent_pkg"  # a top-level name no machine has


def test_every_import_form_works_and_use_raises():
    with stand_ins({ABSENT: "needed only for images"}) as absent:
        assert absent == {ABSENT}
        import d2m_bench_absent_pkg.transforms.functional as F
        from d2m_bench_absent_pkg.ops.misc import FrozenBatchNorm2d
        from d2m_bench_absent_pkg.transforms import InterpolationMode

        table = {InterpolationMode.NEAREST: "nearest"}  # module-level use seen in timm
        assert len(table) == 1

        class Sub(FrozenBatchNorm2d):  # subclassing at import time must work too
            pass

        for use in (lambda: F.resize(1, 2), lambda: FrozenBatchNorm2d(4), lambda: Sub(),
                    lambda: InterpolationMode.BILINEAR("x")):
            with pytest.raises(ImportError, match="needed only for images"):
                use()
    assert not [m for m in sys.modules if m.split(".")[0] == ABSENT]
    with pytest.raises(ImportError):
        __import__(ABSENT)


def test_installed_packages_are_never_replaced():
    import json

    with stand_ins({"json": "never"}) as absent:
        import json as again

        assert absent == set()
        assert again is json and again.dumps([1]) == "[1]"


def test_provided_objects_are_real():
    def mel_banks(n):
        return n * 2

    with stand_ins({ABSENT: "absent"}, provided={f"{ABSENT}.compliance.kaldi.get_mel_banks": mel_banks}):
        from d2m_bench_absent_pkg.compliance import kaldi

        assert kaldi.get_mel_banks(3) == 6
        with pytest.raises(ImportError, match="absent"):
            kaldi.resample_waveform(1)
