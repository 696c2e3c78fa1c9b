"""A known answer for sequence models: every user walks a cycle of items, one step at a time.

User u starts at item (u mod n) and visits the next item of the cycle at each step, so the
next item after any session is exactly the one after its last item, whatever the user.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tuijian.data import Columns, Dataset, build_dataset

C = Columns


def cycle_dataset(n_users: int = 60, n_items: int = 10, length: int = 12) -> Dataset:
    """`n_users` walks of `length` steps over a cycle of `n_items` items, with timestamps."""
    user = np.repeat(np.arange(n_users), length)
    step = np.tile(np.arange(length), n_users)
    item = (user + step) % n_items
    frame = pl.DataFrame(
        {
            C.user_id: [f"u{u:03d}" for u in user],
            C.item_id: [f"i{i:02d}" for i in item],
            C.timestamp: (step * 10.0).astype(np.float64),
        }
    )
    return build_dataset(frame, name="cycles")


def next_id(item_id: str, n_items: int = 10) -> str:
    """The item after `item_id` on the cycle."""
    return f"i{(int(item_id[1:]) + 1) % n_items:02d}"
