"""Shared helper for symbolic proof tests: each symbolic derivation must finish within 10 s."""
import time
from contextlib import contextmanager

PROOF_SECONDS = 10.0


@contextmanager
def proof_budget():
    """Fail the enclosing test if the symbolic step takes longer than `PROOF_SECONDS`."""
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    assert elapsed < PROOF_SECONDS, f"symbolic proof took {elapsed:.1f} s > {PROOF_SECONDS} s"
