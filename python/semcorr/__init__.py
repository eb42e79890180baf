"""semcorr: semantic-correspondence models, data and evaluation built on the `semcorr_ext` ops.

    from semcorr.models import build_model
    from semcorr.data.sample import sample_pair

    pair = sample_pair()                      # a photo and a known warp of it
    model = build_model("nn")                 # nearest neighbour on DAISY descriptors
    src, tgt = pair.tensors()
    matches = model.match(src, tgt)           # semcorr.models.Matches
    src_kps, tgt_kps_true = pair.kps_tensors()
    tgt_kps = matches.transfer_keypoints(src_kps)  # (1, N, 2) target pixels

Command line: ``semcorr match`` (or ``python -m semcorr match``).

Importing this package is cheap: subpackages (and the compiled ops) load when used.
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
