"""Where a `--model` comes from: a local directory, the Hugging Face cache, or the hub, checked up front so
that a wrong name fails with one line instead of a traceback after half a minute of HTTP retries."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else with a separator, or starting like a path, is a path.
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers always brings huggingface_hub
        return False
    found = try_to_load_from_cache(name, "config.json")
    return isinstance(found, str)


def resolve_model(name_or_path: str) -> tuple[str, bool]:
    """(absolute path or hub id, load with local_files_only); ValueError naming the path or name otherwise."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        directory = path.parent if path.is_file() else path
        if not (directory / "config.json").is_file():
            raise ValueError(f"model {name_or_path}: {directory} holds no config.json (not a model directory)")
        return str(directory.resolve()), True
    if _looks_like_path(name_or_path):
        raise ValueError(f"model {name_or_path}: no such directory")
    if _cached(name_or_path):
        return name_or_path, True
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
        raise ValueError(f"model {name_or_path}: no local directory of that name, not in the Hugging Face cache, "
                         f"and {why}")
    return name_or_path, False


_CACHE_SNAPSHOT = re.compile(r"(?:^|/)models--([^/]+)/snapshots/[^/]+/?$")


def hub_name(name_or_path: str) -> str | None:
    """The hub id a model was loaded as: the id itself, or the id of a Hugging Face cache snapshot
    (`.../models--allenai--unifiedqa-t5-large/snapshots/<rev>`); None for any other local directory, whose
    files may be a copy, a fine-tuned derivative or anything else (give `train --model-name` then)."""
    text = str(name_or_path).strip()
    if not text:
        return None
    found = _CACHE_SNAPSHOT.search(text.replace(os.sep, "/"))
    if found:
        return found.group(1).replace("--", "/")
    if Path(text).expanduser().exists() or _looks_like_path(text):
        return None
    return text
