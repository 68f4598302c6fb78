"""Point-cloud models export with a dynamic batch (pt2 and ONNX).

Oracles: a brute-force kNN in exact integer arithmetic (equal distances in index order) for the
neighbour search inside an ONNX program, on grid clouds full of exact ties; the eager model for
the exported programs, at batch sizes other than the example's and with the work split into
blocks (eager's blocks depend on the batch size, the program's do not).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ckconv.functional.pointconv as pointconv
from ckconv.deploy import export_onnx, export_pt2
from ckconv.functional.neighbors import block_rows, knn
from ckconv.models import PointCCNN


class _Knn(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return knn(points, points, self.k, backend="torch").index


def _grid_clouds(batch: int) -> torch.Tensor:
    """``(batch, 20, 2)`` clouds of a 5 x 4 integer grid, each in its own point order."""
    ij = torch.cartesian_prod(torch.arange(5), torch.arange(4)).float()
    g = torch.Generator().manual_seed(batch)
    return torch.stack([ij[torch.randperm(20, generator=g)] for _ in range(batch)])


def _brute_force(points: torch.Tensor, k: int) -> list:
    """Per cloud and point, the k nearest by (squared distance, index), in integers."""
    out = []
    for cloud in points.long().tolist():
        rows = []
        for q in cloud:
            d2 = [((q[0] - s[0]) ** 2 + (q[1] - s[1]) ** 2, j) for j, s in enumerate(cloud)]
            rows.append([j for _, j in sorted(d2)[:k]])
        out.append(rows)
    return out


@pytest.mark.parametrize("k", [3, pytest.param(5, marks=pytest.mark.slow)])
def test_knn_in_onnx_orders_ties_by_index(tmp_path, k):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = export_onnx(_Knn(k), tmp_path / "knn.onnx", _grid_clouds(2))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        clouds = _grid_clouds(batch)
        (got,) = session.run(None, {"input": clouds.numpy()})
        expected = _brute_force(clouds, k)
        assert got.tolist() == expected
        assert _Knn(k)(clouds).tolist() == expected  # eager: the same rule


def test_block_rows_leave_the_batch_out_only_under_export():
    assert block_rows(1000, 4, 10, 100) == 25
    assert block_rows(1000, 4, 10, 8) == 8
    assert block_rows(10, 4, 10, 8) == 1
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(block_rows(1000, x.shape[0], 10, 100))
            return x + 1

    torch.export.export(
        Probe(), (torch.zeros(4, 3),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    assert seen == [100]


def _small_model() -> PointCCNN:
    torch.manual_seed(0)
    model = PointCCNN.preset(
        "ccnn_4_16", in_channels=3, out_channels=4, num_blocks=2, num_neighbors=6
    )
    return model.eval()


@pytest.mark.parametrize("fmt", ["pt2", pytest.param("onnx", marks=pytest.mark.slow)])
def test_point_ccnn_exports_with_a_dynamic_batch(tmp_path, monkeypatch, fmt):
    """With a budget of 4096 values per block, eager splits 48 points x 6 neighbours x 16
    channels into blocks of 42 // B rows; the program into blocks of 42 rows at any batch."""
    monkeypatch.setattr(pointconv, "AUTO_CHUNK_ELEMENTS", 4096)
    model = _small_model()
    example = torch.randn(2, 3, 48)
    if fmt == "pt2":
        export_pt2(model, tmp_path / "m.pt2", example)
        program = torch.export.load(tmp_path / "m.pt2").module()

        def run(x):
            return program(x)
    else:
        ort = pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
        export_onnx(model, tmp_path / "m.onnx", example)
        session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])

        def run(x):
            return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])

    torch.manual_seed(1)
    for batch in (3, 5):
        x = torch.randn(batch, 3, 48)
        with torch.no_grad():
            torch.testing.assert_close(run(x), model(x), rtol=1e-4, atol=1e-5)


def test_cloud_normalize_is_the_readers_normalisation():
    """Oracle: :func:`ckconv.data.modelnet.normalize_points` on each cloud in float64 numpy
    (and unit normals); idempotent, so clouds normalised already pass unchanged."""
    import numpy as np

    from ckconv.data.modelnet import normalize_points
    from ckconv.deploy import CloudNormalize

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 50, generator=g, dtype=torch.float64)  # xyz, normals, one more row
    x[:, :3] = x[:, :3] * torch.tensor([0.2, 3.0, 40.0]).reshape(3, 1, 1) + 5.0
    x[2, :3] = 1.5  # one repeated point: only centred
    x[2, 3:6, 0] = 0.0  # a zero normal stays zero
    got = CloudNormalize(unit_ball=True, unit_normals=True)(x)
    for b in range(3):
        cloud = x[b].numpy().T
        want = normalize_points(cloud[:, :3])
        n = np.linalg.norm(cloud[:, 3:6], axis=1, keepdims=True)
        normals = cloud[:, 3:6] / np.where(n > 0, n, 1.0)
        np.testing.assert_allclose(got[b, :3].numpy().T, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[b, 3:6].numpy().T, normals, rtol=1e-12, atol=1e-12)
    assert torch.equal(got[:, 6], x[:, 6])
    assert torch.equal(got[2, :3], torch.zeros(3, 50, dtype=torch.float64))
    torch.testing.assert_close(CloudNormalize(True, True)(got), got)
    only_positions = CloudNormalize(unit_ball=True, unit_normals=False)(x)
    assert torch.equal(only_positions[:, 3:], x[:, 3:])
    assert CloudNormalize(True, True)(x[:, :3]).shape == (3, 3, 50)  # positions only
