"""The high-resolution benchmark compares like with like: on small grids our readouts give the plain
full-volume pipeline's outputs (benchmarks/highres_impls.py), and its goals table reads a benchmark JSON."""
import pytest
import torch

pytest.importorskip("timm", reason="timm is a declared dependency (requirements.txt); install it")

from benchmarks import bench_highres  # noqa: E402
from benchmarks import highres_impls as impls  # noqa: E402


@pytest.mark.parametrize("grid", [9, 16])
def test_ours_equals_plain(grid):
    fs, ft = impls.make_inputs(grid, C=24, seed=grid)
    torch.testing.assert_close(impls.ours(fs, ft), impls.plain(fs, ft), rtol=0, atol=1e-4)
    torch.testing.assert_close(impls.ours_consensus(fs, ft), impls.plain_consensus(fs, ft), rtol=0, atol=1e-4)


def test_goals_table():
    def row(impl, grid, t, peak):
        return {"stats": {"min": t}, "extra_info": dict(op="highres", impl=impl, grid=grid, volume_bytes=grid ** 4 * 4,
                                                        peak_extra_bytes=peak)}

    vol = 100 ** 4 * 4
    lines = bench_highres.goals([row("ours", 100, 1.0, vol // 20), row("plain", 100, 1.5, 4 * vol),
                                 row("ours_consensus", 100, 2.0, vol), row("plain_consensus", 100, 3.0, 5 * vol),
                                 {"stats": {"min": 1}, "extra_info": {"op": "corr4d"}}])
    text = "\n".join(lines)
    assert "| 100x100 | no | 1.50 | 0.013 | yes |" in text
    assert "| 100x100 | yes | 1.50 | 0.200 | no |" in text
    # 16 bytes per cell: (24 GiB / 16) ** 0.25 = 200.3
    assert "| no | 100x100 | 16.0 | 200x200 |" in text
    assert bench_highres.goals([]) == []
