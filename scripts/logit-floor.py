#!/usr/bin/env python3
"""The rounding's cross-entropy floor of checkpoints: how well a perfect estimate can score.

    scripts/logit-floor.py CHECKPOINT_DIR [CHECKPOINT_DIR ...]

For every piece y, the exact clean latent sqrt(D) E[y] is rounded as the model rounds (logits =
z . E^T with unit-norm rows of E, times the learned logit scale when the checkpoint has one), and
the cross-entropy against y is averaged over the vocabulary. Also prints p(own piece), the mean
cosine to the nearest other piece, and the floor with the logits doubled. Reads weights.pt with
Debian's python3-torch.
"""
import math
import sys

import torch


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) >= 2 else 2
    for checkpoint in sys.argv[1:]:
        weights = dict(torch.jit.load(f"{checkpoint}/weights.pt").named_parameters())
        table = weights["embedding.weight"].float()
        table = table / table.norm(dim=1, keepdim=True).clamp_min(1e-6)
        pieces, width = table.shape
        scale = weights["log_logit_scale"].float().exp().item() if "log_logit_scale" in weights else 1.0
        logits = scale * math.sqrt(width) * table @ table.t()
        own = torch.arange(pieces)
        floor = torch.nn.functional.cross_entropy(logits, own).item()
        doubled = torch.nn.functional.cross_entropy(2 * logits, own).item()
        p_own = torch.softmax(logits, -1).diag()
        nearest = (table @ table.t()).fill_diagonal_(-2).max(1).values.mean().item()
        print(f"{checkpoint}: {pieces} pieces, d_latent {width}, logit scale {scale:.3f}: "
              f"CE floor {floor:.3f} nats, p(own) mean {p_own.mean():.3f} min {p_own.min():.3f}, "
              f"nearest other piece cos {nearest:.3f}, floor with logits x2 {doubled:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
