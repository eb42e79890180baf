"""The op-contract table: one row per public op (tests/op_contract.py), by family as in semcorr_ext.ops."""
from op_rows_consensus import ROWS as CONSENSUS
from op_rows_correlation import ROWS as CORRELATION
from op_rows_hough import ROWS as HOUGH
from op_rows_patchmatch import ROWS as PATCHMATCH
from op_rows_soft_argmax import ROWS as SOFT_ARGMAX
from op_rows_sparse import ROWS as SPARSE

ROWS = CORRELATION + CONSENSUS + SPARSE + PATCHMATCH + HOUGH + SOFT_ARGMAX
