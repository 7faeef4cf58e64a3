"""Fixtures of the server tests: one running server, and rows to send it.

The server serves the shared session model (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from xgbflow import dataset

from .support import RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def server(model_dir, tmp_path_factory) -> Iterator[RunningServer]:
    """One server for the session's HTTP tests (they do not change its state)."""
    running = start_server(model_dir, tmp_path_factory.mktemp("serve") / "server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def sample_rows(trained) -> pd.DataFrame:
    """Test-split rows, every row with a missing value first, then complete ones."""
    frame = dataset.to_model_frame(trained.splits.test, trained.schema)
    numeric = frame[list(trained.schema.numeric)].isna().any(axis=1)
    categorical = (frame[list(trained.schema.categorical)] == "").any(axis=1)
    missing = frame[numeric | categorical]
    complete = frame[~(numeric | categorical)].head(200)
    assert len(missing) > 10, "the sample needs rows with missing values"
    return pd.concat([missing, complete])
