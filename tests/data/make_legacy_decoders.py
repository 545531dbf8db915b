"""Writes legacy_decoders.pt: the hand-written U-Net and FPN decoders as commit 9f20bf3 built them
(state dicts with random BatchNorm statistics, inputs, eval-mode logits), so tests/test_seg_decoder.py
can check that today's ``unet`` / ``fpn`` load those weights and compute the same logits.

    git show 9f20bf3:foodmtl/models/seg_decoder.py > /tmp/old_seg_decoder.py
    python tests/data/make_legacy_decoders.py /tmp/old_seg_decoder.py tests/data/legacy_decoders.pt
"""
import importlib.util
import sys

import torch


def main(old_source: str, out_path: str) -> None:
    spec = importlib.util.spec_from_file_location("old_seg_decoder", old_source)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    torch.manual_seed(0)
    channels, reductions, out_hw = [8, 16, 32], [4, 8, 16], (22, 18)
    maps = [torch.randn(1, 8, 6, 5), torch.randn(1, 16, 3, 3), torch.randn(1, 32, 2, 2)]  # odd sizes round up
    saved = {"channels": channels, "reductions": reductions, "maps": maps, "out_hw": list(out_hw)}
    for kind in ("unet", "fpn"):
        decoder = old.build_decoder(kind, channels, reductions, 3, width=8)
        for m in decoder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
                m.weight.data.normal_()
                m.bias.data.normal_()
        decoder.eval()
        with torch.no_grad():
            saved[kind] = {"state_dict": decoder.state_dict(), "logits": decoder(maps, out_hw)}
    torch.save(saved, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:3])
