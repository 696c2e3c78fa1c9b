"""Two-tower retrieval: YouTube-DNN user tower over any history, hybrid item tower with content.

Importing this package registers `twotower`.
"""

from tuijian.models.two_tower.youtube_dnn import TwoTower, TwoTowerConfig

__all__ = ["TwoTower", "TwoTowerConfig"]
