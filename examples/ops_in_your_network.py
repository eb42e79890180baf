"""Use the semcorr_ext ops inside your own network: a small NC-Net-style matcher trained for a few steps.

    python examples/ops_in_your_network.py

Features (a frozen random CNN here; yours in practice) -> ops.corr4d (cosine 4D correlation, fused) ->
ops.mutual_matching -> semcorr_ext.nn.NeighConsensus (4D convolutions) -> ops.mutual_matching ->
ops.kernel_soft_argmax (differentiable match field). Every op has autograd, so the consensus learns from a loss
on the match field: here, the known warp of the bundled sample pair.
"""
import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops
from semcorr_ext.nn import NeighConsensus


class TinyMatcher(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 5, stride=4, padding=2), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, stride=2, padding=1))
        self.features.requires_grad_(False)
        self.consensus = NeighConsensus(kernel_sizes=(3, 3), channels=(4, 1))

    def forward(self, src, tgt):
        corr = ops.corr4d(self.features(src), self.features(tgt))           # (B, Hs, Ws, Ht, Wt), fused L2 norm
        corr = ops.mutual_matching(corr.relu())
        corr = ops.mutual_matching(self.consensus(corr[:, None])[:, 0])
        return ops.kernel_soft_argmax(corr, beta=50.0, sigma=None, normalize=True)  # (B, Hs, Ws, 2) in [-1, 1]


def main(steps: int = 20):
    from semcorr.data.sample import sample_pair

    torch.manual_seed(0)
    pair = sample_pair(seed=0, size=96)
    src, tgt = pair.tensors()
    model = TinyMatcher()
    with torch.no_grad():
        Hs, Ws = model(src, tgt).shape[1:3]
    # target of every source cell centre under the known warp, normalised like the field
    grid = flow.grid_coords(Hs, Ws, (96, 96))
    centres = flow.unnormalize_coords(grid, (96, 96)).reshape(-1, 2).numpy()
    true = torch.from_numpy(pair.warp.forward(centres)).float().reshape(1, Hs, Ws, 2)
    # kernel_soft_argmax's field is normalised over the target grid's cell centres: bring the truth there
    true = flow.image_to_grid_coords(flow.normalize_coords(true, (96, 96)), (Hs, Ws), (96, 96))
    inside = (true.abs() <= 1).all(-1)
    optimizer = torch.optim.Adam(model.consensus.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = F.smooth_l1_loss(model(src, tgt)[inside], true[inside])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print("loss: %.4f -> %.4f after %d steps" % (losses[0], losses[-1], steps))
    return losses


if __name__ == "__main__":
    main()
