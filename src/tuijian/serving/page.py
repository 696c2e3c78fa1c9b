"""The service's web page (`GET /`): one static HTML file with its script, no build step."""

from __future__ import annotations

from importlib.resources import files

PAGE = (files("tuijian.serving") / "static" / "index.html").read_text(encoding="utf-8")
